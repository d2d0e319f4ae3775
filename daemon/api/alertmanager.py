"""Alertmanager's API v2 over the daemon's notification side, in Alertmanager 0.25's shapes, so that
``amtool --alertmanager.url=...``, Grafana and Prometheus (``POST /api/v2/alerts``) work.

Routes: ``/api/v2/status``, ``/api/v2/receivers``, ``/api/v2/alerts`` (GET, POST),
``/api/v2/alerts/groups``, ``/api/v2/silences`` (GET, POST), ``/api/v2/silence/{id}`` (GET,
DELETE). Errors are a JSON string with the reason, as go-swagger answers. The handlers find the
``Notifier`` as the daemon's ``notifier`` attribute; without one they answer 503.
"""

from __future__ import annotations

import json
import platform
import re
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from daemon import __version__
from daemon.api import server
from daemon.dispatch.alert import Alert, parse_rfc3339, received, rfc3339, validate
from daemon.dispatch.alerts import ACTIVE, UNPROCESSED, AlertStatus
from daemon.dispatch.matchers import Matcher, MatcherError, MatchType, parse_matcher
from daemon.dispatch.silence import Silence, SilenceError, SilenceMatcher, SilenceNotFound, sort_for_listing
from daemon.notify.pipeline import Notifier
from daemon.re2 import RegexError, translate_re2

MAX_BODY = 64 * 1024 * 1024
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


class APIError(Exception):
    """An answer other than 200: ``status`` and the message sent as a JSON string."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def add_routes(app: web.Application) -> None:
    """Register the API v2 routes on the daemon's application."""
    app.router.add_get("/api/v2/status", _handle(status))
    app.router.add_get("/api/v2/receivers", _handle(receivers))
    app.router.add_get("/api/v2/alerts", _handle(get_alerts))
    app.router.add_post("/api/v2/alerts", _handle(post_alerts))
    app.router.add_get("/api/v2/alerts/groups", _handle(get_alert_groups))
    app.router.add_get("/api/v2/silences", _handle(get_silences))
    app.router.add_post("/api/v2/silences", _handle(post_silences))
    app.router.add_get("/api/v2/silence/{silence_id}", _handle(get_silence))
    app.router.add_delete("/api/v2/silence/{silence_id}", _handle(delete_silence))


Handler = Callable[[web.Request, Notifier], Any]


def notifier_of(request: web.Request) -> Notifier | None:
    """The daemon's ``Notifier``; None while alerting is not configured."""
    return request.app[server.DAEMON].notifier


