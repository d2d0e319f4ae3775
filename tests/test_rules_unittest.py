"""Rule unit tests (promtool's format): reading test files, series notation, the report, and
`alertd test rules` against `promtool test rules` on every file in tests/rules/unit/."""

from __future__ import annotations

import io
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from daemon.rules.unittest_format import (
    AlertTestCase,
    ExpectedAlert,
    ExpectedSample,
    InputSeries,
    PromqlTestCase,
    SeriesError,
    TestFileError,
    TestGroup,
    UnitTestFile,
    expand_values,
    parse_metric,
    parse_test_file,
)
from daemon.rules.unittest_report import AlertView, alerts_text, go_duration, go_float, indent, samples_text
from daemon.tsdb import is_stale

UNIT = Path(__file__).parent / "rules" / "unit"
TEST_FILES = sorted(path.name for path in UNIT.glob("*.test.yml"))
# Files whose failures name rule-file or YAML positions, which promtool words in Go's way
# (`5:17: 4:16:` columns, `yaml: unmarshal errors:`); for them only the verdict is compared.
VERDICT_ONLY = {"fail_bad_rules.test.yml", "fail_unknown_key.test.yml"}
PROMTOOL = shutil.which("promtool")


# -- series notation -----------------------------------------------------------------------------


def test_expanding_notation() -> None:
    assert expand_values("1 2 3") == [1.0, 2.0, 3.0]
    assert expand_values("1+2x3") == [1.0, 3.0, 5.0, 7.0]
    assert expand_values("10-1x2 -2-1x1") == [10.0, 9.0, 8.0, -2.0, -3.0]
    assert expand_values("0x3") == [0.0] * 4  # `x` repeats, even after a 0: not hexadecimal
    assert expand_values("_ 1 _x3 2") == [None, 1.0, None, None, None, 2.0]
    assert expand_values("1e3 .5 +4") == [1000.0, 0.5, 4.0]
    assert expand_values("") == []


def test_steps_are_summed_as_prometheus_sums_them() -> None:
    # 1 + 0.1 + 0.1 is not 1.2 in floating point; promtool shows 1.2000000000000002 too.
    assert expand_values("1+0.1x2") == [1.0, 1.1, 1.2000000000000002]


def test_special_values() -> None:
    values = expand_values("Inf -Inf NaN stale stalex1")
    assert values[:2] == [math.inf, -math.inf]
    assert values[2] is not None and math.isnan(values[2]) and not is_stale(values[2])
    assert all(v is not None and is_stale(v) for v in values[3:]) and len(values) == 6


@pytest.mark.parametrize("text", ["1 + 2", "abc", "1x", "1+x3", "_y2", "1,2"])
def test_bad_values(text: str) -> None:
    with pytest.raises(SeriesError):
        expand_values(text)


def test_series_and_expected_labels() -> None:
    assert parse_metric('up{job="api", instance="a"}') == (("__name__", "up"), ("instance", "a"), ("job", "api"))
    assert parse_metric('{job="a\\"b"}') == (("job", 'a"b'),)
    assert parse_metric("") == ()
    for bad in ('up{job=~"a"}', "up{", "rate(up[5m])", "up offset 5m"):
        with pytest.raises(SeriesError):
            parse_metric(bad)


# -- reading test files --------------------------------------------------------------------------


def test_reading_a_test_file() -> None:
    text = """
rule_files: [a.yml, 'b/*.yml']
evaluation_interval: 30s
group_eval_order: [x, y]
tests:
  - interval: 15s
    name: one
    external_labels: {cluster: eu}
    external_url: http://x/
    input_series:
      - series: up
        values: 1 2
    alert_rule_test:
      - eval_time: 1m
        alertname: A
        exp_alerts:
          - exp_labels: {b: '2', a: '1'}
            exp_annotations: {s: t}
          - {}
    promql_expr_test:
      - expr: up
        eval_time: 30s
        exp_samples:
          - labels: up
            value: .inf
          - value: 1e-3
  - input_series: []
"""
    parsed = parse_test_file(text, "t.yml")
    assert parsed == UnitTestFile(
        rule_files=("a.yml", "b/*.yml"),
        evaluation_interval=30.0,
        group_eval_order=("x", "y"),
        tests=(
            TestGroup(
                interval=15.0,
                input_series=(InputSeries("up", "1 2", 11),),
                alert_rule_test=(
                    AlertTestCase(
                        60.0,
                        "A",
                        (ExpectedAlert((("a", "1"), ("b", "2")), (("s", "t"),)), ExpectedAlert()),
                        14,
                    ),
                ),
                promql_expr_test=(
                    PromqlTestCase("up", 30.0, (ExpectedSample("up", math.inf), ExpectedSample("", 0.001)), 21),
                ),
                external_labels=(("cluster", "eu"),),
                external_url="http://x/",
                name="one",
                line=6,
            ),
            TestGroup(interval=30.0, line=27),
        ),
    )
    assert parsed.tests[0].max_eval_time() == 60.0 and parsed.tests[1].max_eval_time() == 0.0


