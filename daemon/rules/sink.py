"""Where alerting rules hand their alerts to the notification side.

After every evaluation of a group, the group gives its ``AlertSink`` the alerts that need
sending, decided as Prometheus decides what to send to Alertmanager: firing alerts when first
firing and again every ``resend_delay`` (1 m), resolved alerts once when they resolve and again
every ``resend_delay`` while they are kept (15 m); pending alerts never. Each is an
``OutgoingAlert`` with Alertmanager's fields, so the consumer treats a repeat as a refresh of the
same alert (same labels) and an ``ends_at`` in the past as resolved.

``AlertQueue`` is the sink the daemon uses: a bounded asyncio queue of batches that the
dispatcher consumes with ``await queue.get()``. ``ListSink`` keeps every batch, for tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class OutgoingAlert:
    """One alert as Alertmanager's API receives it (``POST /api/v2/alerts``).

    ``labels`` include the external labels (those the alert does not set itself); times are
    Unix seconds. ``ends_at`` is the resolve time of a resolved alert, and for a firing one a
    time after which it counts as resolved unless refreshed (4 x max(resend delay, interval)).
    """

    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: float
    ends_at: float
    generator_url: str

    resolved: bool = False
    """Whether this tells that the alert has ended (``ends_at`` is then its resolve time)."""

    def to_json(self) -> dict[str, Any]:
        """Alertmanager's JSON shape (RFC 3339 times)."""
        return {
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": rfc3339(self.starts_at),
            "endsAt": rfc3339(self.ends_at),
            "generatorURL": self.generator_url,
        }


class AlertSink(Protocol):
    """Receives the alerts of one group evaluation that need sending.

    ``send`` is called from the event loop right after the evaluation, with a non-empty batch;
    it must not block or raise (queue the batch and return).
    """

    def send(self, alerts: Sequence[OutgoingAlert]) -> None: ...


class AlertQueue:
    """An ``AlertSink`` that queues batches for an async consumer.

    When ``maxsize`` batches are waiting, the oldest is dropped (a newer batch refreshes the
    same alerts) and counted in ``dropped``.
    """

    def __init__(self, maxsize: int = 1000) -> None:
        self._queue: asyncio.Queue[list[OutgoingAlert]] = asyncio.Queue(maxsize)
        self.dropped = 0

    def send(self, alerts: Sequence[OutgoingAlert]) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(list(alerts))

    async def get(self) -> list[OutgoingAlert]:
        """The next batch, waiting for one."""
        return await self._queue.get()

    def get_nowait(self) -> list[OutgoingAlert] | None:
        """The next batch, or None when none is waiting."""
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def qsize(self) -> int:
        return self._queue.qsize()


class ListSink:
    """An ``AlertSink`` that keeps every batch in ``batches`` (for tests)."""

    def __init__(self) -> None:
        self.batches: list[list[OutgoingAlert]] = []

    def send(self, alerts: Sequence[OutgoingAlert]) -> None:
        self.batches.append(list(alerts))

    def sent(self) -> list[OutgoingAlert]:
        """Every alert sent so far, in order."""
        return [alert for batch in self.batches for alert in batch]


def rfc3339(t: float) -> str:
    """Unix seconds as RFC 3339 in UTC, with Go's zero time for 0."""
    if t <= 0:
        return "0001-01-01T00:00:00Z"
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
