"""Time, injected: every timer in alertd asks a clock, so tests advance a fake one instead of sleeping."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    """What alertd needs to know about time.

    ``time()`` is wall-clock Unix time in seconds (sample timestamps, alert times);
    ``monotonic()`` measures durations; ``sleep(seconds)`` waits on the same time line as
    ``monotonic()``.
    """

    def time(self) -> float: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that moves only when a test calls ``advance``.

    Sleepers wake in deadline order as ``advance`` passes their deadlines; each wake-up is given
    a chance to run (and schedule its next sleep) before later deadlines are considered.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._start = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now - self._start

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + max(0.0, seconds), next(self._order), future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking every sleeper whose deadline is passed."""
        await _settle()  # tasks created just before the call get to start sleeping first
        target = self._now + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, future = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            if not future.done():
                future.set_result(None)
            await _settle()
        self._now = target
        await _settle()


async def every(clock: Clock, interval: float, action: Callable[[], object]) -> None:
    """Call ``action`` every ``interval`` seconds on ``clock``, forever (maintenance loops)."""
    while True:
        await clock.sleep(interval)
        action()


async def _settle() -> None:
    # A few loop turns let woken tasks run up to their next await.
    for _ in range(5):
        await asyncio.sleep(0)
