"""Parsing vector selectors: matchers, PromQL string escapes, and errors with positions."""

from __future__ import annotations

import pytest

from daemon.tsdb import Matcher, SelectorError, parse_selector


def m(name: str, op: str, value: str) -> Matcher:
    return Matcher(name, op, value)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("up", [m("__name__", "=", "up")]),
        ("  job:rate5m:sum  ", [m("__name__", "=", "job:rate5m:sum")]),
        (
            'up{job="a",i=~"x.*"}',
            [m("__name__", "=", "up"), m("job", "=", "a"), m("i", "=~", "x.*")],
        ),
        ('{__name__=~"a.*"}', [m("__name__", "=~", "a.*")]),
        ('up{job!="a", env!~"dev|test",}', [m("__name__", "=", "up"), m("job", "!=", "a"), m("env", "!~", "dev|test")]),
        ("up{}", [m("__name__", "=", "up")]),
        ('up{\n  job = "a" # a comment\n}', [m("__name__", "=", "up"), m("job", "=", "a")]),
        ("{job='single'}", [m("job", "=", "single")]),
        ("{path=`C:\\raw\\n`}", [m("path", "=", "C:\\raw\\n")]),
        ('{a="tab\\tnl\\nq\\"bs\\\\"}', [m("a", "=", 'tab\tnl\nq"bs\\')]),
        ("{a='it\\'s'}", [m("a", "=", "it's")]),
        ('{a="\\x41\\u00e9\\U0001F600\\101"}', [m("a", "=", "A\u00e9\U0001f600A")]),
        ('{a=~"\\\\d+"}', [m("a", "=~", "\\d+")]),
        ('{"my.metric"}', [m("__name__", "=", "my.metric")]),
        ('{"my.metric", "service.name"="x"}', [m("__name__", "=", "my.metric"), m("service.name", "=", "x")]),
        ('{__name__="a",__name__="b"}', [m("__name__", "=", "a"), m("__name__", "=", "b")]),
        ('{job=~".*", env="prod"}', [m("job", "=~", ".*"), m("env", "=", "prod")]),
    ],
)
def test_valid_selectors(text: str, want: list[Matcher]) -> None:
    assert parse_selector(text) == want


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "1:1: parse error: no expression found in input"),
        ("up{", "1:4: parse error: unexpected end of input inside braces"),
        ('up{job="a",', "1:12: parse error: unexpected end of input inside braces"),
        ("{}", "1:1: parse error: vector selector must contain at least one non-empty matcher"),
        ('{job=""}', "1:1: parse error: vector selector must contain at least one non-empty matcher"),
        ('{job=~".*",x!="a"}', "1:1: parse error: vector selector must contain at least one non-empty matcher"),
        ("up{job}", '1:7: parse error: unexpected "}" in label matching, expected label matching operator'),
        ("up{job=}", '1:8: parse error: unexpected "}" in label matching, expected string'),
        ("up{job==\"a\"}", '1:7: parse error: unexpected character "=" in label matching, expected label matching operator'),
        ('up{job="a" x="b"}', '1:12: parse error: unexpected identifier "x" in label matching, expected "," or "}"'),
        ('up{__name__="x"}', '1:4: parse error: metric name must not be set twice: "up" or "x"'),
        ('up{"x"}', '1:4: parse error: metric name must not be set twice: "up" or "x"'),
        ('up{a:b="x"}', '1:4: parse error: invalid label name "a:b"'),
        ('up{a=~"("}', "1:7: parse error: error parsing regexp: missing closing ): `(`"),
        ("up[5m]", '1:3: parse error: unexpected character "[" after the vector selector'),
        ('up{a="b"} x', '1:11: parse error: unexpected identifier "x" after the vector selector'),
        ('up{a="\\q"}', "1:7: parse error: unknown escape sequence 'q'"),
        ('up{a="\\x4"}', "1:7: parse error: invalid escape sequence \\x4\""),
        ('up{a="unterminated}', "1:6: parse error: unterminated quoted string"),
        ('up{a="line\nbreak"}', "1:6: parse error: unterminated quoted string"),
        ("up{a=`raw}", "1:6: parse error: unterminated raw string"),
        ('\n  {a="b"} 1', "2:11: parse error: unexpected character \"1\" after the vector selector"),
        ("5", '1:1: parse error: unexpected character "5", expected a vector selector'),
        ('{,a="b"}', '1:2: parse error: unexpected "," in label matching, expected label'),
    ],
)
def test_invalid_selectors_name_the_position(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_selector(text)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)
