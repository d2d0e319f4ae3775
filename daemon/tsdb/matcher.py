"""Label matchers: the four PromQL comparisons of one label's value against a string or regex."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from daemon.re2 import RegexError, compile_re2

EQUAL, NOT_EQUAL, REGEX_MATCH, REGEX_NO_MATCH = "=", "!=", "=~", "!~"
OPERATORS = (EQUAL, NOT_EQUAL, REGEX_MATCH, REGEX_NO_MATCH)

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
    try:
        return compile_re2(pattern)
    except RegexError as exc:
        raise SelectorError(str(exc)) from None
