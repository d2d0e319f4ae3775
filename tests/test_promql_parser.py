"""The PromQL parser: trees, precedence, canonical printing, Prometheus' error messages,
every expression of the Prometheus conformance scripts, and arbitrary input."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.promql.ast import (
    AggregateExpr,
    BinaryExpr,
    Call,
    MatrixSelector,
    NumberLiteral,
    ParenExpr,
    StringLiteral,
    SubqueryExpr,
    UnaryExpr,
    ValueType,
    VectorMatching,
    VectorSelector,
)
from daemon.promql.parser import FUNCTIONS, ParseError, Signature, parse_duration, parse_expr, value_type
from daemon.promql.printer import format_duration, format_expr, format_number
from daemon.tsdb import Matcher, parse_selector

CONFORMANCE = Path(
    os.environ.get("ALERTD_CONFORMANCE", Path(__file__).resolve().parents[1].parent / "shared" / "conformance")
)


def error(text: str) -> str:
    with pytest.raises(ParseError) as info:
        parse_expr(text)
    return str(info.value)


def name(metric: str) -> Matcher:
    return Matcher("__name__", "=", metric)


# -- trees --------------------------------------------------------------------------------------


def test_vector_selector() -> None:
    assert parse_expr('foo{a="b", c!="d", e=~"f.*", g!~"h"}') == VectorSelector(
        "foo",
        (name("foo"), Matcher("a", "=", "b"), Matcher("c", "!=", "d"), Matcher("e", "=~", "f.*"), Matcher("g", "!~", "h")),
    )


def test_quoted_metric_name_in_braces() -> None:
    assert parse_expr('{"foo.bar", a="x"}') == VectorSelector(None, (name("foo.bar"), Matcher("a", "=", "x")))
    assert parse_expr('foo{"a.b"="c"}') == VectorSelector("foo", (name("foo"), Matcher("a.b", "=", "c")))


def test_keywords_as_metric_names() -> None:
    for keyword in ("sum", "by", "offset", "start", "and"):
        assert parse_expr(keyword) == VectorSelector(keyword, (name(keyword),))
    assert parse_expr("sum{a='b'} + by") == BinaryExpr(
        "+",
        VectorSelector("sum", (name("sum"), Matcher("a", "=", "b"))),
        VectorSelector("by", (name("by"),)),
        matching=VectorMatching(),
    )


def test_matrix_subquery_offset_at() -> None:
    foo = VectorSelector("foo", (name("foo"),))
    assert parse_expr("foo[5m]") == MatrixSelector(foo, 300.0)
    assert parse_expr("foo[5m] offset 1m @ 100") == MatrixSelector(
        VectorSelector("foo", (name("foo"),), offset=60.0, at=100.0), 300.0
    )
    assert parse_expr("foo @ end() offset -1h") == VectorSelector("foo", (name("foo"),), offset=-3600.0, at_edge="end")
    assert parse_expr("foo[1h:5m] offset 1d @ start()") == SubqueryExpr(foo, 3600.0, 300.0, 86400.0, None, "start")
    assert parse_expr("foo[1h:]") == SubqueryExpr(foo, 3600.0)
    # Numbers are seconds where durations are expected.
    assert parse_expr("foo offset -50") == VectorSelector("foo", (name("foo"),), offset=-50.0)
    assert parse_expr("foo[90]") == MatrixSelector(foo, 90.0)


def test_literals() -> None:
    assert parse_expr("1.5e3") == NumberLiteral(1500.0)
    assert parse_expr("0x1F") == NumberLiteral(31.0)
    assert parse_expr("010") == NumberLiteral(8.0)  # Go's ParseInt: a leading zero means octal
    assert parse_expr("1_000") == NumberLiteral(1000.0)
    assert parse_expr("-Inf") == NumberLiteral(-math.inf)
    assert math.isnan(parse_expr("NaN").value)  # type: ignore[attr-defined]
    assert parse_expr("5m") == NumberLiteral(300.0)  # a duration where a number is expected
    assert parse_expr("'a\\tb'") == StringLiteral("a\tb")
    assert parse_expr("`a\\tb`") == StringLiteral("a\\tb")


def test_unary_minus_folds_into_numbers_only() -> None:
    assert parse_expr("-1") == NumberLiteral(-1.0)
    assert parse_expr("- -1") == NumberLiteral(1.0)
    assert parse_expr("-foo") == UnaryExpr("-", VectorSelector("foo", (name("foo"),)))
    assert parse_expr("-(1)") == UnaryExpr("-", ParenExpr(NumberLiteral(1.0)))


def test_aggregations() -> None:
    foo = VectorSelector("foo", (name("foo"),))
    expected = AggregateExpr("sum", foo, grouping=("job",))
    assert parse_expr("sum by (job) (foo)") == expected
    assert parse_expr("sum(foo) by (job)") == expected
    assert parse_expr("SUM(foo) BY (job,)") == expected
    assert parse_expr("avg without (a, b) (foo)") == AggregateExpr("avg", foo, grouping=("a", "b"), without=True)
    assert parse_expr("topk(3, foo)") == AggregateExpr("topk", foo, NumberLiteral(3.0))
    assert parse_expr('count_values("v", foo)') == AggregateExpr("count_values", foo, StringLiteral("v"))
    assert parse_expr('sum by ("a.b", on, bool) (foo)') == AggregateExpr("sum", foo, grouping=("a.b", "on", "bool"))


def test_calls() -> None:
    assert parse_expr("time()") == Call("time", ())
    assert parse_expr("round(foo, 5)") == Call("round", (VectorSelector("foo", (name("foo"),)), NumberLiteral(5.0)))
    assert parse_expr("hour()") == Call("hour", ())
    assert parse_expr("step()") == Call("step", ())
    assert parse_expr("info(foo, {job='x'})") == Call(
        "info", (VectorSelector("foo", (name("foo"),)), VectorSelector(None, (Matcher("job", "=", "x"),)))
    )
    # info()'s label selector may match the empty string.
    assert parse_expr('info(foo, {a=~".*"})') == Call(
        "info", (VectorSelector("foo", (name("foo"),)), VectorSelector(None, (Matcher("a", "=~", ".*"),)))
    )


def test_vector_matching() -> None:
    tree = parse_expr("a * on(b) group_left(c) d")
    assert isinstance(tree, BinaryExpr)
    assert tree.matching == VectorMatching("many-to-one", True, ("b",), ("c",))
    tree = parse_expr("a / ignoring(x) group_right d")
    assert isinstance(tree, BinaryExpr)
    assert tree.matching == VectorMatching("one-to-many", False, ("x",), ())
    tree = parse_expr("a and b")
    assert isinstance(tree, BinaryExpr)
    assert tree.matching == VectorMatching("many-to-many")
    tree = parse_expr("a > bool 1")
    assert isinstance(tree, BinaryExpr)
    assert tree.return_bool and tree.matching is None  # only set between two vectors


# -- precedence ---------------------------------------------------------------------------------


def shape(text: str) -> str:
    """The tree with every binary and unary operation in parentheses."""

    def walk(node: object) -> str:
        if isinstance(node, BinaryExpr):
            return f"({walk(node.lhs)} {node.op} {walk(node.rhs)})"
        if isinstance(node, UnaryExpr):
            return f"({node.op}{walk(node.expr)})"
        assert isinstance(node, NumberLiteral | VectorSelector | ParenExpr | MatrixSelector)
        return format_expr(node)  # type: ignore[arg-type]

    return walk(parse_expr(text))


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("a + b * c", "(a + (b * c))"),
        ("a * b + c", "((a * b) + c)"),
        ("a - b - c", "((a - b) - c)"),
        ("a ^ b ^ c", "(a ^ (b ^ c))"),
        ("a * b ^ c", "(a * (b ^ c))"),
        ("a or b and c", "(a or (b and c))"),
        ("a and b unless c", "((a and b) unless c)"),
        ("a or b unless c", "(a or (b unless c))"),
        ("a == b + c", "(a == (b + c))"),
        ("a > b or c < d", "((a > b) or (c < d))"),
        ("a % b atan2 c", "((a % b) atan2 c)"),
        ("-a ^ b", "(-(a ^ b))"),
        ("-a * b", "((-a) * b)"),
        ("a ^ -b", "(a ^ (-b))"),
        ("-2 ^ 2", "(-(2 ^ 2))"),
        ("a + b offset 5m", "(a + b offset 5m)"),
        ("a - -b", "(a - (-b))"),
    ],
)
def test_precedence(text: str, tree: str) -> None:
    assert shape(text) == tree


def test_offset_after_a_literal_ends_the_offset() -> None:
    assert format_expr(parse_expr("foo offset 1m + 1m")) == "foo offset 1m + 60"


# -- canonical printing (Prometheus' Expr.String()) ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ('sum by() (task:errors:rate10s{job="s"})', 'sum(task:errors:rate10s{job="s"})'),
        ('sum by(code) (task:errors:rate10s{job="s"})', 'sum by (code) (task:errors:rate10s{job="s"})'),
        ('sum without() (task:errors:rate10s{job="s"})', 'sum without () (task:errors:rate10s{job="s"})'),
        ("sum(x) without(instance)", "sum without (instance) (x)"),
        ('topk(5, task:errors:rate10s{job="s"})', 'topk(5, task:errors:rate10s{job="s"})'),
        ('count_values("value", x)', 'count_values("value", x)'),
        ("a - on() c", "a - on () c"),
        ("a - on(b) c", "a - on (b) c"),
        ("a - on(b) group_left(x, y) c", "a - on (b) group_left (x, y) c"),
        ("a - on(b) group_left c", "a - on (b) group_left () c"),
        ("a - on(b) group_left() (c)", "a - on (b) group_left () (c)"),
        ("a - ignoring(b) c", "a - ignoring (b) c"),
        ("a - ignoring() c", "a - c"),
        ("up > bool 0", "up > bool 0"),
        ("a offset 1m", "a offset 1m"),
        ("a offset -7m", "a offset -7m"),
        ('a{c="d"}[5m] offset 1m', 'a{c="d"}[5m] offset 1m'),
        ("a[12m] offset -3m", "a[12m] offset -3m"),
        ("a[1h:5m] offset 1m", "a[1h:5m] offset 1m"),
        ('{__name__="a"}', '{__name__="a"}'),
        ('a{b!="c"}[1m]', 'a{b!="c"}[1m]'),
        ('a{b=~"c"}[1m]', 'a{b=~"c"}[1m]'),
        ("a @ 10", "a @ 10.000"),
        ("a[1m] @ 10", "a[1m] @ 10.000"),
        ("a @ start()", "a @ start()"),
        ("a[1m] @ end()", "a[1m] @ end()"),
        ("a offset 1m @ 1.5", "a @ 1.500 offset 1m"),
        ("a[5m:] @ 1 offset 5m", "a[5m:] @ 1.000 offset 5m"),
        ('foo{z="1",a="2"}', 'foo{a="2",z="1"}'),
        ('{"foo.bar"}', '{__name__="foo.bar"}'),
        ('foo{"a.b"="c"}', 'foo{"a.b"="c"}'),
        ('sum by ("a.b") (x)', 'sum by ("a.b") (x)'),
        ("rate(foo[90m])", "rate(foo[1h30m])"),
        ("foo[7d]", "foo[1w]"),
        ("foo[14d]", "foo[2w]"),
        ("foo[365d]", "foo[1y]"),
        ("foo[10d]", "foo[10d]"),
        ("foo[1500ms]", "foo[1s500ms]"),
        ("1e-7", "0.0000001"),
        ("1e21", "1000000000000000000000"),
        ("0.1", "0.1"),
        ("-0", "-0"),
        ("+Inf", "+Inf"),
        ("'it\"s'", '"it\\"s"'),
        ("`a\\b`", '"a\\\\b"'),
        ("(a + b) * c", "(a + b) * c"),
        ("-foo", "-foo"),
        ("- (1)", "-(1)"),
        ("a and on(b) c", "a and on (b) c"),
        ('label_replace(up, "a", "$1", "b", "(.*)")', 'label_replace(up, "a", "$1", "b", "(.*)")'),
        ("foo # comment\n  + bar", "foo + bar"),
        ("1 + 2 > bool 3", "1 + 2 > bool 3"),
    ],
)
def test_canonical_printing(text: str, printed: str) -> None:
    assert format_expr(parse_expr(text)) == printed
    # The printed form parses back to the same tree.
    assert format_expr(parse_expr(printed)) == printed


def test_format_helpers() -> None:
    assert format_duration(0) == "0s"
    assert format_duration(5400) == "1h30m"
    assert format_duration(0.25) == "250ms"
    assert format_number(3.0) == "3"
    assert format_number(-1.5) == "-1.5"


def test_parse_duration() -> None:
    assert parse_duration("1h30m") == 5400.0
    assert parse_duration("0") == 0.0
    assert parse_duration("1y2w3d") == (365 + 14 + 3) * 86400.0
    assert parse_duration("250ms") == 0.25
    with pytest.raises(ValueError, match='not a valid duration string: "30m1h"'):
        parse_duration("30m1h")
    with pytest.raises(ValueError, match='unknown unit "x" in duration "5x"'):
        parse_duration("5x")
    with pytest.raises(ValueError, match="empty duration string"):
        parse_duration("")


# -- types --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("1", ValueType.SCALAR),
        ('"a"', ValueType.STRING),
        ("foo", ValueType.VECTOR),
        ("foo[5m]", ValueType.MATRIX),
        ("foo[5m:1m]", ValueType.MATRIX),
        ("1 + 1", ValueType.SCALAR),
        ("foo + 1", ValueType.VECTOR),
        ("scalar(foo)", ValueType.SCALAR),
        ("sum(foo)", ValueType.VECTOR),
        ("-(time())", ValueType.SCALAR),
    ],
)
def test_value_type(text: str, kind: ValueType) -> None:
    assert value_type(parse_expr(text)) == kind


def test_signature_table() -> None:
    assert FUNCTIONS["rate"] == Signature((ValueType.MATRIX,), 0, ValueType.VECTOR)
    assert FUNCTIONS["label_join"].variadic == -1
    assert FUNCTIONS["round"].arg_types == (ValueType.VECTOR, ValueType.SCALAR)
    assert FUNCTIONS["time"].return_type == ValueType.SCALAR
    for function in (
        "rate irate increase delta idelta deriv predict_linear resets changes abs ceil floor round sqrt exp ln "
        "log2 log10 sgn clamp clamp_min clamp_max timestamp time vector scalar absent absent_over_time "
        "present_over_time avg_over_time min_over_time max_over_time sum_over_time count_over_time "
        "quantile_over_time stddev_over_time stdvar_over_time last_over_time mad_over_time histogram_quantile "
        "label_replace label_join sort sort_desc sort_by_label sort_by_label_desc minute hour day_of_week "
        "day_of_year day_of_month days_in_month month year acos acosh asin asinh atan atanh cos cosh sin sinh "
        "tan tanh deg rad pi histogram_count histogram_sum histogram_fraction histogram_avg histogram_stddev "
        "histogram_stdvar info"
    ).split():
        assert function in FUNCTIONS


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "1:1: parse error: no expression found in input"),
        ("# only a comment", "1:1: parse error: no expression found in input"),
        ("1 +", "1:4: parse error: unexpected end of input"),
        ("foo bar", '1:5: parse error: unexpected identifier "bar"'),
        ("()", '1:2: parse error: unexpected ")"'),
        ("sum(", "1:5: parse error: unclosed left parenthesis"),
        ("sum some_metric by (test)", '1:5: parse error: unexpected identifier "some_metric"'),
        ("sum without(==) (x)", "1:13: parse error: unexpected <op:==> in grouping opts, expected label"),
        ("sum by foo (x)", '1:8: parse error: unexpected identifier "foo" in grouping opts, expected "("'),
        ("sum by (a b) (x)", '1:11: parse error: unexpected identifier "b" in grouping opts, expected "," or ")"'),
        ("sum by (1) (x)", '1:9: parse error: unexpected number "1" in grouping opts, expected label'),
        ("sum by (a) (x) by (b)", "1:16: parse error: unexpected <by>"),
        ("foo{a}", '1:6: parse error: unexpected "}" in label matching, expected label matching operator'),
        ("foo{a=}", '1:7: parse error: unexpected "}" in label matching, expected string'),
        ('foo{a="b" c="d"}', '1:11: parse error: unexpected identifier "c" in label matching, expected "," or "}"'),
        ("foo{,}", '1:5: parse error: unexpected "," in label matching, expected identifier or "}"'),
        ("rate(foo[5m],)", "1:13: parse error: trailing commas not allowed in function call args"),
        ("foo[]", '1:5: parse error: unexpected "]" in subquery or range selector, expected number, duration, step(), or range()'),
        ("foo[5m:1m", "1:10: parse error: unexpected end of input in duration expression"),
        ("foo @ bar", '1:7: parse error: unexpected identifier "bar" in @, expected timestamp'),
        ("foo @ start", "1:12: parse error: unexpected end of input in @, expected timestamp"),
        ("foo offset", "1:11: parse error: unexpected end of input in offset, expected number, duration, step(), or range()"),
        ("foo offset bar", '1:12: parse error: unexpected identifier "bar" in offset, expected number, duration, step(), or range()'),
        ("foo[5m] offset 1m offset 2m", "1:1: parse error: offset may not be set multiple times"),
        ("foo @ 1 @ 2", "1:1: parse error: @ <timestamp> may not be set multiple times"),
        ("foo offset 1m [5m]", "1:15: parse error: no offset modifiers allowed before range"),
        ("foo @ 1 [5m]", "1:9: parse error: no @ modifiers allowed before range"),
        ("(foo)[5m]", "1:6: parse error: ranges only allowed for vector selectors"),
        ("sum(x) offset 5m", "1:1: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery"),
        ("sum(x) @ 5", "1:1: parse error: @ modifier must be preceded by an instant vector selector or range vector selector or a subquery"),
        ("foo @ Inf", "1:1: parse error: timestamp out of bounds for @ modifier: +Inf"),
        ("foo[0s]", "1:5: parse error: duration must be greater than 0"),
        ("foo[5m:0s]", "1:8: parse error: duration must be greater than 0"),
        ("foo[5m30h]", '1:5: parse error: not a valid duration string: "5m30h"'),
        ("foo offset 1.5.5", '1:12: parse error: bad number or duration syntax: "1.5."'),
        ("nosuch(x)", '1:1: parse error: unknown function with name "nosuch"'),
        ("sum()", "1:1: parse error: no arguments for aggregate expression provided"),
        ("sum(x, y)", "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 1, got 2"),
        ("topk(x)", "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1"),
        # Type errors.
        ("rate(foo)", '1:6: parse error: expected type range vector in call to function "rate", got instant vector'),
        ("abs(foo[5m])", '1:5: parse error: expected type instant vector in call to function "abs", got range vector'),
        ("histogram_quantile(foo, 0.9)", '1:20: parse error: expected type scalar in call to function "histogram_quantile", got instant vector'),
        ('label_replace(up, "a", "b", "c", 1)', '1:34: parse error: expected type string in call to function "label_replace", got scalar'),
        ("rate(foo[5m], 1)", '1:1: parse error: expected 1 argument(s) in call to "rate", got 2'),
        ("time(1)", '1:1: parse error: expected 0 argument(s) in call to "time", got 1'),
        ('label_join(up, "a")', '1:1: parse error: expected at least 3 argument(s) in call to "label_join", got 2'),
        ("round(x, 1, 2)", '1:1: parse error: expected at most 2 argument(s) in call to "round", got 3'),
        ("sum(foo[5m])", "1:5: parse error: expected type instant vector in aggregation expression, got range vector"),
        ("topk(foo, bar)", "1:6: parse error: expected type scalar in aggregation parameter, got instant vector"),
        ("count_values(1, bar)", "1:14: parse error: expected type string in aggregation parameter, got scalar"),
        ("foo + bar[5m]", "1:7: parse error: binary expression must contain only scalar and instant vector types"),
        ('"a" + 1', "1:1: parse error: binary expression must contain only scalar and instant vector types"),
        ("1 == 1", "1:3: parse error: comparisons between scalars must use BOOL modifier"),
        ("a + bool b", "1:3: parse error: bool modifier can only be used on comparison operators"),
        ("1 and 2", '1:1: parse error: set operator "and" not allowed in binary scalar expression'),
        ("foo or 1", '1:1: parse error: set operator "or" not allowed in binary scalar expression'),
        ("a and on(b) group_left c", '1:1: parse error: no grouping allowed for "and" operation'),
        ("1 + on(a) foo", "1:1: parse error: vector matching only allowed between instant vectors"),
        ("a * on(b) group_left(b) c", '1:3: parse error: label "b" must not occur in ON and GROUP clause at once'),
        ("-foo[5m]", '1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got "range vector"'),
        ("foo[5m][5m:]", "1:1: parse error: subquery is only allowed on instant vector, got matrix instead"),
        ("1[5m:]", "1:1: parse error: subquery is only allowed on instant vector, got scalar instead"),
        ("{}", "1:1: parse error: vector selector must contain at least one non-empty matcher"),
        ('{a=~".*"}', "1:1: parse error: vector selector must contain at least one non-empty matcher"),
        ('x + {a=""}', "1:5: parse error: vector selector must contain at least one non-empty matcher"),
        ('foo{__name__="bar"}', '1:1: parse error: metric name must not be set twice: "foo" or "bar"'),
        ("info(foo, bar)", "1:11: parse error: expected label selectors only, got vector selector instead"),
        # Errors on later lines point there.
        ("sum(\n  rate(foo)\n)", '2:8: parse error: expected type range vector in call to function "rate", got instant vector'),
    ],
)
def test_errors(text: str, message: str) -> None:
    assert error(text) == message


def test_bad_regex_names_the_matcher() -> None:
    message = error('up{job=~"("}')
    assert message.startswith("1:4: parse error: error parsing regexp")


def test_syntax_errors_come_before_type_errors() -> None:
    assert error("rate(foo) +") == "1:12: parse error: unexpected end of input"


def test_parse_error_is_a_value_error_with_position() -> None:
    with pytest.raises(ValueError) as info:
        parse_expr("foo +\n  bar baz")
    err = info.value
    assert isinstance(err, ParseError)
    assert (err.line, err.column, err.message) == (2, 7, 'unexpected identifier "baz"')


def test_deep_nesting_is_a_parse_error_not_a_crash() -> None:
    assert parse_expr("(" * 50 + "1" + ")" * 50) is not None
    for text in ("(" * 3000 + "1" + ")" * 3000, "-" * 5000 + "1", "abs(" * 800 + "x" + ")" * 800):
        assert error(text) == "1:1: parse error: expression nested too deeply"


def test_selector_parser_still_works() -> None:
    assert parse_selector('up{job="a"}') == [name("up"), Matcher("job", "=", "a")]


# -- the Prometheus conformance scripts ---------------------------------------------------------

_EVAL = re.compile(
    r"^(eval(?:_fail|_ordered|_warn|_info)?)\s+"
    r"(?:instant\s+at\s+\S+|range\s+from\s+\S+\s+to\s+\S+\s+step\s+\S+)\s+(.*)$"
)


def conformance_queries() -> list[tuple[str, int, str, bool]]:
    """(file, line, query, failure expected) for every eval command of the PromQL test scripts."""
    queries = []
    for path in sorted((CONFORMANCE / "promql").glob("*.test")):
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            match = _EVAL.match(line.strip())
            if match is None:
                continue
            expect_fail = match.group(1) == "eval_fail"
            for following in lines[number + 1 :]:
                stripped = following.strip()
                if not stripped or re.match(r"(eval|load|clear)\b", stripped):
                    break
                if re.match(r"expect\s+fail\b", stripped):
                    expect_fail = True
            queries.append((path.name, number + 1, match.group(2), expect_fail))
    return queries


def test_conformance_queries_parse() -> None:
    if not (CONFORMANCE / "promql").is_dir():
        pytest.skip(f"PromQL conformance scripts not found at {CONFORMANCE / 'promql'} (set ALERTD_CONFORMANCE)")
    queries = conformance_queries()
    assert queries
    parsed = 0
    failures = []
    for file, line, query, expect_fail in queries:
        try:
            tree = parse_expr(query)
        except ParseError as exc:
            if not expect_fail:
                failures.append(f"{file}:{line}: {query}: {exc}")
            continue
        parsed += 1
        # Printing is canonical: the printed text parses to a tree that prints the same.
        printed = format_expr(tree)
        assert format_expr(parse_expr(printed)) == printed, f"{file}:{line}"
    print(f"conformance: {parsed}/{len(queries)} eval expressions parse")
    assert failures == [], "\n".join(failures)


# -- arbitrary input ----------------------------------------------------------------------------

_ALPHABET = st.sampled_from(
    list("abcxyz_:019.eE+-*/%^=!~<>(){}[],@#\"'` \n\\")
    + ["sum", "by", "without", "on", "ignoring", "group_left", "bool", "offset", "rate", "[5m]", "[5m:1m]", "Inf", "NaN", "0x", "1h30m", "start()", "and", "or"]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ALPHABET, max_size=30).map("".join))
def test_arbitrary_tokens_raise_only_parse_errors(text: str) -> None:
    try:
        tree = parse_expr(text)
    except ParseError:
        return
    printed = format_expr(tree)
    assert isinstance(printed, str)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_arbitrary_text_raises_only_parse_errors(text: str) -> None:
    try:
        parse_expr(text)
    except ParseError:
        pass
