"""Relabelling as Prometheus does it: the rule engine over ``relabel_config`` lists.

Used twice per job: ``relabel_configs`` turn discovered labels into target labels, and
``metric_relabel_configs`` rewrite or drop each scraped series.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from daemon.re2 import RegexError, compile_re2, translate_re2
from daemon.config.relabel import ACTIONS, RelabelConfig
from daemon.config.section import LABEL_NAME

__all__ = [
    "ACTIONS",
    "RegexError",
    "RelabelConfig",
    "Relabeler",
    "compile_re2",
    "expand",
    "parse_template",
    "translate_re2",
]


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
