"""The state store: both implementations keep the same contract; SQLite survives kill -9 and corruption."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.store import MemoryStateStore, SQLiteStateStore, StateStore


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    opened: StateStore = MemoryStateStore() if request.param == "memory" else SQLiteStateStore(tmp_path / "state.db")
    yield opened
    opened.close()


def test_put_load_delete(store: StateStore) -> None:
    store.put("alert", "a1", {"state": "firing", "since": 1.5, "labels": ("x", "y")})
    store.put("alert", "a2", {"state": "pending"})
    store.put("silence", "s1", {"by": "me"})
    assert store.load("alert") == {"a1": {"state": "firing", "since": 1.5, "labels": ["x", "y"]}, "a2": {"state": "pending"}}
    store.put("alert", "a2", {"state": "firing"})
    store.delete("alert", "a1")
    store.delete("alert", "missing")
    assert store.load("alert") == {"a2": {"state": "firing"}}
    assert store.load("silence") == {"s1": {"by": "me"}}
    assert store.load("nothing") == {}
    assert store.recovered is None


def test_transaction_is_all_or_nothing(store: StateStore) -> None:
    store.put("alert", "kept", 1)
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.put("alert", "lost", 2)
            store.delete("alert", "kept")
            raise RuntimeError("boom")
    assert store.load("alert") == {"kept": 1}
    with store.transaction():
        store.put("alert", "a", 1)
        with store.transaction():
            store.put("alert", "b", 2)
    assert store.load("alert") == {"kept": 1, "a": 1, "b": 2}


def test_committed_writes_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    child = (
        "import os, signal\n"
        "from daemon.store import SQLiteStateStore\n"
        f"s = SQLiteStateStore({str(path)!r})\n"
        "with s.transaction():\n"
        "    s.put('alert', 'a', {'n': 1})\n"
        "    s.put('alert', 'b', {'n': 2})\n"
        "s.put('nflog', 'x', 'sent')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = subprocess.run([sys.executable, "-c", child], timeout=30)
    assert result.returncode == -9
    store = SQLiteStateStore(path)
    assert store.load("alert") == {"a": {"n": 1}, "b": {"n": 2}}
    assert store.load("nflog") == {"x": "sent"}
    assert store.recovered is None
    store.close()


def test_corrupt_file_starts_empty_and_keeps_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database" * 100)
    store = SQLiteStateStore(path)
    assert store.recovered is not None and "starting empty" in store.recovered
    assert store.load("alert") == {}
    store.put("alert", "a", 1)
    assert store.load("alert") == {"a": 1}
    store.close()
    assert list(tmp_path.glob("state.db.corrupt-*"))


def test_missing_directory_is_created(tmp_path: Path) -> None:
    store = SQLiteStateStore(tmp_path / "deep" / "er" / "state.db")
    store.put("alert", "a", 1)
    store.close()
    assert SQLiteStateStore(tmp_path / "deep" / "er" / "state.db").load("alert") == {"a": 1}
