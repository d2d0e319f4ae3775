"""Alerting rules: Prometheus' alert state machine over the results of one query.

Each evaluation turns the query's samples into alerts (identity: the final label set), then:
a new alert is pending and fires once it has been active for ``for`` (``for: 0`` fires on the
first evaluation); a pending alert whose sample disappears is deleted; a firing one is held by
``keep_firing_for`` (its value frozen) and then resolved, and kept 15 minutes as resolved. A
failed evaluation (query error, duplicate label sets) leaves every alert as it was.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from daemon.promql.engine import Query
from daemon.promql.value import Value
from daemon.rules.alert import RESOLVED_RETENTION, Alert, AlertState
from daemon.rules.rule import RuleError, RuleStatus, as_vector
from daemon.rules.sink import OutgoingAlert
from daemon.rules.template import AlertTemplate, QueryFunc
from daemon.tsdb import Labels

ALERTNAME = "alertname"
ALERTSTATE = "alertstate"
ALERTS_METRIC = "ALERTS"
ALERTS_FOR_STATE_METRIC = "ALERTS_FOR_STATE"


@dataclass(frozen=True)
class AlertContext:
    """What templates and sent alerts know of the daemon: external labels and URL."""

    external_labels: Mapping[str, str] = field(default_factory=dict)
    external_url: str = "http://localhost:9095"


def pairs(mapping: Any) -> list[tuple[str, str]]:
    """A rule file's labels or annotations (a mapping or a sequence of pairs) as pairs."""
    if hasattr(mapping, "items"):
        return [(str(k), str(v)) for k, v in mapping.items()]
    return [(str(k), str(v)) for k, v in mapping or ()]


