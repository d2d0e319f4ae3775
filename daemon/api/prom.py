"""Prometheus-compatible read endpoints: targets, series, label names and values."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from daemon.api import server
from daemon.config import format_duration
from daemon.tsdb import Matcher, SelectorError, parse_selector

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadData(Exception):
    """A request Prometheus would answer with errorType bad_data."""


def ok(data: Any) -> web.Response:
    return web.json_response({"status": "success", "data": data})


def error(kind: str, message: str, status: int) -> web.Response:
    return web.json_response({"status": "error", "errorType": kind, "error": message}, status=status)


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """API errors in Prometheus' JSON shape."""
    try:
        return await handler(request)
    except BadData as exc:
        return error("bad_data", str(exc), 400)


async def params(request: web.Request) -> list[tuple[str, str]]:
    """Query-string parameters, plus form parameters of a POST, as Prometheus reads them."""
    pairs = list(request.query.items())
    if request.method == "POST":
        pairs += [(k, v) for k, v in (await request.post()).items() if isinstance(v, str)]
    return pairs


def _selectors(params: list[tuple[str, str]]) -> list[list[Matcher]]:
    selectors = []
    for key, value in params:
        if key == "match[]":
            try:
                selectors.append(parse_selector(value))
            except SelectorError as exc:
                raise BadData(f"invalid parameter \"match[]\": {exc}") from None
    return selectors


async def targets(request: web.Request) -> web.Response:
    state = request.query.get("state", "any")
    if state not in ("active", "dropped", "any"):
        raise BadData(f"invalid state {state!r}: want active, dropped or any")
    daemon = request.app[server.DAEMON]
    active = []
    if state in ("active", "any"):
        for job, loops in sorted(daemon.scrape.loops().items()):
            for loop in sorted(loops, key=lambda loop: loop.target.url):
                target, health = loop.target, loop.health
                active.append(
                    {
                        "discoveredLabels": target.discovered.to_dict(),
                        "labels": target.labels.to_dict(),
                        "scrapePool": job,
                        "scrapeUrl": target.url,
                        "globalUrl": target.url,
                        "lastError": health.last_error,
                        "lastScrape": _rfc3339(health.last_scrape),
                        "lastScrapeDuration": health.last_scrape_duration,
                        "health": health.health,
                        "scrapeInterval": format_duration(target.interval),
                        "scrapeTimeout": format_duration(target.timeout),
                    }
                )
    dropped = []
    if state in ("dropped", "any"):
        for job, targets in sorted(daemon.scrape.dropped().items()):
            dropped += [{"discoveredLabels": t.discovered.to_dict(), "scrapePool": job} for t in targets]
    return ok({"activeTargets": active, "droppedTargets": dropped})


async def series(request: web.Request) -> web.Response:
    selectors = _selectors(await params(request))
    if not selectors:
        raise BadData("no match[] parameter provided")
    store = request.app[server.DAEMON].store
    found = {}
    for matchers in selectors:
        for s in store.select(matchers):
            found[s.labels] = s.labels.to_dict()
    return ok(list(found.values()))


async def labels(request: web.Request) -> web.Response:
    selectors = _selectors(await params(request))
    return ok(request.app[server.DAEMON].store.label_names(selectors))


async def label_values(request: web.Request) -> web.Response:
    selectors = _selectors(await params(request))
    name = request.match_info["name"]
    return ok(request.app[server.DAEMON].store.label_values(name, selectors))


def _rfc3339(t: float) -> str:
    if t <= 0:
        return "0001-01-01T00:00:00Z"
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
