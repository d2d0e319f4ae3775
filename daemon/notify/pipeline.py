"""The notification pipeline: what a flush of an aggregation group goes through, as Alertmanager's
``notify`` stages.

For the flush's receiver, in sequence: drop alerts muted by inhibition; drop everything outside
the route's ``active_time_intervals`` or inside its ``mute_time_intervals``; drop alerts muted by
silences. Then, for every integration of the receiver concurrently: **dedup** (does the
notification log say this integration must hear about the group now?), **retry** (attempts with
jittered exponential backoff until the flush's deadline, honouring ``Retry-After``), and
**log** (record what was sent in the notification log). One slow or failing integration never
delays another; the flush succeeds when every integration succeeded.

Every stage is a small object with ``async exec(ctx, alerts) -> alerts``; a stage that fails
raises ``NotifyError``. An empty alert list ends a sequence early (nothing to send).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram

from daemon.clock import Clock
from daemon.config import Config
from daemon.config.alerting import time_interval_map
from daemon.dispatch.alert import Alert, received, validate
from daemon.dispatch.alerts import AlertStore, Marker
from daemon.dispatch.dispatcher import Dispatcher, Flush, Settle
from daemon.dispatch.inhibit import InhibitRule, Inhibitor, Muter
from daemon.dispatch.route import Route
from daemon.dispatch.silence import DEFAULT_RETENTION, Silencer, Silences
from daemon.notify.escalation import Escalator
from daemon.notify.escalation import attach as attach_escalation
from daemon.notify.nflog import Entry, NotificationLog, ReceiverKey
from daemon.notify.notification import DeliveryError, Integration, Notification
from daemon.notify.failures import DeliveryFailures
from daemon.notify.outbox import Outbox, OutboxEntry
from daemon.store import StateStore
from daemon.tsdb.labels import Labels

if TYPE_CHECKING:
    from daemon.rules.sink import AlertQueue, OutgoingAlert

DEFAULT_RESOLVE_TIMEOUT = 300.0

DELIVERY_DEADLINES: Mapping[str, float] = {
    "pagerduty": 600.0,
    "email": 600.0,
    "slack": 600.0,
    "webhook": 600.0,
    "console": 10.0,
}
"""How long transient failures of each integration are retried (seconds from the first attempt)."""
DEFAULT_DELIVERY_DEADLINE = 600.0
RECOVERY_MIN_DEADLINE = 60.0
"""At least this long to deliver a notification found in the outbox at start, however late it is."""

FailureHook = Callable[[ReceiverKey, Notification, str], None]
SuccessHook = Callable[[ReceiverKey], None]

log = structlog.get_logger("alertd.notify")


class NotifyError(Exception):
    """A stage failed for this flush (the flush will be tried again at the next group interval)."""


class Interval(Protocol):
    """A named time interval (``daemon.dispatch.timeinterval.NamedTimeInterval`` is one)."""

    def contains(self, t: float) -> bool: ...


# -- retry policy ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Retry:
    """How delivery attempts are spaced, as an immutable value (after urllib3's ``Retry``).

    The wait before attempt *n+1* is ``initial * multiplier**(n-1)``, at most ``max_backoff``,
    spread by ``± jitter`` of itself (the defaults are those of the backoff Alertmanager uses:
    0.5 s, x1.5, 60 s, ±50 %). A ``retry_after`` from the peer is a floor. ``total`` bounds the
    retries (None: until the deadline). ``increment`` returns the policy after one more failure.
    """

    DEFAULT_INITIAL: ClassVar[float] = 0.5
    DEFAULT_MULTIPLIER: ClassVar[float] = 1.5
    DEFAULT_MAX_BACKOFF: ClassVar[float] = 60.0
    DEFAULT_JITTER: ClassVar[float] = 0.5

    initial: float = DEFAULT_INITIAL
    multiplier: float = DEFAULT_MULTIPLIER
    max_backoff: float = DEFAULT_MAX_BACKOFF
    jitter: float = DEFAULT_JITTER
    total: int | None = None
    failures: int = 0
    last_error: str = ""

    def increment(self, error: BaseException | str = "") -> Retry:
        """The policy after one more failed attempt."""
        return replace(self, failures=self.failures + 1, last_error=str(error))

    def is_exhausted(self) -> bool:
        """Whether no attempt is left (``total`` retries made)."""
        return self.total is not None and self.failures > self.total

    def backoff(self, rand: float = 0.5) -> float:
        """The wait before the next attempt, for a uniform random number ``rand`` in [0, 1)."""
        if self.failures == 0:
            return 0.0
        base = min(self.max_backoff, self.initial * self.multiplier ** (self.failures - 1))
        return max(0.0, base * (1.0 + self.jitter * (2.0 * rand - 1.0)))

    def wait(self, retry_after: float | None, rand: float = 0.5) -> float:
        """The wait before the next attempt, honouring a peer's ``Retry-After``."""
        return max(self.backoff(rand), retry_after or 0.0)


# -- metrics --------------------------------------------------------------------------------------


class NotifyMetrics:
    """The pipeline's counters, registered once per registry (keep one for the daemon's life)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry if registry is not None else CollectorRegistry()
        labels = ["integration"]
        self.notifications = Counter(
            "alertd_notifications", "Notifications attempted (retries not counted), by integration.", labels, registry=r
        )
        self.failed = Counter(
            "alertd_notifications_failed", "Notifications that failed after their retries, by integration.", labels, registry=r
        )
        self.requests = Counter(
            "alertd_notification_requests", "Delivery attempts, retries included, by integration.", labels, registry=r
        )
        self.requests_failed = Counter(
            "alertd_notification_requests_failed", "Delivery attempts that failed, by integration.", labels, registry=r
        )
        self.latency = Histogram(
            "alertd_notification_latency_seconds",
            "Time one delivery attempt took, by integration.",
            labels,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30),
            registry=r,
        )


# -- stages ---------------------------------------------------------------------------------------


@dataclass
class Context:
    """What travels with the alerts through the stages of one flush (one per integration branch)."""

    flush: Flush
    external_url: str = ""
    firing: frozenset[str] = frozenset()
    resolved: frozenset[str] = frozenset()

    def branch(self) -> Context:
        return replace(self)


class Stage(Protocol):
    """One step: returns the alerts to pass on (empty: nothing more to do); raises ``NotifyError``."""

    async def exec(self, ctx: Context, alerts: list[Alert]) -> list[Alert]: ...


@dataclass
class MultiStage:
    """Stages in sequence; stops as soon as no alert is left."""

    stages: Sequence[Stage]

    async def exec(self, ctx: Context, alerts: list[Alert]) -> list[Alert]:
        for stage in self.stages:
            if not alerts:
                return []
            alerts = await stage.exec(ctx, alerts)
        return alerts


@dataclass
class FanoutStage:
    """Branches run concurrently, each with its own context; fails if any branch failed (after
    all have finished, so that one failure never cuts another branch short)."""

    branches: Sequence[Stage]

    async def exec(self, ctx: Context, alerts: list[Alert]) -> list[Alert]:
        results = await asyncio.gather(
            *(branch.exec(ctx.branch(), list(alerts)) for branch in self.branches), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        for error in errors:
            if not isinstance(error, Exception):
                raise error  # cancellation and the like go up unchanged
        if errors:
            raise NotifyError("; ".join(str(e) for e in errors))
        return alerts


@dataclass
class MuteStage:
    """Drops the alerts a ``Muter`` (inhibitor, silencer) mutes."""

    muter: Muter

    async def exec(self, ctx: Context, alerts: list[Alert]) -> list[Alert]:
        return [a for a in alerts if not self.muter.mutes(a.labels)]


@dataclass
class TimeMuteStage:
    """Drops every alert while the flush time is in one of the route's ``mute_time_intervals``."""

    intervals: Mapping[str, Interval]

    async def exec(self, ctx: Context, alerts: list[Alert]) -> list[Alert]:
        names = ctx.flush.mute_time_intervals
        if any(name in self.intervals and self.intervals[name].contains(ctx.flush.now) for name in names):
            log.debug("notification_muted_by_time", group=ctx.flush.group_key, intervals=list(names))
            return []
        return alerts


@dataclass
class TimeActiveStage:
    """Drops every alert while the route has ``active_time_intervals`` and the flush time is in none."""

    intervals: Mapping[str, Interval]

    async def exec(self, ctx: Context, alerts: list[Alert]) -> list[Alert]:
        names = ctx.flush.active_time_intervals
        if not names:
            return alerts
        if any(name in self.intervals and self.intervals[name].contains(ctx.flush.now) for name in names):
            return alerts
        log.debug("notification_outside_active_time", group=ctx.flush.group_key, intervals=list(names))
        return []


@dataclass
class DedupStage:
    """Passes the alerts on only when the integration needs to hear about the group now, as
    Alertmanager's ``DedupStage.needsUpdate`` decides from the notification log entry:

    never notified: only if something fires; something fires that was not firing last time:
    yes; nothing fires any more: only if the last notification had firing alerts (this is
    sent even without ``send_resolved``, to clear the log); something newly resolved and the
    integration sends resolved: yes; otherwise only once ``repeat_interval`` has passed.
    """

    nflog: NotificationLog
    receiver: ReceiverKey
    send_resolved: bool
    clock: Clock
    outbox: Outbox | None = None

    async def exec(self, ctx: Context, alerts: list[Alert]) -> list[Alert]:
        if self.outbox is not None:
            await self.outbox.settled(ctx.flush.group_key, self.receiver)
        now = ctx.flush.now
        ctx.firing = frozenset(a.fingerprint for a in alerts if not a.resolved_at(now))
        ctx.resolved = frozenset(a.fingerprint for a in alerts if a.resolved_at(now))
        entry = self.nflog.query(ctx.flush.group_key, self.receiver)
        if self.needs_update(entry, ctx.firing, ctx.resolved, ctx.flush.repeat_interval):
            return alerts
        return []

    def needs_update(self, entry: Entry | None, firing: frozenset[str], resolved: frozenset[str], repeat: float) -> bool:
        if entry is None:
            return bool(firing)
        if not entry.is_firing_subset(firing):
            return True
        if not firing:
            return bool(entry.firing)
        if self.send_resolved and not entry.is_resolved_subset(resolved):
            return True
        return entry.timestamp < self.clock.time() - repeat


@dataclass
class RetryStage:
    """Delivers the notification to one integration, retrying until the flush's deadline.

    Without ``send_resolved``, resolved alerts are left out, and a flush with nothing firing
    counts as delivered without calling the integration (so the log still records it).
    Each attempt is cut off at the deadline; a ``DeliveryError`` that is not retryable ends
    the attempts at once. Every failed attempt is logged (once per distinct error) with the
    group and the integration.

    With an ``outbox`` (and ``nflog``), the notification is written to it before the first
    attempt and removed when the integration accepted it, together with its notification log
    entry; ``deadline`` (seconds, when set) lets transient failures be retried that long even
    past the flush's deadline. ``on_failure`` hears of a notification given up,
    ``on_success`` of one delivered.
    """

    integration: Integration
    receiver: ReceiverKey
    retry: Retry
    clock: Clock
    metrics: NotifyMetrics
    rand: Callable[[], float] = random.random
    outbox: Outbox | None = None
    nflog: NotificationLog | None = None
    deadline: float | None = None
    on_failure: FailureHook | None = None
    on_success: SuccessHook | None = None

    @property
    def label(self) -> str:
        return self.integration.name

    async def exec(self, ctx: Context, alerts: list[Alert]) -> list[Alert]:
        self.metrics.notifications.labels(self.label).inc()
        try:
            return await self._deliver(ctx, alerts)
        except NotifyError as exc:
            self.metrics.failed.labels(self.label).inc()
            log.error(
                "notify_failed",
                group=ctx.flush.group_key,
                receiver=self.receiver.receiver,
                integration=f"{self.integration.name}[{self.integration.index}]",
                error=str(exc),
            )
            raise

    async def _deliver(self, ctx: Context, alerts: list[Alert]) -> list[Alert]:
        flush = ctx.flush
        if self.integration.send_resolved:
            sent = alerts
        else:
            if not ctx.firing:
                return alerts
            sent = [a for a in alerts if not a.resolved_at(flush.now)]
        firing = [a for a in sent if not a.resolved_at(flush.now)]
        resolved = [a for a in sent if a.resolved_at(flush.now)]
        notification = Notification(
            receiver=flush.receiver,
            group_key=flush.group_key,
            group_labels=dict(flush.group_labels),
            alerts=tuple(firing + resolved),
            external_url=ctx.external_url,
            now=flush.now,
        )
        deadline = flush.deadline
        if self.deadline is not None:
            deadline = max(deadline, self.clock.monotonic() + self.deadline)
        entry: OutboxEntry | None = None
        if self.outbox is not None:
            now = self.clock.time()
            entry = OutboxEntry(
                self.receiver,
                notification,
                ctx.firing,
                ctx.resolved,
                created_at=now,
                deadline=now + deadline - self.clock.monotonic(),
                log_expiry=2 * flush.repeat_interval,
            )
            self.outbox.put(entry)
        await self.deliver(notification, entry, deadline)
        return alerts

    async def deliver(self, notification: Notification, entry: OutboxEntry | None, deadline: float) -> None:
        """``send``, then settle ``entry`` (the notification's place in the outbox, if any) and
        tell ``on_success`` or ``on_failure``; raises ``NotifyError`` when given up."""
        try:
            await self.send(notification, deadline)
        except NotifyError as exc:
            if entry is not None and self.outbox is not None:
                self.outbox.remove(entry)
            if self.on_failure is not None:
                self.on_failure(self.receiver, notification, str(exc))
            raise
        if entry is not None:
            self.accepted(entry)
        if self.on_success is not None:
            self.on_success(self.receiver)

    def accepted(self, entry: OutboxEntry) -> None:
        """Record that ``entry`` was accepted: notification log entry and outbox, in one transaction."""
        assert self.outbox is not None
        with self.outbox.transaction():
            if self.nflog is not None:
                self.nflog.log(entry.receiver, entry.notification.group_key, entry.firing, entry.resolved, expiry=entry.log_expiry)
            self.outbox.remove(entry)

    async def send(self, notification: Notification, deadline: float) -> None:
        """Attempt delivery until it succeeds or ``deadline`` (the clock's ``monotonic()``);
        raises ``NotifyError`` when given up."""
        name = f"{self.receiver.receiver}/{self.integration.name}[{self.integration.index}]"
        group_key = notification.group_key
        policy = self.retry
        attempts = 0
        logged = ""
        while True:
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                raise NotifyError(f"{name}: notify retry canceled after {attempts} attempts: {policy.last_error or 'deadline'}")
            attempts += 1
            started = self.clock.monotonic()
            try:
                await self._attempt(notification, remaining)
            except DeliveryError as exc:
                self.metrics.requests.labels(self.label).inc()
                self.metrics.requests_failed.labels(self.label).inc()
                self.metrics.latency.labels(self.label).observe(self.clock.monotonic() - started)
                if not exc.retryable:
                    raise NotifyError(f"{name}: notify retry canceled due to unrecoverable error after {attempts} attempts: {exc}") from None
                policy = policy.increment(exc)
                if str(exc) != logged:
                    logged = str(exc)
                    log.warning(
                        "notify_attempt_failed",
                        group=group_key,
                        receiver=self.receiver.receiver,
                        integration=f"{self.integration.name}[{self.integration.index}]",
                        attempts=attempts,
                        error=str(exc),
                    )
                if policy.is_exhausted():
                    raise NotifyError(f"{name}: notify retry canceled after {attempts} attempts: {exc}") from None
                wait = policy.wait(exc.retry_after, self.rand())
                if self.clock.monotonic() + wait >= deadline:
                    raise NotifyError(
                        f"{name}: notify retry canceled after {attempts} attempts (next attempt would be after the deadline): {exc}"
                    ) from None
                await self.clock.sleep(wait)
            else:
                self.metrics.requests.labels(self.label).inc()
                self.metrics.latency.labels(self.label).observe(self.clock.monotonic() - started)
                log.info("notify_success", group=group_key, integration=name, attempts=attempts)
                return

    async def _attempt(self, notification: Notification, remaining: float) -> None:
        # The attempt is cut off on the injected clock, so a fake clock can time it out too.
        attempt = asyncio.ensure_future(self.integration.notify(notification))
        timer = asyncio.ensure_future(self.clock.sleep(remaining))
        try:
            await asyncio.wait({attempt, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        if not attempt.done():
            attempt.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await attempt
            raise DeliveryError("deadline reached during the attempt", retryable=False)
        error = attempt.exception()
        if error is None:
            return
        if isinstance(error, DeliveryError):
            raise error
        log.error(
            "integration_crashed",
            integration=f"{self.integration.name}[{self.integration.index}]",
            error=f"{type(error).__name__}: {error}",
            exc_info=error,
        )
        raise DeliveryError(f"{type(error).__name__}: {error}", retryable=False)


@dataclass
class SetNotifiesStage:
    """Records in the notification log what the integration was told (the fingerprints dedup saw)."""

    nflog: NotificationLog
    receiver: ReceiverKey

    async def exec(self, ctx: Context, alerts: list[Alert]) -> list[Alert]:
        self.nflog.log(self.receiver, ctx.flush.group_key, ctx.firing, ctx.resolved, expiry=2 * ctx.flush.repeat_interval)
        return alerts


# -- the pipeline ---------------------------------------------------------------------------------


@dataclass
class Pipeline:
    """Sends flushes to their receiver's integrations; call it with a ``Flush`` (the dispatcher's
    ``notify``). Returns True when the flush needs no retry (sent, deduplicated, or muted).

    ``muters`` are applied in order before the time intervals except the last, the silencer,
    which comes after them (Alertmanager's order: inhibition, time intervals, silences).

    Delivery guarantees (all optional, the ``Notifier`` sets them): ``outbox`` keeps every
    notification until accepted (``recover`` sends what a previous run left there);
    ``deadlines`` are the retry deadlines by integration name (else the flush's deadline);
    ``fallbacks`` name, by receiver, the receivers that get a notification its integrations
    gave up on; ``on_failure``/``on_success`` hear about each given-up and delivered one.
    """

    integrations_by_receiver: Mapping[str, Sequence[Integration]]
    nflog: NotificationLog
    clock: Clock
    inhibitor: Muter | None = None
    silencer: Muter | None = None
    time_intervals: Mapping[str, Interval] = field(default_factory=dict)
    metrics: NotifyMetrics = field(default_factory=NotifyMetrics)
    external_url: str = ""
    retry: Retry = field(default_factory=Retry)
    rand: Callable[[], float] = random.random
    outbox: Outbox | None = None
    deadlines: Mapping[str, float] | None = None
    fallbacks: Mapping[str, Sequence[str]] = field(default_factory=dict)
    on_failure: FailureHook | None = None
    on_success: SuccessHook | None = None

    def __post_init__(self) -> None:
        self._background: set[asyncio.Task[None]] = set()
        self._stages: dict[str, Stage] = {
            receiver: self._receiver_stage(receiver, integrations)
            for receiver, integrations in self.integrations_by_receiver.items()
        }

    def _receiver_stage(self, receiver: str, integrations: Sequence[Integration]) -> Stage:
        stages: list[Stage] = []
        if self.inhibitor is not None:
            stages.append(MuteStage(self.inhibitor))
        stages.append(TimeActiveStage(self.time_intervals))
        stages.append(TimeMuteStage(self.time_intervals))
        if self.silencer is not None:
            stages.append(MuteStage(self.silencer))
        branches: list[Stage] = []
        for integration in integrations:
            key = ReceiverKey(receiver, integration.name, integration.index)
            branches.append(
                MultiStage(
                    [
                        DedupStage(self.nflog, key, integration.send_resolved, self.clock, self.outbox),
                        self._retry_stage(integration, key, fallback_for=""),
                        SetNotifiesStage(self.nflog, key),
                    ]
                )
            )
        stages.append(FanoutStage(branches))
        return MultiStage(stages)

    def _retry_stage(self, integration: Integration, key: ReceiverKey, *, fallback_for: str) -> RetryStage:
        def failed(receiver: ReceiverKey, notification: Notification, error: str) -> None:
            if self.on_failure is not None:
                self.on_failure(receiver, notification, error)
            if not fallback_for:
                self._fall_back(receiver.receiver, notification)

        deadline = None
        if self.deadlines is not None:
            deadline = self.deadlines.get(integration.name, DEFAULT_DELIVERY_DEADLINE)
        return RetryStage(
            integration,
            key,
            self.retry,
            self.clock,
            self.metrics,
            self.rand,
            outbox=self.outbox,
            nflog=self.nflog,
            deadline=deadline,
            on_failure=failed,
            on_success=self.on_success,
        )

    def _integration(self, key: ReceiverKey) -> Integration | None:
        for integration in self.integrations_by_receiver.get(key.receiver, ()):
            if integration.name == key.integration and integration.index == key.index:
                return integration
        return None

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _fall_back(self, receiver: str, notification: Notification) -> None:
        """Send a notification that ``receiver`` could not deliver to its fallback receivers."""
        for name in self.fallbacks.get(receiver, ()):
            integrations = self.integrations_by_receiver.get(name, ())
            log.warning("notify_fallback", group=notification.group_key, receiver=receiver, fallback=name)
            for integration in integrations:
                key = ReceiverKey(name, integration.name, integration.index)
                self._spawn(self._deliver_to(integration, key, notification, receiver), name=f"fallback {key}")

    async def _deliver_to(self, integration: Integration, key: ReceiverKey, notification: Notification, fallback_for: str) -> None:
        stage = self._retry_stage(integration, key, fallback_for=fallback_for)
        sent = replace(notification, receiver=key.receiver)
        firing = frozenset(a.fingerprint for a in sent.firing)
        resolved = frozenset(a.fingerprint for a in sent.resolved)
        deadline = self.clock.monotonic() + (stage.deadline or DEFAULT_DELIVERY_DEADLINE)
        entry = None
        if self.outbox is not None:
            now = self.clock.time()
            entry = OutboxEntry(key, sent, firing, resolved, now, now + deadline - self.clock.monotonic(), fallback_for=fallback_for)
            self.outbox.put(entry)
        await self._send_entry(stage, entry, sent, deadline)

    async def _send_entry(self, stage: RetryStage, entry: OutboxEntry | None, notification: Notification, deadline: float) -> None:
        self.metrics.notifications.labels(stage.label).inc()
        try:
            await stage.deliver(notification, entry, deadline)
        except NotifyError as exc:
            self.metrics.failed.labels(stage.label).inc()
            log.error("notify_failed", group=notification.group_key, receiver=stage.receiver.receiver, error=str(exc))

    def recover(self) -> int:
        """Start sending again what the outbox holds from a previous run; returns how many.

        A group flushing meanwhile waits for the delivery of its own entry (``Outbox.settled``).
        """
        if self.outbox is None:
            return 0
        started = 0
        for entry in self.outbox.pending():
            integration = self._integration(entry.receiver)
            if integration is None:
                log.warning("outbox_entry_dropped", group=entry.notification.group_key, receiver=str(entry.receiver),
                            reason="the integration is no longer configured")
                self.outbox.remove(entry)
                continue
            stage = self._retry_stage(integration, entry.receiver, fallback_for=entry.fallback_for)
            remaining = max(entry.deadline - self.clock.time(), RECOVERY_MIN_DEADLINE)
            deadline = self.clock.monotonic() + remaining
            log.info("outbox_resend", group=entry.notification.group_key, receiver=str(entry.receiver))
            task = self._spawn(self._send_entry(stage, entry, entry.notification, deadline), name=f"outbox {entry.key}")
            self.outbox.track(entry, task)
            started += 1
        return started

    async def close(self) -> None:
        """Cancel fallback and outbox deliveries in progress (their outbox entries stay)."""
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def __call__(self, flush: Flush) -> bool:
        stage = self._stages.get(flush.receiver)
        if stage is None:
            log.error("notify_unknown_receiver", group=flush.group_key, receiver=flush.receiver)
            return False
        try:
            await stage.exec(Context(flush, self.external_url), list(flush.alerts))
        except NotifyError:
            return False  # logged per integration; the group tries again at its next interval
        return True


# -- the whole notification side, built from the config -------------------------------------------


class Notifier:
    """Alerts in, notifications out: the alert set, silences, inhibition, the notification log,
    the route tree with its aggregation groups, and the pipeline, built from the config.

    Wiring (the daemon does this)::

        notifier = Notifier(config, state_store, clock, daemon_metrics.registry, integrations_by_receiver)
        await notifier.start()
        ... notifier.receive(batch)            # OutgoingAlert batches of the rule engine
        ... await notifier.reload(new_config, new_integrations_by_receiver)
        await notifier.stop()

    ``config`` is the loaded ``Config`` (its ``route``, ``inhibit_rules``, ``time_intervals``,
    ``mute_time_intervals``, ``receivers``, ``global`` and ``web``; without a ``route`` alerts
    are kept and listed but never notified). ``integrations_by_receiver`` maps each receiver name to its
    integrations (``build_integrations``). Silences and the notification log are read from and
    written to ``store``, so they survive restarts; alerts, groups and marks live in memory
    and are kept across ``reload``. ``metrics`` is the registry the pipeline's counters go in
    (register one ``Notifier`` per registry). Routes that do not set ``group_wait`` flush new
    groups once they have settled (``settle``, else derived from the config's scrape and
    evaluation intervals and ``evaluation_intervals()``, the rule groups' own intervals).
    """

    def __init__(
        self,
        config: Config,
        store: StateStore,
        clock: Clock,
        metrics: CollectorRegistry | NotifyMetrics | None,
        integrations_by_receiver: Mapping[str, Sequence[Integration]],
        *,
        external_url: str = "",
        resolve_timeout: float | None = None,
        retention: float = DEFAULT_RETENTION,
        retry: Retry | None = None,
        new_silence_id: Callable[[], str] | None = None,
        settle: Settle | None = None,
        evaluation_intervals: Callable[[], Iterable[float]] | None = None,
        deadlines: Mapping[str, float] | None = DELIVERY_DEADLINES,
    ) -> None:
        self.clock = clock
        self.deadlines = deadlines
        self._explicit_settle = settle
        self._evaluation_intervals = evaluation_intervals
        self.started_at = clock.time()
        self.metrics = metrics if isinstance(metrics, NotifyMetrics) else NotifyMetrics(metrics)
        self.marker = Marker()
        self.alerts = AlertStore(clock, self.marker)
        extra = {"new_id": new_silence_id} if new_silence_id is not None else {}
        self.silences = Silences(store, clock, retention=retention, **extra)
        self.silencer = Silencer(self.silences, self.marker)
        self.nflog = NotificationLog(store, clock, retention=retention)
        self.outbox = Outbox(store, clock)
        self.failures = DeliveryFailures(self.alerts, clock)
        self.external_url = external_url
        self.retry = retry if retry is not None else Retry()
        self._explicit_resolve_timeout = resolve_timeout
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self.state_store = store
        self.escalator: Escalator | None = None
        self._configure(config, integrations_by_receiver)

    def _configure(self, config: Config, integrations_by_receiver: Mapping[str, Sequence[Integration]]) -> None:
        self.config = config
        self.resolve_timeout = (
            self._explicit_resolve_timeout
            if self._explicit_resolve_timeout is not None
            else config.global_.resolve_timeout or DEFAULT_RESOLVE_TIMEOUT
        )
        self.receiver_names = [r.name for r in config.receivers]
        self.route = Route.build(config.route) if config.route is not None else None
        self.time_intervals = time_interval_map(config.time_intervals, config.mute_time_intervals)
        rules = [InhibitRule(rule.source(), rule.target(), frozenset(rule.equal)) for rule in config.inhibit_rules]
        self.inhibitor = Inhibitor(rules, self.alerts, self.clock, self.marker)
        self.pipeline = Pipeline(
            integrations_by_receiver=integrations_by_receiver,
            nflog=self.nflog,
            clock=self.clock,
            inhibitor=self.inhibitor,
            silencer=self.silencer,
            time_intervals=self.time_intervals,
            metrics=self.metrics,
            external_url=self.external_url or config.web.external_url or config.global_.external_url or "",
            retry=self.retry,
            outbox=self.outbox,
            deadlines=self.deadlines,
            fallbacks={r.name: r.fallback_receivers for r in config.receivers},
            on_failure=self.failures.failed,
            on_success=self.failures.delivered,
        )
        self.failures.labels = dict(config.global_.external_labels)
        self.settle = self._explicit_settle or settle_for(
            config, self._evaluation_intervals() if self._evaluation_intervals is not None else ()
        )
        self.dispatcher = (
            Dispatcher(self.route, self.alerts, self.pipeline, self.clock, settle=self.settle) if self.route else None
        )
        self.escalator = attach_escalation(self)

    async def start(self) -> None:
        """Start the aggregation groups' timers and the garbage collection of alerts, silences and log."""
        if self._running:
            return
        self._running = True
        self.pipeline.recover()  # before the groups flush: they wait for their own entries
        if self.dispatcher is not None:
            await self.dispatcher.start()
        for name, loop in (("alerts", self.alerts.run_gc()), ("silences", self.silences.run_gc()), ("nflog", self.nflog.run_gc())):
            self._tasks.append(asyncio.create_task(loop, name=f"gc {name}"))
        history = self.escalator.listener if self.escalator is not None else None
        if history is not None and hasattr(history, "run_gc"):  # the incident history's 90-day retention
            self._tasks.append(asyncio.create_task(history.run_gc(), name="gc incidents"))

    async def stop(self) -> None:
        """Stop timers; a notification in progress is cancelled."""
        self._running = False
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        await self.pipeline.close()
        await self.outbox.stop()
        if self.escalator is not None:
            await self.escalator.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def reload(self, config: Config, integrations_by_receiver: Mapping[str, Sequence[Integration]]) -> None:
        """Apply a new config: routes, groups, inhibition and integrations are rebuilt; alerts,
        silences and the notification log are kept (new groups do not notify again what the log
        says was sent)."""
        running = self._running
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        self.inhibitor.close()
        self._configure(config, integrations_by_receiver)
        if running and self.dispatcher is not None:
            await self.dispatcher.start()

    def receive(self, batch: Iterable[OutgoingAlert]) -> None:
        """Take alerts from the rule engine."""
        now = self.clock.time()
        alerts = []
        for outgoing in batch:
            alert = received(
                outgoing.labels,
                outgoing.annotations,
                outgoing.starts_at,
                outgoing.ends_at,
                outgoing.generator_url,
                now=now,
                resolve_timeout=self.resolve_timeout,
            )
            problem = validate(alert)
            if problem:
                log.warning("alert_invalid", labels=dict(outgoing.labels), error=problem)
                continue
            alerts.append(alert)
        self.alerts.put(*alerts)

    async def consume(self, queue: AlertQueue) -> None:
        """Feed the batches of an ``AlertQueue`` into ``receive``, forever."""
        while True:
            self.receive(await queue.get())

    def receivers_of(self, labels: Labels) -> list[str]:
        """The receivers an alert with ``labels`` is routed to, in route order."""
        if self.route is None:
            return []
        return [route.receiver for route in self.route.match(labels)]

    def config_yaml(self) -> str:
        """The alerting part of the config as YAML, secrets hidden (``/api/v2/status``'s ``original``)."""
        import yaml

        config = self.config
        parts: dict[str, Any] = {}
        if config.route is not None:
            parts["route"] = config.route.model_dump(mode="json", by_alias=True, exclude_none=True)
        lists = (
            ("receivers", config.receivers),
            ("inhibit_rules", config.inhibit_rules),
            ("time_intervals", config.time_intervals),
            ("mute_time_intervals", config.mute_time_intervals),
        )
        for key, values in lists:
            if values:
                parts[key] = [v.model_dump(mode="json", by_alias=True, exclude_none=True) for v in values]
        return yaml.safe_dump(parts, sort_keys=False, allow_unicode=True) if parts else ""


def settle_for(config: Config, evaluation_intervals: Iterable[float] = ()) -> Settle:
    """The settle times (see ``Settle``) for the config's cadence: its longest scrape interval
    (jobs and ``global``) and its longest evaluation interval (``global``, and the rule groups'
    own ``evaluation_intervals`` when the caller knows them)."""
    glob = config.global_
    # The jobs' intervals are the ones in use; ``global`` counts only without jobs.
    scrape = [float(job.scrape_interval) for job in config.scrape_configs if job.scrape_interval]
    scrape = scrape or [float(glob.scrape_interval or 60.0)]
    evaluation = [float(glob.evaluation_interval or 60.0), *evaluation_intervals]
    return Settle.for_cadence(max(scrape), max(evaluation))
