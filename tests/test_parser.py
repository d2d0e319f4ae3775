"""The exposition parser: text format, the series-cache fast path, errors, real payloads, fuzzing."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from daemon.scrape.parser import OPENMETRICS, TEXT, NewSeries, Parsed, ParseError, ParserMemo, format_of, parse
from daemon.tsdb.labels import Labels

CONFORMANCE = Path(
    os.environ.get("ALERTD_CONFORMANCE", Path(__file__).resolve().parents[1].parent / "shared" / "conformance")
)
EXPOSITION = CONFORMANCE / "exposition"


def labels_of(parsed: Parsed) -> list[Labels]:
    out = []
    for ref in parsed.refs:
        assert isinstance(ref, NewSeries)
        out.append(ref.labels)
    return out


def warm_cache(parsed: Parsed) -> dict[str, object]:
    """What the scrape loop stores after resolving a parse: head -> its own reference."""
    return {parsed.refs[i].head: parsed.refs[i].labels for i in parsed.new}  # type: ignore[attr-defined]


def same_values(a: Parsed, b: Parsed) -> bool:
    if len(a.values) != len(b.values):
        return False
    return all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a.values, b.values))


def assert_warm_matches_cold(text: str, fmt: str = TEXT) -> None:
    cold = parse(text, {}, fmt)
    cache = warm_cache(cold)
    warm = parse(text, cache, fmt)
    assert warm.new == []
    assert warm.refs == [ref.labels for ref in cold.refs]  # type: ignore[attr-defined]
    assert same_values(cold, warm)
    assert warm.timestamps == cold.timestamps


# --- format selection --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "fmt"),
    [
        ("application/openmetrics-text; version=1.0.0; charset=utf-8", OPENMETRICS),
        ("Application/OpenMetrics-Text", OPENMETRICS),
        ("text/plain; version=0.0.4; charset=utf-8", TEXT),
        ("", TEXT),
        (None, TEXT),
    ],
)
def test_format_of(content_type: str | None, fmt: str) -> None:
    assert format_of(content_type) == fmt


# --- text format ---------------------------------------------------------------------------


def test_basic_text_payload() -> None:
    text = (
        "# HELP http_requests_total Requests.\n"
        "# TYPE http_requests_total counter\n"
        'http_requests_total{method="GET",code="200"} 1027 1395066363000\n'
        'http_requests_total{method="POST",code="400"}    3 1395066363000\n'
        "\n"
        "# a free comment\n"
        "metric_without_labels 12.47\n"
        'msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",error="Cannot find file:\\n\\"FILE.TXT\\""} 1.458255915e9\n'
    )
    parsed = parse(text, {})
    assert list(parsed.values) == [1027.0, 3.0, 12.47, 1.458255915e9]
    assert parsed.timestamps == {0: 1395066363000, 1: 1395066363000}
    assert parsed.new == [0, 1, 2, 3]
    labels = labels_of(parsed)
    assert labels[0].to_dict() == {"__name__": "http_requests_total", "method": "GET", "code": "200"}
    assert labels[2] == Labels.of({"__name__": "metric_without_labels"})
    assert labels[3].get("path") == "C:\\DIR\\FILE.TXT"
    assert labels[3].get("error") == 'Cannot find file:\n"FILE.TXT"'
    assert parsed.refs[0].head == 'http_requests_total{method="GET",code="200"}'  # type: ignore[attr-defined]


def test_lenient_text_syntax() -> None:
    text = (
        '  a{b="1",} 1\n'
        'a { b = "2" , c="3" } 2\n'
        "a\t3\n"
        'a{b="4"}4\n'
        'a{b="5"c="6"} 5\n'
        "a{} 6 \t\n"
        'a{b="7"} 7\t-5\n'
    )
    parsed = parse(text, {})
    assert list(parsed.values) == [1, 2, 3, 4, 5, 6, 7]
    assert [ls.to_dict() for ls in labels_of(parsed)] == [
        {"__name__": "a", "b": "1"},
        {"__name__": "a", "b": "2", "c": "3"},
        {"__name__": "a"},
        {"__name__": "a", "b": "4"},
        {"__name__": "a", "b": "5", "c": "6"},
        {"__name__": "a"},
        {"__name__": "a", "b": "7"},
    ]
    assert parsed.timestamps == {6: -5}
    assert_warm_matches_cold(text)


def test_empty_label_values_are_dropped() -> None:
    parsed = parse('a{b="",c="x"} 1\n', {})
    assert labels_of(parsed)[0].to_dict() == {"__name__": "a", "c": "x"}


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("NaN", math.nan),
        ("nan", math.nan),
        ("+Inf", math.inf),
        ("-Inf", -math.inf),
        ("Inf", math.inf),
        ("infinity", math.inf),
        ("-1.5e-3", -1.5e-3),
        (".5", 0.5),
        ("5.", 5.0),
        ("0001", 1.0),
        ("1E3", 1000.0),
        ("1e-400", 0.0),
    ],
)
def test_values(token: str, expected: float) -> None:
    value = parse(f"a {token}\n", {}).values[0]
    assert value == expected or (math.isnan(value) and math.isnan(expected))
    assert_warm_matches_cold(f"a {token}\nb {token} 17\n")


@pytest.mark.parametrize(
    "token", ["1_000", "0x1p-3", "0x10", "+nan", "-NaN", "1e400", "١", "1,5", "one", "1.2.3", "--1", "1e", "Infinit"]
)
def test_values_prometheus_rejects(token: str) -> None:
    with pytest.raises(ParseError) as excinfo:
        parse(f"ok 1\na {token}\n", {})
    assert excinfo.value.line == 2
    with pytest.raises(ParseError):  # a warm cache must not let it through
        parse(f"ok 1\na {token}\n", {"a": object(), "ok": object()})


@pytest.mark.parametrize("ts", ["1.5", "1e3", "NaN", "x", "99999999999999999999", "1_0"])
def test_bad_text_timestamps(ts: str) -> None:
    with pytest.raises(ParseError) as excinfo:
        parse(f"a 1 {ts}\n", {"a": object()})
    assert excinfo.value.line == 1


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('a{b="c} 1\n', 1, "label"),
        ('ok 1\na{b="c\\"} 1\n', 2, "label"),
        ("ok 1\n\nok 2\n<html><body>502 Bad Gateway</body></html>\n", 4, "HTML"),
        ("ok 1\n\x00\x01\x02\xff\xfe binary\n", 2, "metric name"),
        ("a\n", 1, "value"),
        ("a{b=\"c\"}\n", 1, "value"),
        ("a{b=c} 1\n", 1, "label"),
        ("a{1b=\"c\"} 1\n", 1, "label"),
        ("0a 1\n", 1, "metric name"),
        ("a 1 2 3\n", 1, "sample"),
        ('a{b="1",b="2"} 1\n', 1, "duplicate"),
        ('a{__name__="x"} 1\n', 1, "duplicate"),
        ("# TYPE a gauge\n# TYPE a bogus\n", 2, "type"),
        ("# HELP 0a help\n", 1, "metric name"),
    ],
)
def test_errors_name_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ParseError) as excinfo:
        parse(text, {})
    err = excinfo.value
    assert err.line == line
    assert words.lower() in err.message.lower()
    assert str(err) == f"line {line}: {err.message}"
    assert isinstance(err, ValueError)


def test_all_or_nothing() -> None:
    with pytest.raises(ParseError):
        parse("a 1\nb 2\nc oops\n", {})


def test_parse_does_not_mutate_the_cache() -> None:
    cache: dict[str, object] = {"a": "ref-a"}
    parsed = parse("a 1\nb 2\n", cache)
    assert cache == {"a": "ref-a"}
    assert parsed.refs[0] == "ref-a"
    assert parsed.new == [1]


def test_repeated_head_in_one_payload() -> None:
    parsed = parse("a 1 1000\na 2 2000\n", {})
    assert parsed.new == [0, 1]
    assert parsed.refs[0].head == parsed.refs[1].head == "a"  # type: ignore[attr-defined]
    assert parsed.timestamps == {0: 1000, 1: 2000}


def test_comments_and_blank_lines_only() -> None:
    parsed = parse("# just a comment\n\n   \n# HELP a x\n# TYPE a counter\n", {})
    assert parsed.refs == [] and len(parsed.values) == 0


# --- OpenMetrics specifics -------------------------------------------------------------------


def test_openmetrics_timestamps_are_seconds() -> None:
    parsed = parse("# TYPE a gauge\na 1 1.5\na 2 1700000000.123\n# EOF\n", {}, OPENMETRICS)
    assert parsed.timestamps == {0: 1500, 1: 1700000000123}


def test_openmetrics_exemplars_dropped_and_created_kept() -> None:
    text = (
        "# TYPE a counter\n"
        'a_total{x="1"} 5 # {trace_id="abc"} 0.5 123.4\n'
        'a_created{x="1"} 1700000000\n'
        "# EOF\n"
    )
    parsed = parse(text, {}, OPENMETRICS)
    assert [ls.metric_name for ls in labels_of(parsed)] == ["a_total", "a_created"]
    assert list(parsed.values) == [5.0, 1700000000.0]
    assert_warm_matches_cold(text, OPENMETRICS)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a 1\n", 1),
        ("a 1\n# EOF\nb 1\n", 3),
        ("# TYPE a counter\na_total 1\na_total -1\n# EOF\n", 3),
        ("a 1\n\n# EOF\n", 2),
        ('a{b="1",} 1\n# EOF\n', 1),
        ("a  1\n# EOF\n", 1),
    ],
)
def test_openmetrics_errors_name_the_line(text: str, line: int) -> None:
    with pytest.raises(ParseError) as excinfo:
        parse(text, {}, OPENMETRICS)
    assert excinfo.value.line == line


# --- OpenMetrics repeat scrapes: the parser memo ------------------------------------------

# Every metric type and the rules that hold across lines: created samples, units, timestamps,
# a gauge histogram with a negative bucket and _gsum, an exemplar, families without metadata.
RICH_OM = (
    "# HELP a A counter.\n# TYPE a counter\n"
    'a_total{b="1",c="x y"} 3\na_created{b="1",c="x y"} 1700000000\na_total{b="2"} 4 1000\n'
    "# TYPE h_seconds histogram\n# UNIT h_seconds seconds\n"
    'h_seconds_bucket{le="0.5"} 1\nh_seconds_bucket{le="1"} 1\nh_seconds_bucket{le="+Inf"} 2\n'
    "h_seconds_sum 3\nh_seconds_count 2\n"
    '# TYPE gh gaugehistogram\ngh_bucket{le="-1"} 1\ngh_bucket{le="+Inf"} 3\ngh_gcount 3\ngh_gsum -2\n'
    '# TYPE s summary\ns{quantile="0.5"} 1\ns{quantile="0.9"} 2\ns_sum 5\ns_count 3\n'
    '# TYPE st stateset\nst{st="a"} 1\nst{st="b"} 0\n'
    '# TYPE i info\ni_info{version="1.0"} 1\n'
    '# TYPE c counter\nc_total{x="\\\\z"} 5 # {trace_id="abc"} 0.5 123.4\n'
    'g NaN\ng2{x="1"} 1.5\ng2{x="2"} 2.5 1.5\n'
    "# EOF\n"
)


def outcome(text: str, cache: dict[str, object], fmt: str = OPENMETRICS, memo: ParserMemo | None = None) -> tuple[object, ...]:
    """Everything a parse tells its caller, comparable across parses: samples or the error."""
    try:
        parsed = parse(text, cache, fmt, memo)
    except ParseError as err:
        return ("error", err.line, err.message)
    refs = [ref.labels if isinstance(ref, NewSeries) else ref for ref in parsed.refs]
    return ("ok", refs, [repr(v) for v in parsed.values], parsed.timestamps, parsed.new)


def test_openmetrics_memo_warm_matches_cold() -> None:
    memo = ParserMemo()
    cold = parse(RICH_OM, {}, OPENMETRICS, memo)
    assert len(memo) == len(cold.refs) == 23
    cache = warm_cache(cold)
    expected = outcome(RICH_OM, cache)
    assert outcome(RICH_OM, cache, memo=memo) == expected
    assert outcome(RICH_OM, cache, memo=memo) == expected  # and again, with the memo used
    assert expected[-1] == []  # nothing new
    assert_warm_matches_cold(RICH_OM, OPENMETRICS)


@pytest.mark.parametrize(
    ("before", "after", "line", "words"),
    [
        ('a_total{b="2"} 4 1000', 'a_total{b="2"} -4 1000', 5, "negative"),
        ('a_total{b="1",c="x y"} 3', 'a_total{b="1",c="x y"} NaN', 3, "NaN"),
        ('h_seconds_bucket{le="1"} 1', 'h_seconds_bucket{le="1"} 0', 9, "decrease"),
        ("h_seconds_count 2", "h_seconds_count 3", 8, "count does not match"),
        ("gh_bucket{le=\"-1\"} 1", "gh_bucket{le=\"-1\"} 0.5", 15, None),
        ("st{st=\"b\"} 0", "st{st=\"b\"} 2", 25, "0 or 1"),
        ("i_info{version=\"1.0\"} 1", "i_info{version=\"1.0\"} 2", 27, "must be 1"),
        ('s{quantile="0.9"} 2', 's{quantile="0.9"} -2', 20, "negative"),
        ('0.5 123.4', '0.5 123.4 9', 31, None),
        ("# TYPE i info", "# TYPE i gauge", 29, None),
        ("# TYPE st stateset", "# TYPE st gauge\n# TYPE st stateset", 24, "second # TYPE"),
        ("g NaN\n", "g NaN\ng 1\n", 33, None),
        ("# EOF\n", "# EOF\ng 1\n", 34, "after # EOF"),
    ],
)
def test_openmetrics_memo_still_checks_what_changes(before: str, after: str, line: int, words: str | None) -> None:
    """A warm memo and cache take the fast path for known heads, yet values, order, metadata and
    exemplars are checked on every scrape, with the very error a cold parse gives."""
    memo = ParserMemo()
    cache = warm_cache(parse(RICH_OM, {}, OPENMETRICS, memo))
    assert RICH_OM.count(before) == 1
    changed = RICH_OM.replace(before, after)
    cold = outcome(changed, {})
    assert outcome(changed, cache, memo=memo) == outcome(changed, cache)
    if cold[0] == "error":
        assert outcome(changed, cache, memo=memo) == cold
    if words is not None:
        assert cold[0] == "error" and cold[1] == line and words in cold[2]  # type: ignore[operator]


def test_openmetrics_memo_forgets_series_no_longer_exposed() -> None:
    many = "".join(f'g{{i="{i}"}} {i}\n' for i in range(200)) + "# EOF\n"
    few = 'g{i="1"} 1\n# EOF\n'
    memo = ParserMemo()
    parse(many, {}, OPENMETRICS, memo)
    assert len(memo) == 200
    parse(few, {}, OPENMETRICS, memo)
    assert len(memo) == 1
    assert outcome(many, {}, memo=memo) == outcome(many, {})


def test_memo_is_unused_by_the_text_format() -> None:
    memo = ParserMemo()
    text = 'a{b="1"} 1\n'
    assert outcome(text, {}, TEXT, memo) == outcome(text, {}, TEXT)
    assert len(memo) == 0


# --- real payloads against prometheus_client ------------------------------------------------


def _exposition(name: str) -> str:
    path = EXPOSITION / name
    if not path.is_file():
        pytest.skip(f"conformance payload {path} not found (set ALERTD_CONFORMANCE)")
    return path.read_text(encoding="utf-8")


def _client_samples(text: str) -> list[tuple[Labels, float]]:
    out = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.append((Labels.of({**sample.labels, "__name__": sample.name}), sample.value))
    return out


@pytest.mark.parametrize("name", ["node_exporter.prom.txt", "alltypes.237mfs.prom.txt", "alltypes.237mfs.nometa.prom.txt"])
def test_text_payload_matches_prometheus_client(name: str) -> None:
    text = _exposition(name)
    parsed = parse(text, {})
    ours = list(zip(labels_of(parsed), parsed.values))
    theirs = _client_samples(text)
    assert len(ours) == len(theirs) > 100
    for (our_labels, our_value), (their_labels, their_value) in zip(ours, theirs):
        assert our_labels == their_labels
        assert our_value == their_value or (math.isnan(our_value) and math.isnan(their_value))
    assert_warm_matches_cold(text)


def test_node_exporter_values() -> None:
    parsed = parse(_exposition("node_exporter.prom.txt"), {})
    by_series = {str(ls): v for ls, v in zip(labels_of(parsed), parsed.values)}
    assert len(by_series) == len(parsed.refs)  # no duplicate series
    assert any(key.startswith("node_cpu_seconds_total{") for key in by_series)
    assert all(not math.isnan(v) for k, v in by_series.items() if k.startswith("node_cpu_seconds_total"))


def test_openmetrics_histogram_payload() -> None:
    text = _exposition("1histogram.om.txt")
    parsed = parse(text, {}, OPENMETRICS)
    sample_lines = [ln for ln in text.split("\n") if ln and not ln.startswith("#")]
    assert len(parsed.refs) == len(sample_lines) == 42
    series = dict(zip((str(ls) for ls in labels_of(parsed)), parsed.values))
    le_inf = 'golang_manual_histogram_seconds_bucket{address="0.0.0.0",generation="20",le="+Inf",port="5001"}'
    count = 'golang_manual_histogram_seconds_count{address="0.0.0.0",generation="20",port="5001"}'
    assert series[le_inf] == series[count]
    assert_warm_matches_cold(text, OPENMETRICS)


def test_openmetrics_payload_with_negative_sums_is_rejected() -> None:
    """client_golang wrote this one: a histogram with negative buckets and a _sum, and summaries
    with negative quantiles and sums. OpenMetrics forbids both, so the strict parser refuses it
    and names the first offending line; the families that follow the spec parse."""
    text = _exposition("alltypes.5mfs.om.txt")
    with pytest.raises(ParseError) as excinfo:
        parse(text, {}, OPENMETRICS)
    lines = text.split("\n")
    assert lines[excinfo.value.line - 1].startswith("rpc_durations_histogram_seconds_sum ")
    assert "negative" in excinfo.value.message
    conforming = "\n".join(ln for ln in lines if "rpc_durations_" not in ln)
    parsed = parse(conforming, {}, OPENMETRICS)
    assert [ls.metric_name for ls in labels_of(parsed)][:3] == [
        "go_build_info",
        "promhttp_metric_handler_errors_total",
        "promhttp_metric_handler_errors_created",
    ]
    assert list(parsed.values)[-2:] == [11.0, 1.7268398130168471e09]
    assert len(parsed.refs) == 11


# --- properties ---------------------------------------------------------------------------

_names = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,8}", fullmatch=True)
_label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,6}", fullmatch=True).filter(lambda n: n != "__name__")
_label_values = st.text(st.characters(codec="utf-8", exclude_characters="\n\r"), max_size=8)
_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr).map(
        lambda r: {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}.get(r, r)
    ),
    st.integers(-(10**12), 10**12).map(str),
    st.sampled_from(["1e3", ".5", "5.", "NaN", "+Inf", "-Inf", "1_0", "0x1", "+nan"]),
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


@st.composite
def _sample_lines(draw: st.DrawFn) -> str:
    name = draw(_names)
    pairs = draw(st.dictionaries(_label_names, _label_values, max_size=4)).items()
    sep = draw(st.sampled_from([" ", " ", "\t", "  "]))
    block = ""
    if pairs or draw(st.booleans()):
        block = "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + draw(st.sampled_from(["", ","])) + "}"
    line = f"{name}{block}{sep}{draw(_numbers)}"
    if draw(st.booleans()):
        line += f" {draw(st.integers(-(10**13), 10**13))}"
    return line


_payloads = st.lists(
    st.one_of(_sample_lines(), st.sampled_from(["", "# HELP a x", "# TYPE a gauge", "# comment"])), max_size=12
).map(lambda lines: "\n".join(lines) + "\n")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_payloads)
def test_warm_cache_gives_the_same_result(text: str) -> None:
    try:
        cold = parse(text, {})
    except ParseError:
        # Rejection does not depend on the cache either: warm it with every line that parses alone.
        cache: dict[str, object] = {}
        for line in text.split("\n"):
            try:
                cache.update(warm_cache(parse(line, {})))
            except ParseError:
                pass
        with pytest.raises(ParseError):
            parse(text, cache)
        return
    assert_warm_matches_cold(text)
    assert len(cold.refs) == len(cold.values)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.sampled_from([TEXT, OPENMETRICS]))
def test_arbitrary_text_raises_only_parse_errors(text: str, fmt: str) -> None:
    try:
        parse(text, {}, fmt)
    except ParseError:
        pass


_VALID = (
    "# HELP a x\n# TYPE a counter\n"
    'a_total{b="1",c="x y"} 3\na_total{b="2"} 4 1000\n'
    '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 3\nh_count 2\n'
    "g NaN\n# EOF\n"
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, len(_VALID)), st.integers(0, 3), st.text(max_size=3)),
        min_size=1,
        max_size=4,
    ),
    st.sampled_from([TEXT, OPENMETRICS]),
)
def test_mutated_payloads_raise_only_parse_errors(edits: list[tuple[int, int, str]], fmt: str) -> None:
    text = _VALID
    for at, cut, insert in edits:
        text = text[:at] + insert + text[at + cut :]
    for cache in ({}, warm_cache(parse(_VALID, {}, fmt))):
        try:
            parsed = parse(text, cache, fmt)
        except ParseError as err:
            assert 1 <= err.line <= text.count("\n") + 1
        else:
            assert len(parsed.refs) == len(parsed.values)


def _om_mutations() -> st.SearchStrategy[list[tuple[str, int, int, str]]]:
    lines = len(RICH_OM.split("\n"))
    op = st.tuples(
        st.sampled_from(["value", "value", "drop", "dup", "swap", "ts", "edit"]),
        st.integers(0, lines - 1),
        st.integers(0, lines - 1),
        st.sampled_from(["0", "1", "-1", "2.5", "1e3", "NaN", "+Inf", "-Inf", "1_0", "x", "", "0 1", "3 # {a=\"b\"} 1"]),
    )
    return st.lists(op, min_size=1, max_size=3)


def _mutate(text: str, ops: list[tuple[str, int, int, str]]) -> str:
    lines = text.split("\n")
    for kind, i, j, token in ops:
        i %= len(lines)
        j %= len(lines)
        if kind == "value" and lines[i] and not lines[i].startswith("#"):
            head = re.match(r"[^ {]*(?:\{[^}]*\})?", lines[i]).group(0)  # type: ignore[union-attr]
            lines[i] = f"{head} {token}"
        elif kind == "drop":
            del lines[i]
        elif kind == "dup":
            lines.insert(j, lines[i])
        elif kind == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "ts" and lines[i] and not lines[i].startswith("#"):
            lines[i] += f" {j}"
        elif kind == "edit":
            lines[i] = lines[i][:j] + token + lines[i][j + 1 :]
        if not lines:
            lines = [""]
    return "\n".join(lines)


@settings(max_examples=400, deadline=None)
@given(_om_mutations())
def test_openmetrics_warm_memo_gives_the_same_result(ops: list[tuple[str, int, int, str]]) -> None:
    """A target's next payload, changed in any way: with the memo and cache of its last good
    scrape, or after learning from this very payload, the outcome is the cold one, errors included."""
    memo = ParserMemo()
    cache = warm_cache(parse(RICH_OM, {}, OPENMETRICS, memo))
    text = _mutate(RICH_OM, ops)
    cold = outcome(text, {})
    assert outcome(text, {}, memo=memo) == cold
    warm = outcome(text, cache)
    assert outcome(text, cache, memo=memo) == warm
    assert outcome(text, cache, memo=memo) == warm  # the memo has now learnt this payload too
    if cold[0] == "error":
        assert warm == cold
    else:  # the cache's own entries are the label sets themselves here
        assert warm[1:4] == cold[1:4]