def test_test_file_defaults() -> None:
    parsed = parse_test_file("tests: [{}]\n", "t.yml")
    assert parsed.evaluation_interval == 60.0 and parsed.tests[0].interval == 60.0
    assert parse_test_file("", "t.yml") == UnitTestFile()


def test_test_file_errors_name_every_line() -> None:
    text = """rule_files: x.yml
evaluation_interval: 1x
tests:
  - interval: 1m
    input_sieries: []
    alert_rule_test:
      - eval_time: 1m
        alertname: A
        exp_alerts:
          - exp_labels: {a: 1}
            exp_annotation: {}
    promql_expr_test:
      - expr: up
        exp_samples:
          - value: one
"""
    with pytest.raises(TestFileError) as info:
        parse_test_file(text, "t.yml")
    assert list(info.value.issues) == [
        "t.yml:1: cannot unmarshal !!str `x.yml` into a list (rule_files)",
        't.yml:2: evaluation_interval: not a valid duration string: "1x"',
        "t.yml:5: field input_sieries not found in type main.testGroup",
        "t.yml:11: field exp_annotation not found in type main.alert",
        "t.yml:15: cannot unmarshal !!str `one` into float64 (value)",
    ]


# -- promtool's text -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3.0, "3E+00"),
        (0.001, "1E-03"),
        (110.0, "1.1E+02"),
        (1.2000000000000002, "1.2000000000000002E+00"),
        (-45.5, "-4.55E+01"),
        (0.0, "0E+00"),
        (-0.0, "-0E+00"),
        (1e21, "1E+21"),
        (5e-324, "5E-324"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
    ],
)
def test_go_float(value: float, text: str) -> None:
    assert go_float(value) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (60, "1m0s"), (3723.5, "1h2m3.5s"), (0.5, "500ms"), (90000, "25h0m0s"), (1.25e-3, "1.25ms")],
)
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


def test_alert_block_as_promtool_prints_it() -> None:
    alerts = [
        AlertView((("alertname", "A"), ("job", "x")), (("summary", 'say "hi"'),)),
        AlertView((("alertname", "A"),), ()),
    ]
    assert alerts_text(sorted(alerts)) == (
        "[\n"
        "0:\n"
        '  Labels:{alertname="A"}\n'
        "  Annotations:{},\n"
        "1:\n"
        '  Labels:{alertname="A", job="x"}\n'
        '  Annotations:{summary="say \\"hi\\""}\n'
        "]"
    )
    assert alerts_text([]) == "[]"
    assert indent("a\nb") == "a\n            b"


def test_samples_text() -> None:
    assert samples_text([]) == "nil"
    assert samples_text([((("__name__", "up"), ("job", "a")), 1.0), ((), 0.5)]) == (
        '{__name__="up", job="a"} 1E+00, {} 5E-01'
    )


# -- running the suite ---------------------------------------------------------------------------


