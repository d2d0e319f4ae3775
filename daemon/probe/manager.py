"""The set of probe loops, kept in step with the ``probes`` section of the config."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import structlog
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily

from daemon.clock import Clock
from daemon.config.probes import ProbeConfig
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
        self._errors: dict[ProbeLoop, str] = {}
        self._log = structlog.get_logger().bind(component="probe")
        self._probes = Counter("alertd_probes", "Probes, by job and result.", ["job", "result"], registry=metrics.registry)
        metrics.watch(self._gauges)

    def loops(self) -> dict[str, list[ProbeLoop]]:
        """The running loops by job name."""
        return {name: list(job.loops.values()) for name, job in self._jobs.items()}

    async def apply(self, probes: Sequence[ProbeConfig]) -> None:
        """Make the running probe jobs match ``probes``."""
        wanted = {config.job_name: config for config in probes}
        for name in [name for name in self._jobs if name not in wanted]:
            await self._stop_job(self._jobs.pop(name), keep=set())
        for name, config in wanted.items():
            old = self._jobs.get(name)
            if old is not None and old.config == config:
                continue
            # Changed labels make new series; the old ones then end like those of a vanished target.
            continued = old if old is not None and old.config.labels == config.labels else None
            new = self._start_job(config, continued)
            self._jobs[name] = new
            if old is not None:
                await self._stop_job(old, keep=set(new.loops) if continued else set())

    async def stop(self) -> None:
        """Stop every loop (no stale markers: the process is going away) and close the probers."""
        for job in list(self._jobs.values()):
            await self._stop_job(job, keep=set(), mark_stale=False)
        self._jobs.clear()

    def _start_job(self, config: ProbeConfig, continued: _Job | None) -> _Job:
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

    async def _stop_job(self, job: _Job, keep: set[str], mark_stale: bool = True) -> None:
        for target, loop in job.loops.items():
            await loop.stop(mark_stale=mark_stale and target not in keep)
            self._errors.pop(loop, None)
        job.loops.clear()
        await job.prober.aclose()

    def _probed(self, loop: ProbeLoop, report: ProbeReport) -> None:
        self._probes.labels(loop.job, "success" if report.succeeded else "failure").inc()
        # One line when a target starts failing (or fails differently) and one when it recovers,
        # not one per probe.
        previous = self._errors.get(loop, "")
        if report.failure and report.failure != previous:
            self._log.warning("probe failed", job=loop.job, target=loop.target, error=report.failure)
        elif not report.failure and previous:
            self._log.info("probe recovered", job=loop.job, target=loop.target)
        self._errors[loop] = report.failure

    def _gauges(self) -> Iterator[GaugeMetricFamily]:
        targets = GaugeMetricFamily("alertd_probe_targets", "Active probe targets.", labels=["job"])
        for name, job in sorted(self._jobs.items()):
            targets.add_metric([name], len(job.loops))
        yield targets
