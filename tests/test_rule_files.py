"""Rule files: models, loading, every error with its line, and `alertd check rules` against promtool."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from daemon.cli import main
from daemon.rules.spec import (
    AlertingRuleSpec,
    FrozenMap,
    GroupSpec,
    RecordingRuleSpec,
    RuleFileError,
    check_rule_files,
    load_rule_files,
    parse_rule_file,
)

RULES = Path(__file__).parent / "rules"


def _issues(text: str, file: str = "r.yml") -> list[str]:
    with pytest.raises(RuleFileError) as info:
        parse_rule_file(text, file)
    return list(info.value.issues)


def test_valid_file_gives_frozen_specs() -> None:
    groups = load_rule_files([str(RULES / "check_valid.yml")])
    assert [g.name for g in groups] == ["api", "hosts"]
    api, hosts = groups
    assert api.interval == 30.0 and api.limit == 10 and api.query_offset == 0.0 and api.line == 2
    assert hosts.interval is None
    assert api.file == str(RULES / "check_valid.yml")
    record, alert = api.rules
    assert record == RecordingRuleSpec(
        record="job:http_errors:rate5m",
        expr="sum by (job) (rate(http_errors_total[5m]))",
        labels=FrozenMap({"source": "rules"}),
        line=6,
    )
    assert isinstance(alert, AlertingRuleSpec)
    assert alert.expr == "job:http_errors:rate5m\n  > 0.05\n"
    assert (alert.for_, alert.keep_firing_for) == (600.0, 300.0)
    assert alert.labels == {"severity": "page", "team": "{{ $labels.job }}"}
    assert alert.annotations["summary"].startswith("{{ $labels.job }}")
    assert alert.name == "HighErrorRate" and record.name == "job:http_errors:rate5m"
    # Hashable, so a reload can put specs in sets and dicts.
    assert len({api, hosts, *api.rules}) == 4


def test_unchanged_rule_compares_equal_across_reloads_whatever_the_key_order() -> None:
    first = parse_rule_file(
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    labels: {a: '1', b: '2'}\n", "f.yml"
    )
    second = parse_rule_file(
        "groups:\n- name: g\n  rules:\n  - expr: up == 0\n    labels: {b: '2', a: '1'}\n    alert: A\n", "f.yml"
    )
    assert first == second
    assert hash(first[0]) == hash(second[0])
    changed = parse_rule_file("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 1\n", "f.yml")
    assert changed[0].rules != first[0].rules


def test_frozen_map_behaves_as_a_read_only_mapping() -> None:
    labels = FrozenMap({"b": "2", "a": "1"})
    assert list(labels) == ["a", "b"] and len(labels) == 2 and labels["a"] == "1"
    assert labels == {"a": "1", "b": "2"} and labels != {"a": "1"}
    assert dict(labels) == {"a": "1", "b": "2"}
    with pytest.raises(TypeError):
        labels["c"] = "3"  # type: ignore[index]


def test_every_error_of_the_file_with_its_line() -> None:
    path = str(RULES / "check_invalid.yml")
    with pytest.raises(RuleFileError) as info:
        load_rule_files([path])
    assert list(info.value.issues) == [
        f"{path}:5: group \"broken\", rule 1, \"Both\": only one of 'record' and 'alert' must be set",
        f'{path}:8: group "broken", rule 2, "bad-name": could not parse expression: '
        "1:7: parse error: unclosed left parenthesis",
        f"{path}:10: group \"broken\", rule 2, \"bad-name\": invalid field 'annotations' in recording rule",
        f"{path}:9: group \"broken\", rule 2, \"bad-name\": invalid field 'for' in recording rule",
        f'{path}:7: group "broken", rule 2, "bad-name": invalid recording rule name: bad-name',
        f'{path}:15: group "broken", rule 3, "BadLabels": invalid label name: bad-label',
        f'{path}:16: group "broken", rule 3, "BadLabels": invalid label name: __name__',
        f'{path}:18: group "broken", rule 3, "BadLabels": annotation "summary": '
        'template: __alert_BadLabels:1: function "nope" not defined',
        f"{path}:19: group \"broken\", rule 4, \"\": one of 'record' or 'alert' must be set",
        f'{path}:20: groupname: "broken" is repeated in the same file',
        f"{path}:22: Groupname must not be empty",
    ]


def test_expression_error_in_a_literal_block_names_the_line_of_the_error() -> None:
    text = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: |\n      sum(up)\n        by (job))\n"
    [issue] = _issues(text)
    assert issue.startswith('r.yml:7: group "g", rule 1, "A": could not parse expression: 2:')


def test_label_templates_are_checked_for_alerting_rules_only() -> None:
    text = (
        "groups:\n- name: g\n  rules:\n"
        "  - alert: A\n    expr: up\n    labels: {sev: '{{ nope }}'}\n"
        "  - record: b\n    expr: up\n    labels: {sev: '{{ nope }}'}\n"
    )
    assert _issues(text) == [
        'r.yml:6: group "g", rule 1, "A": label "sev": template: __alert_A:1: function "nope" not defined'
    ]


_GROUP = "groups:\n- name: g\n"
_ALERT = _GROUP + "  rules:\n  - alert: A\n    expr: up\n"


@pytest.mark.parametrize(
    ("text", "issue"),
    [
        (_GROUP + "  evaluation_interval: 1m\n", "r.yml:3: field evaluation_interval not found in type rulefmt.RuleGroup"),
        (_ALERT + "    fro: 5m\n", "r.yml:6: field fro not found in type rulefmt.RuleNode"),
        ("grups: []\n", "r.yml:1: field grups not found in type rulefmt.RuleGroups"),
        (_GROUP + "  interval: 5x\n", 'r.yml:3: interval: not a valid duration string: "5x"'),
        (_ALERT + "    for: -1m\n", 'r.yml:6: for: not a valid duration string: "-1m"'),
        (_GROUP + "  limit: many\n", "r.yml:3: cannot unmarshal !!str `many` into int (limit)"),
        (_GROUP + "  rules:\n  - alert: A\n", "r.yml:4: group \"g\", rule 1, \"A\": field 'expr' must be set in rule"),
        (
            _GROUP + "  rules:\n  - record: r\n    expr: up\n    keep_firing_for: 1m\n",
            "r.yml:6: group \"g\", rule 1, \"r\": invalid field 'keep_firing_for' in recording rule",
        ),
        (_ALERT + "    annotations: {'a-b': x}\n", 'r.yml:6: group "g", rule 1, "A": invalid annotation name: a-b'),
        (_GROUP + "  labels: {'a-b': x}\n", 'r.yml:3: group "g": invalid label name: a-b'),
        ("groups: {}\n", "r.yml:1: cannot unmarshal !!map into []rulefmt.RuleGroup"),
        (_GROUP + "  rules:\n  - alert: [A]\n    expr: up\n", "r.yml:4: cannot unmarshal !!seq into string (alert)"),
        (_GROUP + "  name: h\n", "r.yml:3: groups.0.name: duplicate key (first at line 2)"),
    ],
)
def test_single_errors(text: str, issue: str) -> None:
    assert issue in _issues(text)


def test_yaml_syntax_error_names_the_line() -> None:
    [issue] = _issues("groups:\n- name: g\n  rules: [\n")
    assert issue.startswith("r.yml:4: invalid YAML")


def test_empty_file_and_group_settings() -> None:
    assert parse_rule_file("", "e.yml") == []
    assert parse_rule_file("groups: []\n", "e.yml") == []
    [group] = parse_rule_file(
        _GROUP + "  interval: 1m\n  limit: 5\n  query_offset: 30s\n  labels: {team: db}\n  rules: []\n", "e.yml"
    )
    assert group == GroupSpec(
        name="g", file="e.yml", interval=60.0, limit=5, query_offset=30.0, labels=FrozenMap({"team": "db"}), line=2
    )


def test_load_rule_files_globs_sorted_and_reports_every_file(tmp_path: Path) -> None:
    for name in ("b.yml", "a.yml", "c.rules"):
        (tmp_path / name).write_text(f"groups:\n- name: {name}\n  rules: []\n")
    patterns = [str(tmp_path / "*.yml"), str(tmp_path / "c.rules"), str(tmp_path / "a.yml"), str(tmp_path / "none*")]
    assert [g.name for g in load_rule_files(patterns)] == ["a.yml", "b.yml", "c.rules"]
    (tmp_path / "a.yml").write_text("groups:\n- name: x\n  bad: 1\n")
    (tmp_path / "b.yml").write_text("groups:\n- name: y\n  rules: [{alert: A}]\n")
    with pytest.raises(RuleFileError) as info:
        load_rule_files([str(tmp_path / "*.yml")])
    assert [issue.split(":")[0:2] for issue in info.value.issues] == [
        [str(tmp_path / "a.yml"), "3"],
        [str(tmp_path / "b.yml"), "3"],
    ]


def test_check_rules_output(capsys: pytest.CaptureFixture[str]) -> None:
    valid, invalid = str(RULES / "check_valid.yml"), str(RULES / "check_invalid.yml")
    assert main(["check", "rules", valid]) == 0
    assert capsys.readouterr().out == f"Checking {valid}\n  SUCCESS: 3 rules found\n\n"
    assert main(["check", "rules", invalid, valid]) == 1
    captured = capsys.readouterr()
    assert captured.out == f"Checking {invalid}\n\nChecking {valid}\n  SUCCESS: 3 rules found\n\n"
    assert captured.err.startswith("  FAILED:\n" + invalid + ":5: group")
    out, err = io.StringIO(), io.StringIO()
    assert check_rule_files(["/nonexistent/r.yml"], out, err) == 1
    assert err.getvalue() == "  FAILED:\n/nonexistent/r.yml: no such file or directory\n"


_POSITION = re.compile(r"^(?P<file>[^:]+):(?: \d+:\d+:)*(?:\d+:)? ?")


def _messages(text: str) -> list[str]:
    """Error lines without file and position, which the two tools give differently."""
    return sorted(_POSITION.sub("", line) for line in text.splitlines() if line and not line.startswith("  FAILED"))


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not on PATH (apt-get install prometheus)")
@pytest.mark.parametrize("name", ["check_valid.yml", "check_invalid.yml"])
def test_check_rules_agrees_with_promtool(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    promtool = subprocess.run(
        ["promtool", "check", "rules", name], cwd=RULES, capture_output=True, text=True, timeout=60
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(RULES)
        code = main(["check", "rules", name])
    captured = capsys.readouterr()
    assert code == promtool.returncode
    assert captured.out == promtool.stdout
    assert _messages(captured.err) == _messages(promtool.stderr)


def test_readme_error_lines_are_what_check_rules_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules" / "api.yml"
    rules.parent.mkdir()
    rules.write_text(
        "groups:\n"
        "  - name: api\n"
        "    rules:\n"
        "      - alert: InstanceDown\n"
        "        expr: up == 0\n"
        "        for: 3m\n"
        "      - alert: HighErrorRate\n"
        "        expr: sum(rate(errors_total[5m])\n"
        "        for: 10m\n"
        "        annotations:\n"
        "          description: errors\n"
        '          summary: "{{ $value | humanise }}"\n'
        "      - alert: Other\n"
        "        expr: up\n"
        "        fro: 5m\n"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        assert main(["check", "rules", "rules/api.yml"]) == 1
    printed = capsys.readouterr().err.splitlines()[1:]
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme[readme.index("## Rules tooling") :]
    shown = re.search(r"```text\n(.*?)```", section, flags=re.S)
    assert shown is not None
    assert shown.group(1).splitlines() == printed
