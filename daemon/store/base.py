"""The state store contract, and the in-memory implementation tests use."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any, Protocol


class StateStore(Protocol):
    """Documents that must survive a restart, grouped by kind.

    A document is a JSON-serialisable value stored under ``(kind, key)``; ``kind`` names what it
    is ("alert", "nflog", "silence", ...). Writes made inside one ``transaction()`` become durable
    together or not at all; writes outside a transaction are durable when the call returns.
    ``load(kind)`` returns every document of a kind as ``{key: value}``. ``close()`` flushes and
    releases the store; nothing may be called after it.

    ``recovered`` is a message when the store could not be read at open and started empty (the
    caller warns loudly and counts it), else None.
    """

    recovered: str | None

    def load(self, kind: str) -> dict[str, Any]: ...

    def put(self, kind: str, key: str, value: Any) -> None: ...

    def delete(self, kind: str, key: str) -> None: ...

    def transaction(self) -> contextlib.AbstractContextManager[None]: ...

    def close(self) -> None: ...


class MemoryStateStore:
    """A StateStore kept in a dict: for tests, and for running without a data directory.

    Values go through JSON on the way in and out, so that what a test reads back is what a real
    store would give (tuples become lists, keys become strings).
    """

    def __init__(self) -> None:
        self.recovered: str | None = None
        self._kinds: dict[str, dict[str, str]] = {}

    def load(self, kind: str) -> dict[str, Any]:
        return {key: json.loads(raw) for key, raw in self._kinds.get(kind, {}).items()}

    def put(self, kind: str, key: str, value: Any) -> None:
        self._kinds.setdefault(kind, {})[key] = json.dumps(value)

    def delete(self, kind: str, key: str) -> None:
        self._kinds.get(kind, {}).pop(key, None)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        saved = {kind: dict(docs) for kind, docs in self._kinds.items()}
        try:
            yield
        except BaseException:
            self._kinds = saved
            raise

    def close(self) -> None:
        pass
