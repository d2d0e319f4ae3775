"""The store: selection through the postings index, label names and values, gc and revival."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.tsdb import OK, Labels, Matcher, Series, Store, parse_selector

SERIES = [
    {"__name__": "up", "job": "api", "instance": "a:9100"},
    {"__name__": "up", "job": "api", "instance": "b:9100"},
    {"__name__": "up", "job": "db", "instance": "c:9100"},
    {"__name__": "http_requests_total", "job": "api", "instance": "a:9100", "code": "200"},
    {"__name__": "http_requests_total", "job": "api", "instance": "a:9100", "code": "500"},
    {"__name__": "http_requests_total", "job": "api", "instance": "b:9100"},
]


@pytest.fixture
def store() -> Store:
    store = Store(retention=300)
    for labels in SERIES:
        series, created = store.series(Labels.of(labels))
        assert created
        assert store.append(series, 1000, 1.0) == OK
    return store


def selected(store: Store, selector: str) -> list[dict[str, str]]:
    return [s.labels.to_dict() for s in store.select(parse_selector(selector))]


def expected(*indexes: int) -> list[dict[str, str]]:
    return [SERIES[i] for i in indexes]


def test_series_is_get_or_create_with_one_labels_object(store: Store) -> None:
    again, created = store.series(Labels.of(SERIES[0]))
    assert not created
    assert again is store.select(parse_selector('up{instance="a:9100"}'))[0]
    assert again.labels is not Labels.of(SERIES[0])  # the stored, interned label set is kept
    assert store.num_series == len(SERIES)
    assert store.num_samples == len(SERIES)


@pytest.mark.parametrize(
    ("selector", "indexes"),
    [
        ("up", (0, 1, 2)),
        ('up{job="api"}', (0, 1)),
        ('up{job!="api"}', (2,)),
        ('up{instance=~"a.*|c.*"}', (0, 2)),
        ('up{instance!~"a.*"}', (1, 2)),
        ('{job="api"}', (0, 1, 3, 4, 5)),
        ('{job="api",instance="a:9100"}', (0, 3, 4)),
        ('{__name__=~"http.*",code=~"5.."}', (4,)),
        ('{__name__=~"up|http_requests_total",instance="b:9100"}', (1, 5)),
        ('{__name__!="up",job="api"}', (3, 4, 5)),
        ('{__name__=~".+"}', (0, 1, 2, 3, 4, 5)),
        ('up{job="nope"}', ()),
        ('{job="api",instance="c:9100"}', ()),
        ('{nope=~".+"}', ()),
    ],
)
def test_select_each_operator_and_combinations(store: Store, selector: str, indexes: tuple[int, ...]) -> None:
    assert selected(store, selector) == expected(*indexes)


def test_absent_label_has_the_empty_value(store: Store) -> None:
    assert selected(store, 'http_requests_total{code=""}') == expected(5)
    assert selected(store, 'http_requests_total{code!=""}') == expected(3, 4)
    assert selected(store, 'http_requests_total{code=~"|200"}') == expected(3, 5)
    assert selected(store, 'http_requests_total{code!~".*"}') == []
    assert selected(store, 'http_requests_total{code=~".*"}') == expected(3, 4, 5)
    assert selected(store, '{code!=""}') == expected(3, 4)


def test_regex_is_fully_anchored(store: Store) -> None:
    assert selected(store, 'up{job=~"ap"}') == []
    assert selected(store, 'up{job=~"pi"}') == []
    assert selected(store, 'up{job=~"api|d"}') == expected(0, 1)
    assert selected(store, 'up{job!~"ap"}') == expected(0, 1, 2)


def test_select_without_a_narrowing_matcher_scans_all(store: Store) -> None:
    assert [s.labels.to_dict() for s in store.select([Matcher("code", "=", "")])] == expected(0, 1, 2, 5)
    assert len(store.select([])) == len(SERIES)


def test_matcher_semantics() -> None:
    assert Matcher("a", "=~", "a.c").matches("a\nc")  # `.` matches newlines, as in Prometheus 3
    assert Matcher("a", "=~", "[[:digit:]]+").matches("123")
    assert not Matcher("a", "=~", "[[:digit:]]+").matches("12a")
    assert Matcher("a", "=~", "a|b").matches("b") and not Matcher("a", "=~", "a|b").matches("ab")
    assert Matcher("a", "!~", "a|b").matches("")
    assert Matcher("a", "=~", "x") == Matcher("a", "=~", "x")
    with pytest.raises(ValueError):
        Matcher("a", "==", "x")


def test_label_names_and_values(store: Store) -> None:
    assert store.label_names() == ["__name__", "code", "instance", "job"]
    assert store.label_values("job") == ["api", "db"]
    assert store.label_values("__name__") == ["http_requests_total", "up"]
    assert store.label_values("nope") == []
    assert store.label_names([parse_selector("up")]) == ["__name__", "instance", "job"]
    assert store.label_values("instance", [parse_selector('up{job="api"}')]) == ["a:9100", "b:9100"]
    # several selectors are OR-ed
    assert store.label_values("instance", [parse_selector('{job="db"}'), parse_selector('{code="500"}')]) == [
        "a:9100",
        "c:9100",
    ]
    assert store.label_values("code", [parse_selector("up")]) == []
    assert store.label_names([parse_selector('{job="none"}')]) == []


def test_gc_drops_old_samples_then_empty_series_and_their_postings() -> None:
    store = Store(retention=100)
    old, _ = store.series(Labels.of({"__name__": "old", "job": "gone"}))
    live, _ = store.series(Labels.of({"__name__": "live", "job": "api"}))
    for t in (0, 50_000, 100_000):
        store.append(old, t, 1.0)
        store.append(live, t, 1.0)
    store.append(live, 150_000, 1.0)
    assert store.gc(150_000) == 0  # cutoff 50_000: samples at t <= 50_000 go
    assert list(old.window(-1, 10**9)[0]) == [100_000]
    assert list(live.window(-1, 10**9)[0]) == [100_000, 150_000]
    assert store.num_samples == 3
    assert store.gc(200_000) == 1
    assert store.num_series == 1
    assert store.select(parse_selector("old")) == []
    assert store.select(parse_selector('{job=~".+"}')) == [live]
    assert store.label_names() == ["__name__", "job"]
    assert store.label_values("job") == ["api"]
    assert store.label_values("__name__") == ["live"]
    assert store._postings.get("job", "gone") is None


def test_gc_shrinks_rings_after_retention_is_lowered() -> None:
    store = Store(retention=3600)
    s, _ = store.series(Labels.of({"__name__": "x"}))
    for i in range(240):
        store.append(s, i * 15_000, 1.0)
    big = len(s._ts)
    store.retention = 300
    store.gc(239 * 15_000)
    assert len(s) == 20
    assert len(s._ts) < big / 4
    assert list(s.window(-1, 10**9)[0]) == [i * 15_000 for i in range(220, 240)]


def test_append_to_a_series_gc_dropped_revives_it() -> None:
    store = Store(retention=60)
    cached, _ = store.series(Labels.of({"__name__": "up", "job": "api"}))
    store.append(cached, 0, 1.0)
    assert store.gc(120_000) == 1
    assert store.num_series == 0
    assert store.append(cached, 130_000, 1.0) == OK
    assert store.num_series == 1
    assert store.select(parse_selector('up{job="api"}')) == [cached]
    assert store.series(Labels.of({"__name__": "up", "job": "api"})) == (cached, False)
    assert store.label_values("job") == ["api"]


def test_revive_prefers_a_series_created_again_meanwhile() -> None:
    store = Store(retention=60)
    labels = Labels.of({"__name__": "up"})
    stale_ref, _ = store.series(labels)
    store.gc(0)
    fresh, created = store.series(labels)
    assert created and fresh is not stale_ref
    store.append(stale_ref, 1000, 5.0)
    assert store.select(parse_selector("up")) == [fresh]
    assert fresh.last() == (1000, 5.0)


def test_postings_stay_sorted_through_gc_and_revival() -> None:
    store = Store(retention=60)
    series = [store.series(Labels.of({"__name__": "m", "i": str(i)}))[0] for i in range(10)]
    for s in series[::2]:
        store.append(s, 100_000, 1.0)
    store.gc(100_000)  # the odd ones never had samples
    for s in series[1::2]:
        store.append(s, 100_000, 1.0)
    refs = store._postings.get("__name__", "m")
    assert refs is not None and list(refs) == sorted(refs) and len(refs) == 10
    assert {s.labels.get("i") for s in store.select(parse_selector('m{i=~"[0-4]"}'))} == set("01234")


def test_retention_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Store(retention=0)


_NAMES = ["__name__", "a", "b", "c"]
_VALUES = ["", "x", "y", "xy", "z"]
_label_sets = st.lists(
    st.fixed_dictionaries({n: st.sampled_from(_VALUES) for n in _NAMES}), min_size=1, max_size=30
)
_matchers = st.lists(
    st.builds(
        Matcher,
        st.sampled_from(_NAMES + ["d"]),
        st.sampled_from(["=", "!=", "=~", "!~"]),
        st.sampled_from(_VALUES + ["x.*", ".*", ".+", "x|z", "[xy]+"]),
    ),
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(label_sets=_label_sets, matchers=_matchers, pattern=st.lists(st.integers(0, 2), min_size=1))
def test_select_agrees_with_a_brute_force_filter(
    label_sets: list[dict[str, str]], matchers: list[Matcher], pattern: list[int]
) -> None:
    store = Store(retention=10)
    all_series: list[Series] = []
    for labels in label_sets:
        series, created = store.series(Labels.of(labels))
        if created:
            all_series.append(series)
    for i, series in enumerate(all_series):
        kind = pattern[i % len(pattern)]
        if kind:  # 0: no sample, 1: a sample gc will drop, 2: a sample gc keeps
            store.append(series, 1000 if kind == 1 else 11_000, 1.0)
    store.gc(20_000)
    for series in all_series[::2]:
        store.append(series, 15_000, 1.0)  # revives the dropped ones
    live = [s for s in all_series if len(s)]
    assert store.num_series == len(live)
    want = [s for s in live if all(m.matches(s.labels.get(m.name)) for m in matchers)]
    got = store.select(matchers)
    assert {id(s) for s in got} == {id(s) for s in want}
    assert len(got) == len(want)
    names = {n for s in want for n in s.labels.names()}
    assert store.label_names([matchers]) == sorted(names)


def test_select_filters_few_candidates_one_by_one_and_many_through_postings() -> None:
    store = Store(retention=300)
    for i in range(200):
        labels = {"__name__": "rare" if i < 3 else "common", "id": f"id-{i}", "kind": "odd" if i % 2 else "even"}
        series, _ = store.series(Labels.of(labels))
        store.append(series, 1000, float(i))

    def ids(selector: str) -> list[str]:
        return [s.labels.get("id") for s in store.select(parse_selector(selector))]

    # 200 distinct ids but 3 candidates: judged per series.
    assert ids('rare{id=~"id-[12]"}') == ["id-1", "id-2"]
    assert ids('rare{id!~"id-[12]"}') == ["id-0"]
    # 2 distinct kinds over 197 candidates: through the postings.
    assert len(ids('common{kind="odd"}')) == 99
    assert len(ids('common{kind!="odd"}')) == 98
    assert len(ids('common{kind=~"odd|none"}')) == 99
    assert ids('{kind=~"odd|even",id=~"id-1.?"}') == [f"id-{i}" for i in range(1, 20) if i == 1 or i >= 10]
    assert ids('{id=~"id-19.", kind!="even"}') == ["id-191", "id-193", "id-195", "id-197", "id-199"]
