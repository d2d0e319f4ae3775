"""The set of probe loops, kept in step with the ``probes`` section of the config."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import structlog
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily

from daemon.clock import Clock
from daemon.config.probes import ProbeConfig
from daemon.jobs import FailureChanges, reconcile
from daemon.metrics import DaemonMetrics
from daemon.probe.http import HTTPProber
from daemon.probe.loop import ProbeLoop
from daemon.probe.prober import ProbeReport, Prober
from daemon.probe.tcp import TCPProber, tls_prober
from daemon.tsdb import Store


def prober_for(config: ProbeConfig) -> Prober:
    """The real prober for a probe job's settings."""
    if config.prober == "http":
        assert config.http is not None  # the config fills in the block of its prober
        return HTTPProber(config.http)
    if config.prober == "tcp":
        assert config.tcp is not None
        return TCPProber(config.tcp)
    assert config.tls is not None
    return tls_prober(config.tls)


@dataclass
class _Job:
    config: ProbeConfig
    prober: Prober
    loops: dict[str, ProbeLoop] = field(default_factory=dict)


class ProbeManager:
    """Runs one ProbeLoop per target of every probe job and applies config reloads.

    A reload keeps the loops of jobs whose config did not change. A changed job gets new loops
    (and a new prober) that continue the series of its remaining targets; targets and jobs that
    go away end their series with stale markers. ``make_prober`` builds a job's prober (tests
    pass fakes).
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        metrics: DaemonMetrics,
        make_prober: Callable[[ProbeConfig], Prober] = prober_for,
    ) -> None:
        self._store = store
        self._clock = clock
        self._make_prober = make_prober
        self._jobs: dict[str, _Job] = {}
        self._failures = FailureChanges()
        self._log = structlog.get_logger().bind(component="probe")
        self._probes = Counter("alertd_probes", "Probes, by job and result.", ["job", "result"], registry=metrics.registry)
        metrics.watch(self._gauges)

    def loops(self) -> dict[str, list[ProbeLoop]]:
        """The running loops by job name."""
        return {name: list(job.loops.values()) for name, job in self._jobs.items()}

    async def apply(self, probes: Sequence[ProbeConfig]) -> None:
        """Make the running probe jobs match ``probes``."""
        await reconcile(self._jobs, {config.job_name: config for config in probes}, self._start_job, self._retire_job)

    async def stop(self) -> None:
        """Stop every loop (no stale markers: the process is going away) and close the probers."""
        for job in list(self._jobs.values()):
            await self._stop_job(job, keep=set(), mark_stale=False)
        self._jobs.clear()

    def _start_job(self, config: ProbeConfig, old: _Job | None) -> _Job:
        continued = old if old is not None and _continues(old.config, config) else None
        job = _Job(config, self._make_prober(config))
        for target in dict.fromkeys(config.targets):
            loop = ProbeLoop(
                config.job_name,
                target,
                job.prober,
                self._store,
                self._clock,
                interval=config.interval,
                timeout=config.timeout,
                labels=config.labels,
                on_probe=self._probed,
            )
            previous = continued.loops.get(target) if continued is not None else None
            if previous is not None:
                loop.take_over(previous)
            job.loops[target] = loop
            loop.start()
        return job

    async def _retire_job(self, old: _Job, new: _Job | None) -> None:
        keep = set(new.loops) if new is not None and _continues(old.config, new.config) else set()
        await self._stop_job(old, keep=keep)

    async def _stop_job(self, job: _Job, keep: set[str], mark_stale: bool = True) -> None:
        for target, loop in job.loops.items():
            await loop.stop(mark_stale=mark_stale and target not in keep)
            self._failures.forget(loop)
        job.loops.clear()
        await job.prober.aclose()

    def _probed(self, loop: ProbeLoop, report: ProbeReport) -> None:
        self._probes.labels(loop.job, "success" if report.succeeded else "failure").inc()
        change = self._failures.record(loop, report.failure or None)
        if change == "failed":
            self._log.warning("probe failed", job=loop.job, target=loop.target, error=report.failure)
        elif change == "recovered":
            self._log.info("probe recovered", job=loop.job, target=loop.target)

    def _gauges(self) -> Iterator[GaugeMetricFamily]:
        targets = GaugeMetricFamily("alertd_probe_targets", "Active probe targets.", labels=["job"])
        for name, job in sorted(self._jobs.items()):
            targets.add_metric([name], len(job.loops))
        yield targets


def _continues(old: ProbeConfig, new: ProbeConfig) -> bool:
    """Whether a changed job's loops continue the old loops' series of the same targets.

    Changed labels make new series; the old ones then end like those of a vanished target.
    """
    return old.labels == new.labels
