"""Prometheus rule files: the immutable values they describe, and loading them with every error.

A rule file is Prometheus' format unchanged::

    groups:
      - name: api
        interval: 30s          # optional; default: the global evaluation_interval
        limit: 0               # optional; 0 = no limit on alerts/series per rule
        query_offset: 0s       # optional
        labels: {team: web}    # optional; added to every rule's result
        rules:
          - alert: HighErrorRate
            expr: rate(errors_total[5m]) > 0.05
            for: 10m
            keep_firing_for: 5m
            labels: {severity: page}
            annotations: {summary: "{{ $labels.instance }} is failing"}
          - record: job:errors:rate5m
            expr: sum by (job) (rate(errors_total[5m]))

The checks are those of Prometheus' ``rulefmt`` (and so of ``promtool check rules``), with its
wording; every problem becomes one ``FILE:LINE: message`` line, and all of them are reported,
not only the first. The values are frozen and compare by content, so a reload can tell which
rules did not change with a plain ``==``.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from daemon.config.yamlsrc import KeyPath, YamlDocument
from daemon.promql.parser import ParseError, parse_expr
from daemon.rules.template import AlertTemplate, TemplateError
from daemon.rules.yamlfields import FieldReader, YamlFileError, go_kind, load_document

__all__ = [
    "AlertingRuleSpec",
    "FrozenMap",
    "GroupSpec",
    "RecordingRuleSpec",
    "RuleFileError",
    "RuleSpec",
    "check_rule_files",
    "load_rule_files",
    "parse_rule_file",
]

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_GROUP_KEYS = ("name", "interval", "limit", "query_offset", "labels", "rules")
_RULE_KEYS = ("record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations")


class FrozenMap(Mapping[str, str]):
    """An immutable, hashable string-to-string mapping that equals any mapping with the same items.

    Iteration follows the keys' sorted order, so two files listing the same labels in another
    order give equal rules.
    """

    __slots__ = ("_items", "_dict")

    def __init__(self, items: Mapping[str, str] | Sequence[tuple[str, str]] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        self._dict = dict(sorted(pairs))
        self._items = tuple(self._dict.items())

    def __getitem__(self, key: str) -> str:
        return self._dict[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMap):
            return self._items == other._items
        if isinstance(other, Mapping):
            return self._dict == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({self._dict!r})"


_EMPTY = FrozenMap()


@dataclass(frozen=True)
class AlertingRuleSpec:
    """An ``alert:`` rule as written; durations in seconds; ``line`` is where the rule starts."""

    alert: str
    expr: str
    for_: float = 0.0
    keep_firing_for: float = 0.0
    labels: Mapping[str, str] = field(default=_EMPTY)
    annotations: Mapping[str, str] = field(default=_EMPTY)
    line: int = 0

    @property
    def name(self) -> str:
        """The alert name (what Prometheus calls the rule's name)."""
        return self.alert


@dataclass(frozen=True)
class RecordingRuleSpec:
    """A ``record:`` rule as written; ``line`` is where the rule starts."""

    record: str
    expr: str
    labels: Mapping[str, str] = field(default=_EMPTY)
    line: int = 0

    @property
    def name(self) -> str:
        """The recorded metric name (what Prometheus calls the rule's name)."""
        return self.record


RuleSpec = AlertingRuleSpec | RecordingRuleSpec


@dataclass(frozen=True)
class GroupSpec:
    """A rule group: its rules in file order and its settings.

    ``interval`` is ``None`` when the file gives none (the global evaluation_interval applies);
    ``limit`` 0 means no limit; ``file`` is the path the group was loaded from.
    """

    name: str
    file: str
    rules: tuple[RuleSpec, ...] = ()
    interval: float | None = None
    limit: int = 0
    query_offset: float = 0.0
    labels: Mapping[str, str] = field(default=_EMPTY)
    line: int = 0


class RuleFileError(YamlFileError):
    """Rule files that did not load; ``issues`` holds every problem as ``FILE:LINE: message``."""


def load_rule_files(patterns: Sequence[str]) -> list[GroupSpec]:
    """The groups of every file matching ``patterns``, or ``RuleFileError`` with every problem.

    As in Prometheus, each pattern is a glob whose matches are taken in sorted order, patterns
    in the order given; a pattern matching nothing contributes nothing, and a file matched twice
    is read once.
    """
    groups: list[GroupSpec] = []
    issues: list[str] = []
    for path in expand_patterns(patterns):
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            issues.append(f"{path}: {_os_message(exc)}")
            continue
        try:
            groups.extend(parse_rule_file(text, path))
        except RuleFileError as exc:
            issues.extend(exc.issues)
    if issues:
        raise RuleFileError(issues)
    return groups


def expand_patterns(patterns: Sequence[str]) -> list[str]:
    """The files ``patterns`` name, in Prometheus' order (pattern order, sorted matches, no repeats)."""
    seen: set[str] = set()
    files: list[str] = []
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            if path not in seen:
                seen.add(path)
                files.append(path)
    return files


def parse_rule_file(text: str, file: str) -> list[GroupSpec]:
    """The groups in one rule file's ``text``; ``file`` names it in errors and in ``GroupSpec.file``."""
    return _FileReader(load_document(text, file, RuleFileError), text, file).read()


def check_rule_files(files: Sequence[str], out: TextIO, err: TextIO) -> int:
    """``alertd check rules``: promtool's report for each file; 0 when all are valid, else 1.

    As promtool does, the verdicts go to ``out`` and the failures' details to ``err``.
    """
    failed = False
    for path in files:
        print(f"Checking {path}", file=out)
        try:
            with open(path, encoding="utf-8") as f:
                groups = parse_rule_file(f.read(), path)
        except (OSError, UnicodeDecodeError) as exc:
            issues: Sequence[str] = [f"{path}: {_os_message(exc)}"]
        except RuleFileError as exc:
            issues = exc.issues
        else:
            count = sum(len(group.rules) for group in groups)
            print(f"  SUCCESS: {count} rules found", file=out)
            print(file=out)
            continue
        failed = True
        print("  FAILED:", file=err)
        for issue in issues:
            print(issue, file=err)
        print(file=out)
    return 1 if failed else 0


def _os_message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower() if exc.strerror[:1].isupper() else exc.strerror
    return str(exc)


class _FileReader(FieldReader):
    """Walks one parsed file, collecting issues instead of stopping at the first."""

    def __init__(self, doc: YamlDocument, text: str, file: str) -> None:
        super().__init__(doc, file)
        self.text_lines = text.splitlines()

    def read(self) -> list[GroupSpec]:
        data = self.doc.data
        groups: list[GroupSpec] = []
        if data is None:
            return groups
        if not isinstance(data, dict):
            self.issue((), f"cannot unmarshal {go_kind(data)} into rulefmt.RuleGroups")
        else:
            self.unknown_keys((), data, ("groups",), "rulefmt.RuleGroups")
            items = data.get("groups")
            if items is not None and not isinstance(items, list):
                self.issue(("groups",), f"cannot unmarshal {go_kind(items)} into []rulefmt.RuleGroup")
            else:
                seen: set[str] = set()
                for index, item in enumerate(items or ()):
                    group = self.group(("groups", index), item, seen)
                    if group is not None:
                        groups.append(group)
        if self.issues:
            raise RuleFileError(self.issues)
        return groups

    def group(self, path: KeyPath, data: Any, seen: set[str]) -> GroupSpec | None:
        if not isinstance(data, dict):
            self.issue(path, f"cannot unmarshal {go_kind(data)} into rulefmt.RuleGroup")
            return None
        self.unknown_keys(path, data, _GROUP_KEYS, "rulefmt.RuleGroup")
        before = len(self.issues)
        name = self.string(path, data, "name")
        if name == "":
            self.issue((*path, "name") if "name" in data else path, "Groupname must not be empty")
        elif name in seen:
            self.issue((*path, "name"), f'groupname: "{name}" is repeated in the same file')
        seen.add(name)
        interval = self.duration(path, data, "interval")
        query_offset = self.duration(path, data, "query_offset")
        limit = self.integer(path, data, "limit")
        labels = self.labels(path, data, "labels", f'group "{name}"')
        rules: list[RuleSpec] = []
        raw_rules = data.get("rules")
        if raw_rules is not None and not isinstance(raw_rules, list):
            self.issue((*path, "rules"), f"cannot unmarshal {go_kind(raw_rules)} into []rulefmt.RuleNode")
            raw_rules = None
        for index, raw in enumerate(raw_rules or ()):
            rule = self.rule((*path, "rules", index), raw, name, index + 1)
            if rule is not None:
                rules.append(rule)
        if len(self.issues) > before:
            return None
        return GroupSpec(
            name=name,
            file=self.file,
            rules=tuple(rules),
            interval=None if "interval" not in data or data["interval"] is None else interval,
            limit=limit,
            query_offset=query_offset,
            labels=labels,
            line=self.doc.line_of(path) or 0,
        )

    def rule(self, path: KeyPath, data: Any, group: str, number: int) -> RuleSpec | None:
        if not isinstance(data, dict):
            self.issue(path, f"cannot unmarshal {go_kind(data)} into rulefmt.RuleNode")
            return None
        self.unknown_keys(path, data, _RULE_KEYS, "rulefmt.RuleNode")
        before = len(self.issues)
        record = self.string(path, data, "record")
        alert = self.string(path, data, "alert")
        where = f'group "{group}", rule {number}, "{alert or record}"'

        def fail(key: str | None, message: str, line: int | None = None) -> None:
            self.issue((*path, key) if key else path, f"{where}: {message}", line)

        if record and alert:
            fail("record", "only one of 'record' and 'alert' must be set")
        if not record and not alert:
            fail(None, "one of 'record' or 'alert' must be set")
        expr = self.string(path, data, "expr")
        if expr == "":
            fail("expr" if "expr" in data else None, "field 'expr' must be set in rule")
        else:
            try:
                parse_expr(expr)
            except ParseError as exc:
                fail("expr", f"could not parse expression: {exc}", self.expr_line((*path, "expr"), exc.line))
        for_ = self.duration(path, data, "for")
        keep_firing_for = self.duration(path, data, "keep_firing_for")
        labels = self.labels(path, data, "labels", where)
        annotations = self.annotations(path, data, where)
        if record:
            if annotations:
                fail("annotations", "invalid field 'annotations' in recording rule")
            if data.get("for") is not None and for_:
                fail("for", "invalid field 'for' in recording rule")
            if data.get("keep_firing_for") is not None and keep_firing_for:
                fail("keep_firing_for", "invalid field 'keep_firing_for' in recording rule")
            if not _METRIC_NAME.fullmatch(record):
                fail("record", f"invalid recording rule name: {record}")
        elif alert:
            # Prometheus checks templates of alerting rules only; recording rule labels are literal.
            for kind, values in (("label", labels), ("annotation", annotations)):
                for key, value in values.items():
                    try:
                        AlertTemplate.parse(value, "__alert_" + alert)
                    except TemplateError as exc:
                        fail(f"{kind}s", f'{kind} "{key}": {exc}', self.doc.line_of((*path, f"{kind}s", key)))
        if len(self.issues) > before:
            return None
        line = self.doc.line_of(path) or 0
        if record:
            return RecordingRuleSpec(record=record, expr=expr, labels=labels, line=line)
        return AlertingRuleSpec(
            alert=alert,
            expr=expr,
            for_=for_,
            keep_firing_for=keep_firing_for,
            labels=labels,
            annotations=annotations,
            line=line,
        )

    def expr_line(self, path: KeyPath, error_line: int) -> int | None:
        """The file line of line ``error_line`` of the expression whose key is at ``path``.

        Exact for an expression on the key's line and for a literal block (``|``); folded and
        multi-line plain scalars join lines, so there the key's line is the best we know.
        """
        key_line = self.doc.line_of(path)
        if key_line is None:
            return None
        source = self.text_lines[key_line - 1] if key_line <= len(self.text_lines) else ""
        after_colon = source.split(":", 1)[1].strip() if ":" in source else ""
        if after_colon.startswith("|"):
            return key_line + error_line
        return key_line

    def integer(self, path: KeyPath, data: dict[str, Any], key: str) -> int:
        text = self.string(path, data, key)
        if text == "":
            return 0
        try:
            return int(text)
        except ValueError:
            self.issue((*path, key), f"cannot unmarshal !!str `{text}` into int ({key})")
            return 0

    def mapping(self, path: KeyPath, data: dict[str, Any], key: str) -> dict[str, str]:
        value = data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.issue((*path, key), f"cannot unmarshal {go_kind(value)} into map[string]string ({key})")
            return {}
        return self.string_values(path, key, value)

    def labels(self, path: KeyPath, data: dict[str, Any], key: str, where: str) -> FrozenMap:
        labels = self.mapping(path, data, key)
        for name, value in labels.items():
            if not _LABEL_NAME.fullmatch(name) or name == "__name__":
                self.issue((*path, key, name), f"{where}: invalid label name: {name}")
            if not _valid_utf8(value):
                self.issue((*path, key, name), f"{where}: invalid label value: {value}")
        return FrozenMap(labels) if labels else _EMPTY

    def annotations(self, path: KeyPath, data: dict[str, Any], where: str) -> FrozenMap:
        annotations = self.mapping(path, data, "annotations")
        for name in annotations:
            if not _LABEL_NAME.fullmatch(name):
                self.issue((*path, "annotations", name), f"{where}: invalid annotation name: {name}")
        return FrozenMap(annotations) if annotations else _EMPTY


def _valid_utf8(value: str) -> bool:
    # Text decoded from UTF-8 is valid by construction; only surrogates smuggled in are not.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
