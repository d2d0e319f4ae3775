"""Probe loops and the probe manager on a fake clock with fake probers: schedule, staleness, reloads."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import pytest
from structlog.testing import capture_logs

from daemon.clock import FakeClock
from daemon.config import parse_config
from daemon.config.probes import ProbeConfig
from daemon.metrics import DaemonMetrics
from daemon.probe import FakeProber, ProbeLoop, ProbeManager, ProbeReport, prober_for
from daemon.tsdb import Store, parse_selector

START = 1_700_000_000.0


def samples(store: Store, selector: str) -> list[tuple[int, float]]:
    series = store.select(parse_selector(selector))
    assert len(series) == 1, [str(s.labels) for s in series]
    ts, vals = series[0].window(0, 2**62)
    return list(zip(ts, vals))


def loop_for(target: str, prober: FakeProber, store: Store, clock: FakeClock, **options: float) -> ProbeLoop:
    return ProbeLoop(
        "site", target, prober, store, clock, interval=options.get("interval", 15.0), timeout=options.get("timeout", 5.0)
    )


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait for real network work (the fake clock does not move meanwhile)."""
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.01)


async def test_probes_at_the_interval_from_a_fixed_offset_stamped_with_the_start_time() -> None:
    clock, store, prober = FakeClock(START), Store(), FakeProber()
    loop = loop_for("https://a.example/", prober, store, clock)
    loop.start()
    try:
        await clock.advance(45)
    finally:
        await loop.stop(mark_stale=False)
    first = START - START % 15 + loop.offset()
    if first < START:
        first += 15
    stamps = [t for t, _ in samples(store, "probe_success")]
    assert stamps == [int((first + k * 15) * 1000) for k in range(3)]
    assert [v for _, v in samples(store, "probe_success")] == [1.0, 1.0, 1.0]
    assert prober.calls == ["https://a.example/"] * 3


def test_offsets_spread_targets_over_the_interval() -> None:
    clock, store, prober = FakeClock(START), Store(), FakeProber()
    offsets = {loop_for(f"10.0.0.{i}:6379", prober, store, clock).offset() for i in range(50)}
    assert len(offsets) == 50
    assert all(0 <= offset < 15 for offset in offsets)
    assert min(offsets) < 3 and max(offsets) > 12


async def test_a_hanging_target_never_delays_another() -> None:
    clock, store, prober = FakeClock(START), Store(), FakeProber()
    prober.hang.add("slow:1")
    slow, fast = loop_for("slow:1", prober, store, clock), loop_for("fast:1", prober, store, clock)
    slow.start()
    fast.start()
    try:
        await clock.advance(60)  # no real time passes: the slow probe is still waiting
        assert prober.calls.count("fast:1") == 4
        assert prober.calls.count("slow:1") == 1
        prober.release.set()
        await until(lambda: slow.last_report is not None)
        await clock.advance(15)
        assert prober.calls.count("slow:1") == 2  # missed ticks are skipped, not made up
    finally:
        await slow.stop(mark_stale=False)
        await fast.stop(mark_stale=False)


async def test_timeout_cuts_a_probe_off_and_keeps_what_it_learnt() -> None:
    class HalfwayProber(FakeProber):
        async def probe(self, target: str, report: ProbeReport) -> None:
            report.values["probe_ssl_earliest_cert_expiry"] = 1.8e9
            await asyncio.Event().wait()

    clock, store = FakeClock(START), Store()
    loop = loop_for("db:5432", HalfwayProber(), store, clock, timeout=0.05)
    report = await loop.probe_once()
    assert report.failure == "probe timed out after 0.05s"
    assert samples(store, "probe_success")[-1][1] == 0.0
    assert samples(store, "probe_ssl_earliest_cert_expiry")[-1][1] == 1.8e9
    assert 0.05 <= samples(store, "probe_duration_seconds")[-1][1] < 1


async def test_series_missing_from_a_probe_and_a_stopped_target_go_stale() -> None:
    clock, store = FakeClock(START), Store()
    prober = FakeProber({"tls:443": ("", {"probe_ssl_earliest_cert_expiry": 1.8e9})})
    loop = loop_for("tls:443", prober, store, clock)
    await loop.probe_once()
    prober.results["tls:443"] = ("connection refused", {})
    await clock.advance(15)
    await loop.probe_once()
    assert math.isnan(samples(store, "probe_ssl_earliest_cert_expiry")[-1][1])
    assert samples(store, "probe_success")[-1][1] == 0.0
    await clock.advance(1)
    await loop.stop()
    for name in ("probe_success", "probe_duration_seconds"):
        t, v = samples(store, name)[-1]
        assert t == int((START + 16) * 1000) and math.isnan(v)


async def test_a_prober_that_raises_costs_one_probe_not_the_loop() -> None:
    class Broken(FakeProber):
        async def probe(self, target: str, report: ProbeReport) -> None:
            self.calls.append(target)
            raise RuntimeError("bug")

    clock, store, prober = FakeClock(START), Store(), Broken()
    loop = loop_for("x:1", prober, store, clock)
    loop.start()
    try:
        with capture_logs():
            await clock.advance(30)
    finally:
        await loop.stop(mark_stale=False)
    assert len(prober.calls) == 2
    assert loop.last_report is not None and loop.last_report.failure == "internal error: RuntimeError: bug"


