"""The rule_evaluation section of the config file."""

from __future__ import annotations

import pytest

from daemon.config import ConfigError
from daemon.config.load import parse_config


def test_defaults_off() -> None:
    config = parse_config("{}")
    assert config.rule_evaluation.after_scrape is False
    assert config.rule_evaluation.after_scrape_groups() == {}


def test_global_switch_and_group_overrides() -> None:
    config = parse_config(
        """
rule_evaluation:
  after_scrape: true
  groups:
    slow: {after_scrape: false}
    other: {}
"""
    )
    assert config.rule_evaluation.after_scrape is True
    assert config.rule_evaluation.after_scrape_groups() == {"slow": False}


@pytest.mark.parametrize(
    "text,where",
    [
        ("rule_evaluation: {after_scrap: true}\n", "rule_evaluation.after_scrap"),
        ("rule_evaluation: {groups: {g: {after_scrape: sometimes}}}\n", "rule_evaluation.groups.g.after_scrape"),
        ("rule_evaluation: {groups: [a]}\n", "rule_evaluation.groups"),
    ],
)
def test_errors_name_the_key(text: str, where: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(text, "alertd.yml")
    assert f"alertd.yml:1: {where}" in str(error.value)
