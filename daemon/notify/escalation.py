"""Escalation of unacknowledged alert groups, and their acknowledgements.

The dispatcher tells the ``Escalator`` about every flush of every aggregation group
(``observe``). When a group whose route has an escalation policy is first notified with firing
alerts, its escalation starts: each level of the policy is due ``after`` seconds from that
first notification, and sends the group's firing alerts to the level's receivers through the
notification pipeline, under a group key of its own per level and cycle
(``escalation_key``), so that each level is logged, deduplicated and later resolved on its own.

It stops when the group is acknowledged (``acknowledge``) or when a flush finds every alert of
the group resolved; the receivers the escalation reached then get the resolved notification.

Decisions:

- A new alert joining an acknowledged group is notified to the route's receiver as usual, but
  the acknowledgement stays and escalation does not start again: the person who acknowledged
  owns the group until every alert in it resolves. ``unacknowledge`` hands the group back:
  its escalation starts again from level 1 at that moment.
- A level whose delivery failed after the pipeline's retries is logged and counted as done;
  the next level is not held back by a receiver that is down.
- Escalation state (start, levels sent, receivers reached) and acknowledgements are kept in
  the state store (kinds ``escalation`` and ``ack``), written after each level. A restarted
  daemon resumes when the group flushes again: the levels that fell due while it was down are
  sent once each, in order (of a level due in several cycles, only the latest), and the
  notification log keeps a level sent just before a crash from going out twice.

Timers run on the injected clock's wall time (``time()``), since they must survive a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from daemon.clock import Clock
from daemon.config.escalation import EscalationPolicy
from daemon.dispatch.alert import Alert
from daemon.dispatch.dispatcher import MIN_TIMEOUT, Flush
from daemon.store import StateStore

if TYPE_CHECKING:
    from daemon.config import Config
    from daemon.notify.pipeline import Notifier

KIND = "escalation"
ACK_KIND = "ack"
ESCALATION_SEPARATOR = "|escalation:"

log = structlog.get_logger("alertd.escalation")


def escalation_key(group_key: str, policy: str, cycle: int, level: int, restart: int = 0) -> str:
    """The group key under which one level (of one cycle) of a group's escalation is notified;
    ``restart`` counts the times the escalation started again (un-acknowledgements)."""
    again = f"/{restart}" if restart else ""
    return f"{group_key}{ESCALATION_SEPARATOR}{policy}:{cycle + 1}:{level + 1}{again}"


def base_group_key(key: str) -> str:
    """The aggregation group's key for an ``escalation_key`` (any other key is returned as it is)."""
    # Group keys end with the group's label set, "}", so the separator after the last "}" is ours.
    head, sep, _ = key.rpartition("}" + ESCALATION_SEPARATOR)
    return head + "}" if sep else key


class GroupLike(Protocol):
    """What the escalator needs of an aggregation group (``AggregationGroup`` is one)."""

    key: str
    labels: Mapping[str, str]
    alerts: dict[str, Alert]

    @property
    def route(self) -> Any: ...

    @property
    def receiver(self) -> str: ...


