"""Periodic work aligned to a fixed offset in its interval, on the injected clock.

Scrape and probe loops run at ``k * interval + offset``: the offset (a hash of what is being
polled) spreads many loops over the interval, and the alignment keeps a loop's samples evenly
spaced across restarts and reloads. A run that overruns skips the ticks it missed instead of
running them back to back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from daemon.clock import Clock


def first_tick(now: float, interval: float, offset: float) -> float:
    """The first time at or after ``now`` that is ``offset`` into an interval."""
    tick = now - (now % interval) + offset
    return tick + interval if tick < now else tick


def next_tick(previous: float, now: float, interval: float) -> float:
    """The tick after ``previous`` that is still in the future at ``now``: missed ticks are skipped."""
    tick = previous + interval
    if tick <= now:
        tick += ((now - tick) // interval + 1) * interval
    return tick


class Ticker:
    """Runs ``action`` at every tick of an aligned schedule, as its own task, until stopped.

    The task starts with ``start()`` and ends with ``stop()``, which waits for it to finish; an
    action cut short by ``stop()`` is cancelled where it awaits.
    """

    def __init__(
        self, clock: Clock, interval: float, offset: float, action: Callable[[], Awaitable[object]], name: str
    ) -> None:
        self._clock = clock
        self._interval = interval
        self._offset = offset
        self._action = action
        self._name = name
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        clock, interval = self._clock, self._interval
        at = first_tick(clock.time(), interval, self._offset)
        while True:
            await clock.sleep(at - clock.time())
            await self._action()
            at = next_tick(at, clock.time(), interval)
