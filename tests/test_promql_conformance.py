"""Prometheus' PromQL test scripts, one pytest case per eval block (id ``file:line``)."""

from __future__ import annotations

import pytest

from daemon.tsdb import Store
from tests.promqltest import Eval, all_cases, build_store, conformance_dir, format_summary, load_skips, run_case, skip_reason

_SKIPS = load_skips()
_CASES: list[Eval] = list(all_cases()) if conformance_dir().is_dir() else []


class _Stores:
    """The store of the loads before a case, built once and reused by the cases that follow."""

    def __init__(self) -> None:
        self._key: int | None = None
        self._store: Store | None = None

    def get(self, case: Eval) -> Store:
        if self._key != id(case.loads) or self._store is None:
            self._key = id(case.loads)
            self._store = build_store(case.loads)
        return self._store


@pytest.fixture(scope="module")
def stores() -> _Stores:
    return _Stores()


@pytest.mark.skipif(not _CASES, reason=f"no PromQL conformance scripts at {conformance_dir()}")
@pytest.mark.parametrize("case", _CASES or [None], ids=[c.id for c in _CASES] or ["none"])
def test_eval(case: Eval, stores: _Stores) -> None:
    reason = skip_reason(case, _SKIPS)
    if reason is not None:
        pytest.skip(reason)
    run_case(case, stores.get(case))


def test_skip_entries_name_existing_cases() -> None:
    """A skip entry that matches no case is stale and must go."""
    if not _CASES:
        pytest.skip(f"no PromQL conformance scripts at {conformance_dir()}")
    for skip in _SKIPS:
        matched = [
            c
            for c in _CASES
            if c.file == skip.file
            and (skip.line is None or c.line == skip.line)
            and (skip.expr is None or c.expr == skip.expr)
        ]
        assert matched, f"skip entry matches no eval case (line and expr must agree): {skip}"


def test_summary_table(capsys: pytest.CaptureFixture[str]) -> None:
    """Print the per-file table (visible with ``pytest -s``); the run itself is the test above."""
    if not _CASES:
        pytest.skip(f"no PromQL conformance scripts at {conformance_dir()}")
    from tests.promqltest import summary

    table = summary()
    with capsys.disabled():
        print("\n" + format_summary(table))
    assert set(table) == {c.file for c in _CASES}
