"""One probe loop per target: probe at the job's interval, within its timeout, and store the result."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Mapping

import structlog

from daemon.clock import Clock
from daemon.probe.prober import ProbeReport, Prober
from daemon.schedule import Ticker
from daemon.tsdb import STALE_NAN, Series, Store
from daemon.tsdb.labels import METRIC_NAME, Labels


class ProbeLoop:
    """Probes one target of one job, from an offset in the interval fixed by the job and target.

    Each loop is its own task, so a slow target never delays another. Samples are stamped with the
    time the probe started (the injected clock's); ``probe_duration_seconds`` is measured on the
    real clock, as it is the time the network took. A series the previous probe wrote and this
    one did not (say, the certificate expiry of a server now refusing connections) gets a stale
    marker, and so does every series of a target that goes away.
    """

    def __init__(
        self,
        job: str,
        target: str,
        prober: Prober,
        store: Store,
        clock: Clock,
        *,
        interval: float,
        timeout: float,
        labels: Mapping[str, str] | None = None,
        on_probe: Callable[[ProbeLoop, ProbeReport], None] | None = None,
    ) -> None:
        self.job = job
        self.target = target
        self.prober = prober
        self.interval = interval
        self.timeout = timeout
        self.last_report: ProbeReport | None = None
        self._labels = {**(labels or {}), "job": job, "instance": target}
        self._store = store
        self._clock = clock
        self._on_probe = on_probe
        self._series: dict[str, Series] = {}
        self._previous: set[str] = set()
        self._ticker: Ticker | None = None

    def offset(self) -> float:
        """Where in each interval this target is probed: spreads a job's targets over the interval."""
        digest = hashlib.sha256(f"{self.job}\x00{self.target}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 * self.interval

    def take_over(self, old: ProbeLoop) -> None:
        """Continue from ``old`` (same job and target, before a reload): its series' staleness is ours now."""
        self._series = dict(old._series)
        self._previous = set(old._previous)
        old._previous = set()

    def start(self) -> None:
        self._ticker = Ticker(
            self._clock, self.interval, self.offset(), self.probe_once, name=f"probe {self.job} {self.target}"
        )
        self._ticker.start()

    async def stop(self, *, mark_stale: bool = True) -> None:
        """Stop probing; with ``mark_stale``, the target's series end with a stale marker."""
        if self._ticker is not None:
            await self._ticker.stop()
            self._ticker = None
        if mark_stale:
            t_ms = int(self._clock.time() * 1000)
            for name in self._previous:
                self._store.append(self._series[name], t_ms, STALE_NAN)
            self._previous = set()

    async def probe_once(self) -> ProbeReport:
        """Probe now and store ``probe_success``, ``probe_duration_seconds`` and what the prober found."""
        t_ms = int(self._clock.time() * 1000)
        began = time.perf_counter()
        report = ProbeReport()
        try:
            async with asyncio.timeout(self.timeout):
                await self.prober.probe(self.target, report)
        except TimeoutError:
            report.failure = f"probe timed out after {self.timeout:g}s"
        except Exception as exc:  # a prober's bug must cost one probe, not the loop
            structlog.get_logger().exception("probe raised", job=self.job, target=self.target)
            report.failure = f"internal error: {type(exc).__name__}: {exc}"
        duration = time.perf_counter() - began
        values = {
            "probe_success": 1.0 if report.succeeded else 0.0,
            "probe_duration_seconds": duration,
            **report.values,
        }
        self._write(values, t_ms)
        self.last_report = report
        if self._on_probe is not None:
            self._on_probe(self, report)
        return report

    def _write(self, values: Mapping[str, float], t_ms: int) -> None:
        store = self._store
        for name, value in values.items():
            series = self._series.get(name)
            if series is None:
                series = store.series(Labels.of({**self._labels, METRIC_NAME: name}))[0]
                self._series[name] = series
            store.append(series, t_ms, value)
        for name in self._previous - values.keys():
            store.append(self._series[name], t_ms, STALE_NAN)
        self._previous = set(values)
