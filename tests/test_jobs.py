"""Reconciling running jobs with the config, and noting when a loop's failures change."""

from __future__ import annotations

from dataclasses import dataclass

from daemon.jobs import FailureChanges, reconcile


@dataclass
class Job:
    config: str
    replaced: str | None = None


async def test_reconcile_starts_replaces_and_retires_jobs_and_keeps_unchanged_ones() -> None:
    unchanged, changed, gone = Job("a"), Job("b"), Job("c")
    jobs = {"a": unchanged, "b": changed, "c": gone}
    retired: list[tuple[Job, Job | None]] = []

    def start(config: str, old: Job | None) -> Job:
        return Job(config, old.config if old is not None else None)

    async def retire(old: Job, new: Job | None) -> None:
        assert new is None or new in jobs.values()  # a replacement is in place before the old job stops
        retired.append((old, new))

    await reconcile(jobs, {"a": "a", "b": "b2", "d": "d"}, start, retire)
    assert jobs == {"a": unchanged, "b": Job("b2", "b"), "d": Job("d")}
    assert jobs["a"] is unchanged
    assert retired == [(gone, None), (changed, jobs["b"])]


def test_failure_changes_name_only_a_new_failure_and_a_recovery() -> None:
    changes = FailureChanges()
    assert changes.record("t", None) is None
    assert changes.record("t", "timeout") == "failed"
    assert changes.record("t", "timeout") is None
    assert changes.record("t", "refused") == "failed"
    assert changes.record("t", None) == "recovered"
    assert changes.record("t", None) is None
    changes.record("t", "timeout")
    changes.forget("t")
    assert changes.record("t", "timeout") == "failed"
