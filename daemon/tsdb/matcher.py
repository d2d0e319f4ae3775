"""Label matchers: the four PromQL comparisons of one label's value against a string or regex."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

EQUAL, NOT_EQUAL, REGEX_MATCH, REGEX_NO_MATCH = "=", "!=", "=~", "!~"
OPERATORS = (EQUAL, NOT_EQUAL, REGEX_MATCH, REGEX_NO_MATCH)

# POSIX bracket classes that Go's RE2 accepts and Python's re does not.
_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_POSIX_CLASS = re.compile(r"\[:(\^?)([a-z]+):\]")
_ESCAPE = re.compile(r"\\.", re.S)


class SelectorError(ValueError):
    """A selector or matcher the user wrote is not valid; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Matcher:
    """``name op value``; a label the series does not have counts as the empty string.

    Regexes are fully anchored and ``.`` matches newlines, as in Prometheus 3
    (``=~"a|b"`` means ``^(?s:a|b)$``). They are compiled once, here.
    """

    name: str
    op: str
    value: str
    _regex: re.Pattern[str] | None = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ValueError(f"unknown label matching operator {self.op!r}")
        regex = None
        if self.op in (REGEX_MATCH, REGEX_NO_MATCH):
            regex = compile_regex(self.value)
        object.__setattr__(self, "_regex", regex)

    def matches(self, value: str) -> bool:
        op = self.op
        if op == EQUAL:
            return value == self.value
        if op == NOT_EQUAL:
            return value != self.value
        assert self._regex is not None
        found = self._regex.fullmatch(value) is not None
        return found if op == REGEX_MATCH else not found

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'


def compile_regex(pattern: str) -> re.Pattern[str]:
    """Compile a PromQL (RE2 syntax) regex for anchored matching with ``fullmatch``."""
    translated = _POSIX_CLASS.sub(_posix_class, _ESCAPE.sub(_end_of_text, pattern))
    try:
        return re.compile(f"(?s:{translated})")
    except re.error as exc:
        raise SelectorError(f"error parsing regexp {pattern!r}: {exc.msg}") from None


def _posix_class(match: re.Match[str]) -> str:
    negate, name = match.groups()
    ranges = _POSIX_CLASSES.get(name)
    if ranges is None:
        raise SelectorError(f"invalid character class range: [:{negate}{name}:]")
    if negate:
        # [[:^digit:]] inside a bracket cannot be spelled with ranges; use the negated escape
        # where one exists, which covers the classes people use.
        negated = {"digit": "\\D", "space": "\\S", "word": "\\W"}.get(name)
        if negated is None:
            raise SelectorError(f"unsupported negated character class [:^{name}:]")
        return negated
    return ranges


def _end_of_text(match: re.Match[str]) -> str:
    # RE2's \z (end of text) is Python's \Z; every other escape means the same in both.
    return "\\Z" if match.group() == "\\z" else match.group()
