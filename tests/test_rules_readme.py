"""The README's rule file example loads and evaluates."""

from __future__ import annotations

import re
from pathlib import Path

from daemon.clock import FakeClock
from daemon.rules.manager import RuleManager, RuleSettings
from daemon.rules.spec import parse_rule_file
from daemon.tsdb import Store

README = Path(__file__).resolve().parent.parent / "README.md"


def section() -> str:
    text = README.read_text()
    start = text.index("## Rules and alerts")
    return text[start : text.index("\n## ", start + 1)]


def test_rule_file_example_loads_and_builds() -> None:
    (example,) = re.findall(r"```yml\n(.*?)```", section(), flags=re.S)
    groups = parse_rule_file(example, "rules/api.yml")
    assert [g.name for g in groups] == ["api"]
    built = RuleManager(Store(), FakeClock()).build(groups, RuleSettings())
    assert [r.name for r in built[0].rules] == ["job:http_errors:rate5m", "HighErrorRate"]
    assert built[0].rules[1].labels["team"] == "backend"  # type: ignore[union-attr]