def config(text: str) -> tuple[ProbeConfig, ...]:
    return parse_config(text, "test.yml").probes


SITE = """
probes:
  - job_name: site
    prober: http
    interval: 15s
    targets: ["https://a.example/", "https://b.example/"]
"""


async def test_manager_keeps_unchanged_jobs_and_continues_series_of_changed_ones() -> None:
    clock, store = FakeClock(START), Store()
    probers: list[FakeProber] = []

    def make(_: ProbeConfig) -> FakeProber:
        probers.append(FakeProber())
        return probers[-1]

    manager = ProbeManager(store, clock, DaemonMetrics(), make_prober=make)
    await manager.apply(config(SITE))
    await clock.advance(15)
    first = manager.loops()["site"]
    await manager.apply(config(SITE))
    assert manager.loops()["site"] == first and len(probers) == 1

    await manager.apply(config(SITE.replace('"https://b.example/"', '"https://c.example/"')))
    assert probers[0].closed and len(probers) == 2
    assert sorted(loop.target for loop in manager.loops()["site"]) == ["https://a.example/", "https://c.example/"]
    kept = samples(store, 'probe_success{instance="https://a.example/"}')
    gone = samples(store, 'probe_success{instance="https://b.example/"}')
    assert not any(math.isnan(v) for _, v in kept)
    assert math.isnan(gone[-1][1])
    await clock.advance(15)
    assert len(samples(store, 'probe_success{instance="https://a.example/"}')) == 2

    await manager.apply(())
    assert manager.loops() == {} and probers[1].closed
    assert math.isnan(samples(store, 'probe_success{instance="https://a.example/"}')[-1][1])
    await manager.stop()


async def test_manager_changed_labels_end_the_old_series() -> None:
    clock, store = FakeClock(START), Store()
    manager = ProbeManager(store, clock, DaemonMetrics(), make_prober=lambda _: FakeProber())
    await manager.apply(config(SITE))
    await clock.advance(15)
    await manager.apply(config(SITE.replace("interval: 15s", "interval: 15s\n    labels: {team: web}")))
    assert math.isnan(samples(store, 'probe_success{instance="https://a.example/",team=""}')[-1][1])
    await clock.advance(15)
    assert samples(store, 'probe_success{instance="https://a.example/",team="web"}')[-1][1] == 1.0
    await manager.stop()


async def test_unresolvable_target_fails_logs_once_and_keeps_running() -> None:
    clock, store, metrics = FakeClock(START), Store(), DaemonMetrics()
    manager = ProbeManager(store, clock, metrics)
    probes = config(
        """
probes:
  - job_name: redis
    prober: tcp
    interval: 15s
    timeout: 5s
    targets: ["no-such-host.invalid:6379"]
    tcp: {query_response: [{send: PING}, {expect: "^\\\\+PONG"}]}
"""
    )
    with capture_logs() as logs:
        await manager.apply(probes)
        for round_ in (1, 2):
            await clock.advance(15)
            await until(lambda: len(samples_or_none(store, "probe_success")) == round_)
    await manager.stop()
    assert [v for _, v in samples(store, 'probe_success{job="redis",instance="no-such-host.invalid:6379"}')] == [0.0, 0.0]
    failures = [entry for entry in logs if entry["event"] == "probe failed"]
    assert len(failures) == 1
    assert failures[0]["target"] == "no-such-host.invalid:6379" and failures[0]["error"].startswith("connection failed")
    assert b'alertd_probes_total{job="redis",result="failure"} 2.0' in metrics.exposition()
    assert b'alertd_probe_targets{job="redis"} 1.0' not in metrics.exposition()  # stopped: no targets left


def samples_or_none(store: Store, selector: str) -> list[tuple[int, float]]:
    series = store.select(parse_selector(selector))
    return samples(store, selector) if series else []


async def test_recovery_is_logged_once() -> None:
    clock, store = FakeClock(START), Store()
    prober = FakeProber({"x:1": ("connection refused", {})})
    manager = ProbeManager(store, clock, DaemonMetrics(), make_prober=lambda _: prober)
    with capture_logs() as logs:
        await manager.apply(config("probes: [{job_name: db, prober: tcp, interval: 15s, targets: ['x:1']}]"))
        await clock.advance(30)
        prober.results.clear()
        await clock.advance(30)
    await manager.stop()
    assert [entry["event"] for entry in logs] == [
        "probe failed",
        "probe recovered",
    ]


@pytest.mark.parametrize("prober", ["http", "tcp", "tls"])
def test_every_prober_has_a_real_implementation(prober: str) -> None:
    (probe,) = config(f"probes: [{{job_name: j, prober: {prober}, targets: ['localhost:1']}}]")
    assert type(prober_for(probe)).__name__ in ("HTTPProber", "TCPProber")
