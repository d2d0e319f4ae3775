"""Acknowledgement outside the API: the Slack "Acknowledge" button, signed Slack interactions and
PagerDuty v3 webhooks, and showing an acknowledgement where the alert was posted.

Slack signs each interaction with the app's signing secret: ``X-Slack-Signature`` is ``v0=`` and
the hex HMAC-SHA256 of ``v0:{X-Slack-Request-Timestamp}:{body}``; a timestamp more than five
minutes away from now is a replay. PagerDuty signs each v3 webhook with the subscription's
secret: ``X-PagerDuty-Signature`` lists ``v1=`` hex HMAC-SHA256 digests of the body (several while
a secret is being rotated); one must match.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import structlog

from daemon.dispatch.alert import Alert
from daemon.notify.escalation import Ack, GroupLike, base_group_key

if TYPE_CHECKING:
    from daemon.notify.pipeline import Notifier

ACK_ACTION = "alertd_ack"
URGENT = frozenset({"P0", "P1"})
REPLAY_WINDOW = 300.0
SECTION_LIMIT = 3000

log = structlog.get_logger("alertd.ack")


def is_urgent(alerts: Iterable[Alert]) -> bool:
    """Whether any alert is P0 or P1 (its ``priority`` label, or ``severity`` written that way)."""
    return any(a.labels.get("priority", "") in URGENT or a.labels.get("severity", "") in URGENT for a in alerts)


def ack_token(group_key: str) -> str:
    """What the Slack button carries to name the aggregation group (a digest: keys can be long)."""
    return hashlib.sha256(base_group_key(group_key).encode()).hexdigest()[:40]


def ack_blocks(text: str, group_key: str) -> list[dict[str, Any]]:
    """Block Kit blocks showing ``text`` with an "Acknowledge" button for the group."""
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[i : i + SECTION_LIMIT]}}
        for i in range(0, min(len(text), 40 * SECTION_LIMIT), SECTION_LIMIT)
    ]
    blocks.append(
        {
            "type": "actions",
            "block_id": ACK_ACTION,
            "elements": [
                {
                    "type": "button",
                    "action_id": ACK_ACTION,
                    "style": "primary",
                    "text": {"type": "plain_text", "text": "Acknowledge"},
                    "value": ack_token(group_key),
                }
            ],
        }
    )
    return blocks


def acknowledged_line(ack: Ack) -> str:
    """The line added to a message once its group is acknowledged."""
    comment = f": {ack.comment}" if ack.comment else ""
    return f"✅ Acknowledged by {ack.by} via {ack.via}{comment}"


# -- signatures -----------------------------------------------------------------------------------


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Slack-Signature`` Slack sends with ``body`` at ``timestamp``."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify_slack(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> str | None:
    """None when the request is Slack's, else why not."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not timestamp or not signature:
        return "missing X-Slack-Request-Timestamp or X-Slack-Signature"
    try:
        sent = float(timestamp)
    except ValueError:
        return "invalid X-Slack-Request-Timestamp"
    if abs(now - sent) > REPLAY_WINDOW:
        return "X-Slack-Request-Timestamp is more than 5 minutes old (replay)"
    if not hmac.compare_digest(slack_signature(secret, timestamp, body), signature):
        return "X-Slack-Signature does not match"
    return None


def pagerduty_signature(secret: str, body: bytes) -> str:
    """One ``X-PagerDuty-Signature`` entry for ``body``."""
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_pagerduty(secret: str, header: str, body: bytes) -> str | None:
    """None when one of the header's signatures matches, else why not."""
    if not header:
        return "missing X-PagerDuty-Signature"
    expected = pagerduty_signature(secret, body)
    if any(hmac.compare_digest(expected, part.strip()) for part in header.split(",")):
        return None
    return "X-PagerDuty-Signature does not match"


# -- showing an acknowledgement -------------------------------------------------------------------


async def show_in_slack(notifier: Notifier, ack: Ack, group: GroupLike | None) -> None:
    """Edit the Slack messages of the group (the route's receiver and every escalation level it
    reached) to say who acknowledged, without the button."""
    from daemon.notify.notification import Notification

    if group is None:
        return
    now = notifier.clock.time()
    alerts = tuple(a for a in group.alerts.values() if not a.resolved_at(now))
    targets = [(ack.receiver, ack.group_key)]
    escalator = notifier.escalator
    state = escalator.state(ack.group_key) if escalator is not None else None
    if state is not None:
        targets += state.reached
    integrations = notifier.pipeline.integrations_by_receiver
    for receiver, key in targets:
        for integration in integrations.get(receiver, ()):
            show = getattr(integration, "show_acknowledgement", None)
            if show is None:
                continue
            notification = Notification(receiver, key, dict(group.labels), alerts, notifier.external_url, now)
            try:
                await show(notification, acknowledged_line(ack))
            except Exception as exc:  # a message that cannot be edited must not fail the ack
                log.warning("ack_not_shown", receiver=receiver, group=key, error=str(exc))
