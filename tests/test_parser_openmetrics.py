"""The OpenMetrics parser test suite: accept exactly the cases marked shouldParse, reject the rest."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from daemon.scrape.parser import OPENMETRICS, ParseError, parse

CONFORMANCE = Path(
    os.environ.get("ALERTD_CONFORMANCE", Path(__file__).resolve().parents[1].parent / "shared" / "conformance")
)
SUITE = CONFORMANCE / "openmetrics"

# Cases this parser knowingly disagrees with, each with its reason. Keep this empty if possible.
KNOWN_DISAGREEMENTS: dict[str, str] = {}


def _cases() -> list[str]:
    if not SUITE.is_dir():
        return []
    return sorted(p.name for p in SUITE.iterdir() if (p / "test.json").is_file())


CASES = _cases()


def test_suite_is_present() -> None:
    if not CASES:
        pytest.skip(f"OpenMetrics conformance suite not found at {SUITE} (set ALERTD_CONFORMANCE)")
    assert len(CASES) == 211


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=KNOWN_DISAGREEMENTS[c]))
        if c in KNOWN_DISAGREEMENTS
        else c
        for c in CASES
    ],
)
def test_case(case: str) -> None:
    folder = SUITE / case
    spec = json.loads((folder / "test.json").read_text())
    payload = (folder / spec["file"]).read_bytes().decode("utf-8")
    if spec["shouldParse"]:
        parse(payload, {}, OPENMETRICS)
    else:
        with pytest.raises(ParseError):
            parse(payload, {}, OPENMETRICS)
