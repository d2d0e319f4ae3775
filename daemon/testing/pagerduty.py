"""A fake PagerDuty Events API v2 on 127.0.0.1 (``POST /v2/enqueue``).

It checks events as PagerDuty does (routing key, action, and for a trigger summary, source and
severity), answers 202 or 400 with PagerDuty's bodies, keeps the incidents by ``dedup_key`` and
answers failures on demand::

    async with FakePagerDuty() as pd:
        pd.fail_next(429, retry_after=3)
        ... url: pd.url ...
        pd.incidents[dedup_key].status   # "triggered" / "resolved"

From a shell, ``python -m daemon.testing.pagerduty --host 0.0.0.0 --port 8082`` serves one until
SIGINT or SIGTERM.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from daemon.testing.server import FakeServer, serve_from_command_line

SEVERITIES = ("critical", "error", "warning", "info")
ACTIONS = ("trigger", "acknowledge", "resolve")
MAX_EVENT_BYTES = 512 * 1024


@dataclass
class Incident:
    """What the fake knows of one ``dedup_key``: its status and every event sent for it."""

    dedup_key: str
    status: str
    events: list[dict[str, Any]] = field(default_factory=list)


class FakePagerDuty(FakeServer):
    """An aiohttp server imitating ``/v2/enqueue``; ``events`` are the accepted ones, in order."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.events: list[dict[str, Any]] = []
        self.requests: list[bytes] = []
        self.incidents: dict[str, Incident] = {}
        self._planned: deque[tuple[int, float | None]] = deque()

    def fail_next(self, status: int, *, retry_after: float | None = None) -> None:
        """Answer the next request with ``status`` (429, 500, 503, 400, ...)."""
        self._planned.append((status, retry_after))

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}/v2/enqueue"

    def _application(self) -> web.Application:
        app = web.Application(client_max_size=2 * MAX_EVENT_BYTES)
        app.router.add_post("/v2/enqueue", self._enqueue)
        return app

    async def _enqueue(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.requests.append(raw)
        if self._planned:
            status, retry_after = self._planned.popleft()
            headers = {"Retry-After": str(int(retry_after))} if retry_after is not None else {}
            if status == 400:
                return _invalid(["planned failure"])
            return web.json_response({"status": "throttled" if status == 429 else "error", "message": "planned failure"}, status=status, headers=headers)
        if len(raw) > MAX_EVENT_BYTES:
            return web.json_response({"status": "invalid event", "message": "Request entity too large"}, status=413)
        try:
            event = json.loads(raw)
        except ValueError:
            return _invalid(["Event object is not valid JSON"])
        problems = check_event(event)
        if problems:
            return _invalid(problems)
        key = event.get("dedup_key") or uuid.uuid4().hex
        self.events.append(event)
        incident = self.incidents.setdefault(key, Incident(key, "triggered"))
        incident.events.append(event)
        incident.status = {"trigger": "triggered", "acknowledge": "acknowledged", "resolve": "resolved"}[event["event_action"]]
        return web.json_response({"status": "success", "message": "Event processed", "dedup_key": key}, status=202)


def check_event(event: Any) -> list[str]:
    """PagerDuty's complaints about an event, empty when it is valid."""
    if not isinstance(event, dict):
        return ["Event object is invalid"]
    problems = []
    if not isinstance(event.get("routing_key"), str) or not event.get("routing_key"):
        problems.append("'routing_key' is missing or blank")
    action = event.get("event_action")
    if action not in ACTIONS:
        problems.append("'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or 'resolve')")
    if action in ("acknowledge", "resolve") and not event.get("dedup_key"):
        problems.append("'dedup_key' is missing or blank")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            return [*problems, "'payload' is missing or blank"]
        summary = payload.get("summary")
        if not isinstance(summary, str) or not summary:
            problems.append("'payload.summary' is missing or blank")
        elif len(summary) > 1024:
            problems.append("'payload.summary' must be at most 1024 characters")
        if not payload.get("source"):
            problems.append("'payload.source' is missing or blank")
        if payload.get("severity") not in SEVERITIES:
            problems.append("'payload.severity' is invalid (must be one of the following: 'critical', 'warning', 'error' or 'info')")
    return problems


def _invalid(errors: list[str]) -> web.Response:
    return web.json_response({"status": "invalid event", "message": "Event object is invalid", "errors": errors}, status=400)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m daemon.testing.pagerduty``: serve a fake PagerDuty; 0 after SIGINT/SIGTERM, 1 if it cannot listen."""
    return serve_from_command_line(
        argv,
        module="daemon.testing.pagerduty",
        name="PagerDuty",
        description="A fake PagerDuty Events API v2.",
        default_port=8082,
        make=lambda args: FakePagerDuty(host=args.host, port=args.port),
        banner=lambda pagerduty: f"fake PagerDuty: Events API v2 at {pagerduty.url}",
    )


if __name__ == "__main__":
    sys.exit(main())
