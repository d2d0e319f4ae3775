"""The README's Routing section is real: its config loads and its commands print what it shows."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from daemon.cli import main
from daemon.config import load_config

README = Path(__file__).resolve().parent.parent / "README.md"


def section() -> str:
    text = README.read_text(encoding="utf-8")
    found = re.search(r"^## Routing\n(.*?)^## ", text, flags=re.S | re.M)
    assert found, "README has no Routing section"
    return found.group(1)


def block(fence: str) -> str:
    found = re.search(rf"^```{fence}\n(.*?)^```", section(), flags=re.S | re.M)
    assert found, f"no ```{fence} block in the Routing section"
    return found.group(1)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "alertd.yml"
    path.write_text(block("yaml routing"), encoding="utf-8")
    return path


def test_the_example_config_loads(config_file: Path) -> None:
    config = load_config(config_file)
    assert config.route is not None and len(config.route.routes) == 4
    assert [rule.equal for rule in config.inhibit_rules] == [("alertname", "service")]
    assert [interval.name for interval in config.time_intervals] == ["office-hours", "nights"]


def test_the_commands_print_what_is_shown(config_file: Path) -> None:
    commands = re.split(r"^\$ ", block("console"), flags=re.M)[1:]
    assert len(commands) == 3
    for command in commands:
        line, shown = command.split("\n", 1)
        argv = shlex.split(line)
        assert argv[:4] == ["alertd", "config", "routes", "test"]
        args = [str(config_file) if arg == "alertd.yml" else arg for arg in argv[1:]]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(args)
        assert out.getvalue() == shown
        assert code == (1 if "WARNING" in shown else 0)
