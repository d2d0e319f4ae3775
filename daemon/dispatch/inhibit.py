"""Inhibition: firing alerts that match a rule's source matchers mute alerts matching its target
matchers when they agree on the rule's ``equal`` labels (a label missing on both sides counts as
equal), as Alertmanager's inhibitor does.

An alert that matches both the source and the target side of a rule is never muted by itself or
by another alert that also matches both sides: otherwise two such alerts would mute each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from daemon.clock import Clock
from daemon.dispatch.alert import Alert
from daemon.dispatch.alerts import AlertStore, Marker
from daemon.tsdb.labels import Labels


class LabelMatcher(Protocol):
    """One label matcher (``daemon.dispatch.matchers.Matcher`` is one)."""

    def matches(self, labels: Labels) -> bool: ...


class Muter(Protocol):
    """Something that may mute alerts: the inhibitor, the silencer (Alertmanager's ``types.Muter``)."""

    def mutes(self, labels: Labels) -> bool: ...


def matches_all(matchers: Iterable[LabelMatcher], labels: Labels) -> bool:
    """Whether every matcher matches ``labels`` (a missing label is the empty string)."""
    return all(m.matches(labels) for m in matchers)


@dataclass
class InhibitRule:
    """One ``inhibit_rules`` entry, with the source alerts seen so far by fingerprint."""

    source_matchers: Sequence[LabelMatcher]
    target_matchers: Sequence[LabelMatcher]
    equal: frozenset[str] = frozenset()
    sources: dict[str, Alert] = field(default_factory=dict, repr=False)

    def inhibiting(self, labels: Labels, now: float, also_source: bool) -> str | None:
        """The fingerprint of a firing source alert that inhibits ``labels``, or None."""
        for fp, source in list(self.sources.items()):
            if source.resolved_at(now):
                del self.sources[fp]  # a resolved source never inhibits again unless re-sent
                continue
            if any(source.labels.get(name, "") != labels.get(name, "") for name in self.equal):
                continue
            if also_source and matches_all(self.target_matchers, source.labels):
                continue
            return fp
        return None


class Inhibitor:
    """The ``Muter`` of inhibition rules over the alerts of an ``AlertStore``.

    It subscribes to the store to keep, per rule, the alerts matching the rule's source side.
    ``mutes(labels)`` records its answer in ``marker`` (the inhibiting alert's fingerprint is the
    alert's ``inhibitedBy`` in the API). ``close()`` unsubscribes.
    """

    def __init__(self, rules: Sequence[InhibitRule], alerts: AlertStore, clock: Clock, marker: Marker) -> None:
        self.rules = list(rules)
        self._clock = clock
        self._marker = marker
        self._unsubscribe: Callable[[], None] = alerts.subscribe(self._seen)

    def _seen(self, alert: Alert) -> None:
        for rule in self.rules:
            if matches_all(rule.source_matchers, alert.labels):
                rule.sources[alert.fingerprint] = alert

    def mutes(self, labels: Labels) -> bool:
        now = self._clock.time()
        for rule in self.rules:
            if not matches_all(rule.target_matchers, labels):
                continue
            inhibitor = rule.inhibiting(labels, now, also_source=matches_all(rule.source_matchers, labels))
            if inhibitor is not None:
                self._marker.set_inhibited(labels, (inhibitor,))
                return True
        self._marker.set_inhibited(labels, ())
        return False

    def close(self) -> None:
        self._unsubscribe()
