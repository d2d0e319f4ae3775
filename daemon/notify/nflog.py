"""The notification log: what was last sent, per aggregation group and integration, and when.

One entry per (group key, receiver, integration, index), as in Alertmanager's ``nflog``: the
fingerprints of the alerts that were firing and resolved in the last notification that reached
the integration, and its time. The dedup stage reads it to decide whether a flush must notify
again; entries are persisted in the state store (kind ``nflog``) so that a restart neither
repeats a notification nor forgets that a group was notified as firing (its resolved
notification then still goes out: Alertmanager #2370). Entries expire after ``retention``
(Alertmanager's ``--data.retention``, 120 h) or the shorter expiry given when logging.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from daemon.clock import Clock, every
from daemon.store import StateStore

KIND = "nflog"
DEFAULT_RETENTION = 120 * 3600.0

log = structlog.get_logger("alertd.nflog")


@dataclass(frozen=True)
class ReceiverKey:
    """One integration of one receiver: ``receiver/integration/index`` (Alertmanager's ``nflogpb.Receiver``)."""

    receiver: str
    integration: str
    index: int = 0

    def __str__(self) -> str:
        return f"{self.receiver}/{self.integration}/{self.index}"


@dataclass(frozen=True)
class Entry:
    """The last notification of a group to one integration."""

    group_key: str
    receiver: ReceiverKey
    timestamp: float
    firing: frozenset[str]
    resolved: frozenset[str]
    expires_at: float

    def is_firing_subset(self, fingerprints: Iterable[str]) -> bool:
        """Whether every one of ``fingerprints`` was firing in this notification."""
        return self.firing.issuperset(fingerprints)

    def is_resolved_subset(self, fingerprints: Iterable[str]) -> bool:
        """Whether every one of ``fingerprints`` was resolved in this notification."""
        return self.resolved.issuperset(fingerprints)

    def to_document(self) -> dict[str, Any]:
        return {
            "group_key": self.group_key,
            "receiver": self.receiver.receiver,
            "integration": self.receiver.integration,
            "index": self.receiver.index,
            "timestamp": self.timestamp,
            "firing": sorted(self.firing),
            "resolved": sorted(self.resolved),
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Entry:
        return cls(
            group_key=str(doc["group_key"]),
            receiver=ReceiverKey(str(doc["receiver"]), str(doc["integration"]), int(doc["index"])),
            timestamp=float(doc["timestamp"]),
            firing=frozenset(str(f) for f in doc["firing"]),
            resolved=frozenset(str(f) for f in doc["resolved"]),
            expires_at=float(doc["expires_at"]),
        )


def entry_key(group_key: str, receiver: ReceiverKey) -> str:
    """The store key of an entry (Alertmanager's ``stateKey``)."""
    return f"{group_key}:{receiver}"


class NotificationLog:
    """Entries by group and integration, written through to a ``StateStore``."""

    def __init__(self, store: StateStore, clock: Clock, *, retention: float = DEFAULT_RETENTION) -> None:
        self._store = store
        self._clock = clock
        self.retention = retention
        self._entries: dict[str, Entry] = {}
        for key, doc in store.load(KIND).items():
            try:
                self._entries[key] = Entry.from_document(doc)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("nflog_entry_unreadable", key=key, error=str(exc))

    def __len__(self) -> int:
        return len(self._entries)

    def query(self, group_key: str, receiver: ReceiverKey) -> Entry | None:
        """The entry of that group and integration, unless absent or expired."""
        entry = self._entries.get(entry_key(group_key, receiver))
        if entry is None or entry.expires_at <= self._clock.time():
            return None
        return entry

    def log(
        self,
        receiver: ReceiverKey,
        group_key: str,
        firing: Iterable[str],
        resolved: Iterable[str],
        expiry: float = 0.0,
    ) -> Entry:
        """Record a notification sent now; ``expiry`` (if shorter than the retention) bounds its life."""
        now = self._clock.time()
        key = entry_key(group_key, receiver)
        previous = self._entries.get(key)
        if previous is not None and previous.timestamp > now:
            return previous  # a newer entry wins, as in Alertmanager (clock steps backwards)
        lifetime = expiry if 0 < expiry < self.retention else self.retention
        entry = Entry(group_key, receiver, now, frozenset(firing), frozenset(resolved), now + lifetime)
        self._store.put(KIND, key, entry.to_document())
        self._entries[key] = entry
        return entry

    def gc(self) -> int:
        """Delete expired entries; returns how many."""
        now = self._clock.time()
        old = [key for key, entry in self._entries.items() if entry.expires_at <= now]
        if old:
            with self._store.transaction():
                for key in old:
                    self._store.delete(KIND, key)
            for key in old:
                del self._entries[key]
        return len(old)

    async def run_gc(self, interval: float = 15 * 60.0) -> None:
        """Run ``gc`` every ``interval`` on the clock, forever."""
        await every(self._clock, interval, self.gc)
