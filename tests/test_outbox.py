"""Delivery guarantees on a fake clock: the outbox (written before sending, removed with the
notification log entry once accepted, sent again after a restart, once), per-integration retry
deadlines, permanent errors, the AlertdNotificationsFailing alert and fallback receivers."""

from __future__ import annotations

import asyncio

from daemon.clock import FakeClock
from daemon.dispatch.alert import Alert
from daemon.dispatch.alerts import AlertStore
from daemon.dispatch.dispatcher import Flush
from daemon.notify.failures import ALERT_NAME, DeliveryFailures
from daemon.notify.nflog import NotificationLog, ReceiverKey
from daemon.notify.notification import DeliveryError
from daemon.notify.outbox import KIND, Outbox
from daemon.notify.pipeline import NotifyMetrics, Pipeline
from daemon.store import MemoryStateStore
from daemon.testing.alerts import RecordingIntegration, make_alert

T0 = 1_700_000_000.0
GROUP = '{}:{alertname="Down"}'


def firing(name: str = "Down", **labels: str) -> Alert:
    return make_alert({"alertname": name, **labels}, starts_at=T0 - 60, ends_at=0.0)


def flush(clock: FakeClock, *alerts: Alert, receiver: str = "team", timeout: float = 300.0) -> Flush:
    return Flush(
        receiver=receiver,
        group_key=GROUP,
        group_labels={"alertname": "Down"},
        alerts=alerts,
        now=clock.time(),
        deadline=clock.monotonic() + timeout,
        repeat_interval=3600.0,
    )


async def run_until(clock: FakeClock, task: asyncio.Future, step: float = 1.0, limit: float = 3600.0) -> None:
    waited = 0.0
    while not task.done() and waited < limit:
        await clock.advance(step)
        for _ in range(20):
            await asyncio.sleep(0)
        waited += step


class Side:
    """One run of the notification side over a store (a restart is a new Side on the same store)."""

    def __init__(self, store: MemoryStateStore, clock: FakeClock, **pipeline: object) -> None:
        self.store, self.clock = store, clock
        self.team = RecordingIntegration("pagerduty", clock=clock)
        self.backup = RecordingIntegration("email", clock=clock)
        self.alerts = AlertStore(clock)
        self.failures = DeliveryFailures(self.alerts, clock)
        self.nflog = NotificationLog(store, clock)
        self.outbox = Outbox(store, clock)
        self.pipeline = Pipeline(
            {"team": [self.team], "backup": [self.backup]},
            self.nflog,
            clock,
            metrics=NotifyMetrics(),
            rand=lambda: 0.5,
            outbox=self.outbox,
            on_failure=self.failures.failed,
            on_success=self.failures.delivered,
            **pipeline,  # type: ignore[arg-type]
        )

    async def send(self, f: Flush) -> bool:
        task = asyncio.ensure_future(self.pipeline(f))
        await run_until(self.clock, task)
        return task.result()


def retryable(status: int = 503) -> DeliveryError:
    return DeliveryError(f"HTTP {status}", retryable=True)


async def test_transient_failures_retried_then_delivered_once_and_outbox_emptied() -> None:
    clock, store = FakeClock(T0), MemoryStateStore()
    side = Side(store, clock)
    side.team.fail(*(retryable() for _ in range(4)))
    seen: list[int] = []
    original = side.team.notify

    async def notify(notification):  # the outbox holds the notification while it is retried
        seen.append(len(store.load(KIND)))
        await original(notification)

    side.team.notify = notify  # type: ignore[method-assign]
    assert await side.send(flush(clock, firing()))
    assert side.team.attempts == 5 and len(side.team.notifications) == 1
    assert seen == [1] * 5
    assert store.load(KIND) == {}
    assert side.nflog.query(GROUP, ReceiverKey("team", "pagerduty")) is not None


async def test_per_integration_deadline_outlasts_the_flush_deadline() -> None:
    clock, store = FakeClock(T0), MemoryStateStore()
    side = Side(store, clock, deadlines={"pagerduty": 900.0})
    side.team.fail(*(retryable() for _ in range(15)))  # 0.5 s x1.5 ... capped at 60 s: ~8 min of retries
    assert await side.send(flush(clock, firing(), timeout=10.0))
    assert len(side.team.notifications) == 1
    assert clock.time() - T0 > 300


