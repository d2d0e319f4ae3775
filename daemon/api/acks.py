"""Acknowledgements over HTTP: the API (``/api/v1/acks``), Slack's interactivity endpoint
(``/slack/interactions``) and PagerDuty's v3 webhooks (``/pagerduty/webhook``).

``POST /api/v1/acks`` takes ``{"matchers": ["alertname=SiteDown", ...] | "group_key": KEY,
"by": NAME, "comment": TEXT}`` and acknowledges every aggregation group holding a firing alert
that matches (or the group with that key): 404 when nothing matches, 409 when only resolved
alerts match. ``GET /api/v1/acks`` lists the acknowledgements in force; ``DELETE
/api/v1/acks/{id}``, or ``DELETE /api/v1/acks`` with the same body as ``POST``, removes them.
Answers are Prometheus-shaped: ``{"status": "success", "data": ...}`` or ``{"status": "error",
"errorType": ..., "error": ...}``. Bodies over ``MAX_BODY`` are refused with 413.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from daemon.api import server
from daemon.api.alertmanager import bounded_body, notifier_of
from daemon.dispatch.matchers import Matcher, MatcherError, matches_all, parse_matchers
from daemon.notify.acknowledge import ACK_ACTION, ack_token, verify_pagerduty, verify_slack
from daemon.notify.escalation import Escalator, GroupLike, base_group_key
from daemon.notify.history import IncidentHistory
from daemon.notify.pagerduty import dedup_key
from daemon.notify.pipeline import Notifier

MAX_BODY = 64 * 1024
MAX_FIELD = 1024


class Refused(Exception):
    """An answer other than 200, with the reason."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/acks", _handle(list_acks))
    app.router.add_post("/api/v1/acks", _handle(post_ack))
    app.router.add_delete("/api/v1/acks", _handle(delete_acks))
    app.router.add_delete("/api/v1/acks/{ack_id}", _handle(delete_ack))
    app.router.add_post("/slack/interactions", _handle(slack_interaction))
    app.router.add_post("/pagerduty/webhook", _handle(pagerduty_webhook))
    app.router.add_get("/api/v1/incidents", _handle(incidents))


Handler = Callable[[web.Request, Notifier, Escalator], Awaitable[Any]]