async def bounded_body(request: web.Request, limit: int) -> bytes | None:
    """The whole request body, or None when it is larger than ``limit`` bytes (known from
    ``Content-Length`` before anything is read, else once that much has arrived)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks = []
    size = 0
    # ``read(n)`` returns what has arrived so far, not n bytes: read until the end of the body.
    while chunk := await request.content.read(1 << 16):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _handle(handler: Handler) -> Callable[[web.Request], Any]:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        notifier = notifier_of(request)
        try:
            if notifier is None:
                raise APIError(503, "alerting is not configured")
            result = await handler(request, notifier)
        except APIError as exc:
            if not exc.message:
                return web.Response(status=exc.status, headers={"Cache-Control": "no-store"})
            return _json(exc.message, exc.status)
        if isinstance(result, web.StreamResponse):
            return result
        return _json(result)

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


# -- general --------------------------------------------------------------------------------------


async def status(request: web.Request, notifier: Notifier) -> dict[str, Any]:
    """Version, uptime, the alerting config, and the cluster (always disabled: one process)."""
    return {
        "cluster": {"peers": [], "status": "disabled"},
        "config": {"original": notifier.config_yaml()},
        "uptime": rfc3339(notifier.started_at),
        "versionInfo": {
            "branch": "",
            "buildDate": "",
            "buildUser": "",
            "goVersion": f"python{platform.python_version()}",
            "revision": "",
            "version": f"alertd-{__version__}",
        },
    }


async def receivers(request: web.Request, notifier: Notifier) -> list[dict[str, str]]:
    """The configured receivers, in config order."""
    return [{"name": name} for name in notifier.receiver_names]


# -- alerts ---------------------------------------------------------------------------------------


async def get_alerts(request: web.Request, notifier: Notifier) -> list[dict[str, Any]]:
    """Alerts not resolved, filtered by ``filter`` matchers, ``receiver`` regex and the
    ``active``/``silenced``/``inhibited``/``unprocessed`` flags; sorted by fingerprint."""
    matchers = _filter(request)
    receiver_filter = _receiver_filter(request)
    keep = _alert_filter(request, notifier, matchers)
    now = notifier.clock.time()
    shown = []
    for alert in notifier.alerts.list():
        names = notifier.receivers_of(alert.labels)
        if receiver_filter is not None and not any(receiver_filter.fullmatch(n) for n in names):
            continue
        if not keep(alert, now):
            continue
        shown.append(alert_json(alert, notifier.marker.status(alert.fingerprint), names))
    shown.sort(key=lambda a: a["fingerprint"])
    return shown


async def post_alerts(request: web.Request, notifier: Notifier) -> web.Response:
    """Receive alerts (Prometheus' and amtool's ``POST``): every valid alert is stored; if any
    is invalid the answer is 400 with the reasons."""
    body = await _body(request)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise APIError(400, f"parsing alerts body failed: {exc}") from None
    if not isinstance(data, list):
        raise APIError(400, "parsing alerts body failed: expected a JSON array of alerts")
    now = notifier.clock.time()
    valid: list[Alert] = []
    errors: list[str] = []
    for i, item in enumerate(data):
        try:
            alert = _postable_alert(item, now, notifier.resolve_timeout)
        except ValueError as exc:
            errors.append(f"alert {i}: {exc}")
            continue
        problem = validate(alert)
        if problem:
            errors.append(problem)
            continue
        valid.append(alert)
    notifier.alerts.put(*valid)
    if errors:
        raise APIError(400, "; ".join(errors))
    return web.Response(status=200, headers={"Cache-Control": "no-store"})


async def get_alert_groups(request: web.Request, notifier: Notifier) -> list[dict[str, Any]]:
    """Aggregation groups with their alerts, filtered as ``GET /api/v2/alerts``."""
    matchers = _filter(request)
    receiver_filter = _receiver_filter(request)
    keep = _alert_filter(request, notifier, matchers)
    if notifier.dispatcher is None:
        return []

    def route_filter(route: Any) -> bool:
        return receiver_filter is None or receiver_filter.fullmatch(route.receiver) is not None

    groups, receivers_by_fp = notifier.dispatcher.groups(route_filter, keep)
    return [
        {
            "labels": dict(group.labels),
            "receiver": {"name": group.receiver},
            "alerts": [
                alert_json(a, notifier.marker.status(a.fingerprint), receivers_by_fp.get(a.fingerprint, []))
                for a in group.alerts
            ],
        }
        for group in groups
    ]


def alert_json(alert: Alert, status: AlertStatus, receiver_names: list[str]) -> dict[str, Any]:
    """Alertmanager's ``gettableAlert``."""
    return {
        "annotations": dict(alert.annotations),
        "endsAt": rfc3339(alert.ends_at),
        "fingerprint": alert.fingerprint,
        "receivers": [{"name": name} for name in receiver_names],
        "startsAt": rfc3339(alert.starts_at),
        "status": {
            "inhibitedBy": list(status.inhibited_by),
            "silencedBy": list(status.silenced_by),
            "state": status.state,
        },
        "updatedAt": rfc3339(alert.updated_at),
        "generatorURL": alert.generator_url,
        "labels": alert.labels.to_dict(),
    }


