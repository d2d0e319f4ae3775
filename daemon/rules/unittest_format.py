"""The ``promtool test rules`` file format: its values, reading it, and expanding input series.

A test file names rule files and holds test groups; each group loads input series written in
promtool's expanding notation and checks alerts and expressions at given times::

    rule_files: [alerts.yml]          # relative to the test file; globs allowed
    evaluation_interval: 1m           # default 1m
    group_eval_order: [first, second] # optional
    tests:
      - interval: 1m                  # spacing of input values; default evaluation_interval
        name: optional name
        external_labels: {cluster: eu}
        external_url: https://alertd.example.com
        input_series:
          - series: 'up{job="api", instance="a"}'
            values: '1 1 0x5 _ stale 1+2x3'
        alert_rule_test:
          - eval_time: 5m
            alertname: InstanceDown
            exp_alerts:
              - exp_labels: {severity: page, job: api, instance: a}
                exp_annotations: {summary: "a is down"}
        promql_expr_test:
          - expr: up
            eval_time: 2m
            exp_samples:
              - labels: 'up{job="api", instance="a"}'
                value: 0

Keys are promtool 2.42's, checked as strictly as promtool checks them (an unknown key is an
error); every problem is a ``FILE:LINE: message`` line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from daemon.config.yamlsrc import KeyPath
from daemon.promql.ast import Expr, ParenExpr, VectorSelector
from daemon.promql.parser import ParseError, parse_expr
from daemon.rules.yamlfields import FieldReader, YamlFileError, go_kind, load_document
from daemon.tsdb import STALE_NAN

__all__ = [
    "AlertTestCase",
    "ExpectedAlert",
    "ExpectedSample",
    "InputSeries",
    "PromqlTestCase",
    "SeriesError",
    "TestFileError",
    "TestGroup",
    "UnitTestFile",
    "expand_values",
    "parse_metric",
    "parse_test_file",
]

LabelPairs = tuple[tuple[str, str], ...]
"""Labels as sorted (name, value) pairs; empty values are kept, as Go's ``labels.FromMap`` keeps them."""

DEFAULT_EVALUATION_INTERVAL = 60.0


@dataclass(frozen=True)
class InputSeries:
    """One ``input_series`` entry, as written."""

    series: str
    values: str
    line: int = 0


@dataclass(frozen=True)
class ExpectedAlert:
    """One of ``exp_alerts``: the labels the rule adds (``alertname`` is implied) and the annotations."""

    labels: LabelPairs = ()
    annotations: LabelPairs = ()


