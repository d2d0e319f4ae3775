"""Alerting and recording rules inside a group: Prometheus' state machine, templates, series written."""

from __future__ import annotations

import math

import pytest

from daemon.clock import FakeClock
from daemon.promql.engine import Engine
from daemon.rules.alert import AlertState
from daemon.rules.alerting import AlertingRule
from daemon.rules.group import RuleGroup
from daemon.rules.manager import RuleManager, RuleSettings
from daemon.rules.sink import ListSink
from daemon.rules.spec import AlertingRuleSpec, FrozenMap, GroupSpec, RecordingRuleSpec
from daemon.tsdb import STALE_NAN, Labels, Store, is_stale

T0 = 1_700_000_000.0


class World:
    """A store, a clock and a manager that builds groups; samples are set per test."""

    def __init__(self, **settings: object) -> None:
        self.store = Store()
        self.clock = FakeClock(T0)
        self.sink = ListSink()
        self.manager = RuleManager(self.store, self.clock, sink=self.sink)
        self.settings = RuleSettings(evaluation_interval=15.0, **settings)  # type: ignore[arg-type]

    def sample(self, t: float, value: float, name: str = "m", **labels: str) -> None:
        series, _ = self.store.series(Labels.of({"__name__": name, **labels}))
        self.store.append(series, int(t * 1000), value)

    def group(self, *rules: object, name: str = "g", **kwargs: object) -> RuleGroup:
        spec = GroupSpec(name=name, file="rules.yml", rules=tuple(rules), **kwargs)  # type: ignore[arg-type]
        (group,) = self.manager.build([spec], self.settings)
        return group

    def values(self, selector: str, t: float) -> dict[str, float]:
        result = Engine(self.store).instant(selector, t)
        return {str(s.labels): s.value for s in result}  # type: ignore[union-attr]

    def raw(self, name: str, **labels: str) -> list[float]:
        series, _ = self.store.series(Labels.of({"__name__": name, **labels}))
        return list(series.window(0, 2**62)[1])


def alert(name: str, expr: str, **kwargs: object) -> AlertingRuleSpec:
    for key in ("labels", "annotations"):
        if key in kwargs:
            kwargs[key] = FrozenMap(kwargs[key])  # type: ignore[arg-type]
    return AlertingRuleSpec(alert=name, expr=expr, **kwargs)  # type: ignore[arg-type]


def states(group: RuleGroup, index: int = 0) -> dict[str, str]:
    rule = group.rules[index]
    assert isinstance(rule, AlertingRule)
    return {a.labels.get("instance"): a.state.value for a in rule.active.values()}


def only_alert(group: RuleGroup, index: int = 0):  # type: ignore[no-untyped-def]
    rule = group.rules[index]
    assert isinstance(rule, AlertingRule)
    (a,) = rule.active.values()
    return a


def test_pending_then_firing_after_for_then_resolved_and_dropped_after_15m() -> None:
    w = World()
    g = w.group(alert("Up", "m > 0", for_=60.0))
    for t in range(0, 121, 15):
        w.sample(T0 + t, 1, instance="a")
    g.evaluate(T0)
    a = only_alert(g)
    assert a.state is AlertState.PENDING and a.active_at == T0
    g.evaluate(T0 + 45)
    assert a.state is AlertState.PENDING
    g.evaluate(T0 + 60)
    assert a.state is AlertState.FIRING and a.fired_at == T0 + 60 and a.active_at == T0
    w.sample(T0 + 135, 0, instance="a")
    g.evaluate(T0 + 135)
    assert a.state is AlertState.INACTIVE and a.resolved_at == T0 + 135
    assert g.rules[0].alerts() == []  # type: ignore[union-attr]
    g.evaluate(T0 + 135 + 900)
    assert a in g.rules[0].active.values()  # type: ignore[union-attr]  # kept 15 m
    g.evaluate(T0 + 135 + 901)
    assert not g.rules[0].active  # type: ignore[union-attr]


def test_for_zero_fires_on_first_evaluation() -> None:
    w = World()
    g = w.group(alert("Up", "m > 0"))
    w.sample(T0, 1, instance="a")
    g.evaluate(T0)
    assert only_alert(g).state is AlertState.FIRING


def test_pending_alert_whose_result_disappears_is_deleted() -> None:
    w = World()
    g = w.group(alert("Up", "m > 0", for_=300.0))
    w.sample(T0, 1, instance="a")
    g.evaluate(T0)
    assert states(g) == {"a": "pending"}
    w.sample(T0 + 15, 0, instance="a")
    g.evaluate(T0 + 15)
    assert states(g) == {}


