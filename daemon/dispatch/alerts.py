"""The set of alerts the notification side knows, and what mutes each of them.

``AlertStore`` is Alertmanager's in-memory alert provider: alerts are kept by fingerprint; a
new version of a known alert is merged with the old one when their activity ranges overlap
(``Alert.merge``), otherwise it replaces it (a new occurrence). Every stored alert is handed to
the subscribers (the dispatcher, the inhibitor) right away. ``gc`` drops resolved alerts, as
Alertmanager does every 30 minutes.

``Marker`` records, per alert, which silences and inhibiting alerts mute it: the ``status``
the API shows (``active``, ``suppressed``, ``unprocessed``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import structlog

from daemon.clock import Clock, every
from daemon.dispatch.alert import Alert, fingerprint
from daemon.tsdb.labels import Labels

GC_INTERVAL = 30 * 60.0

UNPROCESSED, ACTIVE, SUPPRESSED = "unprocessed", "active", "suppressed"

log = structlog.get_logger("alertd.alerts")

Listener = Callable[[Alert], None]


@dataclass(frozen=True)
class AlertStatus:
    """What the API shows about an alert: ``state`` and the ids muting it."""

    state: str = UNPROCESSED
    silenced_by: tuple[str, ...] = ()
    inhibited_by: tuple[str, ...] = ()


class Marker:
    """Which silences and inhibiting alerts (by fingerprint) mute each alert.

    ``set_silenced`` and ``set_inhibited`` are called by the silencer and the inhibitor each
    time they decide about an alert; an alert neither has decided about is ``unprocessed``.
    """

    def __init__(self) -> None:
        self._silenced: dict[str, tuple[str, ...]] = {}
        self._inhibited: dict[str, tuple[str, ...]] = {}

    def set_silenced(self, labels: Labels, silence_ids: Iterable[str]) -> None:
        self._silenced[fingerprint(labels)] = tuple(silence_ids)

    def set_inhibited(self, labels: Labels, alert_fingerprints: Iterable[str]) -> None:
        self._inhibited[fingerprint(labels)] = tuple(alert_fingerprints)

    def status(self, alert_fingerprint: str) -> AlertStatus:
        silenced = self._silenced.get(alert_fingerprint)
        inhibited = self._inhibited.get(alert_fingerprint)
        if silenced is None and inhibited is None:
            return AlertStatus()
        silenced, inhibited = silenced or (), inhibited or ()
        state = SUPPRESSED if silenced or inhibited else ACTIVE
        return AlertStatus(state, silenced, inhibited)

    def delete(self, alert_fingerprint: str) -> None:
        self._silenced.pop(alert_fingerprint, None)
        self._inhibited.pop(alert_fingerprint, None)


class AlertStore:
    """Alerts by fingerprint, merged as Alertmanager merges updates, with subscribers.

    ``subscribe(listener)`` calls ``listener(alert)`` for every alert stored from then on
    (and first for every alert already held); it returns a function that unsubscribes.
    """

    def __init__(self, clock: Clock, marker: Marker | None = None) -> None:
        self._clock = clock
        self.marker = marker if marker is not None else Marker()
        self._alerts: dict[str, Alert] = {}
        self._listeners: list[Listener] = []

    def __len__(self) -> int:
        return len(self._alerts)

    def get(self, alert_fingerprint: str) -> Alert | None:
        return self._alerts.get(alert_fingerprint)

    def list(self) -> list[Alert]:
        """Every alert held, resolved ones included until ``gc``."""
        return list(self._alerts.values())

    def put(self, *alerts: Alert) -> None:
        """Store alerts (merging with known versions) and hand each to the subscribers."""
        now = self._clock.time()
        for alert in alerts:
            fp = alert.fingerprint
            old = self._alerts.get(fp)
            if old is not None and (
                old.starts_at < alert.ends_at < old.ends_at or old.starts_at < alert.starts_at < old.ends_at
            ):
                alert = old.merge(alert, now)
            self._alerts[fp] = alert
            for listener in list(self._listeners):
                try:
                    listener(alert)
                except Exception:
                    # One subscriber's bug must not keep the alert from the others.
                    log.exception("alert_listener_failed", alert=str(alert.labels))

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        for alert in list(self._alerts.values()):
            listener(alert)
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def gc(self) -> list[Alert]:
        """Drop alerts resolved at the clock's now (and their marks); returns them."""
        now = self._clock.time()
        gone = [a for a in self._alerts.values() if a.resolved_at(now)]
        for alert in gone:
            del self._alerts[alert.fingerprint]
            self.marker.delete(alert.fingerprint)
        return gone

    async def run_gc(self, interval: float = GC_INTERVAL) -> None:
        """Run ``gc`` every ``interval`` on the clock, forever."""
        await every(self._clock, interval, self.gc)
