"""The scrape manager: targets from static configs and file_sd, reloads, readiness."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from daemon.clock import FakeClock
from daemon.config import parse_config
from daemon.metrics import DaemonMetrics
from daemon.scrape.discovery import WATCH_PERIOD
from daemon.scrape.manager import ScrapeManager
from daemon.testing.target import FakeTarget
from daemon.tsdb import Store, is_stale, parse_selector


async def eventually(condition: Callable[[], bool], what: str = "condition") -> None:
    """Real network I/O finishes on its own schedule: poll for it, without asserting on time."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


@pytest.fixture
async def targets() -> AsyncIterator[list[FakeTarget]]:
    fakes = [FakeTarget() for _ in range(3)]
    for i, fake in enumerate(fakes):
        fake.set(f'served_by{{n="{i}"}} {i}\n')
        await fake.start()
    yield fakes
    for fake in fakes:
        await fake.stop()


@pytest.fixture
async def manager() -> AsyncIterator[tuple[ScrapeManager, Store, FakeClock]]:
    store, clock = Store(), FakeClock()
    mgr = ScrapeManager(store, clock, DaemonMetrics())
    yield mgr, store, clock
    await mgr.stop()


def config(jobs: str, base: Path | None = None) -> list:  # type: ignore[type-arg]
    parsed = parse_config("scrape_configs:\n" + jobs, "test.yml", base_dir=str(base) if base else None)
    return list(parsed.scrape_configs)


def instances(mgr: ScrapeManager, job: str) -> set[str]:
    return {loop.target.labels.get("instance") for loop in mgr.loops().get(job, [])}


async def test_static_targets_scraped_and_ready_after_first_round(manager, targets) -> None:  # type: ignore[no-untyped-def]
    mgr, store, clock = manager
    a, b, _ = targets
    await mgr.apply(config(f"""
  - job_name: web
    scrape_interval: 10s
    static_configs: [{{targets: ["{a.address}", "{b.address}"]}}]
"""))
    assert instances(mgr, "web") == {a.address, b.address}
    assert not mgr.ready.is_set()
    await clock.advance(10)
    await eventually(mgr.ready.is_set, "ready after every target was scraped once")
    assert len(store.select(parse_selector('up{job="web"}'))) == 2


async def test_file_sd_changes_are_picked_up_and_invalid_files_keep_last_good(manager, targets, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mgr, store, clock = manager
    a, b, _ = targets
    sd = tmp_path / "targets.json"
    sd.write_text(json.dumps([{"targets": [a.address], "labels": {"env": "prod"}}]))
    await mgr.apply(config("""
  - job_name: sd
    scrape_interval: 5s
    file_sd_configs: [{files: ["*.json"], refresh_interval: 1m}]
""", tmp_path))
    assert instances(mgr, "sd") == {a.address}
    await clock.advance(5)
    await eventually(lambda: bool(store.select(parse_selector('served_by{env="prod",n="0"}'))), "a scraped")

    sd.write_text(json.dumps([{"targets": [a.address, b.address], "labels": {"env": "prod"}}]))
    await clock.advance(WATCH_PERIOD)
    await eventually(lambda: instances(mgr, "sd") == {a.address, b.address}, "b discovered")

    sd.write_text("[{targets: oops")  # invalid: the last good targets stay
    await clock.advance(WATCH_PERIOD)
    assert instances(mgr, "sd") == {a.address, b.address}

    sd.unlink()
    await clock.advance(WATCH_PERIOD)
    await eventually(lambda: instances(mgr, "sd") == set(), "targets gone with their file")
    (gone,) = store.select(parse_selector('served_by{n="0"}'))
    last = gone.last()
    assert last is not None and is_stale(last[1])


async def test_reload_keeps_unchanged_jobs_and_marks_removed_targets_stale(manager, targets) -> None:  # type: ignore[no-untyped-def]
    mgr, store, clock = manager
    a, b, c = targets
    jobs = f"""
  - job_name: keep
    scrape_interval: 5s
    static_configs: [{{targets: ["{a.address}"]}}]
  - job_name: change
    scrape_interval: 5s
    static_configs: [{{targets: ["{b.address}"]}}]
"""
    await mgr.apply(config(jobs))
    await clock.advance(5)
    await eventually(mgr.ready.is_set)
    kept_loop = mgr.loops()["keep"][0]

    await mgr.apply(config(jobs.replace(b.address, c.address)))
    assert mgr.loops()["keep"][0] is kept_loop
    assert instances(mgr, "change") == {c.address}
    (old,) = store.select(parse_selector(f'up{{instance="{b.address}"}}'))
    last = old.last()
    assert last is not None and is_stale(last[1])

    await mgr.apply(config(jobs.replace("job_name: change", "job_name: renamed")))
    assert set(mgr.loops()) == {"keep", "renamed"}


async def test_relabel_dropped_targets_are_reported(manager) -> None:  # type: ignore[no-untyped-def]
    mgr, _, _ = manager
    await mgr.apply(config("""
  - job_name: filtered
    static_configs: [{targets: ["10.0.0.1:80", "10.0.0.2:80"]}]
    relabel_configs:
      - source_labels: [__address__]
        regex: 10.0.0.2:80
        action: drop
"""))
    assert instances(mgr, "filtered") == {"10.0.0.1:80"}
    (dropped,) = mgr.dropped()["filtered"]
    assert dropped.discovered.get("__address__") == "10.0.0.2:80"


async def test_no_targets_is_ready_at_once(manager) -> None:  # type: ignore[no-untyped-def]
    mgr, _, _ = manager
    await mgr.apply([])
    assert mgr.ready.is_set()


async def test_target_limit_fails_every_target_of_the_job(manager, targets) -> None:  # type: ignore[no-untyped-def]
    mgr, _, clock = manager
    a, b, _ = targets
    await mgr.apply(config(f"""
  - job_name: limited
    scrape_interval: 5s
    target_limit: 1
    static_configs: [{{targets: ["{a.address}", "{b.address}"]}}]
"""))
    await clock.advance(5)
    await eventually(mgr.ready.is_set)
    loops = mgr.loops()["limited"]
    assert {loop.health.health for loop in loops} == {"down"}
    assert all("target_limit exceeded" in loop.health.last_error for loop in loops)
    assert not a.requests and not b.requests