class AlertingRule:
    """One ``alert:`` rule and its alerts.

    ``spec`` is the rule as the file gives it; ``labels`` the group's labels overlaid by the
    rule's. ``restore_hold_until`` (Unix seconds) is set after a restart for the rule's restored
    alerts: until then an absent result does not resolve or delete them, because the in-memory
    samples the query needs are still refilling.
    """

    kind = "alerting"

    def __init__(
        self,
        spec: Any,
        query: Query,
        *,
        group_labels: Iterable[tuple[str, str]] = (),
        context: AlertContext | None = None,
    ) -> None:
        self.spec = spec
        self.name: str = spec.alert
        self.expr: str = spec.expr
        self.query = query
        self.hold = float(spec.for_ or 0.0)
        self.keep_firing_for = float(spec.keep_firing_for or 0.0)
        self.labels = dict([*group_labels, *pairs(spec.labels)])
        self.annotations = dict(pairs(spec.annotations))
        self.context = context or AlertContext()
        template_name = "__alert_" + self.name
        self._label_templates = {k: AlertTemplate.parse(v, template_name) for k, v in self.labels.items()}
        self._annotation_templates = {k: AlertTemplate.parse(v, template_name) for k, v in self.annotations.items()}
        self.active: dict[Labels, Alert] = {}
        self.status = RuleStatus()
        self.restore_hold_until: float | None = None

    # -- evaluation ------------------------------------------------------------------------------

    def eval(self, result: Value, ts: float, *, limit: int = 0, query: QueryFunc | None = None) -> None:
        """Apply one evaluation's query result at ``ts``; raises ``RuleError`` leaving the alerts as they were.

        The exception is ``limit``: more active alerts than that clears every alert of the rule
        (Prometheus does the same) before the error is raised.
        """
        seen = self._alerts_of(result, ts, query)
        for labels, alert in seen.items():
            current = self.active.get(labels)
            if current is not None and current.is_active:
                current.value = alert.value
                current.annotations = alert.annotations
                current.restored = False
                continue
            self.active[labels] = alert
        holding = self.restore_hold_until is not None and ts < self.restore_hold_until
        count = 0
        for labels, alert in list(self.active.items()):
            if labels not in seen:
                if holding and alert.restored and alert.is_active:
                    count += 1  # its data may not be back yet: neither resolve nor advance it
                    continue
                keep_firing = False
                if alert.state is AlertState.FIRING and self.keep_firing_for > 0:
                    if alert.keep_firing_since is None:
                        alert.keep_firing_since = ts
                    keep_firing = ts - alert.keep_firing_since < self.keep_firing_for
                if alert.state is AlertState.PENDING or (
                    alert.resolved_at is not None and ts - alert.resolved_at > RESOLVED_RETENTION
                ):
                    del self.active[labels]
                if alert.is_active and not keep_firing:
                    alert.state = AlertState.INACTIVE
                    alert.resolved_at = ts
                if not keep_firing:
                    continue
            else:
                alert.keep_firing_since = None
            count += 1
            if alert.state is AlertState.PENDING and ts - alert.active_at >= self.hold:
                alert.state = AlertState.FIRING
                alert.fired_at = ts
        if not holding:
            self.restore_hold_until = None
        if limit > 0 and count > limit:
            self.active.clear()
            raise RuleError(f"exceeded limit of {limit} with {count} alerts")

    def _alerts_of(self, result: Value, ts: float, query: QueryFunc | None) -> dict[Labels, Alert]:
        alerts: dict[Labels, Alert] = {}
        context = self.context
        for sample in as_vector(result):
            # Templates see the sample's labels as the query returned them, __name__ included.
            template_labels = sample.labels.to_dict()

            def expand(template: AlertTemplate) -> str:
                return template.expand(
                    template_labels,
                    sample.value,
                    external_labels=context.external_labels,
                    external_url=context.external_url,
                    query=query,
                    timestamp=ts,
                )

            final = sample.labels.without_name().to_dict()
            for name, template in self._label_templates.items():
                final[name] = expand(template)
            final[ALERTNAME] = self.name
            labels = Labels.of(final)
            if labels in alerts:
                raise RuleError("vector contains metrics with the same labelset after applying alert labels")
            annotations = {name: expand(template) for name, template in self._annotation_templates.items()}
            alerts[labels] = Alert(labels, annotations, AlertState.PENDING, sample.value, active_at=ts)
        return alerts

    # -- views -----------------------------------------------------------------------------------

    def alerts(self) -> list[Alert]:
        """Pending and firing alerts (resolved ones are left out, as in Prometheus' API)."""
        return [alert for alert in self.active.values() if alert.is_active]

    @property
    def state(self) -> AlertState:
        """The most advanced state of the rule's alerts: firing, pending or inactive."""
        states = {alert.state for alert in self.active.values()}
        if AlertState.FIRING in states:
            return AlertState.FIRING
        if AlertState.PENDING in states:
            return AlertState.PENDING
        return AlertState.INACTIVE

    def series(self) -> list[tuple[Labels, float]]:
        """``ALERTS`` and ``ALERTS_FOR_STATE`` samples for the alerts now pending or firing."""
        out: list[tuple[Labels, float]] = []
        for alert in self.alerts():
            base = alert.labels.to_dict()
            out.append((Labels.of({**base, "__name__": ALERTS_METRIC, ALERTSTATE: alert.state.value}), 1.0))
            out.append((Labels.of({**base, "__name__": ALERTS_FOR_STATE_METRIC}), float(math.floor(alert.active_at))))
        return out

    def to_send(self, ts: float, resend_delay: float, interval: float) -> list[OutgoingAlert]:
        """The alerts to hand to the notification side after the evaluation at ``ts`` (marks them sent).

        As Prometheus: firing alerts when they fire and every ``resend_delay``; resolved ones when
        they resolve and every ``resend_delay`` while kept; never pending ones.
        """
        out: list[OutgoingAlert] = []
        url = self.generator_url()
        external = self.context.external_labels
        for alert in self.active.values():
            if alert.state is AlertState.PENDING:
                continue
            just_resolved = alert.resolved_at is not None and (
                alert.last_sent_at is None or alert.resolved_at > alert.last_sent_at
            )
            if not just_resolved and alert.last_sent_at is not None and alert.last_sent_at + resend_delay >= ts:
                continue
            alert.last_sent_at = ts
            alert.valid_until = ts + 4 * max(resend_delay, interval)
            labels = {**external, **alert.labels.to_dict()}
            resolved = alert.resolved_at is not None
            out.append(
                OutgoingAlert(
                    labels=labels,
                    annotations=dict(alert.annotations),
                    starts_at=alert.fired_at if alert.fired_at is not None else alert.active_at,
                    ends_at=alert.resolved_at if alert.resolved_at is not None else alert.valid_until,
                    generator_url=url,
                    resolved=resolved,
                )
            )
        return out

    def generator_url(self) -> str:
        """The link back to the rule's expression, as Prometheus builds it."""
        return self.context.external_url.rstrip("/") + "/graph?g0.expr=" + quote(self.expr, safe="") + "&g0.tab=1"

    def restore(self, alerts: Sequence[Alert], hold_until: float | None) -> None:
        """Take alerts read back from the state store (see ``daemon.rules.persist``)."""
        for alert in alerts:
            self.active[alert.labels] = alert
        self.restore_hold_until = hold_until if alerts else None
