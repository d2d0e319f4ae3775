"""The aligned schedule of scrape and probe loops, on a fake clock."""

from __future__ import annotations

from daemon.clock import FakeClock
from daemon.schedule import Ticker, first_tick, next_tick


def test_first_tick_is_the_offset_into_this_or_the_next_interval() -> None:
    assert first_tick(100.0, 15.0, 5.0) == 95.0 + 15.0  # 95 is past: the next interval's
    assert first_tick(100.0, 15.0, 12.0) == 102.0
    assert first_tick(102.0, 15.0, 12.0) == 102.0  # exactly on a tick: now


def test_next_tick_skips_the_ticks_an_overrun_missed() -> None:
    assert next_tick(100.0, 101.0, 15.0) == 115.0
    assert next_tick(100.0, 115.0, 15.0) == 130.0  # the next tick is due now: it is missed too
    assert next_tick(100.0, 147.0, 15.0) == 160.0


async def test_ticker_runs_on_the_ticks_and_skips_missed_ones() -> None:
    clock = FakeClock(1000.0)
    ran: list[float] = []
    overrun = {1015.0}

    async def action() -> None:
        ran.append(clock.time())
        if clock.time() in overrun:
            await clock.sleep(20)

    ticker = Ticker(clock, 10.0, 5.0, action, name="test")
    ticker.start()
    try:
        await clock.advance(60)
    finally:
        await ticker.stop()
    assert ran == [1005.0, 1015.0, 1045.0, 1055.0]
    await clock.advance(60)
    assert len(ran) == 4  # stopped


async def test_stopping_a_ticker_that_never_started_does_nothing() -> None:
    async def action() -> None:
        raise AssertionError("never runs")

    await Ticker(FakeClock(), 10.0, 0.0, action, name="test").stop()