async def test_permanent_error_stops_at_once_raises_the_failure_alert_and_uses_the_fallback() -> None:
    clock, store = FakeClock(T0), MemoryStateStore()
    side = Side(store, clock, fallbacks={"team": ["backup"]})
    side.team.fail(DeliveryError("HTTP 400: invalid routing key", retryable=False))
    assert not await side.send(flush(clock, firing()))
    assert side.team.attempts == 1
    for _ in range(20):
        await asyncio.sleep(0)
    assert [n.receiver for n in side.backup.notifications] == ["backup"]
    assert [a.name for a in side.backup.notifications[0].alerts] == ["Down"]
    (alert,) = side.alerts.list()
    assert alert.labels.to_dict() == {
        "alertname": ALERT_NAME,
        "receiver": "team",
        "integration": "pagerduty",
        "severity": "critical",
    }
    assert "HTTP 400" in alert.annotations["description"]
    assert store.load(KIND) == {}
    # A success right after the failure leaves the alert firing (it still has to be seen); it
    # resolves 15 minutes after the failure, or at a success 5 minutes after it.
    assert await side.send(flush(clock, firing(), firing("Other")))
    (alert,) = side.alerts.list()
    assert not alert.resolved_at(clock.time()) and alert.resolved_at(T0 + 902)
    await clock.advance(300)
    assert await side.send(flush(clock, firing(), firing("Other"), firing("Third")))
    (alert,) = side.alerts.list()
    assert alert.resolved_at(clock.time())


async def test_notification_in_the_outbox_is_sent_after_a_restart_once() -> None:
    clock, store = FakeClock(T0), MemoryStateStore()
    side = Side(store, clock)
    side.team.fail(*(retryable() for _ in range(100)))
    task = asyncio.ensure_future(side.pipeline(flush(clock, firing())))
    await run_until(clock, task, limit=30)
    assert not task.done() and len(store.load(KIND)) == 1
    task.cancel()  # the process dies mid-retry: nothing but the store remains
    await asyncio.gather(task, return_exceptions=True)

    after = Side(store, clock)
    assert after.pipeline.recover() == 1
    # The group flushes again after the restart: it waits for the resent entry, then dedups.
    again = asyncio.ensure_future(after.pipeline(flush(clock, firing())))
    await run_until(clock, again)
    assert again.result()
    assert len(after.team.notifications) == 1
    assert store.load(KIND) == {}
    assert after.nflog.query(GROUP, ReceiverKey("team", "pagerduty")) is not None


async def test_an_accepted_notification_is_not_sent_again_after_a_restart() -> None:
    clock, store = FakeClock(T0), MemoryStateStore()
    side = Side(store, clock)
    assert await side.send(flush(clock, firing()))
    after = Side(store, clock)
    assert after.pipeline.recover() == 0
    assert await after.send(flush(clock, firing()))
    assert after.team.notifications == []


async def test_outbox_entry_of_a_removed_integration_is_dropped() -> None:
    clock, store = FakeClock(T0), MemoryStateStore()
    side = Side(store, clock)
    side.team.fail(*(retryable() for _ in range(100)))
    task = asyncio.ensure_future(side.pipeline(flush(clock, firing())))
    await run_until(clock, task, limit=5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    after = Side(store, clock)
    after.pipeline.integrations_by_receiver = {"backup": [after.backup]}
    assert after.pipeline.recover() == 0
    assert store.load(KIND) == {}


def test_fallback_receivers_are_checked_and_the_readme_example_loads() -> None:
    import re
    from pathlib import Path

    import pytest

    from daemon.config import ConfigError, parse_config

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    (example,) = re.findall(r"```yaml fallback\n(.*?)```", readme, flags=re.S)
    config = parse_config(example)
    assert config.receivers[0].fallback_receivers == ("team-email",)
    bad = "route: {receiver: a}\nreceivers:\n  - name: a\n    fallback_receivers: [a, nope]\n"
    with pytest.raises(ConfigError) as error:
        parse_config(bad)
    text = str(error.value)
    assert "receivers.0.fallback_receivers.0: a receiver cannot be its own fallback" in text
    assert 'receivers.0.fallback_receivers.1: undefined receiver "nope" used in fallback_receivers' in text
