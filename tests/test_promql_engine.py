"""Unit tests of the PromQL evaluator: its interface, sharing, errors and the hot-path functions.

Prometheus' semantics are covered case by case in ``test_promql_conformance.py``; these tests
pin what the conformance scripts do not: the engine's own API (compile once, ``instant_many``
sharing, errors in place), hand-built syntax trees, and the range functions on raw arrays.
"""

from __future__ import annotations

import math
from array import array

import pytest

from daemon.promql import arith
from daemon.promql.ast import AggregateExpr, BinaryExpr, Call, MatrixSelector, NumberLiteral, VectorSelector
from daemon.promql.engine import Engine, Query, QueryError
from daemon.promql.functions import changes, deriv, increase, rate, resets
from daemon.promql.histogram import bucket_quantile
from daemon.promql.value import Sample, Scalar, SeriesPoints, String
from daemon.tsdb import STALE_NAN, Labels, Matcher, Store

STEP_MS = 15_000


def _store(*series: tuple[dict[str, str], list[float]]) -> Store:
    store = Store(retention=86_400)
    for labels, values in series:
        s, _ = store.series(Labels.of(labels))
        for i, v in enumerate(values):
            store.append(s, i * STEP_MS, v)
    return store


def _by_labels(result: object) -> dict[str, float]:
    assert isinstance(result, list)
    return {str(s.labels): s.value for s in result}


@pytest.fixture
def counters() -> Store:
    return _store(
        ({"__name__": "requests_total", "job": "api", "code": "200"}, [float(i * 15) for i in range(21)]),
        ({"__name__": "requests_total", "job": "api", "code": "500"}, [float(i * 3) for i in range(21)]),
        ({"__name__": "requests_total", "job": "web", "code": "200"}, [float(i * 30) for i in range(21)]),
    )


def test_instant_selector_and_rate(counters: Store) -> None:
    engine = Engine(counters)
    assert _by_labels(engine.instant('requests_total{code="500"}', 300)) == {'requests_total{code="500",job="api"}': 60.0}
    rates = _by_labels(engine.instant("rate(requests_total[5m])", 300))
    assert rates == pytest.approx({'{code="200",job="api"}': 1.0, '{code="500",job="api"}': 0.2, '{code="200",job="web"}': 2.0})


def test_hand_built_tree_evaluates_like_text(counters: Store) -> None:
    selector = VectorSelector("requests_total", (Matcher("__name__", "=", "requests_total"),))
    tree = AggregateExpr("sum", Call("rate", (MatrixSelector(selector, 300.0),)), grouping=("job",))
    engine = Engine(counters)
    assert _by_labels(engine.instant(tree, 300)) == _by_labels(engine.instant("sum by (job) (rate(requests_total[5m]))", 300))


def test_scalar_and_string_results(counters: Store) -> None:
    engine = Engine(counters)
    assert engine.instant("1 + 2 * 3", 0) == Scalar(7.0)
    assert engine.instant('"hello"', 0) == String("hello")
    assert engine.instant("time()", 42) == Scalar(42.0)


def test_lookback_and_stale_markers() -> None:
    store = _store(({"__name__": "g", "i": "1"}, [1.0, 2.0, STALE_NAN]), ({"__name__": "g", "i": "2"}, [5.0]))
    engine = Engine(store)
    assert _by_labels(engine.instant("g", 15)) == {'g{i="1"}': 2.0, 'g{i="2"}': 5.0}
    # The stale marker at 30 s ends series 1 at once; series 2 lasts until its lookback runs out.
    assert _by_labels(engine.instant("g", 30)) == {'g{i="2"}': 5.0}
    assert _by_labels(engine.instant("g", 300)) == {}
    assert Engine(store, lookback=60).instant("g", 61) == []


def test_range_query_points_and_resolution_limit(counters: Store) -> None:
    result = Engine(counters).range('requests_total{code="500"}', 0, 60, 30)
    assert result == [SeriesPoints(Labels.of({"__name__": "requests_total", "code": "500", "job": "api"}), [(0, 0.0), (30_000, 6.0), (60_000, 12.0)])]
    with pytest.raises(QueryError, match="exceeded maximum resolution of 11,000 points per timeseries"):
        Engine(counters).range("requests_total", 0, 12_000, 1)


def test_matrix_result_of_instant_query(counters: Store) -> None:
    result = Engine(counters).instant('requests_total{code="500"}[45s]', 300)
    assert isinstance(result, list) and isinstance(result[0], SeriesPoints)
    assert result[0].points == [(270_000, 54.0), (285_000, 57.0), (300_000, 60.0)]


def test_compiled_query_is_reusable(counters: Store) -> None:
    engine = Engine(counters)
    query = engine.compile("sum(rate(requests_total[1m]))")
    assert isinstance(query, Query) and query.type == "vector"
    first = query.instant(300)
    assert query.instant(300) == first
    assert len(query.range(120, 300, 60)[0].points) == 4


