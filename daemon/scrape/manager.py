"""The set of scrape loops: kept in step with the config and with what discovery finds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import structlog

from daemon.clock import Clock
from daemon.config import ScrapeConfig
from daemon.jobs import FailureChanges, reconcile
from daemon.metrics import DaemonMetrics
from daemon.scrape.discovery import FileDiscovery
from daemon.scrape.fetch import Clients, Fetcher, RefusingFetcher
from daemon.scrape.loop import ScrapeFailed, ScrapeLoop, ScrapeOptions, ScrapeStats
from daemon.scrape.relabel import Relabeler
from daemon.scrape.target import DroppedTarget, TargetGroup, resolve_targets, static_groups
from daemon.tsdb import Store


@dataclass
class _Job:
    config: ScrapeConfig
    options: ScrapeOptions
    fetcher: Fetcher
    relabeler: Relabeler
    discoveries: list[FileDiscovery]
    loops: dict[str, ScrapeLoop] = field(default_factory=dict)
    dropped: tuple[DroppedTarget, ...] = ()
    watchers: list[asyncio.Task[None]] = field(default_factory=list)


class ScrapeManager:
    """Runs one ScrapeLoop per target of every job and applies config reloads.

    A reload keeps the loops (and so the series and their staleness tracking) of jobs whose config
    did not change; targets that disappear get their series marked stale.
    """

    def __init__(self, store: Store, clock: Clock, metrics: DaemonMetrics, clients: Clients | None = None) -> None:
        self._store = store
        self._clock = clock
        self._metrics = metrics
        self._clients = clients or Clients()
        self._jobs: dict[str, _Job] = {}
        self._log = structlog.get_logger().bind(component="scrape")
        self._failures = FailureChanges()
        self._waiting_first: set[ScrapeLoop] | None = None
        self.ready = asyncio.Event()
        # Called after every scrape that stored samples (a failed one stores up=0 and stale markers).
        self.on_samples: Callable[[], None] | None = None

    def loops(self) -> dict[str, list[ScrapeLoop]]:
        """The running loops by job name."""
        return {name: list(job.loops.values()) for name, job in self._jobs.items()}

    def dropped(self) -> dict[str, tuple[DroppedTarget, ...]]:
        """Discovered targets that relabelling dropped or that are invalid, by job name."""
        return {name: job.dropped for name, job in self._jobs.items()}

    async def apply(self, scrape_configs: Sequence[ScrapeConfig]) -> None:
        """Make the running jobs match ``scrape_configs``."""
        wanted = {job.job_name: job for job in scrape_configs}
        await reconcile(self._jobs, wanted, lambda config, _old: self._start_job(config), self._retire_job)
        if self._waiting_first is None:
            self._waiting_first = {loop for job in self._jobs.values() for loop in job.loops.values()}
            self._check_ready()

    async def stop(self) -> None:
        for job in list(self._jobs.values()):
            await self._stop_job(job, keep=set(), mark_stale=False)
        self._jobs.clear()
        await self._clients.aclose()

    def _start_job(self, config: ScrapeConfig) -> _Job:
        options = ScrapeOptions.of(config)
        discoveries = _discoveries(config, self._clock)
        job = _Job(config, options, self._clients.fetcher_for(config), Relabeler(config.relabel_configs), discoveries)
        self._sync_targets(job)
        loop = asyncio.get_running_loop()
        for discovery in discoveries:
            job.watchers.append(loop.create_task(discovery.watch(lambda job=job: self._resync(job))))
        return job

    async def _resync(self, job: _Job) -> None:
        for loop in self._sync_targets(job):
            await self._stop_loop(loop, mark_stale=True)

    def _sync_targets(self, job: _Job) -> list[ScrapeLoop]:
        """Start loops for new targets; return the loops of vanished targets, to be stopped."""
        resolved = resolve_targets(job.config, _groups(job.config, job.discoveries), job.relabeler)
        job.dropped = resolved.dropped
        for invalid in resolved.dropped:
            if invalid.reason is not None:
                self._log.warning(
                    "invalid target", job=job.config.job_name, target=str(invalid.discovered), error=invalid.reason
                )
        wanted = {target.key: target for target in resolved.active}
        limit = job.config.target_limit
        fetcher = job.fetcher
        if limit and len(wanted) > limit:
            # As Prometheus: every target of the job fails, visibly, rather than an arbitrary subset.
            fetcher = RefusingFetcher(f"target_limit exceeded: {len(wanted)} targets, limit {limit}")
        for loop in job.loops.values():
            loop.fetcher = fetcher
        gone = [job.loops.pop(key) for key in list(job.loops) if key not in wanted]
        for key, target in wanted.items():
            if key not in job.loops:
                loop = ScrapeLoop(target, job.options, fetcher, self._store, self._clock, on_scrape=self._scraped)
                job.loops[key] = loop
                loop.start()
        return gone

    async def _retire_job(self, old: _Job, new: _Job | None) -> None:
        # The new loops find the same series in the store; only vanished targets go stale.
        await self._stop_job(old, keep=set(new.loops) if new is not None else set())

    async def _stop_job(self, job: _Job, keep: set[str], mark_stale: bool = True) -> None:
        for task in job.watchers:
            task.cancel()
        for key, loop in job.loops.items():
            await self._stop_loop(loop, mark_stale=mark_stale and key not in keep)
        job.loops.clear()

    async def _stop_loop(self, loop: ScrapeLoop, mark_stale: bool) -> None:
        await loop.stop(mark_stale=mark_stale)
        self._failures.forget(loop)
        if self._waiting_first:
            self._waiting_first.discard(loop)
            self._check_ready()

    def _check_ready(self) -> None:
        if not self._waiting_first:
            self.ready.set()

    def _scraped(self, loop: ScrapeLoop, duration: float, error: ScrapeFailed | None, stats: ScrapeStats | None) -> None:
        job = loop.target.job
        m = self._metrics
        m.scrapes.labels(job, "failed" if error else "ok").inc()
        m.scrape_duration.labels(job).observe(duration)
        log = self._log.bind(job=job, instance=loop.target.labels.get("instance"))
        change = self._failures.record(loop, None if error is None else str(error))
        if change == "failed":
            log.warning("scrape failed", url=loop.target.url, error=str(error))
        elif change == "recovered":
            log.info("scrape recovered", url=loop.target.url)
        if stats is not None:
            m.scrape_samples.labels(job).inc(stats.kept)
            if stats.rejected:
                m.scrape_rejected.labels(job).inc(stats.rejected)
                log.warning(
                    "samples rejected: duplicate series or out-of-order timestamps in the scrape",
                    url=loop.target.url,
                    rejected=stats.rejected,
                )
        if self._waiting_first and loop in self._waiting_first:
            self._waiting_first.discard(loop)
            self._check_ready()
        if self.on_samples is not None:
            self.on_samples()


def _discoveries(config: ScrapeConfig, clock: Clock) -> list[FileDiscovery]:
    """The file discoveries of a job, each having read its files once."""
    discoveries = [FileDiscovery(sd.files, sd.refresh_interval, clock, config.job_name) for sd in config.file_sd_configs]
    for discovery in discoveries:
        discovery.refresh()
    return discoveries


def _groups(config: ScrapeConfig, discoveries: Sequence[FileDiscovery]) -> list[TargetGroup]:
    return static_groups(config) + [group for discovery in discoveries for group in discovery.groups()]


async def scrape_once(scrape_configs: Sequence[ScrapeConfig], store: Store, clock: Clock) -> list[ScrapeLoop]:
    """Scrape every target of ``scrape_configs`` once, all at the same time (for ``alertd query``)."""
    clients = Clients()
    try:
        loops = []
        for config in scrape_configs:
            discoveries = _discoveries(config, clock)
            fetcher, options = clients.fetcher_for(config), ScrapeOptions.of(config)
            for target in resolve_targets(config, _groups(config, discoveries)).active:
                loops.append(ScrapeLoop(target, options, fetcher, store, clock))
        await asyncio.gather(*(loop.scrape_once() for loop in loops))
        return loops
    finally:
        await clients.aclose()
