"""The OpenMetrics parser test suite: accept exactly the cases marked shouldParse, reject the rest."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from daemon.scrape.parser import OPENMETRICS, NewSeries, ParseError, ParserMemo, parse

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


def _outcome(payload: str, cache: dict[str, object], memo: ParserMemo | None) -> tuple[object, ...]:
    try:
        parsed = parse(payload, cache, OPENMETRICS, memo)
    except ParseError as err:
        return ("error", err.line, err.message)
    refs = [ref.labels if isinstance(ref, NewSeries) else ref for ref in parsed.refs]
    return ("ok", refs, [repr(v) for v in parsed.values], parsed.timestamps)


def test_suite_through_one_warm_memo() -> None:
    """The memo only saves work: every case, parsed with a memo that has seen all the cases
    before it and then this one, and with a warm series cache, ends exactly as a cold parse."""
    if not CASES:
        pytest.skip(f"OpenMetrics conformance suite not found at {SUITE} (set ALERTD_CONFORMANCE)")
    memo = ParserMemo()
    for case in CASES:
        folder = SUITE / case
        spec = json.loads((folder / "test.json").read_text())
        payload = (folder / spec["file"]).read_bytes().decode("utf-8")
        cold = _outcome(payload, {}, None)
        assert _outcome(payload, {}, memo) == cold, case
        cache: dict[str, object] = {}
        if cold[0] == "ok":
            parsed = parse(payload, {}, OPENMETRICS)
            cache = {ref.head: ref.labels for ref in parsed.refs if isinstance(ref, NewSeries)}
        assert _outcome(payload, cache, memo) == cold, case
