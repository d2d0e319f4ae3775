"""The notification log: entries per group and integration, newest wins, expiry, and persistence
across a reopened SQLite store."""

from __future__ import annotations

from pathlib import Path

from daemon.clock import FakeClock
from daemon.notify.nflog import NotificationLog, ReceiverKey, entry_key
from daemon.store import MemoryStateStore, SQLiteStateStore

T0 = 1_700_000_000.0
SLACK = ReceiverKey("team", "slack", 0)
EMAIL = ReceiverKey("team", "email", 1)


def test_log_and_query_per_group_and_integration() -> None:
    clock = FakeClock(T0)
    nflog = NotificationLog(MemoryStateStore(), clock)
    assert nflog.query("g", SLACK) is None
    nflog.log(SLACK, "g", ["a", "b"], ["c"])
    entry = nflog.query("g", SLACK)
    assert entry is not None and entry.timestamp == T0
    assert entry.is_firing_subset({"a"}) and not entry.is_firing_subset({"a", "d"})
    assert entry.is_resolved_subset({"c"}) and entry.is_resolved_subset(set())
    assert nflog.query("g", EMAIL) is None and nflog.query("other", SLACK) is None
    assert entry_key("g", EMAIL) == "g:team/email/1"


def test_entries_expire_after_the_retention_or_a_shorter_expiry() -> None:
    clock = FakeClock(T0)
    store = MemoryStateStore()
    nflog = NotificationLog(store, clock, retention=3600)
    nflog.log(SLACK, "g", ["a"], [], expiry=600)
    nflog.log(EMAIL, "g", ["a"], [], expiry=7200)  # longer than the retention: the retention wins
    clock._now += 600
    assert nflog.query("g", SLACK) is None and nflog.query("g", EMAIL) is not None
    assert nflog.gc() == 1
    clock._now += 3000
    assert nflog.gc() == 1
    assert len(nflog) == 0 and store.load("nflog") == {}


def test_a_newer_entry_is_not_overwritten_by_an_older_clock() -> None:
    clock = FakeClock(T0)
    nflog = NotificationLog(MemoryStateStore(), clock)
    nflog.log(SLACK, "g", ["new"], [])
    clock._now -= 10
    nflog.log(SLACK, "g", ["old"], [])
    assert nflog.query("g", SLACK).firing == frozenset({"new"})  # type: ignore[union-attr]


def test_the_log_survives_a_reopened_store(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    store = SQLiteStateStore(tmp_path / "state.db")
    NotificationLog(store, clock).log(SLACK, '{}:{alertname="Down"}', ["f1"], ["r1"], expiry=3600)
    store.close()
    reopened = SQLiteStateStore(tmp_path / "state.db")
    entry = NotificationLog(reopened, clock).query('{}:{alertname="Down"}', SLACK)
    assert entry is not None
    assert (entry.firing, entry.resolved, entry.timestamp, entry.expires_at) == (
        frozenset({"f1"}), frozenset({"r1"}), T0, T0 + 3600
    )
    reopened.close()


def test_unreadable_entries_are_skipped() -> None:
    store = MemoryStateStore()
    store.put("nflog", "broken", {"group_key": "g"})
    assert len(NotificationLog(store, FakeClock(T0))) == 0
