"""The PromQL lexer: tokens, numbers and durations, strings and escapes, lexer errors."""

from __future__ import annotations

import pytest

from daemon.promql.lexer import ParseError, go_quote, tokenize, unquote


def kinds(text: str) -> list[tuple[str, str]]:
    return [(t.kind, t.text) for t in tokenize(text)][:-1]


def lex_error(text: str) -> str:
    with pytest.raises(ParseError) as info:
        tokenize(text)
    return str(info.value)


def test_selector_tokens() -> None:
    assert kinds('rate(foo{a="b",c!~"d"}[5m])') == [
        ("IDENTIFIER", "rate"),
        ("(", "("),
        ("IDENTIFIER", "foo"),
        ("{", "{"),
        ("IDENTIFIER", "a"),
        ("=", "="),
        ("STRING", '"b"'),
        (",", ","),
        ("IDENTIFIER", "c"),
        ("!~", "!~"),
        ("STRING", '"d"'),
        ("}", "}"),
        ("[", "["),
        ("DURATION", "5m"),
        ("]", "]"),
        (")", ")"),
    ]


def test_keywords_are_case_insensitive_and_plain_inside_braces() -> None:
    assert kinds("SUM BY offset") == [("sum", "SUM"), ("by", "BY"), ("offset", "offset")]
    assert kinds("{by='x'}")[1] == ("IDENTIFIER", "by")


def test_colon_makes_a_metric_identifier() -> None:
    assert kinds("job:rate5m:sum") == [("METRIC_IDENTIFIER", "job:rate5m:sum")]


@pytest.mark.parametrize(
    "text",
    ["1", "1.5", ".5", "5.", "1e3", "1E-3", "1.5e+3", "0x1F", "0X_1f", "1_000", "010", "Inf", "nan", "NaN", "inf"],
)
def test_numbers(text: str) -> None:
    assert kinds(text) == [("NUMBER", text)]


@pytest.mark.parametrize("text", ["5m", "1h30m", "1d", "2w", "1y", "250ms", "1y2w3d4h5m6s7ms"])
def test_durations(text: str) -> None:
    assert kinds(text) == [("DURATION", text)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5mh", '1:1: parse error: bad number or duration syntax: "5mh"'),
        ("1.5.2", '1:1: parse error: bad number or duration syntax: "1.5."'),
        ("1__0", '1:1: parse error: bad number or duration syntax: "1__"'),
        ("1e", '1:1: parse error: bad number or duration syntax: "1e"'),
    ],
)
def test_bad_numbers(text: str, message: str) -> None:
    assert lex_error(text) == message


def test_operators() -> None:
    assert [k for k, _ in kinds("a+b-c*d/e%f^g==h!=i<j<=k>l>=m")] == [
        "IDENTIFIER", "+", "IDENTIFIER", "-", "IDENTIFIER", "*", "IDENTIFIER", "/", "IDENTIFIER", "%",
        "IDENTIFIER", "^", "IDENTIFIER", "==", "IDENTIFIER", "!=", "IDENTIFIER", "<", "IDENTIFIER", "<=",
        "IDENTIFIER", ">", "IDENTIFIER", ">=", "IDENTIFIER",
    ]  # fmt: skip


def test_comments_run_to_the_end_of_the_line() -> None:
    assert kinds("foo # a comment ) ]\n+ bar") == [("IDENTIFIER", "foo"), ("+", "+"), ("IDENTIFIER", "bar")]


def test_strings_and_escapes() -> None:
    assert unquote(r'"a\nb\t\"c\\"') == 'a\nb\t"c\\'
    assert unquote(r"'it\'s'") == "it's"
    assert unquote(r'"\u00e9\U0001F600\x41\101"') == "é😀AA"
    assert unquote(r"`raw \n`") == r"raw \n"
    # \x escapes are bytes, as in Go; an invalid UTF-8 byte prints back as it was written.
    assert go_quote(unquote(r'"a\xc5z"')) == r'"a\xc5z"'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('"abc', "1:1: parse error: unterminated quoted string"),
        ('"a\nb"', "1:1: parse error: unterminated quoted string"),
        ("`abc", "1:1: parse error: unterminated raw string"),
        (r"'\q'", "1:1: parse error: unknown escape sequence U+0071 'q'"),
        (r'"\xZZ"', "1:1: parse error: illegal character U+005A 'Z' in escape sequence"),
        (r'"\uD800"', "1:1: parse error: escape sequence is an invalid Unicode code point"),
        (r'"\x4', "1:1: parse error: escape sequence not terminated"),
        (r'"\x4"', "1:1: parse error: illegal character U+0022 '\"' in escape sequence"),
        ("foo{", "1:5: parse error: unexpected end of input inside braces"),
        ("foo{a!b}", "1:6: parse error: unexpected character after '!' inside braces: 'b'"),
        ("foo{{", "1:5: parse error: unexpected left brace '{'"),
        ("foo{a;}", "1:6: parse error: unexpected character inside braces: ';'"),
        ("a =~ b", "1:3: parse error: unexpected character after '=': '~'"),
        ("a ! b", "1:3: parse error: unexpected character after '!': ' '"),
        ("(a", "1:3: parse error: unclosed left parenthesis"),
        ("a)", "1:3: parse error: unexpected right parenthesis ')'"),
        ("a]", "1:2: parse error: unexpected right bracket ']'"),
        ("a[5m", "1:5: parse error: unexpected end of input in duration expression"),
        ("a[5m x]", "1:6: parse error: unexpected character in duration expression: 'x'"),
        ("a[:5m]", "1:4: parse error: unexpected colon before duration in duration expression"),
        ("a[5m::]", "1:7: parse error: unexpected repeated colon in duration expression"),
        ("a ; b", "1:3: parse error: unexpected character: ';'"),
        ("é", "1:1: parse error: unexpected character: 'é'"),
    ],
)
def test_lexer_errors(text: str, message: str) -> None:
    assert lex_error(text) == message


def test_positions_are_line_and_byte_column() -> None:
    assert lex_error("foo +\n  bar ; x") == "2:7: parse error: unexpected character: ';'"
    # Columns count UTF-8 bytes, as in Prometheus: "é" is two bytes.
    assert lex_error('"é" ;') == "1:6: parse error: unexpected character: ';'"


def test_go_quote() -> None:
    assert go_quote('a"b\\c\n\x01é') == '"a\\"b\\\\c\\n\\x01é"'
