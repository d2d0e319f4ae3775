"""The rule manager: reloads keep state, restarts resume it, schedules, evaluation after scrapes, metrics."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from daemon.clock import FakeClock
from daemon.promql.engine import Engine
from daemon.rules.alert import AlertState
from daemon.rules.alerting import AlertingRule
from daemon.rules.group import RuleGroup
from daemon.rules.manager import RuleManager, RuleSettings
from daemon.rules.persist import ALERT_KIND
from daemon.rules.sink import ListSink
from daemon.rules.spec import AlertingRuleSpec, FrozenMap, GroupSpec, RecordingRuleSpec
from daemon.store import MemoryStateStore, SQLiteStateStore, StateStore, open_state_store
from daemon.tsdb import Labels, Store, is_stale

T0 = 1_700_000_000.0
SETTINGS = RuleSettings(evaluation_interval=10.0)


def sample(store: Store, t: float, value: float, name: str = "m", **labels: str) -> None:
    series, _ = store.series(Labels.of({"__name__": name, **labels}))
    store.append(series, int(t * 1000), value)


def spec(*rules: Any, name: str = "g", file: str = "rules.yml", **kwargs: Any) -> GroupSpec:
    return GroupSpec(name=name, file=file, rules=tuple(rules), **kwargs)


def alert(name: str, expr: str, **kwargs: Any) -> AlertingRuleSpec:
    if "labels" in kwargs:
        kwargs["labels"] = FrozenMap(kwargs["labels"])
    return AlertingRuleSpec(alert=name, expr=expr, **kwargs)


def alerts_of(manager: RuleManager) -> dict[str, tuple[str, float]]:
    return {f'{a.labels.get("alertname")}/{a.labels.get("instance")}': (a.state.value, a.active_at) for a in manager.alerts()}


def rule(manager: RuleManager, group: int = 0, index: int = 0) -> AlertingRule:
    found = manager.groups()[group].rules[index]
    assert isinstance(found, AlertingRule)
    return found


class Daemon:
    """One life of the daemon over a store of samples and a state store that outlive it."""

    def __init__(self, clock: FakeClock, state: StateStore | None, registry: CollectorRegistry | None = None) -> None:
        self.store = Store()
        self.clock = clock
        self.sink = ListSink()
        self.manager = RuleManager(self.store, clock, state=state, sink=self.sink, registry=registry)

    def evaluate(self, t: float | None = None) -> None:
        for group in self.manager.groups():
            group.evaluate(self.clock.time() if t is None else t)


# -- reload ------------------------------------------------------------------------------------


async def test_reload_keeps_alerts_of_unchanged_rules_and_drops_those_of_changed_ones() -> None:
    clock = FakeClock(T0)
    d = Daemon(clock, None)
    rules_v1 = (alert("A", "m > 0", for_=60.0), alert("B", "m > 0", labels={"severity": "page"}))
    await d.manager.apply([spec(*rules_v1)], SETTINGS)
    sample(d.store, T0, 1, instance="x")
    d.evaluate(T0)
    (group_v1,) = d.manager.groups()
    a_before = next(iter(rule(d.manager, 0, 0).active.values()))

    # Unchanged file and settings: the very same group keeps running.
    await d.manager.apply([spec(*rules_v1)], SETTINGS)
    assert d.manager.groups()[0] is group_v1

    # A rule added, A's expression edited, B's labels changed: A keeps its alert, B starts empty.
    rules_v2 = (
        alert("New", "m > 0"),
        alert("A", "m >= 1", for_=60.0),
        alert("B", "m > 0", labels={"severity": "ticket"}),
    )
    await d.manager.apply([spec(*rules_v2)], SETTINGS)
    (group_v2,) = d.manager.groups()
    assert group_v2 is not group_v1
    assert next(iter(rule(d.manager, 0, 1).active.values())) is a_before
    assert not rule(d.manager, 0, 2).active
    # B's old ALERTS series is not written by anyone any more: stale.
    old_b = Labels.of({"__name__": "ALERTS", "alertname": "B", "alertstate": "firing", "instance": "x", "severity": "page"})
    assert is_stale(d.store.series(old_b)[0].last()[1])  # type: ignore[index]
    d.evaluate(T0 + 60)
    assert alerts_of(d.manager) == {"A/x": ("firing", T0), "B/x": ("firing", T0 + 60), "New/x": ("firing", T0 + 60)}
    await d.manager.stop()


async def test_removed_group_stops_and_its_series_go_stale() -> None:
    clock = FakeClock(T0)
    d = Daemon(clock, None)
    await d.manager.apply([spec(RecordingRuleSpec(record="r", expr="m"), name="a"), spec(alert("X", "m > 0"), name="b")], SETTINGS)
    sample(d.store, T0, 1)
    d.evaluate(T0)
    await d.manager.apply([spec(alert("X", "m > 0"), name="b")], SETTINGS)
    assert [g.name for g in d.manager.groups()] == ["b"]
    assert is_stale(d.store.series(Labels.of({"__name__": "r"}))[0].last()[1])  # type: ignore[index]
    assert not is_stale(d.store.series(Labels.of({"__name__": "ALERTS", "alertname": "X", "alertstate": "firing"}))[0].last()[1])  # type: ignore[index]
    await d.manager.stop()


def test_retention_covers_ranges_offsets_subqueries_lookback_and_interval() -> None:
    d = Daemon(FakeClock(T0), None)
    groups = d.manager.build(
        [spec(alert("X", "max_over_time(rate(m[5m])[1h:1m] offset 1d) > 0"), interval=30.0)], SETTINGS
    )
    d.manager._groups = {g.key: g for g in groups}
    assert d.manager.retention_needed() == 86400 + 3600 + 300 + 300 + 30


# -- restarts ----------------------------------------------------------------------------------


async def test_restart_resumes_firing_and_pending_alerts_by_the_downtime_rules() -> None:
    clock = FakeClock(T0)
    state = MemoryStateStore()
    rules = spec(alert("Fire", "m > 0"), alert("Wait", "m > 0", for_=600.0))
    first = Daemon(clock, state)
    await first.manager.apply([rules], SETTINGS)
    for t in (0, 10, 20):
        sample(first.store, T0 + t, 1, instance="x")
        first.evaluate(T0 + t)
    assert alerts_of(first.manager) == {"Fire/x": ("firing", T0), "Wait/x": ("pending", T0)}
    await first.manager.stop()  # or killed: state is written at every evaluation

    # Down for 100 s. The new process has no samples yet.
    await clock.advance(100)
    second = Daemon(clock, state)
    await second.manager.apply([rules], SETTINGS)
    fire, wait = rule(second.manager, 0, 0), rule(second.manager, 0, 1)
    (fired,) = fire.active.values()
    assert fired.state is AlertState.FIRING and fired.active_at == T0 and fired.fired_at == T0
    (pending,) = wait.active.values()
    # Pending 20 s before the stop (last evaluation at T0 + 20); the 80 s of downtime do not count.
    assert pending.state is AlertState.PENDING and pending.active_at == T0 + 80

    # No data yet: the restored alerts are held (one interval here), not resolved.
    second.evaluate(T0 + 105)
    assert alerts_of(second.manager) == {"Fire/x": ("firing", T0), "Wait/x": ("pending", T0 + 80)}
    # Data back: the pending alert fires after 600 s of being seen pending in total.
    for t in range(110, 671, 10):
        sample(second.store, T0 + t, 1, instance="x")
        second.evaluate(T0 + t)
    assert alerts_of(second.manager)["Wait/x"] == ("pending", T0 + 80)
    sample(second.store, T0 + 680, 1, instance="x")
    second.evaluate(T0 + 680)
    assert alerts_of(second.manager) == {"Fire/x": ("firing", T0), "Wait/x": ("firing", T0 + 80)}
    await second.manager.stop()


async def test_alert_whose_condition_cleared_during_downtime_resolves_once_after_the_hold() -> None:
    clock = FakeClock(T0)
    state = MemoryStateStore()
    rules = spec(alert("Fire", "m > 0"))
    first = Daemon(clock, state)
    await first.manager.apply([rules], SETTINGS)
    sample(first.store, T0, 1, instance="x")
    first.evaluate(T0)
    assert [s.resolved for s in first.sink.sent()] == [False]

    await clock.advance(300)
    second = Daemon(clock, state)
    await second.manager.apply([rules], SETTINGS)
    # The condition is gone: m is 0 now. Held for one interval (instant selector: window 0).
    sample(second.store, T0 + 300, 0, instance="x")
    second.evaluate(T0 + 305)
    assert alerts_of(second.manager) == {"Fire/x": ("firing", T0)}
    second.evaluate(T0 + 310)
    assert alerts_of(second.manager) == {}
    second.evaluate(T0 + 320)
    resolved = [s for s in second.sink.sent() if s.resolved]
    assert len(resolved) == 1 and resolved[0].starts_at == T0 and resolved[0].ends_at == T0 + 310
    # The resolved alert is saved too (kept 15 m), and forgotten after that.
    (doc,) = state.load(ALERT_KIND).values()
    assert doc["state"] == "inactive" and doc["resolved_at"] == T0 + 310
    second.evaluate(T0 + 310 + 901)
    assert state.load(ALERT_KIND) == {}
    await second.manager.stop()


async def test_state_writes_one_transaction_per_evaluation_and_only_changes() -> None:
    class CountingStore(MemoryStateStore):
        def __init__(self) -> None:
            super().__init__()
            self.puts: list[str] = []

        def put(self, kind: str, key: str, value: Any) -> None:
            self.puts.append(kind)
            super().put(kind, key, value)

    clock = FakeClock(T0)
    state = CountingStore()
    d = Daemon(clock, state)
    await d.manager.apply([spec(alert("Fire", "m > 0", annotations=FrozenMap({"v": "{{ $value }}"})))], SETTINGS)
    for t in range(0, 100, 10):
        sample(d.store, T0 + t, t + 1)  # the value changes every time
        d.evaluate(T0 + t)
    assert state.puts == ["alert"]  # firing at once; value changes are not written
    await d.manager.stop()


async def test_rules_that_vanished_while_down_lose_their_saved_alerts() -> None:
    clock = FakeClock(T0)
    state = MemoryStateStore()
    first = Daemon(clock, state)
    await first.manager.apply([spec(alert("Old", "m > 0"))], SETTINGS)
    sample(first.store, T0, 1)
    first.evaluate(T0)
    assert len(state.load(ALERT_KIND)) == 1
    second = Daemon(clock, state)
    await second.manager.apply([spec(alert("New", "m > 0"))], SETTINGS)
    assert state.load(ALERT_KIND) == {}
    await second.manager.stop()


async def test_sqlite_state_survives_reopen(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    state = SQLiteStateStore(tmp_path / "state.db")
    first = Daemon(clock, state)
    await first.manager.apply([spec(alert("Fire", "m > 0"))], SETTINGS)
    sample(first.store, T0, 1, instance="x")
    first.evaluate(T0)
    await first.manager.stop()
    state.close()
    reopened = SQLiteStateStore(tmp_path / "state.db")
    second = Daemon(clock, reopened)
    await second.manager.apply([spec(alert("Fire", "m > 0"))], SETTINGS)
    assert alerts_of(second.manager) == {"Fire/x": ("firing", T0)}
    await second.manager.stop()
    reopened.close()


async def test_corrupt_state_database_starts_empty_with_metric(tmp_path: Path) -> None:
    (tmp_path / "state.db").write_bytes(b"this is not sqlite" * 100)
    state = open_state_store(tmp_path)
    registry = CollectorRegistry()
    d = Daemon(FakeClock(T0), state, registry)
    await d.manager.apply([spec(alert("Fire", "m > 0"))], SETTINGS)
    assert registry.get_sample_value("alertd_state_recovered") == 1.0
    sample(d.store, T0, 1)
    d.evaluate(T0)  # alerting goes on, and saves
    assert len(state.load(ALERT_KIND)) == 1
    await d.manager.stop()
    state.close()


async def test_metrics() -> None:
    registry = CollectorRegistry()
    d = Daemon(FakeClock(T0), None, registry)
    await d.manager.apply([spec(alert("A", "m > 0", for_=60.0), alert("B", "nope(") if False else alert("B", "m > 0"))], SETTINGS)
    sample(d.store, T0, 1)
    d.evaluate(T0)
    key = "rules.yml;g"
    assert registry.get_sample_value("alertd_rule_group_evaluations_total", {"rule_group": key}) == 1
    assert registry.get_sample_value("alertd_rule_group_rules", {"rule_group": key}) == 2
    assert registry.get_sample_value("alertd_alerts", {"state": "pending"}) == 1
    assert registry.get_sample_value("alertd_alerts", {"state": "firing"}) == 1
    assert registry.get_sample_value("alertd_state_recovered") == 0
    await d.manager.stop()


# -- schedule ----------------------------------------------------------------------------------


class Recorder:
    """Replaces a group's ``evaluate``: records times, and can make one evaluation take long."""

    def __init__(self, group: RuleGroup, clock: FakeClock, slow: dict[int, float] | None = None) -> None:
        self.times: list[float] = []
        self.group = group
        self.clock = clock
        self.slow = slow or {}
        self.original = group.evaluate
        group.evaluate = self  # type: ignore[method-assign]

    def __call__(self, ts: float) -> None:
        self.times.append(ts)
        self.original(ts)
        # The evaluation "took" this long: the fake clock jumps as a busy loop would see it.
        self.clock._now += self.slow.get(len(self.times), 0.0)