def test_resolved_alert_coming_back_starts_pending_again_with_new_active_at() -> None:
    w = World()
    g = w.group(alert("Up", "m > 0", for_=30.0))
    w.sample(T0, 1, instance="a")
    g.evaluate(T0)
    g.evaluate(T0 + 30)
    w.sample(T0 + 45, 0, instance="a")
    g.evaluate(T0 + 45)
    w.sample(T0 + 60, 1, instance="a")
    g.evaluate(T0 + 60)
    a = only_alert(g)
    assert a.state is AlertState.PENDING and a.active_at == T0 + 60


def test_keep_firing_for_holds_a_firing_alert_with_its_value_frozen() -> None:
    w = World()
    g = w.group(alert("High", "m > 5", keep_firing_for=60.0))
    w.sample(T0, 9, instance="a")
    g.evaluate(T0)
    a = only_alert(g)
    assert a.state is AlertState.FIRING and a.value == 9
    w.sample(T0 + 15, 1, instance="a")
    g.evaluate(T0 + 15)
    assert a.state is AlertState.FIRING and a.value == 9 and a.keep_firing_since == T0 + 15
    g.evaluate(T0 + 74)
    assert a.state is AlertState.FIRING
    g.evaluate(T0 + 75)
    assert a.state is AlertState.INACTIVE and a.resolved_at == T0 + 75


def test_keep_firing_for_resets_when_the_result_returns() -> None:
    w = World()
    g = w.group(alert("High", "m > 5", keep_firing_for=60.0))
    w.sample(T0, 9, instance="a")
    g.evaluate(T0)
    w.sample(T0 + 15, 1, instance="a")
    g.evaluate(T0 + 15)
    w.sample(T0 + 30, 7, instance="a")
    g.evaluate(T0 + 30)
    a = only_alert(g)
    assert a.keep_firing_since is None and a.value == 7 and a.state is AlertState.FIRING


def test_keep_firing_for_does_not_hold_pending_alerts() -> None:
    w = World()
    g = w.group(alert("High", "m > 5", for_=60.0, keep_firing_for=60.0))
    w.sample(T0, 9, instance="a")
    g.evaluate(T0)
    w.sample(T0 + 15, 1, instance="a")
    g.evaluate(T0 + 15)
    assert states(g) == {}


def test_query_error_leaves_alert_state_untouched_and_sets_health() -> None:
    w = World()
    # Two series that collide once __name__ is dropped: `vector cannot contain metrics with the same labelset`.
    g = w.group(alert("X", "{__name__=~\"m|n\"} + 0 > 0", for_=30.0))
    w.sample(T0, 1, instance="a")
    g.evaluate(T0)
    a = only_alert(g)
    rule = g.rules[0]
    assert rule.status.health == "ok"
    w.sample(T0 + 15, 1, name="n", instance="a")
    w.sample(T0 + 15, 1, instance="a")
    g.evaluate(T0 + 45)
    assert rule.status.health == "err" and "same labelset" in rule.status.last_error
    assert only_alert(g) is a and a.state is AlertState.PENDING  # not fired although `for` passed
    assert w.values("ALERTS", T0 + 45) == {'ALERTS{alertname="X",alertstate="pending",instance="a"}': 1.0}


def test_duplicate_label_set_after_alert_labels_is_a_rule_error() -> None:
    w = World()
    g = w.group(alert("X", "m > 0", labels={"instance": "same"}))
    w.sample(T0, 1, instance="a")
    w.sample(T0, 1, instance="b")
    g.evaluate(T0)
    rule = g.rules[0]
    assert rule.status.health == "err"
    assert rule.status.last_error == "vector contains metrics with the same labelset after applying alert labels"
    assert not rule.active  # type: ignore[union-attr]


def test_limit_fails_the_rule_and_clears_its_alerts() -> None:
    w = World()
    g = w.group(alert("X", "m > 0"), limit=1)
    w.sample(T0, 1, instance="a")
    g.evaluate(T0)
    assert states(g) == {"a": "firing"}
    w.sample(T0 + 15, 1, instance="a")
    w.sample(T0 + 15, 1, instance="b")
    g.evaluate(T0 + 15)
    assert g.rules[0].status.last_error == "exceeded limit of 1 with 2 alerts"
    assert states(g) == {}
    assert w.values("ALERTS", T0 + 15) == {}  # stale markers


