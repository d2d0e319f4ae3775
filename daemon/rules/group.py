"""A rule group: its rules evaluated in order at one instant, on a schedule, with state saved.

One evaluation (``evaluate``) runs the group's queries through ``Engine.instant_many`` so
that rules sharing subexpressions compute them once; the rules are cut into consecutive
batches only where a rule reads a metric that an earlier recording rule of the same group
writes, so such a rule sees this round's value, as with Prometheus' sequential evaluation.
Recording results, ``ALERTS`` and ``ALERTS_FOR_STATE`` go to the store at the evaluation time
(minus ``query_offset``), with stale markers for series a rule no longer produces.

Schedule (``run``): evaluations are aligned as in Prometheus, at ``k * interval + offset`` where
the offset comes from a hash of the group's file and name; an evaluation that overruns makes
the loop skip the ticks it missed (counted), never queue them. With ``after_scrape`` the group
is also evaluated shortly after scrapes have landed new samples (see ``trigger``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from daemon.clock import Clock
from daemon.promql.engine import Engine, QueryError
from daemon.promql.value import Sample
from daemon.rules.alert import Alert, AlertState
from daemon.rules.alerting import AlertingRule
from daemon.rules.analysis import metric_names
from daemon.rules.persist import ALERT_KIND, GROUP_KIND, alert_key
from daemon.rules.recording import RecordingRule
from daemon.rules.rule import RuleError, as_vector
from daemon.rules.sink import AlertSink
from daemon.store import StateStore
from daemon.tsdb import STALE_NAN, Labels, Store

Rule = AlertingRule | RecordingRule

RESEND_DELAY = 60.0
"""Seconds between two sends of the same firing (or resolved) alert, Prometheus' default."""

AFTER_SCRAPE_DELAY = 0.1
"""Seconds a group waits after the first scrape of a burst before it evaluates."""
AFTER_SCRAPE_MIN_GAP = 1.0
"""Least seconds between the starts of two evaluations caused by scrapes (also at least 4x the
last evaluation's duration), so that a steady stream of scrapes costs a bounded share of CPU."""


class GroupObserver:
    """What a group reports after each evaluation (metrics); the default does nothing."""

    def evaluated(self, group: RuleGroup, duration: float, failures: int) -> None:
        pass

    def missed(self, group: RuleGroup, ticks: int) -> None:
        pass

    def persist_failed(self, group: RuleGroup, error: Exception) -> None:
        pass


@dataclass(frozen=True)
class _QuerySample:
    labels: dict[str, str]
    value: float