def test_instant_many_shares_subexpressions(counters: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(counters)
    queries = [
        engine.compile("sum by (job) (rate(requests_total[5m])) > 1"),
        engine.compile("sum by (job) (rate(requests_total[5m])) > 0.5"),
        engine.compile('requests_total{job="api"} > 0'),
    ]
    selections: list[object] = []
    original = counters.select

    def counting_select(matchers: object) -> object:
        selections.append(matchers)
        return original(matchers)  # type: ignore[arg-type]

    monkeypatch.setattr(counters, "select", counting_select)
    results = engine.instant_many(queries, 300)
    # The shared rate and sum ran once: one selection for it, one for the third query.
    assert len(selections) == 2
    assert _by_labels(results[0]) == pytest.approx({'{job="web"}': 2.0, '{job="api"}': 1.2})
    assert _by_labels(results[1]) == pytest.approx({'{job="web"}': 2.0, '{job="api"}': 1.2})
    assert len(results[2]) == 2  # type: ignore[arg-type]


def test_instant_many_returns_errors_in_place(counters: Store) -> None:
    engine = Engine(counters)
    queries = [engine.compile("requests_total * on(job) requests_total"), engine.compile("vector(1)")]
    bad, good = engine.instant_many(queries, 300)
    assert isinstance(bad, QueryError)
    assert "many-to-many matching not allowed" in str(bad)
    assert good == [Sample(Labels(), 1.0)]


def test_duplicate_labelset_after_dropping_names() -> None:
    store = _store(({"__name__": "a", "x": "1"}, [1.0]), ({"__name__": "b", "x": "1"}, [2.0]))
    with pytest.raises(QueryError, match="vector cannot contain metrics with the same labelset"):
        Engine(store).instant('abs({__name__=~"a|b"})', 0)


def test_binary_operators_follow_go_float_semantics() -> None:
    engine = Engine(Store())
    assert engine.instant("1 / 0", 0) == Scalar(math.inf)
    assert math.isnan(engine.instant("0 / 0", 0).value)  # type: ignore[union-attr]
    assert engine.instant("-7 % 3", 0) == Scalar(-1.0)
    assert engine.instant("0 ^ -1", 0) == Scalar(math.inf)
    assert math.isnan(engine.instant("(-8) ^ 0.5", 0).value)  # type: ignore[union-attr]
    tree = BinaryExpr(">", NumberLiteral(2.0), NumberLiteral(1.0), return_bool=True)
    assert engine.instant(tree, 0) == Scalar(1.0)


def test_subquery_steps_are_aligned(counters: Store) -> None:
    result = Engine(counters).instant('requests_total{code="500"}[1m:20s]', 70)
    assert isinstance(result, list)
    assert [t for t, _ in result[0].points] == [20_000, 40_000, 60_000]


def test_rate_extrapolates_to_the_window_edges() -> None:
    ts = array("q", [15_000, 30_000, 45_000, 60_000])
    vals = array("d", [10.0, 20.0, 30.0, 40.0])
    # 45 s of samples in a 60 s window, 15 s short of the start: extrapolated to the full minute.
    assert rate(ts, vals, 0, 60_000, ()) == pytest.approx(40.0 / 60)
    assert increase(ts, vals, 0, 60_000, ()) == pytest.approx(40.0)


def test_rate_does_not_extrapolate_below_zero() -> None:
    ts = array("q", [30_000, 45_000, 60_000])
    vals = array("d", [1.0, 11.0, 21.0])
    # Extrapolating 30 s back would reach -19; a counter stops at 0, 1.5 s before the first sample.
    assert increase(ts, vals, 0, 60_000, ()) == pytest.approx(20.0 * (30 + 1.5 + 0) / 30)


def test_counter_resets_are_compensated() -> None:
    ts = array("q", [0, 15_000, 30_000, 45_000])
    vals = array("d", [5.0, 10.0, 2.0, 6.0])
    assert resets(ts, vals, 0, 45_000, ()) == 1.0
    assert changes(ts, vals, 0, 45_000, ()) == 3.0
    # 10 lost at the reset: 6 - 5 + 10 = 11 over 45 s of samples; the first sample is one
    # interval from the window start (under 1.1 intervals), so it extrapolates all the way there.
    assert increase(ts, vals, -15_000, 45_000, ()) == pytest.approx(11.0 * 60 / 45)


def test_deriv_is_least_squares_slope() -> None:
    ts = array("q", [0, 10_000, 20_000, 30_000])
    vals = array("d", [1.0, 3.0, 5.0, 7.0])
    assert deriv(ts, vals, 0, 30_000, ()) == pytest.approx(0.2)


def test_bucket_quantile_interpolates_and_fixes_monotonicity() -> None:
    buckets = [(0.1, 10.0), (0.5, 30.0), (1.0, 40.0), (math.inf, 40.0)]
    value, forced = bucket_quantile(0.5, buckets)
    assert value == pytest.approx(0.1 + 0.4 * (10 / 20)) and not forced
    # le="0.5" below le="0.1" is raised to 10: the median (rank 10) then ends the first bucket.
    value, forced = bucket_quantile(0.5, [(0.1, 10.0), (0.5, 8.0), (math.inf, 20.0)])
    assert forced and value == pytest.approx(0.1)
    assert math.isnan(bucket_quantile(0.5, [(0.1, 10.0), (0.5, 20.0)])[0])  # no +Inf bucket


def test_kahan_sum_matches_prometheus_on_cancellation() -> None:
    assert arith.kahan_sum([1e100, 1.0, -1e100]) == 1.0
    assert arith.kahan_sum([0.1] * 10) == pytest.approx(1.0)
    assert arith.mean([1e308, 1e308, -1e308]) == pytest.approx(1e308 / 3)


def test_format_float_like_go() -> None:
    assert arith.format_float(1.0) == "1"
    assert arith.format_float(0.00001234) == "0.00001234"
    assert arith.format_float(-math.inf) == "-Inf"
