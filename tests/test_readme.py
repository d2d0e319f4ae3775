"""The README's examples are real: its config loads, its error lines are what alertd prints."""

from __future__ import annotations

import re
from pathlib import Path

from daemon.cli import main
from daemon.config import parse_config

README = Path(__file__).resolve().parent.parent / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


def test_every_yaml_example_is_a_valid_config(tmp_path: Path) -> None:
    examples = blocks("yaml")
    assert examples
    for example in examples:
        config = parse_config(example, "README.md", env={"API_METRICS_PASSWORD": "example"}, base_dir=str(tmp_path))
        assert config.scrape_configs


def test_quick_start_commands_are_the_makefile_targets() -> None:
    makefile = (README.parent / "Makefile").read_text()
    quick_start = blocks("sh")[0]
    for target in ("run", "test"):
        assert f"make {target}" in quick_start
        assert re.search(rf"^{target}:", makefile, flags=re.M)


def test_error_lines_shown_are_what_check_config_prints(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "alertd.yml"
    config.write_text(
        """global:
  scrape_interval: 15s
scrape_configs:
  - job_name: a
    static_configs: [{targets: ["x:1"]}]
    scrape_interval: 10s
    scrape_timeout: 20s
  - job_name: b
    static_configs: [{targets: ["x:1"]}]
    metrics_pth: /m
"""
    )
    assert main(["check", "config", str(config)]) == 1
    printed = capsys.readouterr().out.replace(str(config), "alertd.yml")
    shown = re.findall(r"^  (alertd\.yml:\d+: .*)$", README.read_text(), flags=re.M)
    assert shown
    for line in shown:
        assert line in printed


def test_every_command_is_in_the_command_line_section() -> None:
    import argparse

    from daemon.cli import _parser

    commands = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    section = README.read_text().split("## Command line", 1)[1].split("\n## ", 1)[0]
    for name in commands.choices:
        assert f"alertd {name}" in section, name