def _postable_alert(item: Any, now: float, resolve_timeout: float) -> Alert:
    if not isinstance(item, dict):
        raise ValueError("must be an object")
    labels = _string_map(item.get("labels"), "labels", required=True)
    annotations = _string_map(item.get("annotations"), "annotations", required=False)
    for name in labels:
        if not _LABEL_NAME.fullmatch(name):
            raise ValueError(f"invalid name {_go_quote(name)}")
    generator_url = item.get("generatorURL") or ""
    if not isinstance(generator_url, str):
        raise ValueError("generatorURL must be a string")
    starts_at = _time(item.get("startsAt"), "startsAt")
    ends_at = _time(item.get("endsAt"), "endsAt")
    # Alertmanager drops labels with an empty value before validating (Labels drops them too).
    return received(labels, annotations, starts_at, ends_at, generator_url, now=now, resolve_timeout=resolve_timeout)


def _string_map(value: Any, what: str, *, required: bool) -> dict[str, str]:
    if value is None:
        if required:
            raise ValueError(f"{what} in body is required")
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError(f"{what} must map strings to strings")
    return value


def _time(value: Any, what: str) -> float:
    if value in (None, ""):
        return 0.0
    try:
        return parse_rfc3339(value)
    except (ValueError, TypeError):
        raise ValueError(f"{what} {value!r} is not an RFC 3339 date-time") from None


def _alert_filter(request: web.Request, notifier: Notifier, matchers: list[Matcher]) -> Callable[[Alert, float], bool]:
    active = _flag(request, "active")
    silenced = _flag(request, "silenced")
    inhibited = _flag(request, "inhibited")
    unprocessed = _flag(request, "unprocessed")

    def keep(alert: Alert, now: float) -> bool:
        if alert.resolved_at(now):
            return False
        # The alert's status is decided afresh, as Alertmanager's setAlertStatus does.
        notifier.inhibitor.mutes(alert.labels)
        notifier.silencer.mutes(alert.labels)
        status = notifier.marker.status(alert.fingerprint)
        if not active and status.state == ACTIVE:
            return False
        if not unprocessed and status.state == UNPROCESSED:
            return False
        if not silenced and status.silenced_by:
            return False
        if not inhibited and status.inhibited_by:
            return False
        return filter_matches(matchers, alert.labels.to_dict())

    return keep


def filter_matches(matchers: list[Matcher], labels: Mapping[str, str]) -> bool:
    """Alertmanager's ``matchFilterLabels``: an empty-value matcher also accepts a missing label
    (``=``/``=~``) and a present one (``!=``/``!~``)."""
    for matcher in matchers:
        present = matcher.name in labels
        value = labels.get(matcher.name, "")
        if matcher.type in (MatchType.NOT_EQUAL, MatchType.NOT_REGEXP):
            if matcher.value == "" and present:
                continue
        elif matcher.value == "" and not present:
            continue
        if not matcher.matches_value(value):
            return False
    return True


# -- silences -------------------------------------------------------------------------------------


async def get_silences(request: web.Request, notifier: Notifier) -> list[dict[str, Any]]:
    """Every silence (expired ones within the retention) whose matchers include each ``filter``
    matcher; active first (soonest end), then pending (soonest start), then expired."""
    matchers = _filter(request)
    now = notifier.clock.time()
    found = [s for s in notifier.silences.query() if _silence_has(s, matchers)]
    return [silence_json(s, now) for s in sort_for_listing(found, now)]


async def post_silences(request: web.Request, notifier: Notifier) -> dict[str, str]:
    """Create a silence, or change the one with the given ``id``; answers ``{"silenceID": ...}``."""
    body = await _body(request)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise APIError(400, f"parsing silence body failed: {exc}") from None
    try:
        silence = _postable_silence(data)
    except (SilenceError, ValueError) as exc:
        raise APIError(400, f"failed to convert API silence to internal silence: {exc}") from None
    if silence.starts_at >= silence.ends_at:
        raise APIError(400, "Failed to create silence: start time must be before end time")
    if silence.ends_at < notifier.clock.time():
        raise APIError(400, "Failed to create silence: end time can't be in the past")
    try:
        silence_id = notifier.silences.set(silence)
    except SilenceNotFound as exc:
        raise APIError(404, str(exc)) from None
    except SilenceError as exc:
        raise APIError(400, str(exc)) from None
    return {"silenceID": silence_id}