def _handle(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            notifier = notifier_of(request)
            if notifier is None or notifier.escalator is None:
                raise Refused(503, "unavailable", "alerting is not configured")
            data = await handler(request, notifier, notifier.escalator)
        except Refused as exc:
            body = {"status": "error", "errorType": exc.kind, "error": str(exc)}
            return web.json_response(body, status=exc.status)
        if isinstance(data, web.StreamResponse):
            return data
        return web.json_response({"status": "success", "data": data})

    wrapped.__name__ = handler.__name__
    return wrapped


async def read_body(request: web.Request, limit: int = MAX_BODY) -> bytes:
    """The request body, refused with 413 beyond ``limit`` bytes (before reading it all)."""
    body = await bounded_body(request, limit)
    if body is None:
        raise Refused(413, "too_large", f"request body larger than {limit} bytes")
    return body


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(400, "bad_data", f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Refused(400, "bad_data", "body must be a JSON object")
    return data


def _text(data: dict[str, Any], key: str, *, required: bool = False) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise Refused(400, "bad_data", f'"{key}" must be a string')
    if required and not value.strip():
        raise Refused(400, "bad_data", f'"{key}" is required (who acknowledges)')
    if len(value) > MAX_FIELD:
        raise Refused(400, "bad_data", f'"{key}" is longer than {MAX_FIELD} characters')
    return value.strip()


def _matchers(data: dict[str, Any]) -> list[Matcher]:
    raw = data.get("matchers", [])
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(m, str) for m in raw):
        raise Refused(400, "bad_data", '"matchers" must be a list of strings such as "alertname=SiteDown"')
    found: list[Matcher] = []
    for index, text in enumerate(raw):
        try:
            found.extend(parse_matchers(text))
        except MatcherError as exc:
            raise Refused(400, "bad_data", f"matchers.{index}: {exc}") from None
    return found


def select_groups(notifier: Notifier, data: dict[str, Any]) -> list[GroupLike]:
    """The groups a request body names (``group_key`` or ``matchers``) that have firing alerts.

    404 when nothing matches; 409 when what matches is resolved only.
    """
    group_key = _text(data, "group_key")
    matchers = _matchers(data)
    if not group_key and not matchers:
        raise Refused(400, "bad_data", 'give "matchers" (such as ["alertname=SiteDown"]) or a "group_key"')
    now = notifier.clock.time()
    dispatcher = notifier.dispatcher
    groups = list(dispatcher.all_groups()) if dispatcher is not None else []
    firing: list[GroupLike] = []
    resolved_seen = False
    for group in groups:
        if group_key:
            if group.key != base_group_key(group_key):
                continue
            candidates = list(group.alerts.values())
        else:
            candidates = [a for a in group.alerts.values() if matches_all(matchers, a.labels)]
        if any(not a.resolved_at(now) for a in candidates):
            firing.append(group)
        elif candidates:
            resolved_seen = True
    if not group_key:
        resolved_seen = resolved_seen or any(
            a.resolved_at(now) and matches_all(matchers, a.labels) for a in notifier.alerts.list()
        )
    what = f'group "{group_key}"' if group_key else "{" + ", ".join(str(m) for m in matchers) + "}"
    if not firing:
        if resolved_seen:
            raise Refused(409, "resolved", f"the alerts matching {what} are resolved: there is nothing to acknowledge")
        raise Refused(404, "not_found", f"no alert matches {what}")
    return firing


async def list_acks(request: web.Request, notifier: Notifier, escalator: Escalator) -> Any:
    return [ack.to_document() for ack in escalator.acks()]


async def post_ack(request: web.Request, notifier: Notifier, escalator: Escalator) -> Any:
    data = _json_object(await read_body(request))
    by = _text(data, "by", required=True)
    comment = _text(data, "comment")
    acks = [escalator.acknowledge(group, by, comment, via=_text(data, "via") or "api") for group in select_groups(notifier, data)]
    return [ack.to_document() for ack in acks]


async def delete_acks(request: web.Request, notifier: Notifier, escalator: Escalator) -> Any:
    data = _json_object(await read_body(request))
    removed = [a for a in (escalator.unacknowledge(g.key) for g in select_groups(notifier, data)) if a is not None]
    if not removed:
        raise Refused(404, "not_found", "the matching alerts are not acknowledged")
    return [ack.to_document() for ack in removed]


async def delete_ack(request: web.Request, notifier: Notifier, escalator: Escalator) -> Any:
    wanted = request.match_info["ack_id"]
    for ack in escalator.acks():
        if ack.id == wanted:
            escalator.unacknowledge(ack.group_key)
            return [ack.to_document()]
    raise Refused(404, "not_found", f"no acknowledgement with id {wanted}")


async def incidents(request: web.Request, notifier: Notifier, escalator: Escalator) -> Any:
    """The incident report of the last ``since`` (default 7d), with uptime per job from ``up``."""
    from daemon.config.duration import format_duration, parse_duration

    try:
        since = parse_duration(request.query.get("since", "7d"))
    except ValueError as exc:
        raise Refused(400, "bad_data", f'invalid parameter "since": {exc}') from None
    if since <= 0:
        raise Refused(400, "bad_data", 'invalid parameter "since": must be longer than 0s')
    history = escalator.listener
    if not isinstance(history, IncidentHistory):
        raise Refused(503, "unavailable", "no incident history")
    store = getattr(request.app[server.DAEMON], "store", None)
    return history.report(since, uptime_by_job(store, format_duration(since), notifier.clock.time()) if store is not None else {})


def uptime_by_job(store: Any, window: str, t: float) -> dict[str, float]:
    """Percent of ``up`` per job over ``window`` (``avg_over_time(up[window])`` averaged by job)."""
    from daemon.promql.engine import Engine
    from daemon.promql.errors import QueryError
    from daemon.promql.parser import parse_expr

    try:
        result = Engine(store).instant(parse_expr(f"avg by (job) (avg_over_time(up[{window}]))"), t)
    except QueryError:
        return {}
    uptime: dict[str, float] = {}
    for sample in result:  # type: ignore[union-attr]
        uptime[sample.labels.get("job") or ""] = 100.0 * float(sample.value)
    return uptime


# -- Slack ----------------------------------------------------------------------------------------


async def slack_interaction(request: web.Request, notifier: Notifier, escalator: Escalator) -> Any:
    """A click on the "Acknowledge" button (a ``block_actions`` interaction)."""
    secret = notifier.config.acknowledgements.slack_signing_secret
    if secret is None:
        raise Refused(404, "not_found", "Slack interactions are not configured (acknowledgements.slack_signing_secret)")
    body = await read_body(request)
    problem = verify_slack(secret.reveal(), request.headers, body, notifier.clock.time())
    if problem:
        raise Refused(401, "unauthorized", problem)
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=True)
        payload = json.loads(form["payload"][0])
        kind = payload["type"]
        actions = payload.get("actions", []) if kind == "block_actions" else []
        user = payload["user"]
        by = str(user.get("username") or user.get("name") or user["id"])
        tokens = [a["value"] for a in actions if a.get("action_id") == ACK_ACTION]
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, UnicodeDecodeError) as exc:
        raise Refused(400, "bad_data", f"malformed Slack interaction payload: {type(exc).__name__}: {exc}") from None
    if not tokens:
        return web.Response(status=200)  # another interaction of the app: nothing for alertd
    groups = [g for g in (notifier.dispatcher.all_groups() if notifier.dispatcher else []) if ack_token(g.key) in tokens]
    now = notifier.clock.time()
    groups = [g for g in groups if any(not a.resolved_at(now) for a in g.alerts.values())]
    if not groups:
        return web.json_response({"response_type": "ephemeral", "replace_original": False, "text": "These alerts are resolved: nothing to acknowledge."})
    acks = [escalator.acknowledge(g, by, via="slack") for g in groups]
    return web.json_response({"response_type": "ephemeral", "replace_original": False, "text": f"Acknowledged by {acks[0].by}."})


