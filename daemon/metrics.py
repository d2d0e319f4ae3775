"""The daemon's own metrics, exposed at /metrics through prometheus-client.

Each running app owns one registry (no global default registry), so tests can start several apps
in one process and read each one's numbers.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from daemon import __version__

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class DaemonMetrics:
    """Counters and gauges that the scrape, store and lifecycle code update."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        build = Gauge("alertd_build_info", "alertd version and Python runtime.", ["version", "python"], registry=r)
        build.labels(__version__, platform.python_version()).set(1)
        self.config_reload_ok = Gauge(
            "alertd_config_last_reload_successful", "Whether the last configuration load succeeded.", registry=r
        )
        self.config_reload_time = Gauge(
            "alertd_config_last_reload_success_timestamp_seconds",
            "Time of the last successful configuration load.",
            registry=r,
        )
        self.config_reloads = Counter(
            "alertd_config_reloads", "Configuration reloads, by result.", ["result"], registry=r
        )
        self.scrapes = Counter("alertd_scrapes", "Scrapes, by job and result.", ["job", "result"], registry=r)
        self.scrape_duration = Histogram(
            "alertd_scrape_duration_seconds",
            "Time from sending a scrape request to having its samples stored.",
            ["job"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.scrape_samples = Counter(
            "alertd_scrape_samples", "Samples appended to the store by scrapes.", ["job"], registry=r
        )
        self.scrape_rejected = Counter(
            "alertd_scrape_samples_rejected",
            "Samples of successful scrapes that the store refused: duplicate series or out-of-order timestamps.",
            ["job"],
            registry=r,
        )
        self.event_loop_lag = Gauge(
            "alertd_event_loop_lag_seconds", "How late the event loop last woke a timer.", registry=r
        )

    def watch(self, collect: Callable[[], Iterator[GaugeMetricFamily]]) -> None:
        """Register a function that yields gauges computed at scrape time (store sizes, targets)."""
        self.registry.register(_Callback(collect))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _Callback(Collector):
    def __init__(self, collect: Callable[[], Iterator[GaugeMetricFamily]]) -> None:
        self._collect = collect

    def collect(self) -> Iterator[GaugeMetricFamily]:
        return self._collect()

    def describe(self) -> list[GaugeMetricFamily]:
        return []
