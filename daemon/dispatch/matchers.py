"""Alertmanager's label matchers: ``a="b"``, ``a!=b``, ``a=~"x|y"``, ``a!~y``, lists in ``{...}``.

The syntax is that of Alertmanager 0.25's parser (``pkg/labels/parse.go``): a label name (colons
allowed), an operator, and a UTF-8 value that may be double-quoted. Within the value ``\\"``,
``\\n`` and ``\\\\`` are escapes, any other backslash is literal, and an unescaped ``"`` is an
error unless it closes the opening one. Regexes are RE2, anchored as ``^(?:value)$``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from daemon.re2 import RegexError, translate_re2


class MatcherError(ValueError):
    """Text that is not a matcher (or list of matchers), in Alertmanager's words."""


class MatchType(enum.IntEnum):
    """The four operators; the order is Alertmanager's, which sorting ties are broken by."""

    EQUAL = 0
    NOT_EQUAL = 1
    REGEXP = 2
    NOT_REGEXP = 3

    @property
    def operator(self) -> str:
        return _OPERATORS[self]


_OPERATORS = {MatchType.EQUAL: "=", MatchType.NOT_EQUAL: "!=", MatchType.REGEXP: "=~", MatchType.NOT_REGEXP: "!~"}
_BY_OPERATOR = {text: kind for kind, text in _OPERATORS.items()}
# Go's \s is [\t\n\f\r ] (no \v); "=~" is tried before "=" so that "~" never ends up in the value.
_SPACE = r"[\t\n\f\r ]"
# What Go's strings.TrimSpace removes (Unicode White_Space; Python's isspace adds \x1c-\x1f).
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_SURROGATE = re.compile("[\ud800-\udfff]")
_MATCHER = re.compile(rf"{_SPACE}*([a-zA-Z_:][a-zA-Z0-9_:]*){_SPACE}*(=~|=|!=|!~){_SPACE}*(.*?){_SPACE}*\Z", re.S)


class LabelSource(Protocol):
    """A label set: a ``Labels``, a ``dict``, a frozen mapping."""

    def get(self, name: str, default: str = ..., /) -> str: ...  # pragma: no cover

    def items(self) -> Iterable[tuple[str, str]]: ...  # pragma: no cover


@dataclass(frozen=True)
class Matcher:
    """One condition on one label; a missing label is the empty string, as in Alertmanager.

    A regex that RE2 would refuse raises ``MatcherError`` (Go's message) at construction.
    """

    name: str
    type: MatchType
    value: str
    _regex: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.type in (MatchType.REGEXP, MatchType.NOT_REGEXP):
            # Frozen: the compiled pattern is set once, here.
            object.__setattr__(self, "_regex", compile_anchored(self.value))

    @classmethod
    def of(cls, name: str, type: MatchType, value: str) -> Matcher:
        """The same as ``Matcher(name, type, value)``."""
        return cls(name, type, value)

    def matches_value(self, value: str) -> bool:
        """Whether a label value (``""`` when absent) satisfies this matcher."""
        if self.type is MatchType.EQUAL:
            return value == self.value
        if self.type is MatchType.NOT_EQUAL:
            return value != self.value
        assert self._regex is not None
        found = self._regex.search(value) is not None
        return found if self.type is MatchType.REGEXP else not found

    def matches(self, labels: LabelSource | Mapping[str, str]) -> bool:
        """Whether the label set satisfies this matcher."""
        return self.matches_value(labels.get(self.name, "") or "")

    def sort_key(self) -> tuple[str, str, int]:
        """Alertmanager's order: name, then value, then operator."""
        return (self.name, self.value, int(self.type))

    def __str__(self) -> str:
        return f'{self.name}{self.type.operator}"{escape_value(self.value)}"'


def compile_anchored(pattern: str) -> re.Pattern[str]:
    """``pattern`` as Alertmanager compiles it: ``^(?:pattern)$``, ``.`` not matching newlines."""
    anchored = f"^(?:{pattern})$"
    try:
        return re.compile(translate_re2(anchored), re.ASCII)
    except RegexError as exc:
        raise MatcherError(str(exc)) from None
    except re.error as exc:
        raise MatcherError(f"error parsing regexp: {exc.msg}: `{anchored}`") from None
    except (OverflowError, RecursionError):
        raise MatcherError(f"error parsing regexp: expression too large: `{anchored}`") from None


def escape_value(value: str) -> str:
    """OpenMetrics escaping, as Alertmanager prints matcher values: backslash, newline, quote."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def parse_matcher(text: str) -> Matcher:
    """One matcher such as ``severity=~"P0|P1"``; raises ``MatcherError``."""
    found = _MATCHER.match(text)
    if found is None:
        raise MatcherError(f"bad matcher format: {text}")
    name, operator, raw = found.groups()
    body = raw
    expect_closing_quote = body.startswith('"')
    if expect_closing_quote:
        body = body[1:]
    if _SURROGATE.search(body):
        # Undecodable bytes from the command line (surrogate-escaped) are not UTF-8.
        raise MatcherError(f"matcher value not valid UTF-8: {raw}")
    value: list[str] = []
    escaped = False
    last = len(body) - 1
    for i, char in enumerate(body):
        if escaped:
            escaped = False
            if char == "n":
                value.append("\n")
            elif char in '"\\':
                value.append(char)
            else:
                # Not an escape Alertmanager knows: the backslash stays.
                value.append("\\" + char)
            continue
        if char == "\\":
            if i < last:
                escaped = True
            else:
                value.append("\\")
        elif char == '"':
            if not expect_closing_quote or i < last:
                raise MatcherError(f"matcher value contains unescaped double quote: {raw}")
            expect_closing_quote = False
        else:
            value.append(char)
    if expect_closing_quote:
        raise MatcherError(f"matcher value contains unescaped double quote: {raw}")
    return Matcher.of(name, _BY_OPERATOR[operator], "".join(value))


def parse_matchers(text: str) -> list[Matcher]:
    """Comma-separated matchers, optionally in ``{...}``; a trailing comma is allowed.

    Commas inside double quotes do not separate (a quote escaped with a backslash does not open
    or close). Raises ``MatcherError`` for the first bad matcher.
    """
    if text.startswith("{"):
        text = text[1:]
    if text.endswith("}"):
        text = text[:-1]
    tokens: list[str] = []
    token: list[str] = []
    inside_quotes = escaped = False
    for char in text:
        if char == "," and not inside_quotes:
            tokens.append("".join(token))
            token = []
            continue
        if char == '"':
            if escaped:
                escaped = False
            else:
                inside_quotes = not inside_quotes
        elif char == "\\":
            escaped = not escaped
        elif char != ",":
            # A comma between quotes keeps a preceding backslash in force, as in Alertmanager.
            escaped = False
        token.append(char)
    last = "".join(token).strip(_GO_SPACE)
    if last:
        tokens.append(last)
    return [parse_matcher(item) for item in tokens]


def sort_matchers(matchers: Iterable[Matcher]) -> tuple[Matcher, ...]:
    """Matchers in Alertmanager's order (by name, value, operator)."""
    return tuple(sorted(matchers, key=Matcher.sort_key))


def format_matchers(matchers: Iterable[Matcher]) -> str:
    """``{a="b",c=~"d"}`` as Alertmanager prints a matcher list."""
    return "{" + ",".join(str(matcher) for matcher in matchers) + "}"


def matches_all(matchers: Iterable[Matcher], labels: LabelSource | Mapping[str, str]) -> bool:
    """Whether every matcher matches the label set (true for no matchers)."""
    return all(matcher.matches(labels) for matcher in matchers)
