"""The alert catalogue in rules/: promtool and alertd accept it and pass its unit tests, and every
alert carries the labels routing matches and the annotations notifications print."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import fields, is_dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from daemon.promql import ast
from daemon.promql.parser import parse_expr

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
RULE_FILES = sorted(RULES.glob("*.rules.yml"))
TEST_FILES = sorted(RULES.glob("*.test.yml"))

# The specification's tiers and the severity label routing matches (README, "Alert catalogue").
SEVERITY_OF_PRIORITY = {"P0": "critical", "P1": "warning", "P2": "info"}
REQUIRED_ANNOTATIONS = frozenset(
    {"summary", "description", "runbook_url", "dashboard_url", "metric_name", "current_value", "threshold"}
)

# Every alert the specification names in its tiers, under the name it has here.
SPEC_TIERS = {
    # P0
    "SiteDown": "P0",  # site_down
    "APIDown": "P0",  # api_down
    "DatabaseDown": "P0",  # database_down
    "RedisDown": "P0",  # redis_down
    "ResponseTimeHigh": "P0",  # response_time_high, > 1 s
    "ErrorRateHigh": "P0",  # error_rate_high, > 5 %
    "CPUUsageCritical": "P0",  # cpu_usage_critical, > 95 %
    "MemoryUsageCritical": "P0",  # memory_usage_critical, > 95 %
    "SecurityBreach": "P0",  # security_breach
    "DDoSAttack": "P0",  # ddos_attack
    "SuspiciousActivity": "P0",  # suspicious_activity
    "DataLeak": "P0",  # data_leak
    # P1
    "ResponseTimeElevated": "P1",  # response_time_elevated, > 500 ms
    "ErrorRateElevated": "P1",  # error_rate_elevated, > 2 %
    "CPUUsageHigh": "P1",  # cpu_usage_high, > 80 %
    "MemoryUsageHigh": "P1",  # memory_usage_high, > 80 %
    "ConversionRateLow": "P1",  # conversion_rate_low, < 5 %
    "ChurnRateHigh": "P1",  # churn_rate_high, > 10 %
    "RevenueDrop": "P1",  # revenue_drop, > 20 %
    "UserGrowthStagnant": "P1",  # user_growth_stagnant, < 5 %
    # P2
    "BackupFailed": "P2",  # backup_failed
    "LogRotationFailed": "P2",  # log_rotation_failed
    "CertificateExpiring": "P2",  # certificate_expiring, 30 days
    "DiskSpaceLow": "P2",  # disk_space_low, < 20 %
    "NewUserMilestone": "P2",  # new_user_milestone
    "RevenueMilestone": "P2",  # revenue_milestone
    "FeatureUsageSpike": "P2",  # feature_usage_spike
}


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@cache
def _rules() -> tuple[tuple[str, dict[str, Any]], ...]:
    """(file stem, rule) for every rule of every rule file."""
    found = []
    for path in RULE_FILES:
        for group in _load(path)["groups"]:
            found.extend((path.name.removesuffix(".rules.yml"), rule) for rule in group["rules"])
    return tuple(found)


def _alerts() -> list[tuple[str, dict[str, Any]]]:
    return [(stem, rule) for stem, rule in _rules() if "alert" in rule]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=300, cwd=ROOT)


def _selector_names(node: object) -> set[str]:
    """Metric names of every selector in a PromQL syntax tree."""
    if isinstance(node, ast.VectorSelector):
        return {node.name} if node.name else set()
    names: set[str] = set()
    if is_dataclass(node):
        for field in fields(node):
            value = getattr(node, field.name)
            for child in value if isinstance(value, tuple) else (value,):
                if isinstance(child, ast.Expr):
                    names |= _selector_names(child)
    return names


def _readme_catalogue() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Alert catalogue\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert match, "README.md has no '## Alert catalogue' section"
    return match.group(1)


def test_every_rule_file_has_its_unit_tests_beside_it() -> None:
    assert RULE_FILES, "no rules/*.rules.yml"
    assert [p.name.removesuffix(".rules.yml") for p in RULE_FILES] == [
        p.name.removesuffix(".test.yml") for p in TEST_FILES
    ]
    for path in TEST_FILES:
        assert _load(path)["rule_files"] == [path.name.replace(".test.yml", ".rules.yml")]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (Debian: apt install prometheus)")
def test_promtool_accepts_every_rule_file() -> None:
    result = _run("promtool", "check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (Debian: apt install prometheus)")
def test_promtool_passes_every_unit_test() -> None:
    result = _run("promtool", "test", "rules", *map(str, TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertd_accepts_every_rule_file() -> None:
    result = _run(sys.executable, "-m", "daemon", "check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertd_passes_every_unit_test() -> None:
    result = _run(sys.executable, "-m", "daemon", "test", "rules", *map(str, TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("stem", "rule"), _alerts(), ids=[rule["alert"] for _, rule in _alerts()])
def test_alert_has_the_labels_and_annotations_notifications_need(stem: str, rule: dict[str, Any]) -> None:
    labels = rule.get("labels", {})
    assert labels.get("priority") in SEVERITY_OF_PRIORITY
    assert labels["severity"] == SEVERITY_OF_PRIORITY[labels["priority"]]
    assert labels.get("category") == stem
    annotations = rule.get("annotations", {})
    assert REQUIRED_ANNOTATIONS <= annotations.keys(), REQUIRED_ANNOTATIONS - annotations.keys()
    assert all(annotations[key].strip() for key in REQUIRED_ANNOTATIONS)
    for key in ("runbook_url", "dashboard_url"):
        assert annotations[key].startswith("https://")


def test_alert_names_and_runbooks_are_unique() -> None:
    names = [rule["alert"] for _, rule in _alerts()]
    runbooks = [rule["annotations"]["runbook_url"] for _, rule in _alerts()]
    assert len(names) == len(set(names))
    assert len(runbooks) == len(set(runbooks))


def test_specification_tiers() -> None:
    priorities = {rule["alert"]: rule["labels"]["priority"] for _, rule in _alerts()}
    assert {name: priorities.get(name) for name in SPEC_TIERS} == SPEC_TIERS


def test_recording_rules_are_named_level_metric_operations() -> None:
    records = [rule["record"] for _, rule in _rules() if "record" in rule]
    assert records
    for name in records:
        assert re.fullmatch(r"[a-z_]+:[a-zA-Z0-9_]+:[a-zA-Z0-9_]+", name), name


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in TEST_FILES:
        for group in _load(path)["tests"]:
            for check in group.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for _, rule in _alerts()}
    assert names - firing == set(), "never seen firing"
    assert names - quiet == set(), "never seen quiet"


def test_readme_catalogue_documents_every_alert_and_every_metric_read() -> None:
    catalogue = _readme_catalogue()
    recorded = {rule["record"] for _, rule in _rules() if "record" in rule}
    metrics: set[str] = set()
    for _, rule in _rules():
        metrics |= _selector_names(parse_expr(rule["expr"]))
    missing_metrics = {name for name in metrics - recorded if f"`{name}`" not in catalogue}
    assert missing_metrics == set()
    missing_alerts = {rule["alert"] for _, rule in _alerts() if f"`{rule['alert']}`" not in catalogue}
    assert missing_alerts == set()
