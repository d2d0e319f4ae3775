"""Alert state in the state store, and how it is resumed after the daemon was down.

Documents (kind ``alert``, key ``<rule key>/<label digest>``) hold one alert each: labels,
annotations, state, value, active_at, fired_at, resolved_at, keep_firing_since. A group writes
them in one transaction per evaluation, and only those whose state or times changed (a new
value alone is not a change). While a group has pending alerts it also records its last
evaluation time (kind ``rule_group``), so that the downtime is known at the next start.

Resuming after a restart (``resume``):

- A **firing** alert is firing again at once, with its original ``active_at`` and ``fired_at``.
- A **pending** alert keeps the time it had been pending; the downtime does not count, so it
  fires once it has been seen pending for ``for`` in total (``active_at`` moves forward by the
  downtime, as Prometheus' restore does when more than its grace period is left).
- ``keep_firing_for`` and the 15 minutes a **resolved** alert is kept count wall time,
  downtime included.
- Samples live in memory, so after a start a rule's query sees too little data until its
  window has refilled. Until then (the rule's longest range, offsets and subqueries included,
  plus one group interval) a restored alert whose result is absent is **held** as it was:
  neither resolved, deleted nor fired. After that, an alert whose condition
  cleared while the daemon was down resolves (once) or, if pending, is deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from daemon.rules.alert import Alert, AlertState, label_digest
from daemon.tsdb import Labels

ALERT_KIND = "alert"
GROUP_KIND = "rule_group"


def rule_key(group_key: str, name: str, labels: Mapping[str, str], occurrence: int) -> str:
    """The identity of a rule across reloads and restarts: group, name and labels (as Prometheus
    matches rules when it copies state), with the position among rules equal in those."""
    return f"{group_key};{name};{label_digest(Labels.of(labels))};{occurrence}"


def alert_key(rule: str, alert: Alert) -> str:
    return f"{rule}/{alert.key()}"


def by_rule(documents: Mapping[str, Any]) -> dict[str, list[tuple[str, Any]]]:
    """Alert documents grouped by the key of the rule that owns them."""
    grouped: dict[str, list[tuple[str, Any]]] = {}
    for key, doc in documents.items():
        rule, sep, _ = key.rpartition("/")
        if sep:
            grouped.setdefault(rule, []).append((key, doc))
    return grouped


def resume(documents: Iterable[Any], last_evaluation: float | None, now: float) -> tuple[list[Alert], list[str]]:
    """The alerts that ``documents`` describe, adjusted for the downtime, and errors for unreadable ones."""
    downtime = max(0.0, now - last_evaluation) if last_evaluation else 0.0
    alerts: list[Alert] = []
    errors: list[str] = []
    for doc in documents:
        try:
            alert = Alert.from_document(doc)
        except (KeyError, ValueError, TypeError) as exc:
            errors.append(f"unreadable alert state {doc!r:.200}: {exc!r}")
            continue
        if alert.state is AlertState.PENDING:
            alert.active_at += downtime
        alerts.append(alert)
    return alerts, errors
