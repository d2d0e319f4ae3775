"""Inhibition as Alertmanager does it: source/target matchers, equal labels (missing on both sides
is equal), alerts matching both sides, resolved sources, and the marks the API shows."""

from __future__ import annotations

from daemon.clock import FakeClock
from daemon.dispatch.alert import fingerprint
from daemon.dispatch.alerts import AlertStore, Marker
from daemon.dispatch.inhibit import InhibitRule, Inhibitor
from daemon.dispatch.matchers import parse_matchers
from daemon.testing.alerts import make_alert
from daemon.tsdb.labels import Labels

T0 = 1_700_000_000.0


def setup(source: str, target: str, equal: tuple[str, ...] = ()) -> tuple[AlertStore, Inhibitor, Marker, FakeClock]:
    clock = FakeClock(T0)
    marker = Marker()
    alerts = AlertStore(clock, marker)
    rule = InhibitRule(parse_matchers(source), parse_matchers(target), frozenset(equal))
    return alerts, Inhibitor([rule], alerts, clock, marker), marker, clock


def firing(labels: dict[str, str]):  # type: ignore[no-untyped-def]
    return make_alert(labels, starts_at=T0, ends_at=T0 + 600)


def test_a_firing_source_mutes_targets_with_equal_labels() -> None:
    alerts, inhibitor, marker, _ = setup('severity="P0"', 'severity=~"P1|P2"', ("cluster",))
    source = firing({"alertname": "Down", "severity": "P0", "cluster": "eu"})
    alerts.put(source)
    target = Labels.of({"alertname": "Slow", "severity": "P1", "cluster": "eu"})
    assert inhibitor.mutes(target)
    status = marker.status(fingerprint(target))
    assert status.state == "suppressed" and status.inhibited_by == (source.fingerprint,)
    assert not inhibitor.mutes(Labels.of({"alertname": "Slow", "severity": "P1", "cluster": "us"}))
    assert not inhibitor.mutes(Labels.of({"alertname": "Slow", "severity": "P3", "cluster": "eu"}))
    assert marker.status(fingerprint(Labels.of({"alertname": "Slow", "severity": "P3", "cluster": "eu"}))).state == "active"


def test_a_label_missing_on_both_sides_counts_as_equal() -> None:
    alerts, inhibitor, _, _ = setup('severity="P0"', 'severity="P1"', ("cluster",))
    alerts.put(firing({"alertname": "Down", "severity": "P0"}))
    assert inhibitor.mutes(Labels.of({"alertname": "Slow", "severity": "P1"}))
    assert not inhibitor.mutes(Labels.of({"alertname": "Slow", "severity": "P1", "cluster": "eu"}))


def test_resolved_sources_do_not_inhibit() -> None:
    alerts, inhibitor, _, clock = setup('severity="P0"', 'severity="P1"')
    alerts.put(firing({"alertname": "Down", "severity": "P0"}))
    target = Labels.of({"alertname": "Slow", "severity": "P1"})
    assert inhibitor.mutes(target)
    clock._now += 601
    assert not inhibitor.mutes(target)


def test_alerts_matching_both_sides_do_not_inhibit_each_other() -> None:
    alerts, inhibitor, _, _ = setup('alertname="Down"', 'alertname="Down"', ("job",))
    a = firing({"alertname": "Down", "job": "api", "instance": "1"})
    b = firing({"alertname": "Down", "job": "api", "instance": "2"})
    alerts.put(a, b)
    assert not inhibitor.mutes(a.labels)
    assert not inhibitor.mutes(b.labels)


def test_sources_seen_before_the_inhibitor_was_built_count() -> None:
    clock = FakeClock(T0)
    marker = Marker()
    alerts = AlertStore(clock, marker)
    alerts.put(firing({"alertname": "Down", "severity": "P0"}))
    inhibitor = Inhibitor(
        [InhibitRule(parse_matchers('severity="P0"'), parse_matchers('severity="P1"'))], alerts, clock, marker
    )
    assert inhibitor.mutes(Labels.of({"alertname": "X", "severity": "P1"}))
    inhibitor.close()
    alerts.put(firing({"alertname": "Down2", "severity": "P0"}))
    assert len(inhibitor.rules[0].sources) == 1
