"""PagerDuty receiver: Events API v2 (``/v2/enqueue``) over httpx, one attempt per call.

A notification triggers (or, once every alert is resolved, resolves) the incident whose
``dedup_key`` is the SHA-256 of the group key, as Alertmanager derives it: the same group maps to
the same incident across restarts. The summary is cut to 1024 characters and an event over
512 KB loses its custom details, as PagerDuty would refuse it. 400 is permanent (PagerDuty said
the event is invalid), 429 and 5xx retryable with their ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from daemon.config.receivers import PagerDutyConfig
from daemon.dispatch.alert import rfc3339
from daemon.notify.message import alert_fields, first_fields, render, truncate
from daemon.notify.notification import HTTPIntegration, Notification

MAX_SUMMARY = 1024
MAX_EVENT_BYTES = 512 * 1024
TRUNCATED_DETAILS = {"error": "Custom details have been removed because the original event exceeds the maximum size of 512KB"}
_INSTANCE = "Labels:\n{labels}\nAnnotations:\n{annotations}\nSource: {generator_url}"


def dedup_key(group_key: str) -> str:
    """The incident key of a group: stable across restarts and receivers' reloads."""
    return hashlib.sha256(group_key.encode()).hexdigest()


def pagerduty_event(config: PagerDutyConfig, notification: Notification) -> dict[str, Any]:
    """The Events API v2 body for ``notification`` (routing key included)."""
    assert config.routing_key is not None  # checked at load
    fields = first_fields(notification)
    action = "trigger" if notification.status == "firing" else "resolve"
    event: dict[str, Any] = {
        "routing_key": config.routing_key.reveal(),
        "event_action": action,
        "dedup_key": dedup_key(notification.group_key),
    }
    if action == "resolve":
        return event
    summary = render(config.description, fields)
    if len(notification.alerts) > 1:
        summary += f" (+{len(notification.alerts) - 1} more)"
    client = render(config.client, fields)
    payload: dict[str, Any] = {
        "summary": truncate(summary, MAX_SUMMARY),
        "source": render(config.source, fields) or client,
        "severity": render(config.severity, fields),
        "timestamp": rfc3339(notification.alerts[0].starts_at) if notification.alerts else rfc3339(notification.now),
        "custom_details": _details(config, notification, fields),
    }
    for key, value in (("class", config.class_), ("component", config.component), ("group", config.group)):
        if value:
            payload[key] = render(value, fields)
    event.update(
        payload=payload,
        client=client,
        client_url=render(config.client_url, fields) or notification.external_url,
    )
    if config.images:
        event["images"] = [
            {k: v for k, v in (("src", render(i.src, fields)), ("alt", render(i.alt, fields)), ("href", render(i.href, fields))) if v}
            for i in config.images
        ]
    if config.links:
        event["links"] = [{"href": render(l.href, fields), "text": render(l.text, fields)} for l in config.links]
    return event


def encode_event(event: dict[str, Any]) -> bytes:
    """The JSON body, with custom details replaced when the event would exceed 512 KB."""
    body = json.dumps(event).encode()
    if len(body) > MAX_EVENT_BYTES and "payload" in event:
        event = {**event, "payload": {**event["payload"], "custom_details": TRUNCATED_DETAILS}}
        body = json.dumps(event).encode()
    if len(body) > MAX_EVENT_BYTES:
        # Only user-set fields can still be this large: cut every string to what fits.
        event = json.loads(body)
        for key in ("client", "client_url"):
            event[key] = truncate(event.get(key, ""), 1024)
        for key, value in list(event.get("payload", {}).items()):
            if isinstance(value, str):
                event["payload"][key] = truncate(value, 1024)
        event.pop("images", None)
        event["links"] = [{"href": truncate(l.get("href", ""), 2048), "text": truncate(l.get("text", ""), 256)} for l in event.get("links", [])][:50]
        body = json.dumps(event).encode()
    return body


def _details(config: PagerDutyConfig, notification: Notification, fields: dict[str, str]) -> dict[str, str]:
    if config.details is None:
        instances = {
            status: "\n".join(_instance(a, notification) for a in alerts)
            for status, alerts in (("firing", notification.firing), ("resolved", notification.resolved))
        }
        return {
            "firing": instances["firing"],
            "resolved": instances["resolved"],
            "num_firing": str(len(notification.firing)),
            "num_resolved": str(len(notification.resolved)),
        }
    return {key: render(value, fields) for key, value in config.details.items()}


def _instance(alert: Any, notification: Notification) -> str:
    fields = alert_fields(alert, notification)
    labels = "\n".join(f" - {k} = {v}" for k, v in alert.labels.items())
    annotations = "\n".join(f" - {k} = {v}" for k, v in alert.annotations.items())
    return render(_INSTANCE, {**fields, "labels": labels, "annotations": annotations})


class PagerDutyIntegration(HTTPIntegration[PagerDutyConfig]):
    """Sends one event per notification to ``url`` (``global.pagerduty_url`` by default)."""

    name = "pagerduty"

    async def notify(self, notification: Notification) -> None:
        await self.post(self.config.url, encode_event(pagerduty_event(self.config, notification)))
