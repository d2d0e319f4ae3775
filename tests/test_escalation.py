"""Escalation through the Notifier on a fake clock: levels in order, acknowledgement, resolution,
repeat, un-acknowledgement, a new alert in an acknowledged group, and restarts."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from daemon.clock import FakeClock
from daemon.config.load import parse_config
from daemon.notify.escalation import base_group_key, escalation_key
from daemon.notify.pipeline import Notifier
from daemon.rules.sink import OutgoingAlert
from daemon.store import MemoryStateStore
from daemon.testing.alerts import RecordingIntegration

T0 = 1_700_000_000.0
CONFIG = """
route:
  receiver: slack
  group_by: [alertname]
  group_wait: 10s
  group_interval: 1m
  repeat_interval: 4h
  escalation: oncall
receivers: [{name: slack}, {name: primary}, {name: senior}, {name: manager}]
escalation_policies:
  - name: oncall
    levels:
      - {after: 0s, receivers: [primary]}
      - {after: 5m, receivers: [senior]}
      - {after: 20m, receivers: [manager]}
"""


class Rig:
    """A Notifier with one recording integration per receiver, on a fake clock."""

    def __init__(self, config: str = CONFIG, *, store: MemoryStateStore | None = None, start: float = T0) -> None:
        self.clock = FakeClock(start)
        self.store = store if store is not None else MemoryStateStore()
        self.receivers = {name: RecordingIntegration() for name in ("slack", "primary", "senior", "manager")}
        self.notifier = Notifier(
            parse_config(config), self.store, self.clock, CollectorRegistry(), {k: [v] for k, v in self.receivers.items()}
        )

    async def __aenter__(self) -> Rig:
        await self.notifier.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.notifier.stop()

    def fire(self, name: str = "Down", *, starts_at: float = T0, resolved: bool = False) -> None:
        now = self.clock.time()
        ends = now if resolved else now + 240
        self.notifier.receive([OutgoingAlert({"alertname": name, "severity": "P0"}, {}, starts_at, ends, "", resolved=resolved)])

    async def run(self, seconds: int, *, keep_firing: tuple[str, ...] = ("Down",)) -> None:
        for second in range(seconds):
            if second % 30 == 0:
                for name in keep_firing:
                    self.fire(name)
            await self.clock.advance(1)
            for _ in range(20):
                await asyncio.sleep(0)

    def firing_counts(self) -> dict[str, int]:
        return {name: sum(1 for s in r.sent() if s[0] == "firing") for name, r in self.receivers.items()}

    def group(self) -> object:
        (group,) = self.notifier.dispatcher.all_groups()  # type: ignore[union-attr]
        return group


async def test_levels_go_out_in_order_at_their_offsets() -> None:
    async with Rig() as rig:
        rig.fire()
        await rig.run(11)
        assert rig.firing_counts() == {"slack": 1, "primary": 1, "senior": 0, "manager": 0}
        await rig.run(5 * 60 - 2)
        assert rig.firing_counts()["senior"] == 0
        await rig.run(3)
        assert rig.firing_counts() == {"slack": 1, "primary": 1, "senior": 1, "manager": 0}
        await rig.run(15 * 60)
        assert rig.firing_counts() == {"slack": 1, "primary": 1, "senior": 1, "manager": 1}
        sent = rig.receivers["manager"].notifications[0]
        assert sent.now - rig.receivers["primary"].notifications[0].now == 20 * 60
        assert base_group_key(sent.group_key) == rig.receivers["slack"].notifications[0].group_key
        await rig.run(3600)
        assert rig.firing_counts() == {"slack": 1, "primary": 1, "senior": 1, "manager": 1}  # no repeat configured


async def test_an_acknowledgement_stops_the_escalation() -> None:
    async with Rig() as rig:
        rig.fire()
        await rig.run(60)
        assert rig.notifier.escalator is not None
        ack = rig.notifier.escalator.acknowledge(rig.group(), "alice", "looking", via="api")  # type: ignore[arg-type]
        assert ack.by == "alice" and ack.alertnames == ("Down",)
        await rig.run(30 * 60)
        assert rig.firing_counts() == {"slack": 1, "primary": 1, "senior": 0, "manager": 0}
        assert [a.by for a in rig.notifier.escalator.acks()] == ["alice"]
        assert rig.store.load("ack")  # recorded


async def test_a_new_alert_in_an_acknowledged_group_is_notified_but_does_not_escalate() -> None:
    config = CONFIG.replace("group_by: [alertname]", "group_by: [severity]")
    async with Rig(config) as rig:
        rig.fire()
        await rig.run(60)
        assert rig.notifier.escalator is not None
        rig.notifier.escalator.acknowledge(rig.group(), "alice")  # type: ignore[arg-type]
        rig.fire("Disk")
        await rig.run(30 * 60, keep_firing=("Down", "Disk"))
        assert rig.receivers["slack"].sent()[-1] == ("firing", ["Disk", "Down"], [])
        assert rig.firing_counts()["primary"] == 1 and rig.firing_counts()["senior"] == 0


async def test_resolution_stops_it_and_resolves_what_it_reached() -> None:
    async with Rig() as rig:
        rig.fire()
        await rig.run(6 * 60)
        assert rig.firing_counts()["senior"] == 1
        rig.fire(resolved=True)
        await rig.run(90, keep_firing=())
        assert rig.receivers["primary"].sent()[-1] == ("resolved", [], ["Down"])
        assert rig.receivers["senior"].sent()[-1] == ("resolved", [], ["Down"])
        await rig.run(30 * 60, keep_firing=())
        assert rig.firing_counts()["manager"] == 0
        assert rig.store.load("escalation") == {}


async def test_repeat_starts_again_from_level_one() -> None:
    config = CONFIG + "    repeat: 1\n    repeat_interval: 10m\n"
    async with Rig(config) as rig:
        rig.fire()
        await rig.run(11)
        await rig.run(30 * 60)
        assert rig.firing_counts() == {"slack": 1, "primary": 2, "senior": 1, "manager": 1}
        await rig.run(20 * 60)
        assert rig.firing_counts() == {"slack": 1, "primary": 2, "senior": 2, "manager": 2}
        keys = [n.group_key for n in rig.receivers["primary"].notifications]
        group_key = base_group_key(keys[0])
        assert keys == [escalation_key(group_key, "oncall", 0, 0), escalation_key(group_key, "oncall", 1, 0)]


async def test_unacknowledging_starts_again_from_level_one() -> None:
    async with Rig() as rig:
        rig.fire()
        await rig.run(60)
        escalator = rig.notifier.escalator
        assert escalator is not None
        escalator.acknowledge(rig.group(), "alice")  # type: ignore[arg-type]
        await rig.run(10 * 60)
        assert escalator.unacknowledge(rig.group().key) is not None  # type: ignore[attr-defined]
        await rig.run(2)
        assert rig.firing_counts()["primary"] == 2 and rig.firing_counts()["senior"] == 0
        await rig.run(5 * 60)
        assert rig.firing_counts()["senior"] == 1


async def test_a_restart_resumes_at_the_right_level_at_the_right_time() -> None:
    store = MemoryStateStore()
    async with Rig(store=store) as rig:
        rig.fire()
        await rig.run(3 * 60)
        assert rig.firing_counts() == {"slack": 1, "primary": 1, "senior": 0, "manager": 0}
    # Down for one minute: level 2 is still 1 min away when the daemon is back.
    async with Rig(store=store, start=T0 + 4 * 60) as rig:
        rig.fire()
        await rig.run(50)
        assert rig.firing_counts() == {"slack": 0, "primary": 0, "senior": 0, "manager": 0}
        await rig.run(20)
        assert rig.firing_counts() == {"slack": 0, "primary": 0, "senior": 1, "manager": 0}
        assert rig.receivers["senior"].notifications[0].now == T0 + 10 + 5 * 60


async def test_after_a_long_outage_each_due_level_is_sent_once() -> None:
    store = MemoryStateStore()
    async with Rig(store=store) as rig:
        rig.fire()
        await rig.run(60)
    # Back after 30 minutes: levels 2 and 3 fell due meanwhile; each goes out once, in order.
    async with Rig(store=store, start=T0 + 31 * 60) as rig:
        rig.fire()
        await rig.run(5)
        assert rig.firing_counts() == {"slack": 0, "primary": 0, "senior": 1, "manager": 1}
        assert rig.receivers["senior"].notifications[0].now <= rig.receivers["manager"].notifications[0].now
        await rig.run(30 * 60)
        assert rig.firing_counts() == {"slack": 0, "primary": 0, "senior": 1, "manager": 1}


async def test_a_level_sent_just_before_a_crash_is_not_sent_again() -> None:
    store = MemoryStateStore()
    async with Rig(store=store) as rig:
        rig.fire()
        await rig.run(6 * 60)
        assert rig.firing_counts()["senior"] == 1
        # As if the process died after sending level 2 but before recording it.
        doc = store.load("escalation")
        (key,) = doc
        doc[key]["next_step"] = 1
        store.put("escalation", key, doc[key])
    async with Rig(store=store, start=T0 + 7 * 60) as rig:
        rig.fire()
        await rig.run(60)
        assert rig.firing_counts()["senior"] == 0  # the notification log knew


async def test_a_silenced_group_does_not_start_escalating() -> None:
    from daemon.dispatch.silence import Silence, SilenceMatcher

    async with Rig() as rig:
        rig.notifier.silences.set(Silence((SilenceMatcher("alertname", "Down"),), T0, T0 + 7200, "ops", "x"))
        rig.fire()
        await rig.run(30 * 60)
        assert rig.firing_counts() == {"slack": 0, "primary": 0, "senior": 0, "manager": 0}
        assert rig.store.load("escalation") == {}
