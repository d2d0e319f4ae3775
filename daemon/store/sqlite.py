"""The state store in one SQLite file (WAL mode) under the data directory."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import structlog

FILENAME = "state.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
"""


class SQLiteStateStore:
    """A StateStore (see daemon.store.base) in SQLite.

    WAL mode with synchronous=NORMAL: a committed transaction survives the process being killed
    (kill -9); only a power loss can take back the last transactions, never corrupt the file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.recovered: str | None = None
        self._depth = 0
        self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            return _connect(self.path)
        except sqlite3.DatabaseError as exc:
            # An unreadable state file must never stop alerting: keep it aside for inspection and
            # start empty. The caller reports `recovered` loudly.
            kept = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            for suffix in ("", "-wal", "-shm"):
                part = Path(str(self.path) + suffix)
                if part.exists():
                    part.rename(str(kept) + suffix)
            self.recovered = f"state database {self.path} could not be read ({exc}); moved to {kept}, starting empty"
            return _connect(self.path)

    def load(self, kind: str) -> dict[str, Any]:
        rows = self._db.execute("SELECT key, value FROM documents WHERE kind = ?", (kind,))
        return {key: json.loads(value) for key, value in rows}

    def put(self, kind: str, key: str, value: Any) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO documents (kind, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value",
                (kind, key, json.dumps(value)),
            )

    def delete(self, kind: str, key: str) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM documents WHERE kind = ? AND key = ?", (kind, key))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes; nested transactions join the outermost one."""
        if self._depth == 0:
            self._db.execute("BEGIN IMMEDIATE")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self._db.execute("ROLLBACK")
            raise
        self._depth -= 1
        if self._depth == 0:
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        (result,) = db.execute("PRAGMA quick_check").fetchone()
        if result != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {result}")
        db.executescript(_SCHEMA)
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db


def open_state_store(data_dir: str | Path) -> SQLiteStateStore:
    """The state store of a data directory, logging loudly when it had to start empty."""
    store = SQLiteStateStore(Path(data_dir) / FILENAME)
    if store.recovered:
        structlog.get_logger().bind(component="store").error("STATE LOST: " + store.recovered)
    return store
