"""escalation_policies: keys, the policy's schedule, and errors at file:line:key."""

from __future__ import annotations

import pytest

from daemon.config import ConfigError, parse_config
from daemon.dispatch.route import Route

BASE = """route:
  receiver: slack
  escalation: oncall
  routes:
    - matchers: ['team="web"']
    - matchers: ['team="db"']
      escalation: none
receivers:
  - name: slack
  - name: primary
  - name: senior
  - name: manager
escalation_policies:
"""


def issues(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "am.yml")
    return [str(issue) for issue in caught.value.issues]


def test_policy_levels_repeat_and_inheritance() -> None:
    config = parse_config(
        BASE
        + """  - name: oncall
    levels:
      - {after: 0s, receivers: [primary]}
      - {after: 5m, receivers: [senior]}
      - {after: 20m, receivers: [manager, senior]}
    repeat: 2
"""
    )
    policy = config.escalation_policies[0].policy()
    assert [level.after for level in policy.levels] == [0.0, 300.0, 1200.0]
    assert policy.cycle == 1200.0 + 900.0  # the last gap again before level 1 comes back
    steps = policy.steps()
    assert len(steps) == 9 and steps[3] == (1, 0, 2100.0) and steps[-1] == (2, 2, 2 * 2100.0 + 1200.0)
    root = Route.build(config.route)  # type: ignore[arg-type]
    assert [r.escalation for r in root.walk()] == ["oncall", "oncall", ""]


def test_repeat_interval_overrides_the_cycle() -> None:
    config = parse_config(BASE + "  - {name: oncall, levels: [{receivers: [primary]}], repeat: 1, repeat_interval: 10m}\n")
    assert config.escalation_policies[0].policy().steps() == [(0, 0, 0.0), (1, 0, 600.0)]


@pytest.mark.parametrize(
    ("policies", "expected"),
    [
        (
            "  - {name: oncall, levels: [{after: 0s, receivers: [primary]}, {after: 1m, receivers: [nobody]}]}\n",
            'am.yml:14: escalation_policies.0.levels.1.receivers.0: undefined receiver "nobody" used in escalation policy "oncall"',
        ),
        (
            "  - {name: oncall, levels: [{after: 5m, receivers: [primary]}, {after: 5m, receivers: [senior]}]}\n",
            "am.yml:14: escalation_policies.0.levels.1.after: delays must increase: 5m is not after the previous level's 5m",
        ),
        (
            "  - {name: oncall, levels: [{after: 10m, receivers: [primary]}, {after: 5m, receivers: [senior]}]}\n",
            "am.yml:14: escalation_policies.0.levels.1.after: delays must increase: 5m is not after the previous level's 10m",
        ),
        (
            "  - {name: oncall, levels: [{after: -5m, receivers: [primary]}]}\n",
            "escalation_policies.0.levels.0.after",
        ),
        ("  - {name: oncall, levels: []}\n", "escalation_policies.0.levels: an escalation policy needs at least one level"),
        ("  - {name: oncall, levels: [{after: 1m, receivers: []}]}\n", "a level needs at least one receiver"),
        ("  - {name: oncall, levels: [{receivers: [primary]}], repeat: 2}\n", "repeat needs a repeat_interval"),
        ("  - {name: other, levels: [{receivers: [primary]}]}\n", 'am.yml:3: route.escalation: undefined escalation policy "oncall" used in route'),
        ("  - {name: none, levels: [{receivers: [primary]}]}\n", '"none" is reserved'),
        ("  - {levels: [{receivers: [primary]}]}\n", "missing name in escalation policy"),
        ("  - {name: oncall, levels: [{receivers: [primary], wait: 1m}]}\n", "escalation_policies.0.levels.0.wait"),
    ],
)
def test_errors_name_the_line_and_key(policies: str, expected: str) -> None:
    found = issues(BASE + policies)
    assert any(expected in issue for issue in found), found


def test_duplicate_policy_names() -> None:
    found = issues(BASE + "  - {name: oncall, levels: [{receivers: [primary]}]}\n  - {name: oncall, levels: [{receivers: [senior]}]}\n")
    assert found == ['am.yml:15: escalation_policies.1.name: escalation policy "oncall" is not unique']


def test_the_readme_policy_loads_and_is_the_mission_s() -> None:
    import re
    from pathlib import Path

    text = Path(__file__).resolve().parent.parent.joinpath("README.md").read_text(encoding="utf-8")
    section = text[text.index("## Escalation and acknowledgement") :]
    block = re.search(r"```yaml escalation\n(.*?)```", section, re.S)
    assert block is not None
    env = {"PD_ONCALL_KEY": "k1", "PD_SENIOR_KEY": "k2", "SLACK_SIGNING_SECRET": "s", "PD_WEBHOOK_SECRET": "p"}
    policy = parse_config(block.group(1), env=env).escalation_policies[0].policy()
    assert [(level.after, level.receivers) for level in policy.levels] == [
        (0.0, ("oncall-engineer",)),
        (300.0, ("senior-engineer",)),
        (1200.0, ("engineering-manager",)),
    ]