@dataclass(frozen=True)
class Ack:
    """An acknowledgement of one aggregation group: who, why, when, from where (api, cli, slack,
    pagerduty), and the firing alerts it covered (fingerprints) with their alert names."""

    id: str
    group_key: str
    receiver: str
    by: str
    comment: str
    at: float
    via: str
    fingerprints: tuple[str, ...]
    alertnames: tuple[str, ...]
    group_labels: Mapping[str, str] = field(default_factory=dict)

    def to_document(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["fingerprints"] = list(self.fingerprints)
        doc["alertnames"] = list(self.alertnames)
        doc["group_labels"] = dict(self.group_labels)
        return doc

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Ack:
        return cls(
            id=str(doc["id"]),
            group_key=str(doc["group_key"]),
            receiver=str(doc.get("receiver", "")),
            by=str(doc["by"]),
            comment=str(doc.get("comment", "")),
            at=float(doc["at"]),
            via=str(doc.get("via", "api")),
            fingerprints=tuple(doc.get("fingerprints", ())),
            alertnames=tuple(doc.get("alertnames", ())),
            group_labels=dict(doc.get("group_labels", {})),
        )


@dataclass
class EscalationState:
    """One group's escalation: when it started, the next step of the policy, whom it reached."""

    group_key: str
    policy: str
    receiver: str
    started_at: float
    next_step: int = 0
    restart: int = 0
    sent: list[tuple[int, int, float]] = field(default_factory=list)
    """(cycle, level, time) of every level sent, in order."""
    reached: list[tuple[str, str]] = field(default_factory=list)
    """(receiver, escalation key) of every notification made, for the resolved notification."""

    def to_document(self) -> dict[str, Any]:
        return {
            "group_key": self.group_key,
            "policy": self.policy,
            "receiver": self.receiver,
            "started_at": self.started_at,
            "next_step": self.next_step,
            "restart": self.restart,
            "sent": [list(s) for s in self.sent],
            "reached": [list(r) for r in self.reached],
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> EscalationState:
        return cls(
            group_key=str(doc["group_key"]),
            policy=str(doc["policy"]),
            receiver=str(doc.get("receiver", "")),
            started_at=float(doc["started_at"]),
            next_step=int(doc.get("next_step", 0)),
            restart=int(doc.get("restart", 0)),
            sent=[(int(c), int(lv), float(t)) for c, lv, t in doc.get("sent", [])],
            reached=[(str(r), str(k)) for r, k in doc.get("reached", [])],
        )


class EscalationListener(Protocol):
    """Told about what escalation does (the incident history is one)."""

    def escalation_started(self, state: EscalationState, alerts: Iterable[Alert]) -> None: ...

    def level_sent(self, state: EscalationState, cycle: int, level: int, receivers: tuple[str, ...], ok: bool) -> None: ...

    def acknowledged(self, ack: Ack) -> None: ...

    def group_resolved(self, group_key: str, at: float) -> None: ...


Send = Callable[[Flush], Awaitable[bool]]


class Escalator:
    """Runs the escalation of every group whose route has a policy; keeps acknowledgements.

    ``send`` is the notification pipeline; ``notified(flush)`` says whether a flush that
    succeeded reached someone with firing alerts (not muted, not deduplicated away) — the
    first such flush starts a group's escalation. ``on_ack`` is called (and awaited in a task)
    after each acknowledgement, to show it where the alert was posted.
    """

    def __init__(
        self,
        store: StateStore,
        clock: Clock,
        policies: Mapping[str, EscalationPolicy],
        send: Send,
        notified: Callable[[Flush], bool],
        *,
        listener: EscalationListener | None = None,
        on_ack: Callable[[Ack, GroupLike | None], Awaitable[None]] | None = None,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._store = store
        self._clock = clock
        self.policies = dict(policies)
        self._send = send
        self._notified = notified
        self.listener = listener
        self.on_ack = on_ack
        self._new_id = new_id
        self._states: dict[str, EscalationState] = {}
        self._acks: dict[str, Ack] = {}
        self._groups: dict[str, GroupLike] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[None]] = set()
        for key, doc in store.load(KIND).items():
            try:
                self._states[key] = EscalationState.from_document(doc)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("escalation_state_unreadable", key=key, error=str(exc))
        for key, doc in store.load(ACK_KIND).items():
            try:
                self._acks[key] = Ack.from_document(doc)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("ack_unreadable", key=key, error=str(exc))

    # -- views --------------------------------------------------------------------------------

    def state(self, group_key: str) -> EscalationState | None:
        return self._states.get(group_key)

    def acks(self) -> list[Ack]:
        """Acknowledgements in force, oldest first."""
        return sorted(self._acks.values(), key=lambda a: (a.at, a.id))

    def group(self, group_key: str) -> GroupLike | None:
        return self._groups.get(group_key)

    # -- the dispatcher's hook ----------------------------------------------------------------

    def observe(self, group: GroupLike, flush: Flush, ok: bool) -> None:
        """Called after every flush of every group (``ok``: the pipeline succeeded)."""
        key = group.key
        self._groups[key] = group
        firing = flush.firing
        state = self._states.get(key)
        if not firing:
            if flush.alerts and (state is not None or key in self._acks):
                self._resolved(key, flush)
            return
        if state is None:
            policy = self.policies.get(getattr(group.route, "escalation", "") or "")
            if policy is None or key in self._acks or not ok or not self._notified(flush):
                return
            state = EscalationState(key, policy.name, group.receiver, flush.now)
            self._states[key] = state
            self._save(state)
            log.info("escalation_started", group=key, policy=policy.name)
            if self.listener is not None:
                self.listener.escalation_started(state, firing)
        self._ensure_running(key)

    def _ensure_running(self, key: str) -> None:
        task = self._tasks.get(key)
        if task is not None and not task.done():
            return
        if key in self._acks or key not in self._states:
            return
        self._tasks[key] = asyncio.get_running_loop().create_task(self._run(key), name=f"escalation {key}")

    # -- timers -------------------------------------------------------------------------------

    async def _run(self, key: str) -> None:
        while True:
            state = self._states.get(key)
            if state is None or key in self._acks:
                return
            policy = self.policies.get(state.policy)
            if policy is None:
                return
            steps = policy.steps()
            if state.next_step >= len(steps):
                return  # every level sent: the state stays until the group resolves or is acknowledged
            now = self._clock.time()
            due = [i for i in range(state.next_step, len(steps)) if state.started_at + steps[i][2] <= now]
            if not due:
                await self._clock.sleep(state.started_at + steps[state.next_step][2] - now)
                continue
            # Of a level due in several cycles (after a long outage) only the latest cycle is sent.
            latest: dict[int, int] = {}
            for i in due:
                latest[steps[i][1]] = i
            for i in sorted(latest.values()):
                cycle, level, _ = steps[i]
                await self._send_level(state, policy, cycle, level)
                if key in self._acks or key not in self._states:
                    return
            state.next_step = due[-1] + 1
            self._save(state)

    async def _send_level(self, state: EscalationState, policy: EscalationPolicy, cycle: int, level: int) -> None:
        group = self._groups.get(state.group_key)
        if group is None:
            return
        now = self._clock.time()
        firing = tuple(replace(a, ends_at=0.0) for a in _sorted(group.alerts.values()) if not a.resolved_at(now))
        if not firing:
            return
        receivers = policy.levels[level].receivers
        route = group.route
        interval = float(getattr(route, "group_interval", MIN_TIMEOUT))
        esc_key = escalation_key(state.group_key, policy.name, cycle, level, state.restart)
        results = []
        for receiver in receivers:
            flush = Flush(
                receiver=receiver,
                group_key=esc_key,
                group_labels=dict(group.labels),
                alerts=firing,
                now=now,
                deadline=self._clock.monotonic() + max(interval, MIN_TIMEOUT),
                repeat_interval=float(getattr(route, "repeat_interval", 4 * 3600.0)),
                mute_time_intervals=tuple(getattr(route, "mute_time_intervals", ())),
                active_time_intervals=tuple(getattr(route, "active_time_intervals", ())),
            )
            results.append(await self._send(flush))
            if (receiver, esc_key) not in state.reached:
                state.reached.append((receiver, esc_key))
        ok = all(results)
        state.sent.append((cycle, level, now))
        (log.info if ok else log.error)(
            "escalation_level_sent" if ok else "escalation_level_failed",
            group=state.group_key,
            policy=policy.name,
            cycle=cycle + 1,
            level=level + 1,
            receivers=list(receivers),
        )
        if self.listener is not None:
            self.listener.level_sent(state, cycle, level, receivers, ok)

    # -- ends ---------------------------------------------------------------------------------

    def _resolved(self, key: str, flush: Flush) -> None:
        state = self._states.pop(key, None)
        self._cancel(key)
        ack = self._acks.pop(key, None)
        with self._store.transaction():
            if state is not None:
                self._store.delete(KIND, key)
            if ack is not None:
                self._store.delete(ACK_KIND, key)
        if self.listener is not None:
            self.listener.group_resolved(key, flush.now)
        if state is not None and state.reached:
            log.info("escalation_ended", group=key, reason="resolved")
            self._spawn(self._send_resolved(state, flush))

    async def _send_resolved(self, state: EscalationState, flush: Flush) -> None:
        for receiver, esc_key in state.reached:
            await self._send(replace(flush, receiver=receiver, group_key=esc_key))

    def acknowledge(self, group: GroupLike, by: str, comment: str = "", via: str = "api") -> Ack:
        """Acknowledge ``group`` (its firing alerts now): its escalation stops. An existing
        acknowledgement of the group is returned unchanged."""
        existing = self._acks.get(group.key)
        if existing is not None:
            return existing
        now = self._clock.time()
        firing = [a for a in _sorted(group.alerts.values()) if not a.resolved_at(now)]
        ack = Ack(
            id=self._new_id(),
            group_key=group.key,
            receiver=group.receiver,
            by=by,
            comment=comment,
            at=now,
            via=via,
            fingerprints=tuple(a.fingerprint for a in firing),
            alertnames=tuple(sorted({a.name for a in firing})),
            group_labels=dict(group.labels),
        )
        self._groups[group.key] = group
        self._acks[group.key] = ack
        self._store.put(ACK_KIND, group.key, ack.to_document())
        self._cancel(group.key)
        log.info("acknowledged", group=group.key, by=by, via=via)
        if self.listener is not None:
            self.listener.acknowledged(ack)
        if self.on_ack is not None:
            self._spawn(self.on_ack(ack, group))
        return ack

    def unacknowledge(self, group_key: str) -> Ack | None:
        """Remove the acknowledgement of a group; its escalation starts again from level 1 now."""
        ack = self._acks.pop(group_key, None)
        if ack is None:
            return None
        self._store.delete(ACK_KIND, group_key)
        state = self._states.get(group_key)
        if state is not None:
            restarted = EscalationState(
                group_key, state.policy, state.receiver, self._clock.time(), restart=state.restart + 1, reached=state.reached
            )
            self._states[group_key] = restarted
            self._save(restarted)
            self._ensure_running(group_key)
        log.info("unacknowledged", group=group_key, by=ack.by)
        return ack

    def configure(self, policies: Mapping[str, EscalationPolicy]) -> None:
        """New policies (a reload); running escalations continue under the policy of the same name."""
        self.policies = dict(policies)

    async def stop(self) -> None:
        tasks = [*self._tasks.values(), *self._background]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._background.clear()

    # -- plumbing -----------------------------------------------------------------------------

    def _cancel(self, key: str) -> None:
        task = self._tasks.pop(key, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _spawn(self, work: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await work
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("escalation_task_failed")

        task = asyncio.get_running_loop().create_task(guarded())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _save(self, state: EscalationState) -> None:
        self._store.put(KIND, state.group_key, state.to_document())


def _sorted(alerts: Iterable[Alert]) -> list[Alert]:
    from daemon.dispatch.dispatcher import alert_order

    return sorted(alerts, key=alert_order)


def policies_of(config: Config) -> dict[str, EscalationPolicy]:
    """The config's escalation policies by name."""
    return {p.name: p.policy() for p in config.escalation_policies}


def attach(notifier: Notifier) -> Escalator:
    """Give a ``Notifier`` its escalator (made once, kept across reloads) and hook it to the
    notifier's current dispatcher. Called at the end of each ``Notifier._configure``."""
    from daemon.dispatch.alerts import SUPPRESSED
    from daemon.notify.nflog import ReceiverKey

    def notified(flush: Flush) -> bool:
        integrations = notifier.pipeline.integrations_by_receiver.get(flush.receiver, ())
        if not integrations:
            return any(notifier.marker.status(a.fingerprint).state != SUPPRESSED for a in flush.firing)
        for integration in integrations:
            entry = notifier.nflog.query(flush.group_key, ReceiverKey(flush.receiver, integration.name, integration.index))
            if entry is not None and entry.firing and entry.timestamp >= flush.now:
                return True
        return False

    async def send(flush: Flush) -> bool:
        return bool(await notifier.pipeline(flush))

    escalator = notifier.escalator
    if escalator is None:
        from daemon.notify.acknowledge import show_in_slack

        async def show(ack: Ack, group: GroupLike | None) -> None:
            await show_in_slack(notifier, ack, group)

        escalator = Escalator(notifier.state_store, notifier.clock, policies_of(notifier.config), send, notified, on_ack=show)
    else:
        escalator.configure(policies_of(notifier.config))
    if escalator.listener is None:
        from daemon.notify.history import IncidentHistory

        history = IncidentHistory(notifier.state_store, notifier.clock)
        notifier.alerts.subscribe(history.observe_alert)
        escalator.listener = history
    if notifier.dispatcher is not None:
        notifier.dispatcher.on_flush = escalator.observe
    return escalator
