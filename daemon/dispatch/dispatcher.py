"""Aggregation groups: alerts sorted by route and group labels, flushed on Alertmanager's timers.

For every alert stored, each route it matches (``Route.match``) puts it in the group of that
route keyed by the alert's ``group_by`` labels, creating the group if needed. A group flushes:

- first ``group_wait`` after it was created, or at once if one of its alerts started more than
  ``group_wait`` ago (a group re-created after a restart does not wait again); when the route
  does not set ``group_wait`` and the dispatcher has a ``Settle``, first ``settle.first`` after
  it was created, then once more ``settle.catch_up`` after it was created (see ``Settle``);
- then every ``group_interval``; whether a flush notifies (something new, something resolved,
  or ``repeat_interval`` passed) is the notification pipeline's decision (dedup stage);
- after a flush whose notification succeeded, resolved alerts that were not updated meanwhile
  leave the group; empty groups are removed every 30 s.

A flush hands a ``Flush`` to the ``notify`` callable and learns whether it succeeded; it must
finish within ``max(group_interval, 10 s)`` (its ``deadline``). Everything runs on the injected
clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

import structlog

from daemon.clock import Clock, every
from daemon.dispatch.alert import Alert
from daemon.dispatch.alerts import AlertStore
from daemon.tsdb.labels import Labels

MIN_TIMEOUT = 10.0
MAINTENANCE_INTERVAL = 30.0

log = structlog.get_logger("alertd.dispatch")


class RouteNode(Protocol):
    """What the dispatcher needs of a route (``daemon.dispatch.route.Route`` is one)."""

    @property
    def receiver(self) -> str: ...

    @property
    def group_wait(self) -> float: ...

    @property
    def group_wait_set(self) -> bool: ...

    @property
    def group_interval(self) -> float: ...

    @property
    def repeat_interval(self) -> float: ...

    mute_time_intervals: tuple[str, ...]
    active_time_intervals: tuple[str, ...]

    def key(self) -> str: ...

    def match(self, labels: Labels) -> list[RouteNode]: ...

    def group_labels(self, labels: Labels) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class Flush:
    """One flush of an aggregation group, as the notification pipeline receives it.

    ``alerts`` are every alert of the group in Alertmanager's order (by ``job``, ``instance``,
    then label set); a firing one has ``ends_at`` 0 (as Alertmanager clears it), so that it
    cannot turn resolved while the notification is on its way. ``now`` is the time of the
    flush; ``deadline`` is the clock's ``monotonic()`` by which the pipeline must give up.
    """

    receiver: str
    group_key: str
    group_labels: Mapping[str, str]
    alerts: tuple[Alert, ...]
    now: float
    deadline: float
    repeat_interval: float
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()

    @property
    def firing(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if not a.resolved_at(self.now))

    @property
    def resolved(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.resolved_at(self.now))


@dataclass(frozen=True)
class Settle:
    """When a new group is flushed on a route that does not set ``group_wait``.

    ``first``: after the group was created, the time the rest of the evaluation round that
    created it takes to reach the dispatcher (the alerts of one rule group evaluation arrive
    together; other groups evaluated at the same instant follow within this). ``catch_up``:
    after the group was created, one more flush once every target that failed together with
    the first one has been scraped and evaluated: scrapes are spread over one scrape interval
    and evaluated at most one evaluation interval later, so ``scrape_interval +
    evaluation_interval`` (``for_cadence``). The dedup stage keeps that flush silent when no
    alert joined. After it, the group flushes every ``group_interval`` as usual.
    """

    first: float = 1.0
    catch_up: float = 0.0

    @classmethod
    def for_cadence(cls, scrape_interval: float, evaluation_interval: float, first: float = 1.0) -> Settle:
        """The settle times for targets scraped every ``scrape_interval`` and rules evaluated
        every ``evaluation_interval`` (the longest of each in the config)."""
        return cls(first=first, catch_up=max(first, scrape_interval + evaluation_interval))


Notify = Callable[[Flush], Awaitable[bool]]
"""Sends a flush through the pipeline; True when every integration succeeded (or had nothing to do)."""


def alert_order(alert: Alert) -> tuple[object, ...]:
    """Alertmanager's ``AlertSlice`` order: by ``job``, then ``instance`` (alerts without the label
    last), then the label set."""
    key: list[object] = []
    for name in ("job", "instance"):
        value = alert.labels.get(name, None)  # type: ignore[arg-type]
        key.append((1, "") if value is None else (0, value))
    key.append(tuple(alert.labels))
    return tuple(key)


def format_label_set(labels: Mapping[str, str]) -> str:
    """Go's ``model.LabelSet.String()``: ``{a="b", c="d"}`` sorted by name."""
    return "{" + ", ".join(f"{name}={_go_quote(labels[name])}" for name in sorted(labels)) + "}"