def test_recording_rule_limit() -> None:
    w = World()
    g = w.group(RecordingRuleSpec(record="r", expr="m"), limit=1)
    w.sample(T0, 1, instance="a")
    w.sample(T0, 1, instance="b")
    g.evaluate(T0)
    assert g.rules[0].status.last_error == "exceeded limit 1 with 2 series"
    assert w.values("r", T0) == {}


def test_label_and_annotation_templates_with_value_labels_and_external_labels() -> None:
    w = World(external_labels={"cluster": "eu"}, external_url="https://alertd.example.com")
    g = w.group(
        alert(
            "Disk",
            "m > 80",
            labels={"severity": "{{ if gt $value 90.0 }}page{{ else }}ticket{{ end }}", "instance": "{{ $labels.instance }}:x"},
            annotations={
                "summary": "{{ $labels.instance }} at {{ $value }}% ({{ $externalLabels.cluster }})",
                "link": "{{ $externalURL }}/x",
                "metric": "{{ $labels.__name__ }}",
            },
        ),
        labels=FrozenMap({"team": "db", "severity": "none"}),
    )
    w.sample(T0, 95, instance="db1")
    g.evaluate(T0)
    a = only_alert(g)
    assert a.labels.to_dict() == {"alertname": "Disk", "instance": "db1:x", "severity": "page", "team": "db"}
    assert a.annotations == {
        "summary": "db1 at 95% (eu)",
        "link": "https://alertd.example.com/x",
        "metric": "m",
    }
    (sent,) = w.sink.sent()
    assert sent.labels == {"alertname": "Disk", "instance": "db1:x", "severity": "page", "team": "db", "cluster": "eu"}
    assert sent.generator_url == "https://alertd.example.com/graph?g0.expr=m%20%3E%2080&g0.tab=1"
    assert sent.starts_at == T0 and sent.ends_at == T0 + 4 * 60 and not sent.resolved


def test_template_value_change_updates_annotations_but_keeps_identity() -> None:
    w = World()
    g = w.group(alert("X", "m > 0", for_=60.0, annotations={"v": "{{ $value }}"}))
    w.sample(T0, 1, instance="a")
    g.evaluate(T0)
    a = only_alert(g)
    w.sample(T0 + 15, 2, instance="a")
    g.evaluate(T0 + 15)
    assert only_alert(g) is a and a.annotations == {"v": "2"} and a.active_at == T0


def test_template_query_function_runs_at_the_evaluation_time() -> None:
    w = World()
    g = w.group(alert("X", "m > 0", annotations={"n": '{{ with query "count(m)" }}{{ . | first | value }}{{ end }}'}))
    w.sample(T0, 1, instance="a")
    w.sample(T0, 1, instance="b")
    g.evaluate(T0)
    rule = g.rules[0]
    assert {a.annotations["n"] for a in rule.active.values()} == {"2"}  # type: ignore[union-attr]


def test_alerts_and_alerts_for_state_series_with_stale_markers() -> None:
    w = World()
    g = w.group(alert("X", "m > 0", for_=15.0, labels={"severity": "page"}))
    w.sample(T0, 1, instance="a")
    g.evaluate(T0)
    assert w.values("ALERTS", T0) == {'ALERTS{alertname="X",alertstate="pending",instance="a",severity="page"}': 1.0}
    assert w.values("ALERTS_FOR_STATE", T0) == {'ALERTS_FOR_STATE{alertname="X",instance="a",severity="page"}': T0}
    w.sample(T0 + 15, 1, instance="a")
    g.evaluate(T0 + 15)
    assert w.values("ALERTS", T0 + 15) == {'ALERTS{alertname="X",alertstate="firing",instance="a",severity="page"}': 1.0}
    pending = w.raw("ALERTS", alertname="X", alertstate="pending", instance="a", severity="page")
    assert pending[0] == 1.0 and is_stale(pending[1])
    w.sample(T0 + 30, 0, instance="a")
    g.evaluate(T0 + 30)
    assert w.values("ALERTS", T0 + 30) == {} and w.values("ALERTS_FOR_STATE", T0 + 30) == {}