class RuleGroup:
    """The rules of one group and their evaluation.

    ``rule_keys`` (parallel to ``rules``) name each rule in the state store; ``state`` is where
    alert state is saved (None: not saved); ``sink`` receives the alerts to send.
    """

    def __init__(
        self,
        spec: Any,
        rules: Sequence[Rule],
        *,
        rule_keys: Sequence[str],
        interval: float,
        engine: Engine,
        store: Store,
        clock: Clock,
        state: StateStore | None = None,
        sink: AlertSink | None = None,
        observer: GroupObserver | None = None,
        after_scrape: bool = False,
        resend_delay: float = RESEND_DELAY,
    ) -> None:
        self.spec = spec
        self.name: str = spec.name
        self.file: str = spec.file
        self.key = f"{self.file};{self.name}"
        self.rules = list(rules)
        self.rule_keys = list(rule_keys)
        self.interval = interval
        self.limit: int = spec.limit
        self.query_offset: float = spec.query_offset
        self.engine = engine
        self.store = store
        self.clock = clock
        self.state = state
        self.sink = sink
        self.observer = observer or GroupObserver()
        self.after_scrape = after_scrape
        self.resend_delay = resend_delay
        self.last_evaluation = 0.0
        self.evaluation_time = 0.0
        self.previous_series: list[set[Labels]] = [set() for _ in self.rules]
        self.persisted: set[str] = set()
        self._batches = _batches(self.rules)
        self._last_ts = -math.inf
        self._triggered = asyncio.Event()
        self._log = structlog.get_logger().bind(component="rules", group=self.name, file=self.file)

    # -- one evaluation --------------------------------------------------------------------------

    def evaluate(self, ts: float) -> None:
        """Evaluate every rule at ``ts`` (Unix seconds), write series, save state, hand alerts on."""
        started = self.clock.monotonic()
        t_query = ts - self.query_offset
        t_ms = int(round(t_query * 1000))
        failures = 0
        for batch in self._batches:
            batch_started = self.clock.monotonic()
            results = self.engine.instant_many([self.rules[i].query for i in batch], t_query)
            share = (self.clock.monotonic() - batch_started) / len(batch)
            for index, result in zip(batch, results):
                if not self._evaluate_rule(index, result, ts, t_query, t_ms, share):
                    failures += 1
        self._last_ts = ts
        self.last_evaluation = ts
        self.evaluation_time = self.clock.monotonic() - started
        self._persist(ts)
        self._send(ts)
        self.observer.evaluated(self, self.evaluation_time, failures)

    def _evaluate_rule(self, index: int, result: Any, ts: float, t_query: float, t_ms: int, share: float) -> bool:
        rule = self.rules[index]
        started = self.clock.monotonic()
        error: str | None = None
        series: list[tuple[Labels, float]] | None = None
        try:
            if isinstance(result, QueryError):
                raise RuleError(str(result))
            if isinstance(rule, RecordingRule):
                series = rule.eval(result, limit=self.limit)
            else:
                rule.eval(result, ts, limit=self.limit, query=self._template_query(t_query))
                series = rule.series()
        except RuleError as exc:
            error = str(exc)
            # The alerts are as they were (or cleared by the limit): ALERTS follows them.
            series = rule.series() if isinstance(rule, AlertingRule) else None
        if series is not None:
            self._write(index, series, t_ms)
        took = share + self.clock.monotonic() - started
        if error is None:
            rule.status.succeeded(ts, took)
            return True
        rule.status.failed(error, ts, took)
        self._log.warning("rule evaluation failed", rule=rule.name, error=error)
        return False

    def _template_query(self, t: float) -> Callable[[str], list[_QuerySample]]:
        def query(expr: str) -> list[_QuerySample]:
            samples: list[Sample] = as_vector(self.engine.instant(expr, t))
            return [_QuerySample(s.labels.to_dict(), s.value) for s in samples]

        return query

    def _write(self, index: int, series: list[tuple[Labels, float]], t_ms: int) -> None:
        store = self.store
        written: set[Labels] = set()
        for labels, value in series:
            found, _ = store.series(labels)
            store.append(found, t_ms, value)
            written.add(labels)
        for labels in self.previous_series[index] - written:
            found, _ = store.series(labels)
            store.append(found, t_ms, STALE_NAN)
        self.previous_series[index] = written

    def _persist(self, ts: float) -> None:
        if self.state is None:
            return
        writes: list[tuple[str, Alert]] = []
        current: set[str] = set()
        pending = False
        for rule, key in zip(self.rules, self.rule_keys):
            if not isinstance(rule, AlertingRule):
                continue
            for alert in rule.active.values():
                doc_key = alert_key(key, alert)
                current.add(doc_key)
                pending = pending or alert.state is AlertState.PENDING
                if alert._saved != alert.snapshot():
                    writes.append((doc_key, alert))
        gone = self.persisted - current
        if not (writes or gone or pending):
            return
        try:
            with self.state.transaction():
                for doc_key, alert in writes:
                    self.state.put(ALERT_KIND, doc_key, alert.to_document())
                for doc_key in gone:
                    self.state.delete(ALERT_KIND, doc_key)
                if pending:
                    # The downtime of a restart is measured from here (pending timers resume).
                    self.state.put(GROUP_KIND, self.key, {"last_evaluation": ts})
        except Exception as exc:  # a full disk or a broken file must not stop alerting
            self._log.error("could not save alert state", error=repr(exc))
            self.observer.persist_failed(self, exc)
            return  # unchanged snapshots and `persisted`: retried at the next evaluation
        for _, alert in writes:
            alert._saved = alert.snapshot()
        self.persisted = current

    def _send(self, ts: float) -> None:
        if self.sink is None:
            return
        batch = []
        for rule in self.rules:
            if isinstance(rule, AlertingRule):
                batch.extend(rule.to_send(ts, self.resend_delay, self.interval))
        if batch:
            self.sink.send(batch)

    # -- schedule --------------------------------------------------------------------------------

    def offset(self) -> float:
        """Where in each interval this group evaluates: a hash of its file and name, as in Prometheus."""
        digest = hashlib.blake2b(f"{self.file}\xff{self.name}".encode(), digest_size=8).digest()
        interval_ns = max(1, int(round(self.interval * 1e9)))
        return (int.from_bytes(digest, "big") % interval_ns) / 1e9

    def aligned(self, now: float) -> float:
        """The latest evaluation instant of the schedule at or before ``now``."""
        offset = self.offset()
        return math.floor((now - offset) / self.interval) * self.interval + offset

    def trigger(self) -> None:
        """New samples have landed: evaluate soon (only with ``after_scrape``; bursts coalesce)."""
        if self.after_scrape:
            self._triggered.set()

    async def run(self) -> None:
        """Evaluate on the schedule (and after scrapes, with ``after_scrape``) until cancelled."""
        eval_ts = self.aligned(self.clock.time()) + self.interval
        await self._wait(eval_ts)
        while True:
            now = self.clock.time()
            if now >= eval_ts:
                missed = int((now - eval_ts) // self.interval)
                if missed > 0 and self._last_ts < eval_ts:
                    self.observer.missed(self, missed)
                eval_ts += missed * self.interval
                if eval_ts > self._last_ts:  # else an evaluation after a scrape already covered it
                    self._evaluate_safely(eval_ts)
                eval_ts += self.interval
            else:
                await self._after_scrape()
            await self._wait(eval_ts)

    async def _wait(self, until: float) -> None:
        """Sleep until ``until``, or until a trigger (then return early)."""
        delay = until - self.clock.time()
        if delay <= 0:
            return
        if not self.after_scrape:
            await self.clock.sleep(delay)
            return
        sleeper = asyncio.ensure_future(self.clock.sleep(delay))
        waiter = asyncio.ensure_future(self._triggered.wait())
        try:
            await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waiter):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _after_scrape(self) -> None:
        if not self._triggered.is_set():
            return
        now = self.clock.time()
        gap = max(AFTER_SCRAPE_MIN_GAP, 4 * self.evaluation_time)
        start = max(now + AFTER_SCRAPE_DELAY, self._last_ts + gap)
        await self.clock.sleep(start - now)
        self._triggered.clear()  # scrapes landing from here on cause the next evaluation
        ts = self.clock.time()
        if ts > self._last_ts:
            self._evaluate_safely(ts)

    def _evaluate_safely(self, ts: float) -> None:
        try:
            self.evaluate(ts)
        except Exception:  # a defect in one group must not stop its schedule or the others
            self._log.exception("rule group evaluation crashed")

    # -- state across reloads and restarts -------------------------------------------------------

    def copy_state(self, old: RuleGroup) -> None:
        """Take over the alerts and written series of ``old``'s rules that match ours by key."""
        self.last_evaluation = old.last_evaluation
        self.evaluation_time = old.evaluation_time
        self._last_ts = old._last_ts
        by_key = {key: i for i, key in enumerate(old.rule_keys)}
        taken: set[str] = set()
        for index, (rule, key) in enumerate(zip(self.rules, self.rule_keys)):
            old_index = by_key.get(key)
            if old_index is None:
                continue
            old_rule = old.rules[old_index]
            self.previous_series[index] = old.previous_series[old_index]
            if isinstance(rule, AlertingRule) and isinstance(old_rule, AlertingRule):
                rule.active = old_rule.active
                rule.restore_hold_until = old_rule.restore_hold_until
                rule.status = old_rule.status
                taken.update(alert_key(key, alert) for alert in rule.active.values())
            elif isinstance(rule, RecordingRule) and isinstance(old_rule, RecordingRule):
                rule.status = old_rule.status
        self.persisted = taken & old.persisted

    def stale_series(self, keep: set[Labels]) -> None:
        """Mark every series this group wrote as stale, except ``keep`` (a group removed or replaced)."""
        t_ms = int(round(self.clock.time() * 1000))
        if self._last_ts > -math.inf:  # never at or before the last samples written
            t_ms = max(t_ms, int(round((self._last_ts - self.query_offset) * 1000)) + 1)
        for written in self.previous_series:
            for labels in written - keep:
                found, _ = self.store.series(labels)
                self.store.append(found, t_ms, STALE_NAN)

    def written_series(self) -> set[Labels]:
        return set().union(*self.previous_series) if self.previous_series else set()


def _batches(rules: Sequence[Rule]) -> list[list[int]]:
    """Consecutive runs of rules that can be evaluated at once (see the module docstring)."""
    batches: list[list[int]] = []
    current: list[int] = []
    recorded: set[str] = set()
    for index, rule in enumerate(rules):
        if current and recorded:
            reads = metric_names(rule.query.expr)
            if reads is None or reads & recorded:
                batches.append(current)
                current, recorded = [], set()
        current.append(index)
        if isinstance(rule, RecordingRule):
            recorded.add(rule.name)
    if current:
        batches.append(current)
    return batches
