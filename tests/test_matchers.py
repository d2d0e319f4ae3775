"""Alertmanager's matcher syntax (0.25's parser): parsing, errors, printing, sorting, matching."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.dispatch.matchers import (
    Matcher,
    MatcherError,
    MatchType,
    format_matchers,
    matches_all,
    parse_matcher,
    parse_matchers,
    sort_matchers,
)
from daemon.tsdb.labels import Labels


@pytest.mark.parametrize(
    ("text", "name", "type", "value"),
    [
        ("a=b", "a", MatchType.EQUAL, "b"),
        ('a="b"', "a", MatchType.EQUAL, "b"),
        ("a!=b", "a", MatchType.NOT_EQUAL, "b"),
        ('a=~"x|y"', "a", MatchType.REGEXP, "x|y"),
        ("a!~y", "a", MatchType.NOT_REGEXP, "y"),
        ("  a  =  b  ", "a", MatchType.EQUAL, "b"),
        ('a=" b "', "a", MatchType.EQUAL, " b "),
        ("a=", "a", MatchType.EQUAL, ""),
        ('a=""', "a", MatchType.EQUAL, ""),
        ("a==b", "a", MatchType.EQUAL, "=b"),
        ("a:b=c", "a:b", MatchType.EQUAL, "c"),
        ("a=b c", "a", MatchType.EQUAL, "b c"),
        ("city=Zürich", "city", MatchType.EQUAL, "Zürich"),
        (r'a="b\"c"', "a", MatchType.EQUAL, 'b"c'),
        (r'a="b\nc"', "a", MatchType.EQUAL, "b\nc"),
        (r'a="b\\c"', "a", MatchType.EQUAL, "b\\c"),
        # A backslash before anything else, or at the very end, is literal.
        (r'a="b\xc"', "a", MatchType.EQUAL, r"b\xc"),
        ("a=b\\", "a", MatchType.EQUAL, "b\\"),
    ],
)
def test_one_matcher(text: str, name: str, type: MatchType, value: str) -> None:
    matcher = parse_matcher(text)
    assert (matcher.name, matcher.type, matcher.value) == (name, type, value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a", "bad matcher format: a"),
        ("1a=b", "bad matcher format: 1a=b"),
        ("", "bad matcher format: "),
        ('a="b', 'matcher value contains unescaped double quote: "b'),
        ('a=b"', 'matcher value contains unescaped double quote: b"'),
        ('a="b"c"', 'matcher value contains unescaped double quote: "b"c"'),
        ('a=~"("', "error parsing regexp: missing closing ): `^(?:()$`"),
        # Bytes that are not UTF-8, as Python decodes them from the command line.
        (b"a=\xff".decode("utf-8", "surrogateescape"), "matcher value not valid UTF-8: \udcff"),
    ],
)
def test_bad_matcher(text: str, message: str) -> None:
    with pytest.raises(MatcherError) as caught:
        parse_matcher(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ('{a="b", c=~"d"}', '{a="b",c=~"d"}'),
        ('{a="b", c=~"d",}', '{a="b",c=~"d"}'),
        ("a=b,", '{a="b"}'),
        ("a=b, ", '{a="b"}'),
        ("foo=bar,dings!=bums", '{dings!="bums",foo="bar"}'),
        ('a="x,y"', '{a="x,y"}'),
        (r'a="x\",y"', r'{a="x\",y"}'),
        (r'{quote="She said: \"Hi, ladies!\""}', r'{quote="She said: \"Hi, ladies!\""}'),
        ("{a=b}}", '{a="b}"}'),
        # Go's TrimSpace on the last item removes a trailing no-break space; the value's own
        # trimming (ASCII whitespace only) keeps the leading one.
        ("a=\u00a0b\u00a0", '{a="\u00a0b"}'),
        ("", "{}"),
    ],
)
def test_matcher_lists_print_as_alertmanager_does(text: str, printed: str) -> None:
    assert format_matchers(sort_matchers(parse_matchers(text))) == printed


def test_an_empty_item_in_a_list_is_an_error() -> None:
    with pytest.raises(MatcherError, match="bad matcher format: $"):
        parse_matchers("a=b,,c=d")


def test_sorted_by_name_then_value_then_operator() -> None:
    matchers = parse_matchers('b=x, a!=y, a=y, a=~"y", a=x')
    assert format_matchers(sort_matchers(matchers)) == '{a="x",a="y",a!="y",a=~"y",b="x"}'


def test_printing_escapes_backslash_newline_and_quote() -> None:
    assert str(Matcher.of("a", MatchType.EQUAL, 'x\\y\n"z"')) == r'a="x\\y\n\"z\""'


def test_a_missing_label_is_the_empty_string() -> None:
    assert parse_matcher("owner=").matches({})
    assert parse_matcher('owner=~"|none"').matches(Labels.of({"job": "x"}))
    assert not parse_matcher("owner!=").matches({})
    assert parse_matcher("owner!=").matches({"owner": "me"})


def test_regexes_are_anchored_and_dot_stops_at_newlines() -> None:
    matcher = parse_matcher('instance=~"10\\\\.0\\\\..*"')
    assert matcher.value == r"10\.0\..*"
    assert matcher.matches({"instance": "10.0.3.4:9100"})
    assert not matcher.matches({"instance": "110.0.3.4"})
    assert not parse_matcher('a=~"x.*"').matches({"a": "x\ny"})
    assert parse_matcher('a!~"x.*"').matches({"a": "x\ny"})


def test_regex_flags_as_in_re2() -> None:
    assert parse_matcher('cluster=~"(?i)PROD.*"').matches({"cluster": "production"})
    assert parse_matcher('a=~"[[:digit:]]+"').matches({"a": "123"})


def test_direct_construction_compiles_the_regex() -> None:
    assert Matcher("a", MatchType.NOT_REGEXP, "x|y").matches({"a": "z"})
    with pytest.raises(MatcherError):
        Matcher("a", MatchType.REGEXP, "(")


def test_matches_all_on_labels_and_dicts() -> None:
    matchers = parse_matchers('service=~"api|web", env!="staging"')
    assert matches_all(matchers, Labels.of({"service": "api", "env": "prod"}))
    assert not matches_all(matchers, {"service": "api", "env": "staging"})
    assert matches_all([], {})


_values = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)


@given(name=st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True), value=_values)
def test_printed_matchers_parse_back(name: str, value: str) -> None:
    for kind in (MatchType.EQUAL, MatchType.NOT_EQUAL):
        matcher = Matcher.of(name, kind, value)
        assert parse_matchers(str(matcher)) == [matcher]