@dataclass(frozen=True)
class AlertTestCase:
    """An ``alert_rule_test`` entry: the alerts named ``alertname`` firing at ``eval_time`` (seconds)."""

    eval_time: float
    alertname: str
    exp_alerts: tuple[ExpectedAlert, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class ExpectedSample:
    """One of ``exp_samples``: a series as ``metric{label="value"}`` text, and its value."""

    labels: str
    value: float


@dataclass(frozen=True)
class PromqlTestCase:
    """A ``promql_expr_test`` entry: ``expr`` evaluated at ``eval_time`` (seconds)."""

    expr: str
    eval_time: float
    exp_samples: tuple[ExpectedSample, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class TestGroup:
    """One entry of ``tests``; ``interval`` already defaults to the file's evaluation interval."""

    __test__ = False  # not a pytest class, whatever its name

    interval: float
    input_series: tuple[InputSeries, ...] = ()
    alert_rule_test: tuple[AlertTestCase, ...] = ()
    promql_expr_test: tuple[PromqlTestCase, ...] = ()
    external_labels: LabelPairs = ()
    external_url: str = ""
    name: str = ""
    line: int = 0

    def max_eval_time(self) -> float:
        """The latest time any test of the group looks at: evaluation runs from 0 up to it."""
        times = [case.eval_time for case in self.alert_rule_test]
        times += [case.eval_time for case in self.promql_expr_test]
        return max(times, default=0.0)


@dataclass(frozen=True)
class UnitTestFile:
    """A whole test file; ``rule_files`` as written (resolving them is the runner's job)."""

    rule_files: tuple[str, ...] = ()
    evaluation_interval: float = DEFAULT_EVALUATION_INTERVAL
    group_eval_order: tuple[str, ...] = ()
    tests: tuple[TestGroup, ...] = field(default=())


class TestFileError(YamlFileError):
    """A test file that cannot be read; ``issues`` holds every problem as ``FILE:LINE: message``."""

    __test__ = False


class SeriesError(ValueError):
    """An input series or expected label set that does not parse; the message says where."""


# -- reading the file ----------------------------------------------------------------------------

_FILE_KEYS = ("rule_files", "evaluation_interval", "group_eval_order", "tests")
_GROUP_KEYS = (
    "interval",
    "input_series",
    "alert_rule_test",
    "promql_expr_test",
    "external_labels",
    "external_url",
    "name",
)


def parse_test_file(text: str, file: str) -> UnitTestFile:
    """The test file in ``text``, or ``TestFileError`` listing every problem."""
    return _Reader(load_document(text, file, TestFileError), file).read()


class _Reader(FieldReader):

    def read(self) -> UnitTestFile:
        data = self.doc.data
        if data is None:
            return UnitTestFile()
        if not isinstance(data, dict):
            self.issue((), f"cannot unmarshal {go_kind(data)} into main.unitTestFile")
            raise TestFileError(self.issues)
        self.unknown_keys((), data, _FILE_KEYS, "main.unitTestFile")
        rule_files = tuple(self.strings((), data, "rule_files"))
        interval = self.duration((), data, "evaluation_interval") or DEFAULT_EVALUATION_INTERVAL
        order = tuple(self.strings((), data, "group_eval_order"))
        tests = tuple(
            self.group(("tests", i), item, interval) for i, item in enumerate(self.items((), data, "tests"))
        )
        if self.issues:
            raise TestFileError(self.issues)
        return UnitTestFile(rule_files, interval, order, tests)

    def mapping(self, path: KeyPath, data: Any, go_type: str) -> dict[str, Any]:
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.issue(path, f"cannot unmarshal {go_kind(data)} into {go_type}")
            return {}
        return data

    def items(self, path: KeyPath, data: dict[str, Any], key: str) -> list[Any]:
        value = data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.issue((*path, key), f"cannot unmarshal {go_kind(value)} into a list ({key})")
            return []
        return value

    def strings(self, path: KeyPath, data: dict[str, Any], key: str) -> list[str]:
        out: list[str] = []
        for i, item in enumerate(self.items(path, data, key)):
            if isinstance(item, str):
                out.append(item)
            elif item is not None:
                self.issue((*path, key, i), f"cannot unmarshal {go_kind(item)} into string ({key})")
        return out

    def float_value(self, path: KeyPath, data: dict[str, Any], key: str) -> float:
        text = self.string(path, data, key)
        if not text:
            return 0.0
        value = _yaml_float(text)
        if value is None:
            self.issue((*path, key), f"cannot unmarshal !!str `{text}` into float64 ({key})")
            return 0.0
        return value

    def pairs(self, path: KeyPath, data: dict[str, Any], key: str) -> LabelPairs:
        mapping = self.mapping((*path, key), data.get(key), "map[string]string")
        return tuple(sorted(self.string_values(path, key, mapping).items()))

    def group(self, path: KeyPath, raw: Any, default_interval: float) -> TestGroup:
        data = self.mapping(path, raw, "main.testGroup")
        self.unknown_keys(path, data, _GROUP_KEYS, "main.testGroup")
        series = []
        for i, item in enumerate(self.items(path, data, "input_series")):
            where = (*path, "input_series", i)
            entry = self.mapping(where, item, "main.series")
            self.unknown_keys(where, entry, ("series", "values"), "main.series")
            series.append(
                InputSeries(self.string(where, entry, "series"), self.string(where, entry, "values"), self.line(where))
            )
        alerts = []
        for i, item in enumerate(self.items(path, data, "alert_rule_test")):
            where = (*path, "alert_rule_test", i)
            entry = self.mapping(where, item, "main.alertTestCase")
            self.unknown_keys(where, entry, ("eval_time", "alertname", "exp_alerts"), "main.alertTestCase")
            expected = []
            for j, exp in enumerate(self.items(where, entry, "exp_alerts")):
                at = (*where, "exp_alerts", j)
                exp_data = self.mapping(at, exp, "main.alert")
                self.unknown_keys(at, exp_data, ("exp_labels", "exp_annotations"), "main.alert")
                expected.append(
                    ExpectedAlert(self.pairs(at, exp_data, "exp_labels"), self.pairs(at, exp_data, "exp_annotations"))
                )
            alerts.append(
                AlertTestCase(
                    self.duration(where, entry, "eval_time"),
                    self.string(where, entry, "alertname"),
                    tuple(expected),
                    self.line(where),
                )
            )
        exprs = []
        for i, item in enumerate(self.items(path, data, "promql_expr_test")):
            where = (*path, "promql_expr_test", i)
            entry = self.mapping(where, item, "main.promqlTestCase")
            self.unknown_keys(where, entry, ("expr", "eval_time", "exp_samples"), "main.promqlTestCase")
            samples = []
            for j, sample in enumerate(self.items(where, entry, "exp_samples")):
                at = (*where, "exp_samples", j)
                sample_data = self.mapping(at, sample, "main.sample")
                self.unknown_keys(at, sample_data, ("labels", "value"), "main.sample")
                samples.append(
                    ExpectedSample(self.string(at, sample_data, "labels"), self.float_value(at, sample_data, "value"))
                )
            exprs.append(
                PromqlTestCase(
                    self.string(where, entry, "expr"),
                    self.duration(where, entry, "eval_time"),
                    tuple(samples),
                    self.line(where),
                )
            )
        return TestGroup(
            interval=self.duration(path, data, "interval") or default_interval,
            input_series=tuple(series),
            alert_rule_test=tuple(alerts),
            promql_expr_test=tuple(exprs),
            external_labels=self.pairs(path, data, "external_labels"),
            external_url=self.string(path, data, "external_url"),
            name=self.string(path, data, "name"),
            line=self.line(path),
        )

    def line(self, path: KeyPath) -> int:
        return self.doc.line_of(path) or 0


_YAML_SPECIAL = {".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf, ".nan": math.nan}


def _yaml_float(text: str) -> float | None:
    """A YAML 1.1 number as Go's YAML decoder reads it into a float64, else None."""
    special = _YAML_SPECIAL.get(text.lower())
    if special is not None:
        return special
    cleaned = text.replace("_", "")
    if re.fullmatch(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?", cleaned):
        return float(cleaned)
    try:
        return float(int(cleaned, 0))
    except ValueError:
        return None


# -- input series --------------------------------------------------------------------------------

_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_VALUE = rf"[-+]?(?:{_NUMBER}|[iI][nN][fF]|[nN][aA][nN])|stale"
_ITEM = re.compile(
    rf"(?P<blank>_)(?:x(?P<blanks>[0-9]+))?"
    rf"|(?P<value>{_VALUE})(?:(?P<step>[-+]{_NUMBER})?x(?P<times>[0-9]+))?"
)


def expand_values(text: str) -> list[float | None]:
    """Values in promtool's expanding notation, one per interval from time 0; ``None`` is a gap.

    ``1 2 3``; ``_`` (no sample), ``_xN`` (N gaps); ``axN`` (a, N+1 times); ``a+bxN`` and
    ``a-bxN`` (a, a+b, ... N+1 values, summed step by step as Prometheus sums them);
    ``stale`` (a stale marker); ``Inf``, ``-Inf``, ``NaN``. ``SeriesError`` for anything else.
    """
    values: list[float | None] = []
    for item in text.split():
        match = _ITEM.fullmatch(item)
        if match is None:
            raise SeriesError(f"invalid value {item!r} in {text!r}")
        if match["blank"]:
            values.extend([None] * (int(match["blanks"]) if match["blanks"] else 1))
            continue
        value = _series_value(match["value"])
        if match["times"] is None:
            values.append(value)
            continue
        step = float(match["step"]) if match["step"] else 0.0
        for _ in range(int(match["times"]) + 1):
            values.append(value)
            if step:
                value += step
    return values


def _series_value(text: str) -> float:
    if text == "stale":
        return STALE_NAN
    return float(text)


def parse_metric(text: str) -> LabelPairs:
    """The label set ``metric{a="b"}`` (or ``{a="b"}``, or empty text) names, as sorted pairs.

    Only equality matchers make sense here, as in Prometheus' ``ParseMetric``.
    """
    if not text.strip():
        return ()
    try:
        expr: Expr = parse_expr(text)
    except ParseError as exc:
        raise SeriesError(str(exc)) from None
    while isinstance(expr, ParenExpr):
        expr = expr.expr
    if not isinstance(expr, VectorSelector) or expr.offset or expr.at is not None or expr.at_edge is not None:
        raise SeriesError(f"not a series: {text}")
    pairs: dict[str, str] = {}
    for matcher in expr.matchers:
        if matcher.op != "=":
            raise SeriesError(f"only = can give a series its labels: {text}")
        pairs[matcher.name] = matcher.value
    return tuple(sorted(pairs.items()))
