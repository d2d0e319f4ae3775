"""An asyncio fake server on an event loop of its own, in a thread, for synchronous callers.

End-to-end tests drive `alertd run` from plain (blocking) code while fake peers must keep
answering; this runs any server with ``async start()`` and ``async stop()`` (FakeTarget,
FakeSlack, FakePagerDuty, ...) on its own loop::

    with ThreadedServer(FakeSlack()) as slack:
        ... api_url: slack.server.api_url ...
        slack.read(lambda s: len(s.all_messages()))

The fakes record what they receive on their loop's thread; ``read(fn)`` runs ``fn(server)`` on
that loop, so it sees the recordings between two requests, never in the middle of one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Generic, Protocol, Self, TypeVar

# Seconds to wait for the server's loop to start, stop or answer a ``read``.
TIMEOUT = 10.0


class Server(Protocol):
    """What ``ThreadedServer`` needs of a server."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


S = TypeVar("S", bound=Server)
R = TypeVar("R")


class ThreadedServer(Generic[S]):
    """Starts ``server`` on a new event loop in a daemon thread on ``__enter__``; ``__exit__``
    stops it, then the loop and the thread, even when the server fails to stop."""

    def __init__(self, server: S, name: str | None = None) -> None:
        self.server = server
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name or type(server).__name__, daemon=True)

    def read(self, fn: Callable[[S], R]) -> R:
        """``fn(server)``, called on the server's loop."""

        async def call() -> R:
            return fn(self.server)

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(TIMEOUT)

    def __enter__(self) -> Self:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(TIMEOUT)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(TIMEOUT)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(TIMEOUT)
            self._loop.close()
