"""alertd's own alert about notifications it could not deliver: ``AlertdNotificationsFailing``.

When an integration gives up on a notification (a permanent error, or transient errors until
its deadline), ``DeliveryFailures.failed`` puts a firing alert into the alert set, one per
receiver and integration, so it is routed like any other alert (route it to a receiver that
does not depend on the failing one, or give that receiver ``fallback_receivers``). The alert
resolves ``hold`` after its last failure, or sooner when the integration delivers again at
least ``min_firing`` after its last failure (so that a failure followed by a quick success is
still notified).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from daemon.clock import Clock
from daemon.dispatch.alert import Alert
from daemon.dispatch.alerts import AlertStore
from daemon.notify.nflog import ReceiverKey
from daemon.notify.notification import Notification
from daemon.tsdb.labels import Labels

ALERT_NAME = "AlertdNotificationsFailing"
DEFAULT_HOLD = 900.0
DEFAULT_MIN_FIRING = 300.0


@dataclass
class DeliveryFailures:
    """Raises and resolves ``AlertdNotificationsFailing`` in ``alerts`` (see the module docstring).

    ``labels`` are added to the alert's labels (the config's external labels).
    """

    alerts: AlertStore
    clock: Clock
    hold: float = DEFAULT_HOLD
    min_firing: float = DEFAULT_MIN_FIRING
    labels: dict[str, str] = field(default_factory=dict)
    _firing: dict[ReceiverKey, Alert] = field(default_factory=dict)

    def failed(self, receiver: ReceiverKey, notification: Notification, error: str) -> None:
        now = self.clock.time()
        previous = self._firing.get(receiver)
        alert = Alert(
            labels=Labels.of(
                {
                    **self.labels,
                    "alertname": ALERT_NAME,
                    "receiver": receiver.receiver,
                    "integration": receiver.integration,
                    "severity": "critical",
                }
            ),
            annotations={
                "summary": f"alertd could not deliver notifications to {receiver.receiver} ({receiver.integration})",
                "description": error[:1000],
                "group_key": notification.group_key,
            },
            starts_at=previous.starts_at if previous is not None else now,
            ends_at=now + self.hold,
            updated_at=now,
        )
        self._firing[receiver] = alert
        self.alerts.put(alert)

    def delivered(self, receiver: ReceiverKey) -> None:
        alert = self._firing.pop(receiver, None)
        if alert is None:
            return
        now = self.clock.time()
        if now < alert.updated_at + self.min_firing:
            self._firing[receiver] = alert  # too soon: it resolves by itself after ``hold``
            return
        self.alerts.put(Alert(alert.labels, alert.annotations, alert.starts_at, now, updated_at=now))
