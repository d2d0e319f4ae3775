"""``alertd test rules``: promtool's rule unit tests, run on alertd's own rule engine.

For each test group of a file (see ``daemon.rules.unittest_format``): the input series go into
a fresh ``Store``; every rule group of the rule files is evaluated at 0, one evaluation
interval, two, ... up to the latest ``eval_time`` of the group's tests, in ``group_eval_order``
(groups it does not name count as first, in file order); after each evaluation at ``ts``, the
alert tests with ``ts <= eval_time < ts + interval`` compare the *firing* alerts of that name
with the expected ones. Once the last evaluation is done, each ``promql_expr_test`` is
evaluated at its ``eval_time`` over the input series plus everything the rules wrote.

This is promtool 2.42's procedure, and the report is promtool's text: ``Unit Testing:  FILE``
then ``  SUCCESS``, or ``  FAILED:`` and one block per failed check. A rule that fails to
evaluate ends its test group, as in promtool.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from typing import TextIO

from daemon.clock import FakeClock
from daemon.config.duration import format_duration
from daemon.promql.engine import Engine
from daemon.promql.errors import QueryError
from daemon.promql.lexer import ParseError, go_quote
from daemon.promql.value import Sample, Scalar
from daemon.rules.alert import AlertState
from daemon.rules.alerting import AlertingRule
from daemon.rules.group import RuleGroup
from daemon.rules.manager import RuleManager, RuleSettings
from daemon.rules.spec import GroupSpec, RuleFileError, load_rule_files
from daemon.rules.unittest_format import (
    AlertTestCase,
    ExpectedSample,
    LabelPairs,
    SeriesError,
    TestFileError,
    TestGroup,
    UnitTestFile,
    expand_values,
    parse_metric,
    parse_test_file,
)
from daemon.rules.unittest_report import AlertView, alerts_text, go_duration, indent, samples_text
from daemon.tsdb import Labels, Store

__all__ = ["run_test_file", "run_test_files", "run_test_group"]


def run_test_files(files: Sequence[str], out: TextIO, err: TextIO) -> int:
    """Run each test file and report as promtool does; 0 when every test passed, else 1.

    As with promtool, the verdict lines go to ``out`` and the failures to ``err``.
    """
    failed = False
    for path in files:
        print(f"Unit Testing:  {path}", file=out)
        out.flush()
        errors = run_test_file(path, warn=err)
        if errors:
            failed = True
            print("  FAILED:", file=err)
            for error in errors:
                print(error, file=err)
                print(file=out)
        else:
            print("  SUCCESS", file=out)
        print(file=out)
    return 1 if failed else 0


def run_test_file(path: str, *, warn: TextIO | None = None) -> list[str]:
    """The failures of one test file, each a block of promtool's text; empty when all passed.

    ``warn`` receives promtool's warning for a ``rule_files`` pattern that matches nothing.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        if isinstance(exc, OSError) and exc.strerror:
            return [f"open {path}: {exc.strerror[:1].lower()}{exc.strerror[1:]}"]  # Go's wording
        return [f"{path}: {exc}"]
    try:
        test_file = parse_test_file(text, path)
    except TestFileError as exc:
        return list(exc.issues)
    order: dict[str, int] = {}
    for index, name in enumerate(test_file.group_eval_order):
        if name in order:
            return [f"group name repeated in evaluation order: {name}"]
        order[name] = index
    rule_files = _rule_files(path, test_file, warn)
    groups: list[GroupSpec] = []
    load_errors: list[str] = []
    try:
        groups = load_rule_files(rule_files)
    except RuleFileError as exc:
        load_errors = list(exc.issues)
    # A stable sort: groups the order leaves out keep their file order, ahead of the named ones.
    groups.sort(key=lambda group: order.get(group.name, 0))
    errors: list[str] = []
    for test_group in test_file.tests:
        # promtool loads the rule files for each test group, so a broken file fails each of them.
        if load_errors:
            errors.extend(load_errors)
            continue
        errors.extend(run_test_group(test_group, groups, test_file.evaluation_interval, path))
    return errors


def _rule_files(path: str, test_file: UnitTestFile, warn: TextIO | None) -> list[str]:
    base = os.path.dirname(path)
    files: list[str] = []
    for pattern in test_file.rule_files:
        if pattern and not os.path.isabs(pattern):
            # Go's filepath.Join also cleans the path, so reports name `rules/a.yml`, not `./rules/./a.yml`.
            pattern = os.path.normpath(os.path.join(base, pattern))
        matches = sorted(glob.glob(pattern))
        if not matches and warn is not None:
            print(f"  WARNING: no file match pattern {pattern}", file=warn)
        files.extend(matches)
    return files


