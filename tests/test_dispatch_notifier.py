"""The Notifier built from a config: rule-engine alerts in, notifications out through the real route
tree and inhibit rules; a reload keeps alerts, silences and the log (no repeat)."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from daemon.clock import FakeClock
from daemon.config.load import parse_config
from daemon.dispatch.silence import Silence, SilenceMatcher
from daemon.notify.pipeline import Notifier
from daemon.rules.sink import AlertQueue, OutgoingAlert
from daemon.store import MemoryStateStore
from daemon.testing.alerts import RecordingIntegration

T0 = 1_700_000_000.0
CONFIG = """
route:
  receiver: default
  group_by: [alertname]
  group_wait: 10s
  group_interval: 1m
  routes:
    - matchers: ['severity="P0"']
      receiver: pager
receivers:
  - name: default
  - name: pager
inhibit_rules:
  - source_matchers: ['severity="P0"']
    target_matchers: ['severity="P2"']
"""


def outgoing(name: str, severity: str, *, ends_at: float) -> OutgoingAlert:
    return OutgoingAlert({"alertname": name, "severity": severity}, {"summary": name}, T0, ends_at, "http://x/graph")


async def run(clock: FakeClock, seconds: int) -> None:
    for _ in range(seconds):
        await clock.advance(1)
        for _ in range(30):
            await asyncio.sleep(0)


async def test_alerts_flow_from_the_rule_engine_to_integrations() -> None:
    clock = FakeClock(T0)
    default, pager = RecordingIntegration(), RecordingIntegration("pagerduty")
    notifier = Notifier(parse_config(CONFIG), MemoryStateStore(), clock, CollectorRegistry(), {"default": [default], "pager": [pager]})
    await notifier.start()
    queue = AlertQueue()
    consumer = asyncio.ensure_future(notifier.consume(queue))
    queue.send([outgoing("Down", "P0", ends_at=T0 + 240), outgoing("Slow", "P2", ends_at=T0 + 240), outgoing("Disk", "P3", ends_at=T0 + 240)])
    await run(clock, 10)
    assert pager.sent() == [("firing", ["Down"], [])]
    assert default.sent() == [("firing", ["Disk"], [])]  # Slow is inhibited by Down

    # A silence made now holds Disk back; a reload keeps it and does not repeat Down.
    notifier.silences.set(Silence((SilenceMatcher("alertname", "Disk"),), clock.time(), clock.time() + 3600, "ops", "x"))
    await notifier.reload(parse_config(CONFIG), {"default": [default], "pager": [pager]})
    queue.send([outgoing("Down", "P0", ends_at=clock.time() + 240)])
    await run(clock, 70)
    assert len(pager.notifications) == 1 and len(default.notifications) == 1

    # Down resolves: the pager hears it, and Slow is no longer inhibited.
    queue.send([OutgoingAlert({"alertname": "Down", "severity": "P0"}, {}, T0, clock.time(), "", resolved=True),
                outgoing("Slow", "P2", ends_at=clock.time() + 240)])
    await run(clock, 60)
    assert pager.sent()[-1] == ("resolved", [], ["Down"])
    assert default.sent()[-1] == ("firing", ["Slow"], [])
    consumer.cancel()
    await notifier.stop()


async def test_without_a_route_alerts_are_kept_but_not_sent() -> None:
    clock = FakeClock(T0)
    notifier = Notifier(parse_config(""), MemoryStateStore(), clock, CollectorRegistry(), {})
    await notifier.start()
    notifier.receive([outgoing("Down", "P0", ends_at=T0 + 60)])
    assert len(notifier.alerts) == 1 and notifier.dispatcher is None
    assert notifier.receivers_of(notifier.alerts.list()[0].labels) == []
    await notifier.stop()
