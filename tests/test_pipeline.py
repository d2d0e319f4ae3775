"""The notification pipeline on a fake clock: mute stages, Alertmanager's dedup decisions, retries
with backoff under the deadline and Retry-After, independent integrations, metrics and logs."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from daemon.clock import FakeClock
from daemon.dispatch.alert import Alert
from daemon.dispatch.dispatcher import Flush
from daemon.notify.nflog import Entry, NotificationLog, ReceiverKey
from daemon.notify.notification import DeliveryError
from daemon.notify.pipeline import DedupStage, NotifyMetrics, Pipeline, Retry
from daemon.store import MemoryStateStore
from daemon.testing.alerts import RecordingIntegration, make_alert
from daemon.tsdb.labels import Labels

T0 = 1_700_000_000.0
GROUP = '{}:{alertname="Down"}'


def firing(name: str = "Down", **labels: str) -> Alert:
    return make_alert({"alertname": name, **labels}, starts_at=T0 - 60, ends_at=0.0)


def resolved(name: str = "Down", **labels: str) -> Alert:
    return make_alert({"alertname": name, **labels}, starts_at=T0 - 60, ends_at=T0 - 1)


def flush(clock: FakeClock, *alerts: Alert, timeout: float = 300.0, **kw: object) -> Flush:
    return Flush(
        receiver="team",
        group_key=GROUP,
        group_labels={"alertname": "Down"},
        alerts=alerts,
        now=clock.time(),
        deadline=clock.monotonic() + timeout,
        repeat_interval=kw.pop("repeat_interval", 3600.0),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


class Muter:
    def __init__(self, *names: str) -> None:
        self.names = set(names)

    def mutes(self, labels: Labels) -> bool:
        return labels.get("alertname") in self.names


class Interval:
    def __init__(self, start: float, end: float) -> None:
        self.start, self.end = start, end

    def contains(self, t: float) -> bool:
        return self.start <= t < self.end


def pipeline(clock: FakeClock, *integrations: RecordingIntegration, **kw: object) -> Pipeline:
    return Pipeline(
        {"team": list(integrations)},
        NotificationLog(MemoryStateStore(), clock),
        clock,
        metrics=NotifyMetrics(CollectorRegistry()),
        rand=lambda: 0.5,
        **kw,  # type: ignore[arg-type]
    )


# -- Retry ----------------------------------------------------------------------------------------


def test_retry_is_a_value_with_jittered_exponential_backoff() -> None:
    policy = Retry()
    assert policy.backoff() == 0.0
    first = policy.increment(DeliveryError("boom", retryable=True))
    assert policy.failures == 0 and first.failures == 1 and first.last_error == "boom"
    waits = []
    p = first
    for _ in range(15):
        waits.append(p.backoff(0.5))
        p = p.increment()
    assert waits[:3] == [0.5, 0.75, 1.125] and waits[-1] == 60.0
    assert first.backoff(0.0) == 0.25 and first.backoff(0.999999) == pytest.approx(0.75, rel=1e-5)
    assert first.wait(retry_after=20.0) == 20.0 and first.wait(retry_after=None) == 0.5
    limited = Retry(total=1).increment().increment()
    assert limited.is_exhausted() and not Retry(total=1).increment().is_exhausted()


# -- dedup ----------------------------------------------------------------------------------------


def entry(firing: set[str], resolved: set[str], at: float) -> Entry:
    return Entry(GROUP, ReceiverKey("team", "x", 0), at, frozenset(firing), frozenset(resolved), at + 1e9)


@pytest.mark.parametrize(
    ("last", "now_firing", "now_resolved", "send_resolved", "expected"),
    [
        (None, {"a"}, set(), True, True),  # never notified, something fires
        (None, set(), {"a"}, True, False),  # never notified, only resolved: nothing to say
        (({"a"}, set()), {"a", "b"}, set(), True, True),  # a new firing alert
        (({"a", "b"}, set()), {"a"}, {"b"}, True, True),  # b resolved, send_resolved
        (({"a", "b"}, set()), {"a"}, {"b"}, False, False),  # ... without send_resolved
        (({"a"}, set()), set(), {"a"}, False, True),  # all resolved: always, to clear the log
        ((set(), {"a"}), set(), {"a", "b"}, True, False),  # fired and resolved in between: nothing
        (({"a"}, set()), {"a"}, set(), True, False),  # nothing new, repeat not due
    ],
)
def test_dedup_decides_as_alertmanager(
    last: tuple[set[str], set[str]] | None, now_firing: set[str], now_resolved: set[str], send_resolved: bool, expected: bool
) -> None:
    clock = FakeClock(T0)
    stage = DedupStage(NotificationLog(MemoryStateStore(), clock), ReceiverKey("team", "x", 0), send_resolved, clock)
    previous = None if last is None else entry(last[0], last[1], T0 - 60)
    assert stage.needs_update(previous, frozenset(now_firing), frozenset(now_resolved), 3600.0) is expected


def test_dedup_repeats_after_repeat_interval() -> None:
    clock = FakeClock(T0)
    stage = DedupStage(NotificationLog(MemoryStateStore(), clock), ReceiverKey("team", "x", 0), True, clock)
    assert not stage.needs_update(entry({"a"}, set(), T0 - 3600), frozenset({"a"}), frozenset(), 3600.0)
    assert stage.needs_update(entry({"a"}, set(), T0 - 3601), frozenset({"a"}), frozenset(), 3600.0)


async def test_a_flush_is_sent_once_then_deduplicated() -> None:
    clock = FakeClock(T0)
    hook = RecordingIntegration()
    send = pipeline(clock, hook)
    assert await send(flush(clock, firing()))
    assert await send(flush(clock, firing()))
    assert len(hook.notifications) == 1
    note = hook.notifications[0]
    assert (note.receiver, note.group_key, note.status, note.now) == ("team", GROUP, "firing", T0)


async def test_firing_alerts_come_first_and_send_resolved_false_leaves_resolved_out() -> None:
    clock = FakeClock(T0)
    loud, quiet = RecordingIntegration("webhook"), RecordingIntegration("slack", send_resolved=False)
    send = pipeline(clock, loud, quiet)
    assert await send(flush(clock, resolved("Old"), firing("New")))
    assert [a.labels.get("alertname") for a in loud.notifications[0].alerts] == ["New", "Old"]
    assert [a.labels.get("alertname") for a in quiet.notifications[0].alerts] == ["New"]
    # Everything resolved: the quiet integration is not called, but its log is updated.
    assert await send(flush(clock, resolved("Old"), resolved("New")))
    assert len(quiet.notifications) == 1 and len(loud.notifications) == 2
    entry = send.nflog.query(GROUP, ReceiverKey("team", "slack", 0))
    assert entry is not None and entry.firing == frozenset()


# -- muting ---------------------------------------------------------------------------------------


async def test_inhibited_and_silenced_alerts_are_dropped() -> None:
    clock = FakeClock(T0)
    hook = RecordingIntegration()
    send = pipeline(clock, hook, inhibitor=Muter("Inhibited"), silencer=Muter("Silenced"))
    assert await send(flush(clock, firing("Inhibited"), firing("Silenced")))
    assert hook.notifications == []
    assert await send(flush(clock, firing("Inhibited"), firing("Shown")))
    assert [a.labels.get("alertname") for a in hook.notifications[0].alerts] == ["Shown"]


async def test_time_intervals_hold_notifications_back() -> None:
    clock = FakeClock(T0)
    hook = RecordingIntegration()
    intervals = {"night": Interval(T0, T0 + 100), "office": Interval(T0 + 200, T0 + 300)}
    send = pipeline(clock, hook, time_intervals=intervals)
    assert await send(flush(clock, firing(), mute_time_intervals=("night",)))
    assert await send(flush(clock, firing(), active_time_intervals=("office",)))
    assert hook.notifications == []
    clock._now = T0 + 250
    assert await send(flush(clock, firing(), mute_time_intervals=("night",), active_time_intervals=("office",)))
    assert len(hook.notifications) == 1


# -- delivery -------------------------------------------------------------------------------------


async def test_retryable_failures_are_retried_with_backoff() -> None:
    clock = FakeClock(T0)
    hook = RecordingIntegration()
    hook.fail(DeliveryError("HTTP 503", retryable=True), DeliveryError("HTTP 502", retryable=True))
    send = pipeline(clock, hook)
    task = asyncio.ensure_future(send(flush(clock, firing())))
    await clock.advance(0.49)
    assert hook.attempts == 1 and not task.done()
    await clock.advance(0.01)
    assert hook.attempts == 2
    await clock.advance(0.75)
    assert await task
    assert hook.attempts == 3 and len(hook.notifications) == 1
    assert send.metrics.requests.labels("webhook")._value.get() == 3
    assert send.metrics.requests_failed.labels("webhook")._value.get() == 2
    assert send.metrics.notifications.labels("webhook")._value.get() == 1
    assert send.metrics.failed.labels("webhook")._value.get() == 0


async def test_retry_after_is_honoured() -> None:
    clock = FakeClock(T0)
    hook = RecordingIntegration("pagerduty")
    hook.fail(DeliveryError("HTTP 429", retryable=True, retry_after=20.0))
    send = pipeline(clock, hook)
    task = asyncio.ensure_future(send(flush(clock, firing())))
    await clock.advance(19.9)
    assert hook.attempts == 1
    await clock.advance(0.1)
    assert await task and len(hook.notifications) == 1


async def test_permanent_failure_is_not_retried_and_is_logged_with_group_and_integration() -> None:
    clock = FakeClock(T0)
    hook = RecordingIntegration("pagerduty")
    hook.fail(DeliveryError("HTTP 400: invalid routing key", retryable=False))
    send = pipeline(clock, hook)
    with capture_logs() as logs:
        assert not await send(flush(clock, firing()))
    assert hook.attempts == 1
    failed = [e for e in logs if e["event"] == "notify_failed"]
    assert failed and failed[0]["group"] == GROUP and failed[0]["integration"] == "pagerduty[0]"
    assert "invalid routing key" in failed[0]["error"] and failed[0]["log_level"] == "error"
    assert send.metrics.failed.labels("pagerduty")._value.get() == 1
    # Nothing was logged as sent: the next flush tries again.
    assert send.nflog.query(GROUP, ReceiverKey("team", "pagerduty", 0)) is None


async def test_retries_stop_at_the_deadline() -> None:
    clock = FakeClock(T0)
    hook = RecordingIntegration()
    hook.fail(*[DeliveryError("HTTP 500", retryable=True)] * 1000)
    send = pipeline(clock, hook)
    with capture_logs() as logs:
        task = asyncio.ensure_future(send(flush(clock, firing(), timeout=10.0)))
        for _ in range(40):
            await clock.advance(0.5)
        assert task.done() and not task.result()
    assert 3 <= hook.attempts <= 10
    warnings = [e for e in logs if e["event"] == "notify_attempt_failed"]
    assert len(warnings) == 1  # the same error is logged once
    assert clock.monotonic() >= 0


async def test_a_slow_attempt_is_cut_off_at_the_deadline() -> None:
    clock = FakeClock(T0)
    hook = RecordingIntegration(clock=clock, delay=1000.0)
    send = pipeline(clock, hook)
    task = asyncio.ensure_future(send(flush(clock, firing(), timeout=10.0)))
    await clock.advance(10)
    assert task.done() and task.result() is False


async def test_one_failing_integration_never_delays_another() -> None:
    clock = FakeClock(T0)
    slow = RecordingIntegration("slack", clock=clock)
    slow.fail(*[DeliveryError("HTTP 503", retryable=True)] * 100)
    fast = RecordingIntegration("email")
    send = pipeline(clock, slow, fast)
    task = asyncio.ensure_future(send(flush(clock, firing(), timeout=60.0)))
    await clock.advance(0)
    assert len(fast.notifications) == 1  # delivered at once, while slack is still retrying
    assert send.nflog.query(GROUP, ReceiverKey("team", "email", 0)) is not None
    for _ in range(120):
        await clock.advance(1)
    assert task.done() and task.result() is False
    # The next flush retries only the failed integration.
    slow._failures.clear()
    assert await send(flush(clock, firing()))
    assert len(fast.notifications) == 1 and len(slow.notifications) == 1


async def test_an_integration_bug_is_a_failure_not_a_crash() -> None:
    clock = FakeClock(T0)

    class Broken(RecordingIntegration):
        async def notify(self, notification):  # type: ignore[no-untyped-def]
            raise KeyError("oops")

    send = pipeline(clock, Broken())
    with capture_logs() as logs:
        assert not await send(flush(clock, firing()))
    assert any(e["event"] == "integration_crashed" for e in logs)


async def test_unknown_receiver_fails_the_flush() -> None:
    clock = FakeClock(T0)
    send = pipeline(clock, RecordingIntegration())
    assert not await send(Flush("nobody", GROUP, {}, (firing(),), T0, clock.monotonic() + 10, 3600.0))