async def test_evaluations_are_aligned_to_the_group_offset() -> None:
    clock = FakeClock(T0 + 3.3)
    d = Daemon(clock, None)
    await d.manager.apply([spec(alert("A", "m > 0"))], SETTINGS)
    group = d.manager.groups()[0]
    recorder = Recorder(group, clock)
    offset = group.offset()
    assert 0 <= offset < 10
    await clock.advance(35)
    assert len(recorder.times) == 3
    for t in recorder.times:
        assert abs(((t - offset) % 10)) < 1e-6 or abs(((t - offset) % 10) - 10) < 1e-6
    assert recorder.times[1] - recorder.times[0] == 10
    # Another group name gives another offset (spread over the interval).
    other = d.manager.build([spec(alert("A", "m > 0"), name="other")], SETTINGS)[0]
    assert other.offset() != offset
    await d.manager.stop()


async def test_overrun_skips_ticks_and_counts_them() -> None:
    clock = FakeClock(T0)
    registry = CollectorRegistry()
    d = Daemon(clock, None, registry)
    await d.manager.apply([spec(alert("A", "m > 0"))], SETTINGS)
    group = d.manager.groups()[0]
    recorder = Recorder(group, clock, slow={2: 25.0})  # the second evaluation takes 25 s
    await clock.advance(60)
    first = recorder.times[0]
    # 2nd at first+10 took 25 s: ticks first+20 and first+30 are missed, first+40... wait: the
    # loop wakes at first+35 and evaluates the latest tick (first+30), skipping first+20.
    assert recorder.times[:4] == [first, first + 10, first + 30, first + 40]
    assert registry.get_sample_value("alertd_rule_group_iterations_missed_total", {"rule_group": group.key}) == 1
    await d.manager.stop()


