"""The command line: check config, version, usage errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from daemon import __version__
from daemon.cli import main

GOOD = """
global:
  scrape_interval: 30s
rule_files: ["rules/*.yml"]
scrape_configs:
  - job_name: node
    static_configs: [{targets: ["10.0.0.1:9100", "10.0.0.2:9100"]}]
  - job_name: apps
    file_sd_configs: [{files: ["targets/*.json"]}]
"""

BAD = """global:
  scrape_interval: 15s
scrape_configs:
  - job_name: node
    scrape_timeout: 1m
    static_configs: [{targets: ["10.0.0.1:9100"]}]
  - job_name: node
    static_config: []
"""


def test_check_config_summarises_a_good_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "alertd.yml"
    path.write_text(GOOD)
    assert main(["check", "config", str(path)]) == 0
    out = capsys.readouterr().out
    assert str(path) in out
    assert "node: 2 static targets" in out
    assert "targets/*.json" in out
    assert "rules/*.yml" in out


def test_check_config_lists_every_error_with_file_line_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "alertd.yml"
    path.write_text(BAD)
    assert main(["check", "config", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert f"{path}:5: scrape_configs.0.scrape_timeout: must not be longer than scrape_interval" in lines
    assert any(line.startswith(f"{path}:7: scrape_configs.1.job_name: duplicate job_name") for line in lines)
    assert any(line.startswith(f"{path}:8: scrape_configs.1.static_config: unknown key") for line in lines)


def test_check_config_invalid_yaml_and_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "alertd.yml"
    path.write_text("global:\n  scrape_interval: [15s\n")
    assert main(["check", "config", str(path)]) == 1
    assert capsys.readouterr().out.startswith(f"{path}:")
    assert main(["check", "config", str(tmp_path / "missing.yml")]) == 1
    assert "missing.yml" in capsys.readouterr().out


def test_run_rejects_a_bad_listen_address(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--listen", "nowhere", "--log-format", "json"]) == 1
    assert "--listen" in capsys.readouterr().err


def test_version_and_module_entry_point() -> None:
    result = subprocess.run([sys.executable, "-m", "daemon", "--version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert result.stdout.strip() == f"alertd {__version__}"


def test_no_command_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "run" in capsys.readouterr().out


def test_query_scrapes_once_and_prints_the_result(tmp_path: Path) -> None:
    from daemon.testing.target import ThreadedFakeTarget

    with ThreadedFakeTarget() as target:
        target.set('jobs_total{queue="a"} 3\njobs_total{queue="b"} 4\n')
        config = tmp_path / "alertd.yml"
        config.write_text(f'scrape_configs: [{{job_name: app, static_configs: [{{targets: ["{target.address}"]}}]}}]\n')
        result = subprocess.run(
            [sys.executable, "-m", "daemon", "query", "sum by (job) (jobs_total) * 2", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('{job="app"} => 14 @[')
    bad = subprocess.run(
        [sys.executable, "-m", "daemon", "query", "sum(", "--config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1
    assert "1:5: parse error" in bad.stderr
