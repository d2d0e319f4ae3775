"""The settle rule on a fake clock: a route without an explicit ``group_wait`` flushes a new
group once the evaluation round that created it has landed, then once more when the scrape
round has settled; an explicit ``group_wait`` (set on the route or a parent) is honoured."""

from __future__ import annotations

import asyncio

from daemon.clock import FakeClock
from daemon.config.alerting import RouteConfig
from daemon.dispatch.alerts import AlertStore
from daemon.dispatch.dispatcher import Dispatcher, Settle
from daemon.dispatch.route import Route
from daemon.notify.nflog import NotificationLog
from daemon.notify.pipeline import NotifyMetrics, Pipeline, settle_for
from daemon.store import MemoryStateStore
from daemon.testing.alerts import RecordingIntegration, make_alert

T0 = 1_700_000_000.0


async def tick(clock: FakeClock, seconds: float, step: float = 0.5) -> None:
    done = 0.0
    while done < seconds:
        move = min(step, seconds - done)
        await clock.advance(move)
        for _ in range(30):
            await asyncio.sleep(0)
        done += move


class Harness:
    def __init__(self, route: dict, settle: Settle | None = Settle.for_cadence(15, 15)) -> None:
        self.clock = FakeClock(T0)
        self.route = Route.build(RouteConfig.model_validate(route))
        self.integration = RecordingIntegration(clock=self.clock)
        receivers = {r.receiver for r in self.route.walk()}
        self.alerts = AlertStore(self.clock)
        pipeline = Pipeline(
            {name: [self.integration] for name in receivers},
            NotificationLog(MemoryStateStore(), self.clock),
            self.clock,
            metrics=NotifyMetrics(),
            rand=lambda: 0.5,
        )
        self.dispatcher = Dispatcher(self.route, self.alerts, pipeline, self.clock, settle=settle)

    def fire(self, *instances: str, **labels: str) -> None:
        now = self.clock.time()
        for instance in instances:
            self.alerts.put(
                make_alert(
                    {"alertname": "TargetDown", "job": "api", "instance": instance, **labels},
                    starts_at=now,
                    ends_at=now + 3600,
                    updated_at=now,
                )
            )

    def sizes(self) -> list[int]:
        return [len(n.firing) for n in self.integration.notifications]


def test_settle_follows_the_cadence() -> None:
    assert Settle.for_cadence(15, 15) == Settle(first=1.0, catch_up=30.0)
    assert Settle.for_cadence(60, 30).catch_up == 90.0
    assert Settle.for_cadence(0.1, 0.1).catch_up == 1.0  # never before the first flush


def test_settle_for_config_takes_the_longest_job_and_evaluation_interval() -> None:
    from daemon.config import Config

    config = Config.model_validate(
        {
            "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
            "scrape_configs": [
                {"job_name": "a", "static_configs": [{"targets": ["x:1"]}]},
                {"job_name": "b", "scrape_interval": "30s", "static_configs": [{"targets": ["y:1"]}]},
            ],
        },
        context={},
    )
    assert settle_for(config).catch_up == 45.0
    assert settle_for(config, [60.0]).catch_up == 90.0


def test_group_wait_set_is_inherited() -> None:
    route = Route.build(
        RouteConfig.model_validate(
            {
                "receiver": "r",
                "routes": [
                    {"matchers": ["a=1"], "group_wait": "10s", "routes": [{"matchers": ["b=1"]}]},
                    {"matchers": ["a=2"]},
                ],
            }
        )
    )
    root, explicit, inherited, implicit = route.walk()
    assert not root.group_wait_set and not implicit.group_wait_set
    assert explicit.group_wait_set and inherited.group_wait_set and inherited.group_wait == 10.0


async def test_first_page_once_the_round_landed_then_one_catch_up() -> None:
    h = Harness({"receiver": "r", "group_by": ["job"]})
    await h.dispatcher.start()
    # 20 targets of one job go down together; their scrapes are spread over 15 s and the rule
    # is evaluated every 15 s, so they show up in two evaluation rounds.
    h.fire(*(f"t{i}" for i in range(6)))
    await tick(h.clock, 0.5)
    assert h.sizes() == []
    await tick(h.clock, 0.5)
    assert h.sizes() == [6]
    await tick(h.clock, 14)
    h.fire(*(f"t{i}" for i in range(6, 20)))
    await tick(h.clock, 14.5)
    assert h.sizes() == [6]
    await tick(h.clock, 0.5)  # 30 s after the group was created: the catch-up
    assert h.sizes() == [6, 20]
    # Then group_interval (5 m) as usual, so at most two notifications in the first two minutes.
    h.fire("t20")
    await tick(h.clock, 90, step=5)
    assert h.sizes() == [6, 20]
    await tick(h.clock, 205, step=5)
    assert h.sizes() == [6, 20]
    await tick(h.clock, 5, step=5)  # 300 s after the catch-up
    assert h.sizes() == [6, 20, 21]
    await h.dispatcher.stop()


async def test_catch_up_is_silent_when_nothing_joined() -> None:
    h = Harness({"receiver": "r", "group_by": ["job"]})
    await h.dispatcher.start()
    h.fire("t1")
    await tick(h.clock, 60, step=1)
    assert h.sizes() == [1]
    await h.dispatcher.stop()


async def test_explicit_group_wait_is_honoured_on_the_route_and_below() -> None:
    h = Harness(
        {
            "receiver": "r",
            "group_by": ["job"],
            "routes": [{"matchers": ["team=db"], "group_wait": "30s", "routes": [{"matchers": ["sev=P0"]}]}],
        }
    )
    await h.dispatcher.start()
    h.fire("t1", team="db", sev="P0")
    await tick(h.clock, 29.5)
    assert h.sizes() == []
    await tick(h.clock, 0.5)
    assert h.sizes() == [1]
    await h.dispatcher.stop()


async def test_without_settle_the_default_group_wait_applies() -> None:
    h = Harness({"receiver": "r", "group_by": ["job"]}, settle=None)
    await h.dispatcher.start()
    h.fire("t1")
    await tick(h.clock, 29.5)
    assert h.sizes() == []
    await tick(h.clock, 0.5)
    assert h.sizes() == [1]
    await h.dispatcher.stop()