async def test_after_scrape_coalesces_a_burst_into_one_evaluation() -> None:
    clock = FakeClock(T0)
    d = Daemon(clock, None)
    settings = RuleSettings(evaluation_interval=60.0, after_scrape_groups={"fast": True})
    await d.manager.apply([spec(alert("A", "m > 0"), name="fast"), spec(alert("B", "m > 0"), name="slow")], settings)
    fast, slow = d.manager.groups()
    fast_times = Recorder(fast, clock).times
    slow_times = Recorder(slow, clock).times
    await clock.advance(5)
    for _ in range(5):
        d.manager.samples_landed()
    await clock.advance(0.05)
    assert fast_times == []
    await clock.advance(0.1)
    assert fast_times == [T0 + 5.1]
    assert slow_times == []  # the switch is per group
    # A scrape right after: waits for the minimum gap (1 s) since the last one.
    d.manager.samples_landed()
    await clock.advance(0.5)
    assert len(fast_times) == 1
    await clock.advance(0.6)
    assert fast_times[1] == T0 + 6.1
    # The schedule goes on as well.
    await clock.advance(60)
    assert len(slow_times) == 1 and len(fast_times) == 3
    assert fast_times == sorted(fast_times)
    await d.manager.stop()


async def test_after_scrape_alert_fires_from_a_scrape_without_waiting_for_the_interval() -> None:
    clock = FakeClock(T0)
    d = Daemon(clock, None)
    await d.manager.apply([spec(alert("Down", "up == 0"))], RuleSettings(evaluation_interval=60.0, after_scrape=True))
    sample(d.store, T0, 0, name="up")
    d.manager.samples_landed()
    await clock.advance(0.05)
    await clock.advance(1.2)
    ((state, active_at),) = alerts_of(d.manager).values()
    assert state == "firing" and T0 + 0.1 <= active_at < T0 + 1
    await d.manager.stop()


async def test_group_task_survives_an_evaluation_crash() -> None:
    clock = FakeClock(T0)
    d = Daemon(clock, None)
    await d.manager.apply([spec(alert("A", "m > 0"))], SETTINGS)
    group = d.manager.groups()[0]
    calls: list[float] = []

    def broken(ts: float) -> None:
        calls.append(ts)
        raise RuntimeError("boom")

    group.evaluate = broken  # type: ignore[method-assign]
    await clock.advance(25)
    assert len(calls) >= 2  # one per tick, though each crashed
    await d.manager.stop()
    await asyncio.sleep(0)


def test_engine_is_shared_by_groups() -> None:
    d = Daemon(FakeClock(T0), None)
    assert isinstance(d.manager.engine, Engine)
