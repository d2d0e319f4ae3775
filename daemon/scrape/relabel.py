"""Relabelling as Prometheus does it: the ``relabel_config`` model, RE2 regexes, and the rule engine.

Used twice per job: ``relabel_configs`` turn discovered labels into target labels, and
``metric_relabel_configs`` rewrite or drop each scraped series.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from daemon.config.section import LABEL_NAME, Section, check_label_name, field_error

Action = Literal[
    "replace",
    "keep",
    "drop",
    "keepequal",
    "dropequal",
    "hashmod",
    "labelmap",
    "labeldrop",
    "labelkeep",
    "lowercase",
    "uppercase",
]
ACTIONS: tuple[str, ...] = Action.__args__  # type: ignore[attr-defined]

DEFAULT_REGEX = "(.*)"
DEFAULT_REPLACEMENT = "$1"
DEFAULT_SEPARATOR = ";"

# A target_label that may hold $1 / ${name} references (Prometheus' legacy name rule).
_TARGET_WITH_VARS = re.compile(r"(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+")


class RegexError(ValueError):
    """A pattern that is not valid RE2, or uses RE2 syntax that Python's ``re`` cannot express."""


class RelabelConfig(Section):
    """One ``relabel_config`` entry, with Prometheus' defaults and validation."""

    source_labels: list[str] = Field(default_factory=list)
    separator: str = DEFAULT_SEPARATOR
    target_label: str = ""
    regex: str = DEFAULT_REGEX
    modulus: Annotated[int, Field(ge=0, lt=2**64)] = 0
    replacement: str = DEFAULT_REPLACEMENT
    action: Action = "replace"

    @field_validator("action", mode="before")
    @classmethod
    def _known_action(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.lower() not in ACTIONS:
                raise ValueError(f'unknown relabel action "{value}"')
            return value.lower()
        return value

    @field_validator("source_labels")
    @classmethod
    def _valid_source_labels(cls, names: list[str]) -> list[str]:
        for name in names:
            check_label_name(name)
        return names

    @field_validator("regex")
    @classmethod
    def _valid_regex(cls, pattern: str) -> str:
        try:
            compile_re2(pattern)
        except RegexError as exc:
            raise ValueError(str(exc)) from None
        return pattern

    @model_validator(mode="after")
    def _consistent(self) -> RelabelConfig:
        action = self.action
        if action == "hashmod" and self.modulus == 0:
            raise field_error("modulus", "relabel configuration for hashmod requires non-zero modulus")
        needs_target = action in ("replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal")
        if needs_target and not self.target_label:
            raise field_error("target_label", f"relabel configuration for {action} action requires 'target_label' value")
        if action == "replace":
            rule = _TARGET_WITH_VARS if "$" in self.target_label else LABEL_NAME
            if not rule.fullmatch(self.target_label):
                raise field_error("target_label", f'"{self.target_label}" is invalid \'target_label\' for {action} action')
        if action in ("lowercase", "uppercase", "keepequal", "dropequal", "hashmod"):
            if not LABEL_NAME.fullmatch(self.target_label):
                raise field_error("target_label", f'"{self.target_label}" is invalid \'target_label\' for {action} action')
        if action in ("lowercase", "uppercase", "keepequal", "dropequal") and self.replacement != DEFAULT_REPLACEMENT:
            raise field_error("replacement", f"'replacement' can not be set for {action} action")
        if action == "labelmap" and not _TARGET_WITH_VARS.fullmatch(self.replacement):
            raise field_error("replacement", f'"{self.replacement}" is invalid \'replacement\' for {action} action')
        if action in ("keepequal", "dropequal") and (
            self.regex != DEFAULT_REGEX or self.modulus != 0 or self.separator != DEFAULT_SEPARATOR
        ):
            raise field_error(None, f"{action} action requires only 'source_labels' and 'target_label', and no other fields")
        if action in ("labeldrop", "labelkeep") and (
            "source_labels" in self.model_fields_set
            or self.target_label
            or self.modulus != 0
            or self.separator != DEFAULT_SEPARATOR
            or self.replacement != DEFAULT_REPLACEMENT
        ):
            raise field_error(None, f"{action} action requires only 'regex', and no other fields")
        return self


# --- RE2 patterns in Python's re ---------------------------------------------------------------

_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": r"\x00-\x7f",
    "blank": r"\t ",
    "cntrl": r"\x00-\x1f\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": r"!-/:-@\[-`{-~",
    "space": r"\t\n\v\f\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_FLAG_GROUP = re.compile(r"\(\?([a-zA-Z]*)(?:-([a-zA-Z]*))?([:)])")
_NAMED_GROUP = re.compile(r"\(\?P?<(\w+)>")
_REPEAT = re.compile(r"\{(\d+)(,(\d*))?\}")
_MAX_REPEAT = 1000


@dataclass
class _Group:
    multiline: bool
    # Scoped groups opened for inline flags such as "(?i)", closed with this group.
    inline: list[str] = field(default_factory=list)


def compile_re2(pattern: str) -> re.Pattern[str]:
    """Compile an RE2 pattern, anchored at both ends as Prometheus does (``^(?s:pattern)$``).

    Use ``fullmatch`` on the result. ``\\d``, ``\\w``, ``\\s`` and ``\\b`` are ASCII as in RE2; so is
    case folding under ``(?i)`` (a difference from RE2 only for non-ASCII letters).
    """
    translated = translate_re2(pattern)
    try:
        return re.compile(f"(?s:{translated})", re.ASCII)
    except re.error as exc:
        raise RegexError(f"error parsing regexp: {exc.msg}: `{pattern}`") from None
    except (OverflowError, RecursionError):
        raise RegexError(f"error parsing regexp: expression too large: `{pattern}`") from None


def translate_re2(pattern: str) -> str:
    """Rewrite RE2 syntax into Python ``re`` syntax, rejecting what RE2 forbids or Python lacks."""
    out: list[str] = []
    groups = [_Group(multiline=False)]
    i = 0
    can_repeat = False  # the previous item may take a repetition operator
    after_repeat = False  # the previous item is a repetition (so only a lazy '?' may follow)
    lazy = False  # ... and that '?' has been given already
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            text, i = _escape(pattern, i, in_class=False)
            out.append(text)
            can_repeat, after_repeat = bool(text), False
            continue
        if char == "[":
            text, i = _char_class(pattern, i)
            out.append(text)
            can_repeat, after_repeat = True, False
            continue
        if char == "(":
            text, i = _open_group(pattern, i, groups)
            out.append(text)
            can_repeat = after_repeat = False
            continue
        if char == ")":
            if len(groups) == 1:
                raise RegexError(f"error parsing regexp: unexpected ): `{pattern}`")
            group = groups.pop()
            out.append(")" * len(group.inline) + ")")
            can_repeat, after_repeat = True, False
        elif char == "|":
            inline = groups[-1].inline
            out.append(")" * len(inline) + "|" + "".join(inline))
            can_repeat = after_repeat = False
        elif char in "*+?" or (char == "{" and _REPEAT.match(pattern, i)):
            if char == "{":
                repeat = _REPEAT.match(pattern, i)
                assert repeat is not None
                _check_repeat(repeat, pattern)
                operator, i = repeat.group(0), repeat.end()
            else:
                operator, i = char, i + 1
            if after_repeat:
                if operator != "?" or lazy:
                    raise RegexError(f"error parsing regexp: invalid nested repetition operator: `{pattern}`")
                out[-1] += "?"
                lazy = True
                continue
            if not can_repeat:
                raise RegexError(f"error parsing regexp: missing argument to repetition operator: `{pattern}`")
            out.append(operator)
            can_repeat, after_repeat, lazy = False, True, False
            continue
        elif char == "{":
            out.append(r"\{")
            can_repeat, after_repeat = True, False
        elif char == "$":
            # Python's bare $ also matches before a final newline; RE2's only at the very end.
            out.append("$" if groups[-1].multiline else r"\Z")
            can_repeat = after_repeat = False
        elif char == "^":
            out.append("^")
            can_repeat = after_repeat = False
        else:
            out.append(char)
            can_repeat, after_repeat = True, False
        i += 1
    if len(groups) > 1:
        raise RegexError(f"error parsing regexp: missing closing ): `{pattern}`")
    out.append(")" * len(groups[0].inline))
    return "".join(out)


def _check_repeat(repeat: re.Match[str], pattern: str) -> None:
    low = int(repeat.group(1))
    high = low if repeat.group(2) is None else (int(repeat.group(3)) if repeat.group(3) else None)
    if low > _MAX_REPEAT or (high is not None and (high > _MAX_REPEAT or high < low)):
        raise RegexError(f"error parsing regexp: invalid repeat count: `{pattern}`")


def _open_group(pattern: str, i: int, groups: list[_Group]) -> tuple[str, int]:
    current = groups[-1]
    if not pattern.startswith("(?", i):
        groups.append(_Group(current.multiline))
        return "(", i + 1
    named = _NAMED_GROUP.match(pattern, i)
    if named:
        groups.append(_Group(current.multiline))
        return f"(?P<{named.group(1)}>", named.end()
    for prefix, what in (
        ("(?=", "lookahead assertions"),
        ("(?!", "lookahead assertions"),
        ("(?<=", "lookbehind assertions"),
        ("(?<!", "lookbehind assertions"),
        ("(?P=", "backreferences"),
        ("(?>", "atomic groups"),
        ("(?(", "conditionals"),
        ("(?#", "comments"),
    ):
        if pattern.startswith(prefix, i):
            raise RegexError(f"error parsing regexp: {what} are not supported (RE2 syntax): `{pattern}`")
    flags = _FLAG_GROUP.match(pattern, i)
    if flags is None or not (flags.group(1) or flags.group(2) is not None or flags.group(3) == ":"):
        raise RegexError(f"error parsing regexp: invalid or unsupported Perl syntax: `{pattern}`")
    on, off = flags.group(1), flags.group(2) or ""
    for letter in on + off:
        if letter == "U":
            raise RegexError(f"error parsing regexp: the ungreedy flag U is not supported: `{pattern}`")
        if letter not in "ims" or (on + off).count(letter) > 1:
            raise RegexError(f"error parsing regexp: invalid or unsupported Perl syntax: `{pattern}`")
    if flags.group(2) is not None and not off:
        raise RegexError(f"error parsing regexp: invalid or unsupported Perl syntax: `{pattern}`")
    multiline = current.multiline
    if "m" in on:
        multiline = True
    elif "m" in off:
        multiline = False
    scoped = "(?" + on + (f"-{off}" if off else "") + ":"
    if flags.group(3) == ":":
        groups.append(_Group(multiline))
        return scoped, flags.end()
    # "(?i)" applies to the rest of the enclosing group: Python 3.11 only has scoped flags.
    current.inline.append(scoped)
    current.multiline = multiline
    return scoped, flags.end()


def _escape(pattern: str, i: int, *, in_class: bool) -> tuple[str, int]:
    if i + 1 >= len(pattern):
        raise RegexError(f"error parsing regexp: trailing backslash at end of expression: `{pattern}`")
    char = pattern[i + 1]
    if char == "Q":
        end = pattern.find(r"\E", i + 2)
        literal = pattern[i + 2 :] if end < 0 else pattern[i + 2 : end]
        after = len(pattern) if end < 0 else end + 2
        return re.escape(literal), after
    if char in "pP":
        raise RegexError(f"error parsing regexp: Unicode classes \\{char} are not supported: `{pattern}`")
    if char in "CZ":
        raise RegexError(f"error parsing regexp: invalid escape sequence: \\{char}: `{pattern}`")
    if char == "z":
        if in_class:
            raise RegexError(f"error parsing regexp: invalid escape sequence: \\z: `{pattern}`")
        return r"\Z", i + 2
    if char == "x":
        braced = re.compile(r"\{([0-9a-fA-F]{1,8})\}").match(pattern, i + 2)
        if braced:
            code = int(braced.group(1), 16)
            if code > 0x10FFFF:
                raise RegexError(f"error parsing regexp: invalid escape sequence: `{pattern}`")
            return f"\\U{code:08x}", braced.end()
        return pattern[i : i + 4], i + 4
    if char.isdigit():
        octal = re.compile(r"[0-7]{1,3}").match(pattern, i + 1)
        # RE2: \0 starts an octal escape, \1..\7 only when another octal digit follows.
        if octal and (char == "0" or len(octal.group(0)) > 1):
            return f"\\x{int(octal.group(0), 8):02x}", octal.end()
        raise RegexError(f"error parsing regexp: backreferences are not supported: \\{char}: `{pattern}`")
    return pattern[i : i + 2], i + 2


def _char_class(pattern: str, i: int) -> tuple[str, int]:
    out = ["["]
    i += 1
    if i < len(pattern) and pattern[i] == "^":
        out.append("^")
        i += 1
    first = True
    while i < len(pattern):
        char = pattern[i]
        if char == "]" and not first:
            out.append("]")
            return "".join(out), i + 1
        first = False
        if char == "[" and pattern.startswith("[:", i):
            end = pattern.find(":]", i + 2)
            name = pattern[i + 2 : end] if end >= 0 else ""
            if name.startswith("^") and name[1:] in _POSIX_CLASSES:
                raise RegexError(f"error parsing regexp: negated POSIX classes are not supported: `{pattern}`")
            if name in _POSIX_CLASSES:
                out.append(_POSIX_CLASSES[name])
                i = end + 2
                continue
            raise RegexError(f"error parsing regexp: invalid character class range: `{pattern}`")
        if char == "\\":
            text, i = _escape(pattern, i, in_class=True)
            out.append(text)
            continue
        # Escaped so that Python sees plain characters, not its future set operations.
        out.append("\\" + char if char in "[&~|" else char)
        i += 1
    raise RegexError(f"error parsing regexp: missing closing ]: `{pattern}`")


# --- replacement templates ($1, ${1}, $name, ${name}) as Go's regexp.Expand ----------------------

Template = tuple[str | int, ...]
"""A parsed template: literal text (str) and group numbers (int; -1 for a group that never exists)."""


def parse_template(template: str, regex: re.Pattern[str]) -> Template:
    """Resolve ``$1``/``${1}``/``$name``/``${name}`` references of ``template`` against ``regex``."""
    parts: list[str | int] = []
    literal: list[str] = []
    i = 0
    while i < len(template):
        dollar = template.find("$", i)
        if dollar < 0:
            literal.append(template[i:])
            break
        literal.append(template[i:dollar])
        i = dollar + 1
        if template.startswith("$", i):
            literal.append("$")
            i += 1
            continue
        reference = _reference(template, i)
        if reference is None:
            literal.append("$")  # malformed: Go keeps the dollar as text
            continue
        name, i = reference
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(_group_number(name, regex))
    if literal:
        parts.append("".join(literal))
    return tuple(part for part in parts if part != "")


def _reference(template: str, i: int) -> tuple[str, int] | None:
    braced = template.startswith("{", i)
    start = i + 1 if braced else i
    end = start
    while end < len(template) and (template[end].isalnum() or template[end] == "_"):
        end += 1
    if end == start:
        return None
    if braced:
        if not template.startswith("}", end):
            return None
        return template[start:end], end + 1
    return template[start:end], end


def _group_number(name: str, regex: re.Pattern[str]) -> int:
    if name.isascii() and name.isdigit() and not (name.startswith("0") and len(name) > 1) and len(name) <= 8:
        number = int(name)
        return number if number <= regex.groups else -1
    return regex.groupindex.get(name, -1)


def expand(template: Template, match: re.Match[str]) -> str:
    """The template with each group reference replaced by what the group matched ("" if nothing)."""
    if len(template) == 1 and isinstance(template[0], str):
        return template[0]
    out: list[str] = []
    for part in template:
        if isinstance(part, str):
            out.append(part)
        elif part >= 0:
            out.append(match.group(part) or "")
    return "".join(out)


# --- the rule engine -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    config: RelabelConfig
    regex: re.Pattern[str]
    target: Template
    replacement: Template


class Relabeler:
    """A list of relabel rules compiled once and applied to many label sets."""

    def __init__(self, configs: Iterable[RelabelConfig]) -> None:
        self._rules: tuple[_Rule, ...] = tuple(self._compile(config) for config in configs)

    @staticmethod
    def _compile(config: RelabelConfig) -> _Rule:
        regex = compile_re2(config.regex)
        return _Rule(config, regex, parse_template(config.target_label, regex), parse_template(config.replacement, regex))

    def __len__(self) -> int:
        return len(self._rules)

    def apply(self, labels: dict[str, str]) -> dict[str, str] | None:
        """The relabelled copy of ``labels``, or ``None`` when a rule drops them.

        ``labels`` is not modified. A label set to the empty string is removed, as in Prometheus.
        """
        result = dict(labels)
        for rule in self._rules:
            if not _apply_rule(rule, result):
                return None
        return result


def _joined(names: Sequence[str], separator: str, labels: dict[str, str]) -> str:
    if len(names) == 1:
        return labels.get(names[0], "")
    return separator.join(labels.get(name, "") for name in names)


def _set(labels: dict[str, str], name: str, value: str) -> None:
    if value:
        labels[name] = value
    else:
        labels.pop(name, None)


def _apply_rule(rule: _Rule, labels: dict[str, str]) -> bool:
    config = rule.config
    action = config.action
    value = _joined(config.source_labels, config.separator, labels)
    if action == "replace":
        match = rule.regex.fullmatch(value)
        if match is None:
            return True
        target = expand(rule.target, match)
        if not LABEL_NAME.fullmatch(target):
            return True
        _set(labels, target, expand(rule.replacement, match))
    elif action == "keep":
        return rule.regex.fullmatch(value) is not None
    elif action == "drop":
        return rule.regex.fullmatch(value) is None
    elif action == "keepequal":
        return labels.get(config.target_label, "") == value
    elif action == "dropequal":
        return labels.get(config.target_label, "") != value
    elif action == "hashmod":
        digest = hashlib.md5(value.encode(), usedforsecurity=False).digest()
        # Prometheus uses the last 8 bytes of the MD5 sum, big-endian.
        _set(labels, config.target_label, str(int.from_bytes(digest[8:], "big") % config.modulus))
    elif action == "lowercase":
        _set(labels, config.target_label, value.lower())
    elif action == "uppercase":
        _set(labels, config.target_label, value.upper())
    elif action == "labelmap":
        for name, label_value in list(labels.items()):
            match = rule.regex.fullmatch(name)
            if match is not None:
                _set(labels, expand(rule.replacement, match), label_value)
    elif action == "labeldrop":
        for name in [name for name in labels if rule.regex.fullmatch(name)]:
            del labels[name]
    elif action == "labelkeep":
        for name in [name for name in labels if not rule.regex.fullmatch(name)]:
            del labels[name]
    return True
