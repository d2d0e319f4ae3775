"""`alertd config routes test` against `amtool config routes test` over a corpus of configs and alerts.

The corpus is ``tests/alertmanager``: alertmanager.yml-style configs (``*.yml``, loaded unchanged by
both tools), ``labels.txt`` (one alert per line), and configs both tools must refuse
(``invalid/``). What amtool 0.25 printed is recorded in ``amtool-0.25.json``, so alertd is checked
even where amtool is not installed; where it is (Debian: ``apt-get install prometheus-alertmanager``)
amtool is also run live. Re-record with ``python tests/test_routes_amtool.py``.
"""

from __future__ import annotations

import contextlib
import io
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.cli import main

CORPUS = Path(__file__).resolve().parent / "alertmanager"
RECORDED = CORPUS / "amtool-0.25.json"
CONFIGS = sorted(path.name for path in CORPUS.glob("*.yml"))
INVALID = sorted(path.name for path in (CORPUS / "invalid").glob("*.yml"))
AMTOOL = shutil.which("amtool")
needs_amtool = pytest.mark.skipif(
    AMTOOL is None, reason="amtool is not installed (Debian package prometheus-alertmanager)"
)


def label_sets() -> list[list[str]]:
    alerts = []
    for line in (CORPUS / "labels.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            alerts.append([] if line.strip() == "-" else shlex.split(line))
    return alerts


def alertd(path: Path, *args: str) -> tuple[str, str, int]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["config", "routes", "test", f"--config.file={path}", *args])
    return out.getvalue(), err.getvalue(), code


def amtool(path: Path, *args: str) -> tuple[str, str, int]:
    assert AMTOOL is not None
    done = subprocess.run(
        [AMTOOL, "config", "routes", "test", f"--config.file={path}", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    # amtool warns that --config.file overrides --alertmanager.url: alertd has no such flag.
    err = "".join(line for line in done.stderr.splitlines(keepends=True) if not line.startswith("Warning: --config.file"))
    return done.stdout, err, done.returncode


def error_message(stderr: str, program: str) -> str:
    """The first error line without the program's prefix; amtool 0.25's typo "other other" fixed."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "no error message"
    return lines[0].removeprefix(f"{program}: error: ").replace("other other", "other")


@pytest.mark.parametrize("config", CONFIGS)
def test_alertd_prints_what_amtool_printed(config: str) -> None:
    recorded = json.loads(RECORDED.read_text(encoding="utf-8"))[config]
    mismatches = []
    for alert in label_sets():
        key = shlex.join(alert)
        out, err, code = alertd(CORPUS / config, "--tree", *alert)
        if (out, code) != (recorded[key]["stdout"], recorded[key]["code"]):
            mismatches.append((key, out, err, recorded[key]))
    assert not mismatches


@needs_amtool
@pytest.mark.parametrize("config", CONFIGS)
def test_amtool_live(config: str) -> None:
    mismatches = []
    for alert in label_sets():
        for args in (["--tree", *alert], alert):
            ours, theirs = alertd(CORPUS / config, *args), amtool(CORPUS / config, *args)
            if (ours[0], ours[2]) != (theirs[0], theirs[2]):
                mismatches.append((args, ours, theirs))
    assert not mismatches


@pytest.mark.parametrize("config", CONFIGS)
def test_verify_receivers(config: str) -> None:
    for alert in label_sets()[:12]:
        out, _, code = alertd(CORPUS / config, *alert)
        receivers = out.strip()
        assert code == 0
        assert alertd(CORPUS / config, f"--verify.receivers={receivers}", *alert) == (out, "", 0)
        wrong = alertd(CORPUS / config, "--verify.receivers=nobody", *alert)
        assert wrong == (out + "WARNING: Expected receivers did not match resolved receivers.\n", "", 1)


@needs_amtool
def test_verify_receivers_amtool_live() -> None:
    path = CORPUS / "severity.yml"
    for args in (
        ["--verify.receivers=slack-critical,email-critical,pagerduty", "severity=P0"],
        ["--verify.receivers=slack-critical,pagerduty", "severity=P0"],
        ["--verify.receivers=pagerduty,slack-critical,email-critical", "--tree", "severity=P0"],
    ):
        ours, theirs = alertd(path, *args), amtool(path, *args)
        assert (ours[0], ours[2]) == (theirs[0], theirs[2])


@pytest.mark.parametrize("config", INVALID)
def test_invalid_configs_are_refused(config: str) -> None:
    out, err, code = alertd(CORPUS / "invalid" / config, "a=b")
    assert (out, code) == ("", 1)
    recorded = json.loads(RECORDED.read_text(encoding="utf-8"))["invalid/" + config]
    # alertd names the file, line and key before Alertmanager's message.
    assert error_message(err, "alertd").endswith(": " + recorded["error"])
    if AMTOOL is not None:
        their_out, their_err, their_code = amtool(CORPUS / "invalid" / config, "a=b")
        assert (their_out, their_code) == ("", 1)
        assert error_message(their_err, "amtool") == recorded["error"]


@pytest.mark.parametrize("labels", [["sev"], ["sev!=P0"], ["a=b", 'c=~"d"'], ['a="b']])
def test_bad_label_arguments(labels: list[str]) -> None:
    path = CORPUS / "simple.yml"
    out, err, code = alertd(path, *labels)
    assert (out, code) == ("", 1)
    assert error_message(err, "alertd").startswith("Failed to parse labels: ")
    if AMTOOL is not None:
        their_out, their_err, their_code = amtool(path, *labels)
        assert (their_out, their_code) == ("", 1)
        assert error_message(err, "alertd") == error_message(their_err, "amtool")


def test_label_arguments_are_single_matchers() -> None:
    # A comma is part of the value, an empty value is allowed, the last repeat wins.
    path = CORPUS / "matchers.yml"
    assert alertd(path, "path=/a,b", "service=web")[0] == "frontend-path\n"
    assert alertd(path, "owner=", "job=node")[0] == "unowned\n"
    assert alertd(path, "job=x", "job=node")[0] == "unowned\n"


def record() -> None:
    """Write what the installed amtool prints for the corpus into ``amtool-0.25.json``."""
    recorded: dict[str, dict[str, object]] = {}
    for config in CONFIGS:
        recorded[config] = {}
        for alert in label_sets():
            out, _, code = amtool(CORPUS / config, "--tree", *alert)
            recorded[config][shlex.join(alert)] = {"stdout": out, "code": code}
    for config in INVALID:
        _, err, code = amtool(CORPUS / "invalid" / config, "a=b")
        assert code == 1
        recorded["invalid/" + config] = {"error": error_message(err, "amtool")}
    RECORDED.write_text(json.dumps(recorded, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if AMTOOL is None:
        sys.exit("amtool is not installed")
    record()
