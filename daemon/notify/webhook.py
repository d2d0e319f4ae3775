"""Webhook receiver: Alertmanager's version 4 JSON payload POSTed to a URL."""

from __future__ import annotations

import json
from typing import Any

from daemon.config.receivers import WebhookConfig
from daemon.dispatch.alert import Alert, rfc3339
from daemon.notify.notification import HTTPIntegration, Notification


def webhook_payload(notification: Notification, max_alerts: int = 0) -> dict[str, Any]:
    """The version 4 payload; with ``max_alerts`` > 0 only that many alerts, the rest counted in
    ``truncatedAlerts``."""
    alerts = notification.alerts
    truncated = 0
    if max_alerts and len(alerts) > max_alerts:
        truncated = len(alerts) - max_alerts
        alerts = alerts[:max_alerts]
    return {
        "receiver": notification.receiver,
        "status": notification.status,
        "alerts": [_alert(a, notification.now) for a in alerts],
        "groupLabels": dict(notification.group_labels),
        "commonLabels": notification.common_labels,
        "commonAnnotations": notification.common_annotations,
        "externalURL": notification.external_url,
        "version": "4",
        "groupKey": notification.group_key,
        "truncatedAlerts": truncated,
    }


def _alert(alert: Alert, now: float) -> dict[str, Any]:
    resolved = alert.resolved_at(now)
    return {
        "status": "resolved" if resolved else "firing",
        "labels": alert.labels.to_dict(),
        "annotations": dict(alert.annotations),
        "startsAt": rfc3339(alert.starts_at),
        # A firing alert's end is only a timeout, which Alertmanager does not show.
        "endsAt": rfc3339(alert.ends_at if resolved else 0.0),
        "generatorURL": alert.generator_url,
        "fingerprint": alert.fingerprint,
    }


class WebhookIntegration(HTTPIntegration[WebhookConfig]):
    """POSTs the payload; 2xx is success, 429/5xx/transport errors retryable, other 4xx not."""

    name = "webhook"

    async def notify(self, notification: Notification) -> None:
        assert self.config.url is not None  # checked at load
        body = json.dumps(webhook_payload(notification, self.config.max_alerts)).encode()
        await self.post(self.config.url.reveal(), body, timeout=self.config.timeout or None)
