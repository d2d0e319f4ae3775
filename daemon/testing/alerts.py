"""Fakes for the notification side: an integration that records what it is sent, and alerts.

``RecordingIntegration`` satisfies ``daemon.notify.notification.Integration``: it keeps every
notification it accepted, and can be told to fail the next attempts (``fail``) or to take time
on a clock (``delay``), so tests of grouping, dedup and retries need no real receiver.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from daemon.clock import Clock
from daemon.dispatch.alert import Alert, FrozenMap
from daemon.notify.notification import DeliveryError, Notification
from daemon.tsdb.labels import Labels


class RecordingIntegration:
    """An integration that records notifications instead of delivering them."""

    def __init__(
        self,
        name: str = "webhook",
        index: int = 0,
        *,
        send_resolved: bool = True,
        clock: Clock | None = None,
        delay: float = 0.0,
    ) -> None:
        self.name = name
        self.index = index
        self.send_resolved = send_resolved
        self.notifications: list[Notification] = []
        self.attempts = 0
        self._clock = clock
        self.delay = delay
        self._failures: deque[DeliveryError] = deque()

    def fail(self, *errors: DeliveryError) -> None:
        """Make the next attempts raise these errors, one per attempt."""
        self._failures.extend(errors)

    async def notify(self, notification: Notification) -> None:
        self.attempts += 1
        if self.delay and self._clock is not None:
            await self._clock.sleep(self.delay)
        if self._failures:
            raise self._failures.popleft()
        self.notifications.append(notification)

    def sent(self) -> list[tuple[str, list[str], list[str]]]:
        """Each notification as (status, firing alert names, resolved alert names)."""
        return [
            (
                n.status,
                [a.labels.get("alertname") for a in n.alerts if not a.resolved_at(n.now)],
                [a.labels.get("alertname") for a in n.alerts if a.resolved_at(n.now)],
            )
            for n in self.notifications
        ]


def make_alert(
    labels: Mapping[str, str],
    *,
    starts_at: float,
    ends_at: float,
    updated_at: float | None = None,
    annotations: Mapping[str, str] | None = None,
    generator_url: str = "",
    timeout: bool = False,
) -> Alert:
    """An ``Alert`` from plain values (``updated_at`` defaults to ``starts_at``)."""
    return Alert(
        labels=Labels.of(labels),
        annotations=FrozenMap(annotations or {}),
        starts_at=starts_at,
        ends_at=ends_at,
        generator_url=generator_url,
        updated_at=starts_at if updated_at is None else updated_at,
        timeout=timeout,
    )