# -- PagerDuty ------------------------------------------------------------------------------------


async def pagerduty_webhook(request: web.Request, notifier: Notifier, escalator: Escalator) -> Any:
    """A v3 webhook event: ``incident.acknowledged`` for an incident alertd triggered (its
    ``incident_key`` is the ``dedup_key`` alertd sent) acknowledges the group."""
    secret = notifier.config.acknowledgements.pagerduty_webhook_secret
    if secret is None:
        raise Refused(404, "not_found", "PagerDuty webhooks are not configured (acknowledgements.pagerduty_webhook_secret)")
    body = await read_body(request)
    problem = verify_pagerduty(secret.reveal(), request.headers.get("X-PagerDuty-Signature", ""), body)
    if problem:
        raise Refused(401, "unauthorized", problem)
    try:
        event = _json_object(body)["event"]
        kind = str(event["event_type"])
        data = event.get("data") or {}
        key = data.get("incident_key") or data.get("dedup_key") or ""
        agent = event.get("agent") or {}
        by = str(agent.get("summary") or agent.get("id") or "PagerDuty")
    except (KeyError, TypeError, AttributeError) as exc:
        raise Refused(400, "bad_data", f"malformed PagerDuty webhook: {type(exc).__name__}: {exc}") from None
    if kind != "incident.acknowledged" or not isinstance(key, str) or not key:
        return {"acknowledged": []}
    acks = [escalator.acknowledge(g, by, via="pagerduty") for g in _groups_of_incident(notifier, escalator, key)]
    return {"acknowledged": [ack.to_document() for ack in acks]}


def _groups_of_incident(notifier: Notifier, escalator: Escalator, incident_key: str) -> list[GroupLike]:
    now = notifier.clock.time()
    found = []
    for group in notifier.dispatcher.all_groups() if notifier.dispatcher else []:
        keys = {group.key}
        state = escalator.state(group.key)
        if state is not None:
            keys.update(k for _, k in state.reached)
        if incident_key in {dedup_key(k) for k in keys} and any(not a.resolved_at(now) for a in group.alerts.values()):
            found.append(group)
    return found
