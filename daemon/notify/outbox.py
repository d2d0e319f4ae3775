"""The outbox: notifications written to the state store before they are sent.

A notification for one integration is put in the outbox (kind ``outbox``) before its first
attempt and taken out only when the integration accepted it (together with the notification
log entry, in one transaction) or when delivery was given up (deadline, permanent error). So a
daemon killed mid-retry finds the notification at its next start and sends it then, once:
PagerDuty gets the same ``dedup_key`` (the group key's hash), and a notification whose
acceptance was recorded is never sent again. Only a kill between the receiver accepting and
the transaction committing can repeat it, when nobody can know whether it arrived.

Each entry keeps its delivery ``deadline`` (Unix seconds): transient failures are retried
until then, also across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from daemon.clock import Clock
from daemon.dispatch.alert import Alert
from daemon.notify.nflog import ReceiverKey
from daemon.notify.notification import Notification
from daemon.store import StateStore

KIND = "outbox"

log = structlog.get_logger("alertd.outbox")


@dataclass(frozen=True)
class OutboxEntry:
    """One notification to one integration, not yet accepted.

    ``firing`` and ``resolved`` are the fingerprints the dedup stage saw (what the notification
    log records once it is accepted); ``log_expiry`` the life of that log entry.
    """

    receiver: ReceiverKey
    notification: Notification
    firing: frozenset[str]
    resolved: frozenset[str]
    created_at: float
    deadline: float
    log_expiry: float = 0.0
    fallback_for: str = ""
    """For a notification sent to a fallback receiver: the receiver that could not deliver it."""

    @property
    def key(self) -> str:
        return entry_key(self.notification.group_key, self.receiver)

    def to_document(self) -> dict[str, Any]:
        n = self.notification
        return {
            "receiver": self.receiver.receiver,
            "integration": self.receiver.integration,
            "index": self.receiver.index,
            "notification": {
                "receiver": n.receiver,
                "group_key": n.group_key,
                "group_labels": dict(n.group_labels),
                "alerts": [a.to_document() for a in n.alerts],
                "external_url": n.external_url,
                "now": n.now,
            },
            "firing": sorted(self.firing),
            "resolved": sorted(self.resolved),
            "created_at": self.created_at,
            "deadline": self.deadline,
            "log_expiry": self.log_expiry,
            "fallback_for": self.fallback_for,
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> OutboxEntry:
        n = doc["notification"]
        notification = Notification(
            receiver=str(n["receiver"]),
            group_key=str(n["group_key"]),
            group_labels={str(k): str(v) for k, v in n["group_labels"].items()},
            alerts=tuple(Alert.from_document(a) for a in n["alerts"]),
            external_url=str(n["external_url"]),
            now=float(n["now"]),
        )
        return cls(
            receiver=ReceiverKey(str(doc["receiver"]), str(doc["integration"]), int(doc["index"])),
            notification=notification,
            firing=frozenset(str(f) for f in doc["firing"]),
            resolved=frozenset(str(f) for f in doc["resolved"]),
            created_at=float(doc["created_at"]),
            deadline=float(doc["deadline"]),
            log_expiry=float(doc.get("log_expiry", 0.0)),
            fallback_for=str(doc.get("fallback_for", "")),
        )


def entry_key(group_key: str, receiver: ReceiverKey) -> str:
    return f"{group_key}:{receiver}"


class Outbox:
    """Outbox entries in a ``StateStore``, and the deliveries of entries found at start.

    ``pending()`` lists the entries a previous run left; while one of them is being delivered
    again (``track``), ``settled(group_key, receiver)`` waits for it, so that the group's own
    flush after the restart sees the notification log it writes and does not send twice.
    """

    def __init__(self, store: StateStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._recovering: dict[str, asyncio.Task[Any]] = {}

    def put(self, entry: OutboxEntry) -> None:
        self._store.put(KIND, entry.key, entry.to_document())

    def remove(self, entry: OutboxEntry) -> None:
        self._store.delete(KIND, entry.key)

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        return self._store.transaction()

    def pending(self) -> list[OutboxEntry]:
        """The entries in the store, oldest first (unreadable ones are logged and dropped)."""
        entries: list[OutboxEntry] = []
        for key, doc in self._store.load(KIND).items():
            try:
                entries.append(OutboxEntry.from_document(doc))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                log.warning("outbox_entry_unreadable", key=key, error=str(exc))
                self._store.delete(KIND, key)
        entries.sort(key=lambda e: e.created_at)
        return entries

    def track(self, entry: OutboxEntry, task: asyncio.Task[Any]) -> None:
        """Note that ``task`` is delivering ``entry`` again (after a restart)."""
        self._recovering[entry.key] = task
        task.add_done_callback(lambda _: self._recovering.pop(entry.key, None))

    async def settled(self, group_key: str, receiver: ReceiverKey) -> None:
        """Wait until no earlier delivery of that group to that integration is in progress."""
        task = self._recovering.get(entry_key(group_key, receiver))
        if task is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(task)

    async def stop(self) -> None:
        """Cancel deliveries in progress (their entries stay in the store for the next start)."""
        tasks = list(self._recovering.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._recovering.clear()
