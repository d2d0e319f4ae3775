"""Aggregation groups on a fake clock: Alertmanager's group_wait / group_interval / repeat_interval,
resolved notifications, group removal, and the notification log across a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from daemon.clock import FakeClock
from daemon.dispatch.alert import Alert, fingerprint
from daemon.dispatch.alerts import AlertStore
from daemon.dispatch.dispatcher import Dispatcher, Flush, alert_order, format_label_set
from daemon.notify.nflog import NotificationLog
from daemon.notify.pipeline import NotifyMetrics, Pipeline
from daemon.store import MemoryStateStore, StateStore
from daemon.testing.alerts import RecordingIntegration, make_alert
from daemon.tsdb.labels import Labels

T0 = 1_700_000_000.0


@dataclass(eq=False)
class FakeRoute:
    """A one-node route tree: every alert goes to ``receiver``, grouped by ``group_by``."""

    receiver: str = "team"
    group_by: frozenset[str] | str = frozenset({"alertname"})
    group_wait: float = 30.0
    group_interval: float = 300.0
    repeat_interval: float = 4 * 3600.0
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()
    children: list[FakeRoute] = field(default_factory=list)
    matchers: Mapping[str, str] = field(default_factory=dict)

    def key(self) -> str:
        return "{}" if not self.matchers else "{}/{" + ",".join(f'{k}="{v}"' for k, v in self.matchers.items()) + "}"

    def match(self, labels: Labels) -> list[FakeRoute]:
        found = [c for c in self.children if all(labels.get(k) == v for k, v in c.matchers.items())]
        return found or [self]

    def group_labels(self, labels: Labels) -> dict[str, str]:
        if self.group_by == "all":
            return labels.to_dict()
        return {k: v for k, v in labels.items() if k in self.group_by}


async def settle(turns: int = 30) -> None:
    for _ in range(turns):
        await asyncio.sleep(0)


async def tick(clock: FakeClock, seconds: float, step: float = 1.0) -> None:
    """Advance in steps, letting flushes run to their next sleep at each step."""
    done = 0.0
    while done < seconds:
        move = min(step, seconds - done)
        await clock.advance(move)
        await settle()
        done += move


class Harness:
    def __init__(
        self,
        *,
        store: StateStore | None = None,
        clock: FakeClock | None = None,
        route: FakeRoute | None = None,
        integrations: list[RecordingIntegration] | None = None,
    ) -> None:
        self.clock = clock or FakeClock(T0)
        self.store = store or MemoryStateStore()
        self.route = route or FakeRoute()
        self.integrations = integrations if integrations is not None else [RecordingIntegration(clock=self.clock)]
        self.alerts = AlertStore(self.clock)
        self.nflog = NotificationLog(self.store, self.clock)
        self.pipeline = Pipeline(
            {self.route.receiver: self.integrations, **{c.receiver: self.integrations for c in self.route.children}},
            self.nflog,
            self.clock,
            metrics=NotifyMetrics(),
            rand=lambda: 0.5,
        )
        self.dispatcher = Dispatcher(self.route, self.alerts, self.pipeline, self.clock)

    @property
    def sent(self) -> list[tuple[str, list[str], list[str]]]:
        return self.integrations[0].sent()

    def fire(self, name: str, started: float | None = None, **labels: str) -> Alert:
        now = self.clock.time()
        alert = make_alert(
            {"alertname": name, **labels}, starts_at=now if started is None else started, ends_at=now + 4 * 3600, updated_at=now
        )
        self.alerts.put(alert)
        return alert

    def resolve(self, name: str, **labels: str) -> None:
        now = self.clock.time()
        old = self.alerts.get(fingerprint({"alertname": name, **labels}))
        assert old is not None
        self.alerts.put(make_alert(old.labels.to_dict(), starts_at=old.starts_at, ends_at=now, updated_at=now))


async def test_first_notification_waits_group_wait_and_batches_the_group() -> None:
    h = Harness()
    await h.dispatcher.start()
    h.fire("HighCPU", instance="a")
    await tick(h.clock, 10)
    h.fire("HighCPU", instance="b")
    await tick(h.clock, 19)
    assert h.sent == []
    await tick(h.clock, 1)
    assert h.sent == [("firing", ["HighCPU", "HighCPU"], [])]
    await h.dispatcher.stop()


async def test_changes_wait_for_group_interval_and_nothing_new_waits_for_repeat_interval() -> None:
    h = Harness(route=FakeRoute(group_by=frozenset(), group_interval=300, repeat_interval=3600))
    await h.dispatcher.start()
    h.fire("A")
    await tick(h.clock, 30)
    assert len(h.sent) == 1
    await tick(h.clock, 60)
    h.fire("B")  # a change: sent at the next group interval, not before
    await tick(h.clock, 200, step=10)
    assert len(h.sent) == 1
    await tick(h.clock, 50, step=10)
    assert h.sent[-1] == ("firing", ["A", "B"], [])
    # Refreshes of the same alerts change nothing: no notification until repeat_interval.
    for _ in range(12):  # flushes at 630 ... 3930: 3930 - 3600 is not after the last notice at 330
        h.fire("A", started=T0)
        h.fire("B", started=T0)
        await tick(h.clock, 300, step=30)
    assert len(h.sent) == 2
    await tick(h.clock, 300, step=30)
    assert len(h.sent) == 3
    assert h.sent[-1] == ("firing", ["A", "B"], [])


async def test_resolved_notification_and_group_removal() -> None:
    h = Harness()
    await h.dispatcher.start()
    h.fire("Down")
    await tick(h.clock, 30)
    h.resolve("Down")
    await tick(h.clock, 300, step=10)
    assert h.sent == [("firing", ["Down"], []), ("resolved", [], ["Down"])]
    await tick(h.clock, 30)
    assert h.dispatcher.group_count() == 0  # resolved alert left the group, maintenance removed it
    await tick(h.clock, 3600, step=60)
    assert len(h.sent) == 2
    await h.dispatcher.stop()


async def test_without_send_resolved_the_log_is_still_cleared() -> None:
    quiet = RecordingIntegration(send_resolved=False)
    h = Harness(integrations=[quiet])
    await h.dispatcher.start()
    h.fire("Down")
    await tick(h.clock, 30)
    h.resolve("Down")
    await tick(h.clock, 300, step=10)
    assert quiet.sent() == [("firing", ["Down"], [])]
    entry = h.nflog.query('{}:{alertname="Down"}', _key(quiet))
    assert entry is not None and entry.firing == frozenset() and len(entry.resolved) == 1
    # Firing again after that is news again.
    h.fire("Down")
    await tick(h.clock, 30)
    assert quiet.sent()[-1] == ("firing", ["Down"], [])
    await h.dispatcher.stop()


def _key(integration: RecordingIntegration):  # type: ignore[no-untyped-def]
    from daemon.notify.nflog import ReceiverKey

    return ReceiverKey("team", integration.name, integration.index)


async def test_an_alert_that_started_long_ago_flushes_at_once() -> None:
    h = Harness()
    await h.dispatcher.start()
    h.fire("Old", started=T0 - 3600)
    await tick(h.clock, 1)
    assert h.sent == [("firing", ["Old"], [])]
    await h.dispatcher.stop()


async def test_groups_follow_group_by_and_routes() -> None:
    db = FakeRoute(receiver="db", matchers={"team": "db"})
    h = Harness(route=FakeRoute(receiver="team", group_by=frozenset({"alertname"}), children=[db]))
    await h.dispatcher.start()
    h.fire("A", team="web")
    h.fire("B", team="web")
    h.fire("A", team="db")
    await tick(h.clock, 30)
    notes = h.integrations[0].notifications
    assert sorted((n.receiver, n.group_key) for n in notes) == [
        ("db", '{}/{team="db"}:{alertname="A"}'),
        ("team", '{}:{alertname="A"}'),
        ("team", '{}:{alertname="B"}'),
    ]
    views, receivers = h.dispatcher.groups()
    assert [(v.labels, v.receiver) for v in views] == [
        ({"alertname": "A"}, "db"),
        ({"alertname": "A"}, "team"),
        ({"alertname": "B"}, "team"),
    ]
    assert receivers[fingerprint({"alertname": "A", "team": "db"})] == ["db"]
    await h.dispatcher.stop()


async def test_restart_neither_repeats_nor_loses_the_resolved_notification() -> None:
    store = MemoryStateStore()
    clock = FakeClock(T0)
    first = Harness(store=store, clock=clock)
    await first.dispatcher.start()
    first.fire("Down")
    await tick(clock, 30)
    assert first.sent == [("firing", ["Down"], [])]
    await first.dispatcher.stop()

    # The same alert is sent again after the restart: the log says it was notified, no repeat.
    second = Harness(store=store, clock=clock)
    await second.dispatcher.start()
    second.fire("Down", started=T0)
    await tick(clock, 60)
    assert second.sent == []
    await second.dispatcher.stop()

    # It resolved while the daemon was down: the resolved notification still goes out.
    third = Harness(store=store, clock=clock)
    await third.dispatcher.start()
    third.alerts.put(make_alert({"alertname": "Down"}, starts_at=T0, ends_at=clock.time() - 5, updated_at=clock.time()))
    await tick(clock, 30)
    assert third.sent == [("resolved", [], ["Down"])]
    await third.dispatcher.stop()


async def test_a_resolved_alert_refiring_during_the_flush_is_kept() -> None:
    h = Harness()
    await h.dispatcher.start()
    h.fire("Flap")
    await tick(h.clock, 30)
    h.resolve("Flap")
    await tick(h.clock, 299, step=10)
    h.fire("Flap")  # a new occurrence just before the flush that reports the resolution
    await tick(h.clock, 1)
    assert h.sent[-1] == ("firing", ["Flap"], [])
    assert h.dispatcher.group_count() == 1
    await h.dispatcher.stop()


async def test_flush_hands_firing_alerts_without_expiry_in_alertmanager_order() -> None:
    clock = FakeClock(T0)
    flushes: list[Flush] = []

    async def notify(flush: Flush) -> bool:
        flushes.append(flush)
        return True

    alerts = AlertStore(clock)
    dispatcher = Dispatcher(FakeRoute(group_by=frozenset()), alerts, notify, clock)
    await dispatcher.start()
    for labels in ({"alertname": "X"}, {"alertname": "X", "job": "b"}, {"alertname": "X", "job": "a", "instance": "2"}):
        alerts.put(make_alert(labels, starts_at=T0, ends_at=T0 + 600))
    alerts.put(make_alert({"alertname": "Y", "job": "a", "instance": "1"}, starts_at=T0 - 60, ends_at=T0))
    await tick(clock, 30)
    flush = flushes[0]
    assert [a.labels.to_dict() for a in flush.alerts] == [
        {"alertname": "Y", "job": "a", "instance": "1"},
        {"alertname": "X", "job": "a", "instance": "2"},
        {"alertname": "X", "job": "b"},
        {"alertname": "X"},
    ]
    assert [a.ends_at for a in flush.alerts] == [T0, 0.0, 0.0, 0.0]
    assert [a.labels.get("alertname") for a in flush.resolved] == ["Y"]
    assert flush.group_key == "{}:{}" and flush.repeat_interval == 4 * 3600
    assert flush.deadline == clock.monotonic() + 300 or flush.deadline <= clock.monotonic() + 300
    await dispatcher.stop()


def test_alert_order_and_label_set_format() -> None:
    a = make_alert({"job": "a"}, starts_at=1, ends_at=2)
    b = make_alert({"zzz": "1"}, starts_at=1, ends_at=2)
    assert sorted([b, a], key=alert_order) == [a, b]
    assert format_label_set({"b": 'x"y', "a": "1\n"}) == '{a="1\\n", b="x\\"y"}'