async def get_silence(request: web.Request, notifier: Notifier) -> dict[str, Any]:
    silence = notifier.silences.get(request.match_info["silence_id"])
    if silence is None:
        raise APIError(404)
    return silence_json(silence, notifier.clock.time())


async def delete_silence(request: web.Request, notifier: Notifier) -> web.Response:
    """Expire a silence (it stays listed as expired for the retention)."""
    try:
        notifier.silences.expire(request.match_info["silence_id"])
    except SilenceNotFound:
        raise APIError(404) from None
    except SilenceError as exc:
        raise APIError(500, str(exc)) from None
    return web.Response(status=200, headers={"Cache-Control": "no-store"})


def silence_json(silence: Silence, now: float) -> dict[str, Any]:
    """Alertmanager's ``gettableSilence``."""
    return {
        "id": silence.id,
        "status": {"state": silence.state(now)},
        "updatedAt": rfc3339(silence.updated_at),
        "comment": silence.comment,
        "createdBy": silence.created_by,
        "endsAt": rfc3339(silence.ends_at),
        "matchers": [m.to_json() for m in silence.matchers],
        "startsAt": rfc3339(silence.starts_at),
    }


def _postable_silence(data: Any) -> Silence:
    if not isinstance(data, dict):
        raise ValueError("a silence must be a JSON object")
    for key in ("matchers", "startsAt", "endsAt", "createdBy", "comment"):
        if key not in data:
            raise ValueError(f"{key} in body is required")
    raw_matchers = data["matchers"]
    if not isinstance(raw_matchers, list):
        raise ValueError("matchers in body must be of type array")
    for key in ("createdBy", "comment"):
        if not isinstance(data[key], str):
            raise ValueError(f"{key} in body must be of type string")
    silence_id = data.get("id") or ""
    if not isinstance(silence_id, str):
        raise ValueError("id in body must be of type string")
    return Silence(
        id=silence_id,
        matchers=tuple(SilenceMatcher.from_json(m) for m in raw_matchers),
        starts_at=_time(data["startsAt"], "startsAt"),
        ends_at=_time(data["endsAt"], "endsAt"),
        created_by=data["createdBy"],
        comment=data["comment"],
    )


_SILENCE_TYPES = {
    MatchType.EQUAL: (True, False),
    MatchType.NOT_EQUAL: (False, False),
    MatchType.REGEXP: (True, True),
    MatchType.NOT_REGEXP: (False, True),
}


def _silence_has(silence: Silence, matchers: list[Matcher]) -> bool:
    # Alertmanager's CheckSilenceMatchesFilterLabels: each filter matcher appears in the silence.
    for matcher in matchers:
        is_equal, is_regex = _SILENCE_TYPES[matcher.type]
        if not any(
            m.name == matcher.name and m.value == matcher.value and m.is_equal == is_equal and m.is_regex == is_regex
            for m in silence.matchers
        ):
            return False
    return True


# -- parameters -----------------------------------------------------------------------------------


def _filter(request: web.Request) -> list[Matcher]:
    matchers = []
    for text in request.query.getall("filter", []):
        try:
            matchers.append(parse_matcher(text))
        except MatcherError as exc:
            raise APIError(400, str(exc)) from None
    return matchers


def _receiver_filter(request: web.Request) -> re.Pattern[str] | None:
    text = request.query.get("receiver")
    if text is None:
        return None
    try:
        return re.compile(translate_re2(f"^(?:{text})$"))
    except (RegexError, re.error) as exc:
        raise APIError(400, f"failed to parse receiver param: {exc}") from None


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name)
    if value is None or value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise APIError(400, f"{name} in query must be of type boolean: {value!r}")


async def _body(request: web.Request) -> bytes:
    body = await bounded_body(request, MAX_BODY)
    if body is None:
        raise APIError(413, f"request body larger than {MAX_BODY} bytes")
    return body


def _go_quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)