def test_query_offset_shifts_the_query_and_the_written_samples() -> None:
    w = World()
    g = w.group(RecordingRuleSpec(record="r", expr="m"), query_offset=60.0)
    w.sample(T0 - 60, 5, instance="a")
    w.sample(T0, 7, instance="a")
    g.evaluate(T0)
    series, _ = w.store.series(Labels.of({"__name__": "r", "instance": "a"}))
    assert series.last() == (int((T0 - 60) * 1000), 5.0)


def test_recording_rules_feed_alerting_rules_in_the_same_group_and_in_later_groups() -> None:
    w = World()
    g1 = w.group(
        RecordingRuleSpec(record="job:m:sum", expr="sum by (job) (m)", labels=FrozenMap({"src": "rec"})),
        alert("SumHigh", "job:m:sum > 5"),
        name="first",
    )
    g2 = w.group(alert("SumHigher", 'job:m:sum{src="rec"} > 8'), name="second")
    assert len(g1._batches) == 2  # the alert reads what the recording rule writes: a later batch
    w.sample(T0, 4, job="a", instance="1")
    w.sample(T0, 5, job="a", instance="2")
    g1.evaluate(T0)
    assert {a.labels.get("job") for a in g1.rules[1].alerts()} == {"a"}  # type: ignore[union-attr]
    g2.evaluate(T0 + 1)
    (a,) = g2.rules[0].alerts()  # type: ignore[union-attr]
    assert a.labels.to_dict() == {"alertname": "SumHigher", "job": "a", "src": "rec"} and a.value == 9
    assert w.values("job:m:sum", T0) == {'job:m:sum{job="a",src="rec"}': 9.0}


def test_rules_not_reading_recorded_names_share_one_batch() -> None:
    w = World()
    g = w.group(
        RecordingRuleSpec(record="r1", expr="sum(m)"),
        alert("A", "m > 1"),
        alert("B", "m > 2"),
        RecordingRuleSpec(record="r2", expr="r1 * 2"),
        alert("C", "rate(m[5m]) > 0"),
    )
    assert g._batches == [[0, 1, 2], [3, 4]]


def test_recording_rule_stale_markers_when_a_series_goes_away() -> None:
    w = World()
    g = w.group(RecordingRuleSpec(record="r", expr="m"))
    w.sample(T0, 1, instance="a")
    w.sample(T0, 1, instance="b")
    g.evaluate(T0)
    w.sample(T0 + 15, 2, instance="a")
    w.sample(T0 + 15, STALE_NAN, instance="b")  # the source series ended
    g.evaluate(T0 + 15)
    assert w.values("r", T0 + 15) == {'r{instance="a"}': 2.0}
    gone = w.raw("r", instance="b")
    assert gone[0] == 1.0 and is_stale(gone[1])


def test_scalar_results_and_wrong_result_types() -> None:
    w = World()
    g = w.group(RecordingRuleSpec(record="one", expr="1 + 1"), alert("S", "vector(1) > 0"))
    g.evaluate(T0)
    assert w.values("one", T0) == {"one": 2.0}
    assert only_alert(g, 1).labels.to_dict() == {"alertname": "S"}


def test_rule_status_and_evaluation_times() -> None:
    w = World()
    g = w.group(alert("X", "m > 0"))
    g.evaluate(T0)
    rule = g.rules[0]
    assert rule.status.health == "ok" and rule.status.last_evaluation == T0
    assert g.last_evaluation == T0 and g.evaluation_time >= 0


def test_sends_firing_and_resolved_as_prometheus_does() -> None:
    w = World()
    g = w.group(alert("X", "m > 0", for_=15.0))
    w.sample(T0, 1, instance="a")
    g.evaluate(T0)
    assert w.sink.sent() == []  # pending alerts are not sent
    g.evaluate(T0 + 15)
    g.evaluate(T0 + 30)  # within the resend delay
    g.evaluate(T0 + 76)  # resent
    assert [s.resolved for s in w.sink.sent()] == [False, False]
    w.sample(T0 + 90, 0, instance="a")
    g.evaluate(T0 + 90)
    last = w.sink.sent()[-1]
    assert last.resolved and last.ends_at == T0 + 90 and last.starts_at == T0 + 15
    assert last.to_json()["endsAt"].startswith("2023-11-14T22:14:50")


@pytest.mark.parametrize("value,expected", [(1.0, "1e+00"), (0.5, "5e-01"), (123.25, "1.2325e+02"), (math.nan, "NaN")])
def test_api_value_format(value: float, expected: str) -> None:
    from daemon.api.rules import format_value

    assert format_value(value) == expected
