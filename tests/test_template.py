"""Alert templates against Prometheus' own template tests and real rule files.

Expected outputs come from Prometheus' ``template/template_test.go``, prometheus/common's
``helpers/templates/time_test.go`` and Go's documented ``fmt``/``text/template`` behaviour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.rules.template import PRELUDE, AlertTemplate, Expansion, TemplateError
from daemon.rules.template_fmt import format_float, sprintf

EXTERNAL_URL = "http://testhost:9090/path/prefix"
LABELS = {"instance": "host-1.example.com:9100", "job": "node", "severity": "page"}
# Columns on line 1 count the variable definitions Prometheus puts in front.
COL = len(PRELUDE)


@dataclass(frozen=True)
class FakeSample:
    labels: dict[str, str]
    value: float


class FakeQuery:
    """A query function returning canned vectors and recording what it was asked."""

    def __init__(self, results: dict[str, list[FakeSample]] | None = None) -> None:
        self.results = results or {}
        self.asked: list[str] = []

    def __call__(self, expr: str) -> list[FakeSample]:
        self.asked.append(expr)
        if expr == "boom":
            raise RuntimeError("query timed out")
        return self.results.get(expr, [])


def render(
    text: str,
    value: float = 0.5,
    labels: dict[str, str] | None = None,
    query: FakeQuery | None = None,
    name: str = "test",
) -> Expansion:
    tpl = AlertTemplate.parse(text, name)
    return tpl.render(
        LABELS if labels is None else labels,
        value,
        external_labels={"cluster": "eu-1"},
        external_url=EXTERNAL_URL,
        query=query or FakeQuery(),
        timestamp=1435065584.128,
    )


def expand(text: str, value: float = 0.5, **kw: object) -> str:
    return render(text, value, **kw).text  # type: ignore[arg-type]


# ---- data and real rule files ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value", "want"),
    [
        ("plain text", 0, "plain text"),
        ("{{ $labels.instance }} down for more than 5 minutes", 0, "host-1.example.com:9100 down for more than 5 minutes"),
        ("{{ .Labels.job }}/{{ $labels.job }}", 0, "node/node"),
        ("{{ $externalLabels.cluster }} {{ .ExternalLabels.cluster }}", 0, "eu-1 eu-1"),
        ("{{ $externalURL }}|{{ .ExternalURL }}", 0, f"{EXTERNAL_URL}|{EXTERNAL_URL}"),
        ("{{ $labels.missing }}|", 0, "|"),
        ("{{ $value }}", 0.1, "0.1"),
        ("{{ .Value }}", 1e6, "1e+06"),
        ("{{ $value }}", 3.14159, "3.14159"),
        ("{{ $value }}", 123456.0, "123456"),
        ("{{ $value }}", 1234567.0, "1.234567e+06"),
        ("{{ $value }}", 1e-5, "1e-05"),
        ("{{ $value }}", 0.0001, "0.0001"),
        ("{{ $value }}", 100.0, "100"),
        ("{{ $value }}", -2.5, "-2.5"),
        ("{{ $value }}", math.inf, "+Inf"),
        ("{{ $value }}", -math.inf, "-Inf"),
        ("{{ $value }}", math.nan, "NaN"),
        ("{{ $value | humanizePercentage }}", 0.1234567, "12.35%"),
        ('{{ printf "%.2f" $value }}', 2.0 / 3, "0.67"),
        ('{{ printf "%.0f%%" $value }}', 95.5, "96%"),
        ("{{ range $k, $v := $labels }}{{ $k }}={{ $v }} {{ end }}", 0, "instance=host-1.example.com:9100 job=node severity=page "),
        ("{{ if gt $value 0.9 }}critical{{ else }}warning{{ end }}", 0.95, "critical"),
        ("{{ if gt $value 0.9 }}critical{{ else }}warning{{ end }}", 0.5, "warning"),
        ('{{ if eq $labels.job "api" }}A{{ else if eq $labels.job "node" }}N{{ else }}O{{ end }}', 0, "N"),
        ("{{ with $labels.missing }}x{{ else }}none{{ end }}", 0, "none"),
        ("{{ with $labels.job }}job={{ . }}{{ end }}", 0, "job=node"),
        ('{{ $labels.instance | reReplaceAll ":.*" "" }}', 0, "host-1.example.com"),
        ("{{ $labels.instance | stripPort }} {{ $labels.instance | stripDomain }}", 0, "host-1.example.com host-1:9100"),
        ("{{ humanize $value }}B/s", 1234567, "1.235MB/s"),
        ("{{ $value | humanize1024 }}B", 1048576, "1MiB"),
        ("{{ $value | humanizeDuration }}", 899.99, "14m 59s"),
        ("{{ len $labels }} labels", 0, "3 labels"),
        ('{{ index $labels "job" }}', 0, "node"),
        ("{{ $labels.job | toUpper }} {{ \"AbC\" | toLower }} {{ \"node exporter down\" | title }}", 0, "NODE abc Node Exporter Down"),
        ('{{ printf "%s has %d labels" $labels.job (len $labels) }}', 0, "node has 3 labels"),
    ],
)
def test_expands_like_prometheus(text: str, value: float, want: str) -> None:
    assert expand(text, value) == want


def test_without_actions_is_passed_through() -> None:
    tpl = AlertTemplate.parse("no actions here }}", "test")
    assert tpl.is_static
    assert tpl.expand({}, 1, external_labels={}, external_url="") == "no actions here }}"


# ---- Go template syntax ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("{{ 1 }}", "1"),
        ("{{ 1.0 }} {{ 1e3 }} {{ 0x1F }} {{ 'a' }} {{ 010 }}", "1 1000 31 97 8"),
        ('{{ "<b>" }}', "<b>"),
        ("a  {{- 1 -}}  b", "a1b"),
        ("a \n {{- /* comment */ -}} \n b", "ab"),
        ("a{{/* comment */}}b", "ab"),
        ("{{-3}}", "-3"),
        ("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}", "2"),
        ('{{ $x := "a" }}{{ if true }}{{ $x = "b" }}{{ end }}{{ $x }}', "b"),
        ("{{ (1) }} {{ (print 1 2) }}", "1 1 2"),
        ('{{ "x" | printf "%s-%s" "y" }}', "y-x"),
        ("{{ range $i, $e := $labels }}{{ $i }}:{{ $e }};{{ end }}", "a:1;b:2;"),
        ("{{ range $e := $labels }}{{ $e }}{{ end }}", "12"),
        ("{{ range $labels }}{{ . }}{{ else }}empty{{ end }}", "12"),
        ('{{ range query "nothing" }}x{{ else }}empty{{ end }}', "empty"),
        ("{{ range 3 }}{{ . }}{{ end }}", "012"),
        ('{{ range $labels }}{{ if eq . "2" }}{{ break }}{{ end }}{{ . }}{{ end }}', "1"),
        ('{{ range $labels }}{{ if eq . "1" }}{{ continue }}{{ end }}{{ . }}{{ end }}', "2"),
        ('{{ define "x" }}[{{ . }}]{{ end }}{{ template "x" "y" }}', "[y]"),
        ('{{define "x"}}{{.arg0}} {{.arg1}}{{end}}{{template "x" (args 1 "2")}}', "1 2"),
        ('{{ block "b" $labels.a }}<{{ . }}>{{ end }}', "<1>"),
        ('{{ index (args 1) "arg9" }}', "<no value>"),
        ("{{ and 1 0 }} {{ and 1 2 }} {{ or 0 \"\" }} {{ or 0 \"x\" }} {{ not 0 }}", "0 2  x true"),
        ('{{ eq "a" "b" "a" }} {{ ne 1 2 }} {{ lt 1 2 }} {{ le 2 2 }} {{ gt "b" "a" }} {{ ge 1.5 2.5 }}', "true true true true true false"),
        ("{{ if and $labels.a (eq $labels.b \"2\") }}both{{ end }}", "both"),
        ('{{ len "héllo" }} {{ index "abc" 1 }}', "6 98"),
        ('{{ html "<a href=\'x\'>&" }}', "&lt;a href=&#39;x&#39;&gt;&amp;"),
        ('{{ js "a\'b\\"<>" }}', "a\\'b\\\"\\u003C\\u003E"),
        ('{{ urlquery "a b&c/d" }}', "a+b%26c%2Fd"),
        ('{{ print 1 2 "a" 3 "b" }}', "1 2a3b"),
        ('{{ println 1 "a" }}', "1 a\n"),
        ('{{ slice "abcdef" 1 3 }}', "bc"),
    ],
)
def test_go_template_syntax(text: str, want: str) -> None:
    assert expand(text, labels={"a": "1", "b": "2"}) == want


def test_nan_compares_as_go_does() -> None:
    # gt is "not le", so NaN is greater than everything, as in Prometheus.
    assert expand("{{ if gt $value 0.9 }}critical{{ end }}", math.nan) == "critical"
    assert expand("{{ if $value }}true{{ end }}", math.nan) == "true"
    assert expand("{{ if $value }}true{{ else }}false{{ end }}", 0.0) == "false"


# ---- Go fmt ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (0.0, "0"),
        (-0.0, "-0"),
        (1.0, "1"),
        (0.1, "0.1"),
        (1e6, "1e+06"),
        (999999.0, "999999"),
        (1e21, "1e+21"),
        (123456789.0, "1.23456789e+08"),
        (0.00001234, "1.234e-05"),
        (1 / 3, "0.3333333333333333"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (math.inf, "+Inf"),
        (math.nan, "NaN"),
    ],
)
def test_float_prints_as_strconv_shortest(value: float, want: str) -> None:
    assert format_float(value) == want


@pytest.mark.parametrize(
    ("fmt", "args", "want"),
    [
        ("%.2f", [3.14159], "3.14"),
        ("%0.2f", [3720.01], "3720.01"),
        ("%f", [1.5], "1.500000"),
        ("%e", [123456.0], "1.234560e+05"),
        ("%g %G", [1e21, 1e-7], "1e+21 1E-07"),
        ("%.3g", [1234.5678], "1.23e+03"),
        ("%v %v %v", [1.5, 2, True], "1.5 2 true"),
        ("%s", ["x"], "x"),
        ("%q", ['a"b\n'], '"a\\"b\\n"'),
        ("%x %X %o %b", [255, 255, 8, 5], "ff FF 10 101"),
        ("%x", ["hi"], "6869"),
        ("%5d|%-5d|%05d|%+d", [42, 42, 42, 42], "   42|42   |00042|+42"),
        ("%8.3f|%-8.2f|", [3.14159, 2.5], "   3.142|2.50    |"),
        ("%5s|%-5s|%.2s", ["ab", "ab", "abcdef"], "   ab|ab   |ab"),
        ("%d%%", [50], "50%"),
        ("%d", [3.0], "%!d(float64=3)"),
        ("%s", [1.5], "%!s(float64=1.5)"),
        ("%d %d", [1], "1 %!d(MISSING)"),
        ("%d", [1, "x"], "1%!(EXTRA string=x)"),
        ("%", [], "%!(NOVERB)"),
        ("%f", [math.inf], "+Inf"),
        ("%.2f", [math.nan], "NaN"),
        ("%c%c", [72, 105], "Hi"),
        ("%T %T %T", [1.5, "a", 1], "float64 string int"),
    ],
)
def test_printf_matches_go(fmt: str, args: list[object], want: str) -> None:
    assert sprintf(fmt, args) == want


# ---- Prometheus functions (template_test.go expectations) -----------------------------------


@pytest.mark.parametrize(
    ("inputs", "func", "want"),
    [
        ([0.0, 1.0, 1234567.0, 0.12], "humanize", "0:1:1.235M:120m:"),
        (["0.0", "1.0", "1234567.0", ".12"], "humanize", "0:1:1.235M:120m:"),
        ([0, -1, 1, 1234567, 2**63 - 1], "humanize", "0:-1:1:1.235M:9.223E:"),
        ([1e-3, -1e-3, 0.000001234, -1234567.0], "humanize", "1m:-1m:1.234u:-1.235M:"),
        ([math.inf, -math.inf, math.nan], "humanize", "+Inf:-Inf:NaN:"),
        ([0.0, 1.0, 1048576.0, 0.12], "humanize1024", "0:1:1Mi:0.12:"),
        ([0, -1, 1, 1234567, 2**63 - 1], "humanize1024", "0:-1:1:1.177Mi:8Ei:"),
        ([math.inf, -math.inf, math.nan], "humanize1024", "+Inf:-Inf:NaN:"),
        (
            [0, 1, 60, 3600, 86400, 86400 + 3600, -(86400 * 2 + 3600 * 3 + 60 * 4 + 5), 899.99],
            "humanizeDuration",
            "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:1d 1h 0m 0s:-2d 3h 4m 5s:14m 59s:",
        ),
        (
            [0.1, 0.0001, 0.12345, 60.1, 60.5, 1.2345, 12.345],
            "humanizeDuration",
            "100ms:100us:123.5ms:1m 0s:1m 0s:1.234s:12.35s:",
        ),
        ([".1", "60", "86400"], "humanizeDuration", "100ms:1m 0s:1d 0h 0m 0s:"),
        ([0.5, 90, 3600 * 24 + 1, 1234567], "humanizeDuration", "500ms:1m 30s:1d 0h 0m 1s:14d 6h 56m 7s:"),
        ([math.inf, -math.inf, math.nan], "humanizeDuration", "+Inf:-Inf:NaN:"),
        ([-0.22222, 0.0, 0.1234567, 1.23456], "humanizePercentage", "-22.22%:0%:12.35%:123.5%:"),
        ([0, -1, 1, 1234567, 2**63 - 1], "humanizePercentage", "0%:-100%:100%:1.235e+08%:9.223e+20%:"),
        (
            [0, -1, 1, 1234567, 9223372036],
            "humanizeTimestamp",
            "1970-01-01 00:00:00 +0000 UTC:1969-12-31 23:59:59 +0000 UTC:1970-01-01 00:00:01 +0000 UTC:"
            "1970-01-15 06:56:07 +0000 UTC:2262-04-11 23:47:16 +0000 UTC:",
        ),
        ([1435065584.128, "1435065584.128"], "humanizeTimestamp", "2015-06-23 13:19:44.128 +0000 UTC:" * 2),
        (["+Inf", "-Inf", "NaN"], "humanizeTimestamp", "+Inf:-Inf:NaN:"),
    ],
)
def test_humanize_functions(inputs: list[object], func: str, want: str) -> None:
    out = [expand(f"{{{{ {func} {_literal(item)} }}}}:") for item in inputs]
    assert "".join(out) == want


def _literal(item: object) -> str:
    if isinstance(item, str):
        return f'"{item}"'
    if isinstance(item, float) and math.isinf(item):
        return '"+Inf"' if item > 0 else '"-Inf"'
    if isinstance(item, float) and math.isnan(item):
        return '"NaN"'
    if isinstance(item, float):
        return repr(item) if "e" in repr(item) or "." in repr(item) else repr(item) + ".0"
    return str(item)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ('{{ reReplaceAll "(a)b" "x$1" "ab" }}', "xa"),
        ('{{ reReplaceAll "(?P<h>[^:]+):(\\\\d+)" "${h} port $2$$" "web:80" }}', "web port 80$"),
        ('{{ reReplaceAll "a" "$1x" "aa" }}', ""),
        ('{{ match "a+" "aa" }} {{ match "a+" "b" }} {{ match "^b" "ab" }}', "true false false"),
        ('{{ "aa bb CC" | title }}', "Aa Bb CC"),
        ('{{ "aa bb CC" | toUpper }} {{ "aA bB CC" | toLower }}', "AA BB CC aa bb cc"),
        ('{{ graphLink "up" }} {{ tableLink "up" }}', "/graph?g0.expr=up&g0.tab=0 /graph?g0.expr=up&g0.tab=1"),
        ('{{ graphLink "rate(x[5m]) > 0" }}', "/graph?g0.expr=rate%28x%5B5m%5D%29+%3E+0&g0.tab=0"),
        ("{{ pathPrefix }} {{ externalURL }}", f"/path/prefix {EXTERNAL_URL}"),
        ('{{ printf "%0.2f" (parseDuration "1h2m10ms") }} {{ parseDuration "-1m" }}', "3720.01 -60"),
        ('{{ (1435065584.128 | toTime).Format "2006" }}', "2015"),
        ('{{ ("1435065584.128" | toTime).Format "2006-01-02T15:04:05.000Z07:00 Mon Jan" }}', "2015-06-23T13:19:44.128Z Tue Jun"),
        ("{{ toTime 1435065584.128 }}", "2015-06-23 13:19:44.128 +0000 UTC"),
        ("{{ toDuration 3725.5 }} {{ (toDuration 90).Seconds }}", "1h2m5.5s 90"),
        ("{{ now }}", "1.435065584128e+09"),
        ('{{ "<b>" | safeHtml }}', "<b>"),
        ('{{ "foo.example.com" | stripPort }}', "foo.example.com"),
        ('{{ "foo.example.com:12345" | stripPort }}', "foo.example.com"),
        ('{{ "192.0.2.1:12345" | stripPort }}', "192.0.2.1"),
        ('{{ "2001:0DB8::1" | stripPort }}', "2001:0DB8::1"),
        ('{{ "[2001:0DB8::1]:12345" | stripPort }}', "2001:0DB8::1"),
        ('{{ "[2001:0DB8::1]::12345" | stripPort }}', "[2001:0DB8::1]::12345"),
        ('{{ "foo.example.com" | stripDomain }}', "foo"),
        ('{{ "foo.example.com:12345" | stripDomain }}', "foo:12345"),
        ('{{ "192.0.2.1" | stripDomain }}', "192.0.2.1"),
        ('{{ "192.0.2.1:12345" | stripDomain }}', "192.0.2.1:12345"),
        ('{{ "2001:0DB8::1" | stripDomain }}', "2001:0DB8::1"),
        ('{{ "[2001:0DB8::1]:12345" | stripDomain }}', "[2001:0DB8::1]:12345"),
        ('{{ "[2001:0DB8::1]::12345" | stripDomain }}', "[2001:0DB8::1]::12345"),
    ],
)
def test_prometheus_functions(text: str, want: str) -> None:
    assert expand(text) == want


# ---- query ------------------------------------------------------------------------------------


def _vector() -> FakeQuery:
    return FakeQuery(
        {
            "metric": [
                FakeSample({"__name__": "metric", "instance": "b"}, 21),
                FakeSample({"__name__": "metric", "instance": "a"}, 11),
            ],
            "up": [FakeSample({"__name__": "up", "instance": "a", "__value__": "x"}, 1)],
        }
    )


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ('{{ with query "up" }}{{ . | first | value }}{{ end }}', "1"),
        ('{{ query "up" | first | label "instance" }}', "a"),
        ('{{ query "up" | first | label "foo" }}|', "|"),
        ('{{ query "up" | first | strvalue }}', "x"),
        ('{{ $x := query "up" | first }}{{ $x.Labels.foo }}|{{ $x.Value }}', "|1"),
        ('{{ range query "metric" | sortByLabel "instance" }}{{.Labels.instance}}:{{.Value}}: {{end}}', "a:11: b:21: "),
        ('{{ with query "nothing" }}some{{ else }}none{{ end }}', "none"),
        ('{{ len (query "metric") }}', "2"),
        ('{{ range $i, $s := query "metric" }}{{ $i }}={{ $s.Labels.instance }} {{ end }}', "0=b 1=a "),
        ('{{ (index (query "metric") 1).Value | humanize }}', "11"),
    ],
)
def test_query(text: str, want: str) -> None:
    assert expand(text, query=_vector()) == want


def test_query_passes_the_expression() -> None:
    fake = _vector()
    expand('{{ query "up{job=\\"node\\"}" }}', query=fake)
    assert fake.asked == ['up{job="node"}']


# ---- errors -----------------------------------------------------------------------------------


def _exec_error(at: int, context: str, msg: str, name: str = "test") -> str:
    return f'error executing template {name}: template: {name}:1:{COL + at}: executing "{name}" at <{context}>: {msg}'


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            '{{ query "missing" | first }}',
            _exec_error(21, "first", "error calling first: first() called on vector with no elements"),
        ),
        (
            '{{ (query "missing").banana }}',
            _exec_error(10, '"missing"', "can't evaluate field banana in type template.queryResult"),
        ),
        (
            '{{ humanize "one" }}',
            _exec_error(3, 'humanize "one"', 'error calling humanize: strconv.ParseFloat: parsing "one": invalid syntax'),
        ),
        (
            '{{ "one" | humanizePercentage }}',
            _exec_error(
                11, "humanizePercentage", 'error calling humanizePercentage: strconv.ParseFloat: parsing "one": invalid syntax'
            ),
        ),
        (
            "{{ humanizeTimestamp 1e300 }}",
            _exec_error(
                3,
                "humanizeTimestamp 1e300",
                "error calling humanizeTimestamp: 1e+300 cannot be represented as a nanoseconds timestamp since it overflows int64",
            ),
        ),
        ('{{ query "boom" }}', _exec_error(3, 'query "boom"', "error calling query: query timed out")),
        ("{{ $labels.job 1 }}", _exec_error(3, "$labels.job", "job is not a method but has arguments")),
        ('{{ "x" 1 }}', _exec_error(3, '"x"', 'can\'t give argument to non-function "x"')),
        ('{{ index (query "up") 5 }}', _exec_error(3, 'index (query "up") 5', "error calling index: index out of range: 5")),
        ("{{ gt $value 1 }}", _exec_error(3, "gt $value 1", "error calling gt: incompatible types for comparison")),
        ("{{ toUpper $value }}", _exec_error(11, "$value", "wrong type for value; expected string; got float64")),
        ("{{ humanize }}", _exec_error(3, "humanize", "wrong number of args for humanize: want 1 got 0")),
        ("{{ len 3 }}", _exec_error(3, "len 3", "error calling len: len of type int")),
        ("{{ nil }}", _exec_error(3, "nil", "nil is not a command")),
        ('{{ template "nope" }}', _exec_error(12, '{{template "nope"}}', 'template "nope" not defined')),
        (
            '{{ reReplaceAll "(" "" "x" }}',
            _exec_error(
                3,
                'reReplaceAll "(" "" "x"',
                "error calling reReplaceAll: regexp: Compile(`(`): error parsing regexp: missing closing ): `(`",
            ),
        ),
    ],
)
def test_expansion_errors_take_prometheus_form(text: str, error: str) -> None:
    result = render(text, query=_vector())
    assert result.error == error
    assert result.text == f"<error expanding template: {error}>"


def test_errors_on_later_lines_count_from_line_start() -> None:
    result = render('line one\n  {{ humanize "x" }}')
    assert result.error is not None
    assert 'template: test:2:5: executing "test" at <humanize "x">' in result.error


def test_struct_field_errors_name_the_alert_data_type() -> None:
    result = render("{{ .Foo }}")
    assert result.error is not None
    assert result.error.endswith("can't evaluate field Foo in type struct { Labels map[string]string; "
                                 "ExternalLabels map[string]string; ExternalURL string; Value interface {} }")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ nope }}", 'template: test:1: function "nope" not defined'),
        ("{{", "template: test:1: unclosed action"),
        ("{{ $labels.x ", "template: test:1: unclosed action"),
        ("a\n{{ if true }}x", "template: test:2: unexpected EOF"),
        ("{{ end }}", "template: test:1: unexpected {{end}}"),
        ("{{ else }}", "template: test:1: unexpected {{else}}"),
        ('{{ "abc }}', "template: test:1: unterminated quoted string"),
        ("{{ $nope }}", 'template: test:1: undefined variable "$nope"'),
        ("{{ ) }}", "template: test:1: unexpected right paren"),
        ("{{ (1 }}", "template: test:1: unclosed left paren"),
        ("{{ 1 | 2 }}", "template: test:1: non executable command in pipeline stage 2"),
        ("{{ 3x }}", 'template: test:1: bad number syntax: "3x"'),
        ("{{ @ }}", "template: test:1: unrecognized character in action: U+0040 '@'"),
        ("{{ \u00a0}}", "template: test:1: unrecognized character in action: U+00A0"),
        ("{{/* x */ 1 }}", "template: test:1: comment ends before closing delimiter"),
        ("{{/* x", "template: test:1: unclosed comment"),
        ("{{ if }}{{ end }}", "template: test:1: missing value for if"),
        ("{{ break }}", "template: test:1: {{break}} outside {{range}}"),
        ("{{ 1.5.x }}", 'template: test:1: unexpected . after term "1.5"'),
        ("{{ tmpl \"a\" . }}", 'template: test:1: function "tmpl" not defined'),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        AlertTemplate.parse(text, "test")
    assert str(info.value) == message


# ---- limits ----------------------------------------------------------------------------------


def test_recursive_template_stops_at_depth() -> None:
    result = render('{{ define "a" }}x{{ template "a" . }}{{ end }}{{ template "a" . }}')
    assert result.error is not None
    assert "exceeded maximum template depth (100)" in result.error
    assert result.text.startswith("<error expanding template: error executing template test: ")


def test_output_is_capped() -> None:
    tpl = AlertTemplate.parse("{{ range 100000 }}0123456789{{ end }}", "test", max_output=1000)
    out = tpl.render({}, 0, external_labels={}, external_url="")
    assert out.error is not None and "output exceeds 1000 bytes" in out.error


def test_steps_are_capped() -> None:
    tpl = AlertTemplate.parse("{{ range 1000000 }}{{ end }}", "test", max_steps=5000)
    out = tpl.render({}, 0, external_labels={}, external_url="")
    assert out.error is not None and "exceeded 5000 execution steps" in out.error


def test_parse_once_expand_many() -> None:
    tpl = AlertTemplate.parse("{{ $labels.instance }}={{ $value }}", "__alert_X")
    outs = [tpl.expand({"instance": str(i)}, i / 2, external_labels={}, external_url="") for i in range(3)]
    assert outs == ["0=0", "1=0.5", "2=1"]


def test_query_without_function_fails_in_error_form() -> None:
    tpl = AlertTemplate.parse('{{ query "up" }}', "test")
    text = tpl.expand({}, 0, external_labels={}, external_url="")
    assert text.startswith("<error expanding template: ") and "error calling query" in text


# ---- properties ------------------------------------------------------------------------------

_FRAGMENTS = st.sampled_from(
    ["{{", "}}", "{{-", "-}}", " ", "$labels", "$value", ".", "|", "(", ")", "if", "else", "end", "range",
     "with", "define", "template", '"x"', "1", "1.5", "humanize", "printf", "query", ":=", "=", "$x", ",",
     "/*", "*/", "\n", "index", "len", "first", "'", "`", "eq", "nil", "true", "break", "-"]
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(_FRAGMENTS | st.text(max_size=3), max_size=25).map("".join)))
def test_arbitrary_text_never_raises_from_expand(text: str) -> None:
    try:
        tpl = AlertTemplate.parse(text, "fuzz")
    except TemplateError:
        return
    out = tpl.render(
        {"a": "b"}, 1.5, external_labels={}, external_url="http://x/", query=_vector(), timestamp=0.0
    )
    assert isinstance(out.text, str)
    if out.error is not None:
        assert out.text == f"<error expanding template: {out.error}>"
        assert not out.error.startswith("panic"), out.error


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_float_printing_round_trips(value: float) -> None:
    text = format_float(value)
    if math.isnan(value):
        assert text == "NaN"
    else:
        assert float(text.replace("Inf", "inf")) == value
