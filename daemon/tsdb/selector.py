"""Parsing a PromQL vector selector (``up``, ``up{job="a",i=~"x.*"}``, ``{__name__=~"a.*"}``) into matchers."""

from __future__ import annotations

from dataclasses import dataclass

from daemon.tsdb.labels import METRIC_NAME
from daemon.tsdb.matcher import EQUAL, OPERATORS, Matcher, SelectorError

_IDENT_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_:")
_IDENT_CHARS = _IDENT_START | frozenset("0123456789")
_SPACE = frozenset(" \t\r\n")
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
}
_HEX = frozenset("0123456789abcdefABCDEF")
_OCTAL = frozenset("01234567")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "ident", "string", "op", "{", "}", ",", "eof", or "char" (anything else)
    text: str  # for strings: the unquoted value
    pos: int


def parse_selector(text: str) -> list[Matcher]:
    """The matchers of one vector selector; the metric name becomes a ``__name__=`` matcher first.

    Raises ``SelectorError`` with a Prometheus-style ``line:column: parse error: ...`` message.
    As in Prometheus, at least one matcher must not match the empty string (``{}`` and
    ``{job=~".*"}`` would select every series).
    """
    return _Parser(text).parse()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _Lexer(text).tokens()
        self.i = 0

    def error(self, pos: int, message: str) -> SelectorError:
        line = self.text.count("\n", 0, pos) + 1
        column = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return SelectorError(f"{line}:{column}: parse error: {message}")

    def next(self) -> _Token:
        token = self.tokens[self.i]
        if token.kind != "eof":
            self.i += 1
        return token

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def parse(self) -> list[Matcher]:
        first = self.peek()
        if first.kind == "eof":
            raise self.error(first.pos, "no expression found in input")
        matchers: list[Matcher] = []
        name_token: _Token | None = None
        if first.kind == "ident":
            name_token = self.next()
            matchers.append(Matcher(METRIC_NAME, EQUAL, name_token.text))
        elif first.kind != "{":
            raise self.error(first.pos, f"unexpected {_describe(first)}, expected a vector selector")
        if self.peek().kind == "{":
            self.parse_braces(matchers, name_token)
        end = self.next()
        if end.kind != "eof":
            raise self.error(end.pos, f"unexpected {_describe(end)} after the vector selector")
        if all(m.matches("") for m in matchers):
            raise self.error(first.pos, "vector selector must contain at least one non-empty matcher")
        return matchers

    def parse_braces(self, matchers: list[Matcher], name_token: _Token | None) -> None:
        self.next()  # "{"
        while True:
            token = self.next()
            if token.kind == "}":
                return
            if token.kind == "eof":
                raise self.error(token.pos, "unexpected end of input inside braces")
            if token.kind == "string" and self.peek().kind in (",", "}"):
                # Prometheus 3: a lone quoted string in braces is the metric name.
                name_token = self.set_name(name_token, token, matchers)
            elif token.kind in ("ident", "string"):
                self.parse_matcher(token, matchers, name_token)
            else:
                raise self.error(token.pos, f"unexpected {_describe(token)} in label matching, expected label")
            separator = self.next()
            if separator.kind == "}":
                return
            if separator.kind == "eof":
                raise self.error(separator.pos, "unexpected end of input inside braces")
            if separator.kind != ",":
                raise self.error(
                    separator.pos, f'unexpected {_describe(separator)} in label matching, expected "," or "}}"'
                )

    def set_name(self, name_token: _Token | None, token: _Token, matchers: list[Matcher]) -> _Token:
        if name_token is not None:
            raise self.error(
                token.pos, f'metric name must not be set twice: "{name_token.text}" or "{token.text}"'
            )
        matchers.insert(0, Matcher(METRIC_NAME, EQUAL, token.text))
        return token

    def parse_matcher(self, label: _Token, matchers: list[Matcher], name_token: _Token | None) -> None:
        if label.kind == "ident" and ":" in label.text:
            raise self.error(label.pos, f'invalid label name "{label.text}"')
        op = self.next()
        if op.kind != "op":
            raise self.error(
                op.pos, f"unexpected {_describe(op)} in label matching, expected label matching operator"
            )
        value = self.next()
        if value.kind != "string":
            raise self.error(value.pos, f"unexpected {_describe(value)} in label matching, expected string")
        try:
            matcher = Matcher(label.text, op.text, value.text)
        except SelectorError as exc:
            raise self.error(value.pos, str(exc)) from None
        if name_token is not None and label.text == METRIC_NAME and op.text == EQUAL:
            raise self.error(
                label.pos, f'metric name must not be set twice: "{name_token.text}" or "{value.text}"'
            )
        matchers.append(matcher)


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, pos: int, message: str) -> SelectorError:
        line = self.text.count("\n", 0, pos) + 1
        column = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return SelectorError(f"{line}:{column}: parse error: {message}")

    def tokens(self) -> list[_Token]:
        out = []
        while True:
            token = self.token()
            out.append(token)
            if token.kind == "eof":
                return out

    def token(self) -> _Token:
        text = self.text
        n = len(text)
        while self.pos < n and (text[self.pos] in _SPACE or text[self.pos] == "#"):
            if text[self.pos] == "#":
                end = text.find("\n", self.pos)
                self.pos = n if end < 0 else end
            else:
                self.pos += 1
        start = self.pos
        if start >= n:
            return _Token("eof", "", start)
        c = text[start]
        if c in _IDENT_START:
            end = start + 1
            while end < n and text[end] in _IDENT_CHARS:
                end += 1
            self.pos = end
            return _Token("ident", text[start:end], start)
        if c in "{},":
            self.pos += 1
            return _Token(c, c, start)
        if c in "=!":
            two = text[start : start + 2]
            if two in OPERATORS:
                self.pos += 2
                return _Token("op", two, start)
            if c == "=" and two != "==":
                self.pos += 1
                return _Token("op", "=", start)
        if c in "\"'`":
            return _Token("string", self.string(c), start)
        self.pos += 1
        return _Token("char", c, start)

    def string(self, quote: str) -> str:
        text = self.text
        start = self.pos
        i = start + 1
        if quote == "`":
            end = text.find("`", i)
            if end < 0:
                raise self.error(start, "unterminated raw string")
            self.pos = end + 1
            return text[i:end]
        out: list[str] = []
        n = len(text)
        while True:
            if i >= n or text[i] == "\n":
                raise self.error(start, "unterminated quoted string")
            c = text[i]
            if c == quote:
                self.pos = i + 1
                return "".join(out)
            if c != "\\":
                out.append(c)
                i += 1
                continue
            i = self.escape(i, out)

    def escape(self, i: int, out: list[str]) -> int:
        """Decode the escape sequence at ``text[i] == "\\"``; return the index after it."""
        text = self.text
        if i + 1 >= len(text):
            raise self.error(i, "escape sequence not terminated")
        c = text[i + 1]
        simple = _SIMPLE_ESCAPES.get(c)
        if simple is not None:
            out.append(simple)
            return i + 2
        if c in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[c]
            digits = text[i + 2 : i + 2 + width]
            if len(digits) != width or not set(digits) <= _HEX:
                raise self.error(i, f"invalid escape sequence \\{c}{digits}")
            code = int(digits, 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise self.error(i, f"escape sequence is an invalid Unicode code point \\{c}{digits}")
            out.append(chr(code))
            return i + 2 + width
        if c in _OCTAL:
            digits = text[i + 1 : i + 4]
            if len(digits) != 3 or not set(digits) <= _OCTAL or int(digits, 8) > 255:
                raise self.error(i, f"invalid escape sequence \\{digits}")
            out.append(chr(int(digits, 8)))
            return i + 4
        raise self.error(i, f"unknown escape sequence {c!r}")


def _describe(token: _Token) -> str:
    if token.kind == "eof":
        return "end of input"
    if token.kind == "ident":
        return f'identifier "{token.text}"'
    if token.kind == "string":
        return "string"
    if token.kind == "op":
        return f'"{token.text}"'
    return f'character "{token.text}"' if token.kind == "char" else f'"{token.text}"'