@dataclass
class AggregationGroup:
    """The alerts of one route with the same group labels, and the timer of their next flush."""

    route: RouteNode
    labels: Mapping[str, str]
    key: str
    alerts: dict[str, Alert] = field(default_factory=dict)
    has_flushed: bool = False
    next_flush: float = 0.0
    """The clock's ``monotonic()`` of the next flush."""
    catch_up_at: float | None = None
    """The clock's ``monotonic()`` of the settle catch-up flush, while it is still to come."""
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    wake: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def receiver(self) -> str:
        return self.route.receiver

    def sorted_alerts(self) -> list[Alert]:
        return sorted(self.alerts.values(), key=alert_order)


@dataclass(frozen=True)
class GroupView:
    """An aggregation group as the API lists it."""

    labels: Mapping[str, str]
    receiver: str
    alerts: tuple[Alert, ...]
    group_key: str


class Dispatcher:
    """Sorts the alerts of an ``AlertStore`` into aggregation groups and flushes them.

    ``start()`` subscribes to the store (alerts already there are dispatched first) and starts
    the maintenance loop; ``stop()`` cancels every group's timer and unsubscribes. ``timeout``
    maps a group interval to the time a flush may take (Alertmanager: at least 10 s).
    ``settle``: how groups of routes without an explicit ``group_wait`` are flushed (None: after
    the default ``group_wait``, as Alertmanager).
    """

    def __init__(
        self,
        route: RouteNode,
        alerts: AlertStore,
        notify: Notify,
        clock: Clock,
        *,
        timeout: Callable[[float], float] = lambda interval: max(interval, MIN_TIMEOUT),
        maintenance_interval: float = MAINTENANCE_INTERVAL,
        settle: Settle | None = None,
    ) -> None:
        self.route = route
        self.settle = settle
        self._alerts = alerts
        self._notify = notify
        self._clock = clock
        self._timeout = timeout
        self._maintenance_interval = maintenance_interval
        self._groups: dict[tuple[int, str], AggregationGroup] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self._maintenance: asyncio.Task[None] | None = None
        self.on_flush: Callable[[AggregationGroup, Flush, bool], None] | None = None
        """Called after every flush with the group, the flush and whether it succeeded (escalation)."""

    async def start(self) -> None:
        if self._unsubscribe is not None:
            return
        self._unsubscribe = self._alerts.subscribe(self.dispatch)
        self._maintenance = asyncio.create_task(self._maintain(), name="dispatch-maintenance")

    async def stop(self) -> None:
        """Stop every timer; a flush in progress is cancelled."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        tasks = [t for t in [self._maintenance, *(g.task for g in self._groups.values())] if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._maintenance = None
        self._groups.clear()

    # -- alerts in ----------------------------------------------------------------------------

    def dispatch(self, alert: Alert) -> None:
        """Put an alert into the group of every route it matches."""
        for route in self.route.match(alert.labels):
            self._insert(alert, route)

    def _insert(self, alert: Alert, route: RouteNode) -> None:
        group_labels = dict(route.group_labels(alert.labels))
        group_key = f"{route.key()}:{format_label_set(group_labels)}"
        slot = (id(route), group_key)
        group = self._groups.get(slot)
        if group is None:
            group = AggregationGroup(route, group_labels, group_key)
            wait = self._first_wait(route)
            group.next_flush = self._clock.monotonic() + wait
            if wait != route.group_wait and self.settle is not None:
                group.catch_up_at = self._clock.monotonic() + self.settle.catch_up
            self._groups[slot] = group
            group.task = asyncio.get_running_loop().create_task(self._run(group), name=f"group {group_key}")
            log.debug("group_created", group=group_key, receiver=route.receiver)
        group.alerts[alert.fingerprint] = alert
        # An alert that started long ago (a restart, a late sender) need not wait group_wait again.
        if not group.has_flushed and alert.starts_at + self._first_wait(route) < self._clock.time():
            group.next_flush = self._clock.monotonic()
            group.wake.set()

    def _first_wait(self, route: RouteNode) -> float:
        """How long a new group of ``route`` waits before its first flush."""
        if self.settle is None or getattr(route, "group_wait_set", True):
            return route.group_wait
        return self.settle.first

    # -- timers -------------------------------------------------------------------------------

    async def _run(self, group: AggregationGroup) -> None:
        while True:
            delay = group.next_flush - self._clock.monotonic()
            if delay > 0:
                await self._sleep_or_wake(group, delay)
                continue
            now = self._clock.time()
            group.next_flush = self._clock.monotonic() + group.route.group_interval
            if group.catch_up_at is not None:
                if group.catch_up_at > self._clock.monotonic():
                    group.next_flush = min(group.next_flush, group.catch_up_at)
                else:
                    group.catch_up_at = None  # this is the catch-up flush
            group.has_flushed = True
            try:
                await self._flush(group, now)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("flush_failed", group=group.key, receiver=group.receiver)

    async def _sleep_or_wake(self, group: AggregationGroup, delay: float) -> None:
        group.wake.clear()
        sleeper = asyncio.ensure_future(self._clock.sleep(delay))
        waker = asyncio.ensure_future(group.wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()

    async def _flush(self, group: AggregationGroup, now: float) -> None:
        if not group.alerts:
            return
        held = group.sorted_alerts()
        # Firing alerts are sent without their expiry, so they cannot resolve on the way.
        sent = tuple(a if a.resolved_at(now) else replace(a, ends_at=0.0) for a in held)
        flush = Flush(
            receiver=group.receiver,
            group_key=group.key,
            group_labels=dict(group.labels),
            alerts=sent,
            now=now,
            deadline=self._clock.monotonic() + self._timeout(group.route.group_interval),
            repeat_interval=group.route.repeat_interval,
            mute_time_intervals=tuple(group.route.mute_time_intervals),
            active_time_intervals=tuple(group.route.active_time_intervals),
        )
        ok = await self._notify(flush)
        if self.on_flush is not None:
            try:
                self.on_flush(group, flush, ok)
            except Exception:
                log.exception("on_flush_failed", group=group.key)
        if not ok:
            return
        for alert in held:
            if not alert.resolved_at(now):
                continue
            current = group.alerts.get(alert.fingerprint)
            # Only drop it if no newer version arrived while the notification was on its way.
            if current is not None and current.updated_at == alert.updated_at and current.resolved_at(now):
                del group.alerts[alert.fingerprint]

    async def _maintain(self) -> None:
        await every(self._clock, self._maintenance_interval, self.remove_empty_groups)

    def remove_empty_groups(self) -> int:
        """Stop and forget groups without alerts; returns how many."""
        empty = [slot for slot, group in self._groups.items() if not group.alerts]
        for slot in empty:
            group = self._groups.pop(slot)
            if group.task is not None:
                group.task.cancel()
            log.debug("group_removed", group=group.key, receiver=group.receiver)
        return len(empty)

    # -- views --------------------------------------------------------------------------------

    def groups(
        self,
        route_filter: Callable[[RouteNode], bool] | None = None,
        alert_filter: Callable[[Alert, float], bool] | None = None,
    ) -> tuple[list[GroupView], dict[str, list[str]]]:
        """Groups (sorted by labels, then receiver) with the alerts passing ``alert_filter``,
        and the receivers of each alert by fingerprint, as Alertmanager's ``Dispatcher.Groups``."""
        now = self._clock.time()
        views: list[GroupView] = []
        receivers: dict[str, list[str]] = {}
        for group in self._groups.values():
            if route_filter is not None and not route_filter(group.route):
                continue
            kept = [a for a in group.sorted_alerts() if alert_filter is None or alert_filter(a, now)]
            if not kept:
                continue
            for alert in kept:
                receivers.setdefault(alert.fingerprint, []).append(group.receiver)
            views.append(GroupView(dict(group.labels), group.receiver, tuple(kept), group.key))
        views.sort(key=lambda v: (sorted(v.labels.items()), v.receiver))
        for names in receivers.values():
            names.sort()
        return views, receivers

    def is_running(self) -> bool:
        """Whether ``start`` was called and the maintenance loop is alive."""
        return self._maintenance is not None and not self._maintenance.done()

    def group_count(self) -> int:
        return len(self._groups)

    def all_groups(self) -> Iterable[AggregationGroup]:
        return list(self._groups.values())


def _go_quote(text: str) -> str:
    # Go's %q for printable text; control characters as escapes.
    out = ['"']
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)
