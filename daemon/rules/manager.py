"""The running rule groups: built from rule files, kept in step with reloads, restored after restarts.

``RuleManager.apply`` takes the loaded ``GroupSpec`` list and the settings from the config. A
group whose spec and settings did not change keeps running untouched; any other group is
built anew and takes over the alerts of its old rules that match by group file and name, rule
name and labels (Prometheus' ``CopyState`` matching, so an edited expression or annotation
keeps its alerts; a rule whose name or labels changed starts empty). Series that no rule writes
any more get stale markers. The first ``apply`` after the daemon starts reads the saved alert
state back (see ``daemon.rules.persist`` for what happens to the downtime).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from daemon.clock import Clock
from daemon.promql.engine import Engine
from daemon.rules.alert import AlertState
from daemon.rules.alerting import AlertContext, AlertingRule
from daemon.rules.analysis import window
from daemon.rules.group import GroupObserver, Rule, RuleGroup
from daemon.rules.persist import ALERT_KIND, GROUP_KIND, by_rule, resume, rule_key
from daemon.rules.recording import RecordingRule
from daemon.rules.sink import AlertSink
from daemon.rules.spec import RuleFileError
from daemon.store import StateStore
from daemon.tsdb import Store

DEFAULT_LOOKBACK = 300.0


@dataclass(frozen=True)
class RuleSettings:
    """What the config says about evaluating rules.

    ``after_scrape`` is the default for every group and ``after_scrape_groups`` overrides it by
    group name (the ``rule_evaluation`` section of the config).
    """

    evaluation_interval: float = 60.0
    external_labels: Mapping[str, str] = field(default_factory=dict)
    external_url: str = "http://localhost:9095"
    after_scrape: bool = False
    after_scrape_groups: Mapping[str, bool] = field(default_factory=dict)

    def after_scrape_for(self, group: str) -> bool:
        return self.after_scrape_groups.get(group, self.after_scrape)


class RuleMetrics(GroupObserver):
    """The rule engine's own metrics, on the daemon's registry."""

    def __init__(self, registry: CollectorRegistry, manager: RuleManager) -> None:
        r = registry
        self.evaluations = Counter(
            "alertd_rule_group_evaluations", "Evaluations of rule groups.", ["rule_group"], registry=r
        )
        self.failures = Counter(
            "alertd_rule_evaluation_failures", "Rule evaluations that failed.", ["rule_group"], registry=r
        )
        self.missed_iterations = Counter(
            "alertd_rule_group_iterations_missed",
            "Scheduled group evaluations skipped because an evaluation overran.",
            ["rule_group"],
            registry=r,
        )
        self.duration = Histogram(
            "alertd_rule_group_duration_seconds",
            "Time one evaluation of a rule group took.",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.state_write_failures = Counter(
            "alertd_state_write_failures", "Alert state saves that failed (retried next evaluation).", registry=r
        )
        self._manager = manager
        registry.register(_Gauges(manager))

    def evaluated(self, group: RuleGroup, duration: float, failures: int) -> None:
        self.evaluations.labels(group.key).inc()
        self.duration.observe(duration)
        if failures:
            self.failures.labels(group.key).inc(failures)

    def missed(self, group: RuleGroup, ticks: int) -> None:
        self.missed_iterations.labels(group.key).inc(ticks)

    def persist_failed(self, group: RuleGroup, error: Exception) -> None:
        self.state_write_failures.inc()


class _Gauges(Collector):
    def __init__(self, manager: RuleManager) -> None:
        self._manager = manager

    def collect(self) -> Iterator[GaugeMetricFamily]:
        m = self._manager
        rules = GaugeMetricFamily("alertd_rule_group_rules", "Rules per group.", labels=["rule_group"])
        last = GaugeMetricFamily(
            "alertd_rule_group_last_evaluation_timestamp_seconds", "When a group was last evaluated.", labels=["rule_group"]
        )
        took = GaugeMetricFamily(
            "alertd_rule_group_last_duration_seconds", "How long the last evaluation of a group took.", labels=["rule_group"]
        )
        interval = GaugeMetricFamily("alertd_rule_group_interval_seconds", "Evaluation interval of a group.", labels=["rule_group"])
        counts = {AlertState.PENDING: 0, AlertState.FIRING: 0}
        for group in m.groups():
            rules.add_metric([group.key], len(group.rules))
            last.add_metric([group.key], group.last_evaluation)
            took.add_metric([group.key], group.evaluation_time)
            interval.add_metric([group.key], group.interval)
            for rule in group.rules:
                if isinstance(rule, AlertingRule):
                    for alert in rule.alerts():
                        counts[alert.state] += 1
        alerts = GaugeMetricFamily("alertd_alerts", "Alerts by state.", labels=["state"])
        for state, count in counts.items():
            alerts.add_metric([state.value], count)
        recovered = GaugeMetricFamily(
            "alertd_state_recovered",
            "1 when the state database could not be read at start and alert state started empty.",
            value=1.0 if m.state_recovered else 0.0,
        )
        yield from (rules, last, took, interval, alerts, recovered)

    def describe(self) -> list[GaugeMetricFamily]:
        return []


class RuleManager:
    """Every rule group of the config, each evaluated by its own task.

    ``state`` saves alert state across restarts (None: kept in memory only); ``sink`` receives
    the alerts to send. ``samples_landed`` is the hook scrapes call.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        engine: Engine | None = None,
        registry: CollectorRegistry | None = None,
        state: StateStore | None = None,
        sink: AlertSink | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.engine = engine or Engine(store)
        self.state = state
        self.sink = sink
        self.observer: GroupObserver = RuleMetrics(registry, self) if registry is not None else GroupObserver()
        self.settings = RuleSettings()
        self._groups: dict[str, RuleGroup] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._restored = False
        self._log = structlog.get_logger().bind(component="rules")

    @property
    def state_recovered(self) -> bool:
        """Whether the state store had to start empty (its file could not be read)."""
        return bool(self.state is not None and self.state.recovered)

    def groups(self) -> list[RuleGroup]:
        """The running groups, in rule file order."""
        return list(self._groups.values())

    def alerts(self) -> list[Any]:
        """Every pending and firing alert."""
        return [a for g in self._groups.values() for r in g.rules if isinstance(r, AlertingRule) for a in r.alerts()]

    def build(self, specs: Sequence[Any], settings: RuleSettings) -> list[RuleGroup]:
        """Groups for ``specs`` (not started, without state); raises ``RuleFileError`` for an expression
        the engine refuses (the rule file loader has already checked the syntax)."""
        context = AlertContext(dict(settings.external_labels), settings.external_url)
        groups = []
        for spec in specs:
            group_labels = list(spec.labels.items())
            rules: list[Rule] = []
            keys: list[str] = []
            seen: dict[tuple[str, str], int] = {}
            group_key = f"{spec.file};{spec.name}"
            for rule_spec in spec.rules:
                try:
                    query = self.engine.compile(rule_spec.expr)
                except Exception as exc:  # the loader parsed it; the engine may still refuse it
                    raise RuleFileError([f"{spec.file}:{rule_spec.line}: {exc}"]) from None
                rule: Rule
                if hasattr(rule_spec, "alert"):
                    rule = AlertingRule(rule_spec, query, group_labels=group_labels, context=context)
                else:
                    rule = RecordingRule(rule_spec, query, group_labels=group_labels)
                identity = (rule.kind + ":" + rule.name, repr(sorted(rule.labels.items())))
                occurrence = seen.get(identity, 0)
                seen[identity] = occurrence + 1
                rules.append(rule)
                keys.append(rule_key(group_key, rule.kind + ":" + rule.name, rule.labels, occurrence))
            groups.append(
                RuleGroup(
                    spec,
                    rules,
                    rule_keys=keys,
                    interval=spec.interval or settings.evaluation_interval,
                    engine=self.engine,
                    store=self.store,
                    clock=self.clock,
                    state=self.state,
                    sink=self.sink,
                    observer=self.observer,
                    after_scrape=settings.after_scrape_for(spec.name),
                )
            )
        return groups

    async def apply(self, specs: Sequence[Any], settings: RuleSettings) -> None:
        """Make the running groups match ``specs`` and ``settings`` (see the module docstring)."""
        specs = list(specs)
        unknown = sorted(set(settings.after_scrape_groups) - {spec.name for spec in specs})
        if unknown:
            self._log.warning("rule_evaluation.groups names groups no rule file defines", groups=unknown)
        context_changed = (
            settings.external_labels != self.settings.external_labels
            or settings.external_url != self.settings.external_url
            or settings.evaluation_interval != self.settings.evaluation_interval
        )
        old_groups = self._groups
        new_groups: dict[str, RuleGroup] = {}
        fresh: list[RuleGroup] = []
        for spec, group in zip(specs, self.build(specs, settings)):
            old = old_groups.get(group.key)
            if (
                old is not None
                and old.spec == spec
                and not context_changed
                and old.after_scrape == group.after_scrape
            ):
                new_groups[group.key] = old
                continue
            if old is not None:
                group.copy_state(old)
            new_groups[group.key] = group
            fresh.append(group)
        if not self._restored:
            self._restore(fresh)
        # Stop what is replaced or gone, then start what is new.
        keep_series: set[Any] = set().union(*(g.written_series() for g in new_groups.values()))
        owned: set[str] = set().union(*(g.persisted for g in new_groups.values()))
        orphaned: set[str] = set()
        for key, old in old_groups.items():
            if new_groups.get(key) is old:
                continue
            await self._stop_task(key)
            old.stale_series(keep_series)
            orphaned |= old.persisted - owned
        self._delete_documents(orphaned)
        self._groups = new_groups
        self.settings = settings
        loop = asyncio.get_running_loop()
        for key, group in new_groups.items():
            if key not in self._tasks:
                self._tasks[key] = loop.create_task(group.run(), name=f"rules {key}")

    def _restore(self, groups: Sequence[RuleGroup]) -> None:
        """Read the saved alerts back into the rules that own them; forget the others."""
        self._restored = True
        if self.state is None:
            return
        if self.state.recovered:
            self._log.error("ALERT STATE LOST: starting without saved alerts", reason=self.state.recovered)
        try:
            documents = self.state.load(ALERT_KIND)
            meta = self.state.load(GROUP_KIND)
        except Exception as exc:
            self._log.error("ALERT STATE LOST: could not read saved alerts", error=repr(exc))
            return
        owned = by_rule(documents)
        now = self.clock.time()
        restored = 0
        for group in groups:
            last = meta.get(group.key, {}).get("last_evaluation") if isinstance(meta.get(group.key), dict) else None
            for rule, key in zip(group.rules, group.rule_keys):
                docs = owned.pop(key, [])
                if not isinstance(rule, AlertingRule) or not docs:
                    continue
                alerts, errors = resume([doc for _, doc in docs], last, now)
                for error in errors:
                    self._log.warning("dropping saved alert", rule=rule.name, error=error)
                hold = now + window(rule.query.expr) + group.interval
                rule.restore(alerts, hold)
                group.persisted |= {doc_key for doc_key, _ in docs}
                restored += len(alerts)
        stale = {doc_key for docs in owned.values() for doc_key, _ in docs}
        stale |= set(documents) - {k for docs in by_rule(documents).values() for k, _ in docs}
        self._delete_documents(stale)
        with contextlib.suppress(Exception):
            for group_key in set(meta) - {g.key for g in groups}:
                self.state.delete(GROUP_KIND, group_key)
        if restored or stale:
            self._log.info("alert state restored", alerts=restored, forgotten=len(stale))

    def _delete_documents(self, keys: set[str]) -> None:
        if not keys or self.state is None:
            return
        try:
            with self.state.transaction():
                for key in keys:
                    self.state.delete(ALERT_KIND, key)
        except Exception as exc:
            self._log.error("could not delete saved alerts", error=repr(exc))

    def retention_needed(self, lookback: float = DEFAULT_LOOKBACK) -> float:
        """Seconds of samples the rules need: their longest window plus the lookback and one interval."""
        needed = 0.0
        for group in self._groups.values():
            for rule in group.rules:
                needed = max(needed, window(rule.query.expr) + group.query_offset + lookback + group.interval)
        return needed

    def samples_landed(self) -> None:
        """A scrape has stored new samples: groups with ``after_scrape`` evaluate shortly."""
        for group in self._groups.values():
            group.trigger()

    async def stop(self) -> None:
        """Stop every group's task (state is saved at each evaluation, so nothing is lost)."""
        for key in list(self._tasks):
            await self._stop_task(key)

    async def _stop_task(self, key: str) -> None:
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