def _alertd(name: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    runner = pytest.importorskip("daemon.rules.unittest", reason="the rule engine is not there yet")
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.chdir(UNIT)
    code = runner.run_test_files([name], out, err)
    return code, out.getvalue(), err.getvalue()


def _reported(stderr: str) -> list[str]:
    """The checks a report says failed: its `alertname:`, `expr:` and `rule:` lines."""
    heads = ("    alertname:", "    expr:", "    rule:", "    name:")
    return [line for line in stderr.splitlines() if line.startswith(heads)]


def test_the_suite_has_passing_and_failing_files() -> None:
    failing = {name for name in TEST_FILES if name.startswith("fail_")}
    assert len(failing) >= 6 and len(set(TEST_FILES) - failing) >= 5


@pytest.mark.parametrize("name", TEST_FILES)
def test_alertd_verdict(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = _alertd(name, monkeypatch)
    if name.startswith("fail_"):
        assert code == 1, out + err
        assert out.startswith(f"Unit Testing:  {name}\n") and err.startswith("  FAILED:\n")
    else:
        assert (code, out, err) == (0, f"Unit Testing:  {name}\n  SUCCESS\n\n", "")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not on PATH (Debian package: prometheus)")
@pytest.mark.parametrize("name", TEST_FILES)
def test_same_verdict_and_report_as_promtool(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert PROMTOOL is not None
    promtool = subprocess.run(
        [PROMTOOL, "test", "rules", name], cwd=UNIT, capture_output=True, text=True, timeout=120
    )
    code, out, err = _alertd(name, monkeypatch)
    assert code == promtool.returncode, f"promtool:\n{promtool.stderr}\nalertd:\n{err}"
    assert _reported(err) == _reported(promtool.stderr)
    if name not in VERDICT_ONLY:
        assert (out, err) == (promtool.stdout, promtool.stderr)


def test_report_of_several_files(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = pytest.importorskip("daemon.rules.unittest", reason="the rule engine is not there yet")
    monkeypatch.chdir(UNIT)
    out, err = io.StringIO(), io.StringIO()
    assert runner.run_test_files(["for.test.yml", "fail_label.test.yml", "missing.test.yml"], out, err) == 1
    assert out.getvalue() == (
        "Unit Testing:  for.test.yml\n  SUCCESS\n\n"
        "Unit Testing:  fail_label.test.yml\n\n\n"
        "Unit Testing:  missing.test.yml\n\n\n"
    )
    assert err.getvalue().endswith("  FAILED:\nopen missing.test.yml: no such file or directory\n")


def test_repeated_group_in_evaluation_order(tmp_path: Path) -> None:
    runner = pytest.importorskip("daemon.rules.unittest", reason="the rule engine is not there yet")
    path = tmp_path / "t.yml"
    path.write_text("group_eval_order: [a, a]\ntests: [{}]\n")
    assert runner.run_test_file(str(path)) == ["group name repeated in evaluation order: a"]


def test_rule_file_pattern_matching_nothing_is_a_warning(tmp_path: Path) -> None:
    runner = pytest.importorskip("daemon.rules.unittest", reason="the rule engine is not there yet")
    path = tmp_path / "t.yml"
    path.write_text("rule_files: [none*.yml]\ntests:\n- promql_expr_test: [{expr: '1', exp_samples: [{value: 1}]}]\n")
    warn = io.StringIO()
    assert runner.run_test_file(str(path), warn=warn) == []
    assert warn.getvalue() == f"  WARNING: no file match pattern {tmp_path}/none*.yml\n"


def test_alert_test_without_alertname(tmp_path: Path) -> None:
    runner = pytest.importorskip("daemon.rules.unittest", reason="the rule engine is not there yet")
    path = tmp_path / "t.yml"
    path.write_text("tests:\n- name: g\n  alert_rule_test: [{eval_time: 2m}]\n")
    assert runner.run_test_file(str(path)) == [
        "an item under alert_rule_test misses required attribute alertname at eval_time 2m (in TestGroup g)"
    ]


def test_readme_example_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = pytest.importorskip("daemon.rules.unittest", reason="the rule engine is not there yet")
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme[readme.index("## Rules tooling") :]
    section = section[: section.index("\n## ", 1)]
    files = {}
    for block in re.findall(r"```yml\n(.*?)```", section, flags=re.S):
        name = block.splitlines()[0].removeprefix("# ")
        files[name] = block
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(block)
    assert set(files) == {"rules/api.yml", "rules/api.test.yml"}
    monkeypatch.chdir(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    assert runner.run_test_files(["rules/api.test.yml"], out, err) == 0, err.getvalue()
    if PROMTOOL is not None:
        promtool = subprocess.run([PROMTOOL, "test", "rules", "rules/api.test.yml"], cwd=tmp_path, capture_output=True)
        assert promtool.returncode == 0