def run_test_group(
    test_group: TestGroup, groups: Sequence[GroupSpec], evaluation_interval: float, path: str
) -> list[str]:
    """The failures of one test group, given the rule groups in evaluation order."""
    step_ms = _ms(evaluation_interval)
    max_ms = _ms(test_group.max_eval_time())
    interval_ms = _ms(test_group.interval)
    series: list[tuple[LabelPairs, list[float | None]]] = []
    for entry in test_group.input_series:
        try:
            series.append((parse_metric(entry.series), expand_values(entry.values)))
        except SeriesError as exc:
            return [f"{path}:{entry.line}: input series {entry.series!r}: {exc}"]
    longest = max((len(values) for _, values in series), default=0)
    # Room for every sample and every evaluation: nothing a test looks at may age out.
    store = Store(retention=max(3600.0, (max(max_ms, longest * interval_ms) + step_ms) / 1000 * 2))
    for labels, values in series:
        found, _ = store.series(Labels.of(labels))
        for i, value in enumerate(values):
            if value is not None:
                store.append(found, i * interval_ms, value)
    engine = Engine(store, subquery_step=evaluation_interval)
    settings = RuleSettings(
        evaluation_interval=test_group.interval,
        external_labels=dict(test_group.external_labels),
        external_url=test_group.external_url,
    )
    try:
        # The daemon's own construction of groups, without state store or alert sink.
        rule_groups = RuleManager(store, FakeClock(0.0), engine=engine).build(groups, settings)
    except ValueError as exc:
        return [str(exc)]

    for case in test_group.alert_rule_test:
        if not case.alertname:
            named = f" (in TestGroup {test_group.name})" if test_group.name else ""
            return [
                "an item under alert_rule_test misses required attribute alertname "
                f"at eval_time {format_duration(case.eval_time)}{named}"
            ]
    alert_times = sorted({_ms(case.eval_time) for case in test_group.alert_rule_test})
    errors: list[str] = []
    current = 0
    ts_ms = 0
    while ts_ms <= max_ms:
        eval_errors: list[str] = []
        for group in rule_groups:
            group.evaluate(ts_ms / 1000)
            for rule in group.rules:
                if rule.status.last_error:
                    time = go_duration(ts_ms / 1000)
                    eval_errors.append(f"    rule: {rule.name}, time: {time}, err: {rule.status.last_error}")
        if eval_errors:
            return errors + eval_errors
        while current < len(alert_times) and ts_ms <= alert_times[current] < ts_ms + step_ms:
            at = alert_times[current]
            cases = [case for case in test_group.alert_rule_test if _ms(case.eval_time) == at]
            errors.extend(_check_alerts(test_group, cases, rule_groups))
            current += 1
        ts_ms += step_ms

    for expr_case in test_group.promql_expr_test:
        errors.extend(_check_expr(engine, expr_case.expr, expr_case.eval_time, expr_case.exp_samples))
    return errors


def _check_alerts(test_group: TestGroup, cases: Sequence[AlertTestCase], groups: Sequence[RuleGroup]) -> list[str]:
    names = {case.alertname for case in cases}
    got: dict[str, list[AlertView]] = {}
    # One alert name may belong to rules in several groups: promtool pools them.
    for group in groups:
        for rule in group.rules:
            if isinstance(rule, AlertingRule) and rule.name in names:
                views = got.setdefault(rule.name, [])
                for alert in rule.alerts():
                    if alert.state is AlertState.FIRING:
                        views.append(AlertView(tuple(alert.labels.items()), tuple(sorted(alert.annotations.items()))))
    errors: list[str] = []
    for case in cases:
        expected = sorted(
            AlertView(
                tuple(sorted({**dict(exp.labels), "alertname": case.alertname}.items())),
                exp.annotations,
            )
            for exp in case.exp_alerts
        )
        actual = sorted(got.get(case.alertname, []))
        if expected != actual:
            named = f"    name: {test_group.name},\n" if test_group.name else ""
            errors.append(
                f"{named}    alertname: {case.alertname}, time: {format_duration(case.eval_time)}, \n"
                f"        exp:{indent(alerts_text(expected))}, \n"
                f"        got:{indent(alerts_text(actual))}"
            )
    return errors


def _check_expr(engine: Engine, expr: str, eval_time: float, expected_samples: Sequence[ExpectedSample]) -> list[str]:
    head = f"    expr: {go_quote(expr)}, time: {format_duration(eval_time)}"
    try:
        result = engine.instant(expr, eval_time)
    except (ParseError, QueryError) as exc:
        return [f"{head}, err: {exc}"]
    if isinstance(result, Scalar):
        got = [((), result.value)]
    elif isinstance(result, list) and all(isinstance(item, Sample) for item in result):
        got = [(tuple(item.labels.items()), item.value) for item in result if isinstance(item, Sample)]
    else:
        return [f"{head}, err: rule result is not a vector or scalar"]
    expected: list[tuple[LabelPairs, float]] = []
    for sample in expected_samples:
        try:
            expected.append((parse_metric(sample.labels), sample.value))
        except SeriesError as exc:
            return [f"{head}, err: labels {go_quote(sample.labels)}: {exc}"]
    got.sort(key=lambda s: s[0])
    expected.sort(key=lambda s: s[0])
    # Compared as Go's reflect.DeepEqual compares them: NaN equals nothing, not even NaN.
    if len(got) != len(expected) or any(g[0] != e[0] or not g[1] == e[1] for g, e in zip(got, expected)):
        return [f"{head},\n        exp: {samples_text(expected)}\n        got: {samples_text(got)}"]
    return []


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))
