"""Wires the stages together and owns the lifecycle: start, reload on SIGHUP, drain on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import httpx
import structlog
from aiohttp import web
from prometheus_client.core import GaugeMetricFamily

from daemon.api import server
from daemon.clock import Clock, SystemClock, every
from daemon.cloudwatch import CloudWatchSource
from daemon.config import Config, ConfigError, load_config, load_default_config
from daemon.metrics import DaemonMetrics
from daemon.notify.heartbeat import Heartbeat
from daemon.notify.notification import Integration, build_integrations, close_integrations
from daemon.notify.pipeline import Notifier
from daemon.probe.manager import ProbeManager
from daemon.rules.manager import RuleManager, RuleSettings
from daemon.rules.sink import AlertQueue
from daemon.rules.spec import GroupSpec, RuleFileError, load_rule_files
from daemon.scrape.manager import ScrapeManager
from daemon.store import StateStore, open_state_store
from daemon.testing.exporter import ExporterServer, SyntheticExporter
from daemon.tsdb import Store

STOP_DEADLINE = 10.0  # seconds from SIGTERM to exit, whatever is still running
GC_PERIOD = 60.0
LAG_PERIOD = 1.0


class App:
    """The running daemon: store, scrape loops, HTTP server and their background tasks."""

    def __init__(
        self,
        config: Config,
        *,
        config_path: str | None = None,
        listen: str | None = None,
        data_dir: str | Path = "data",
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.listen = listen or config.web.listen
        self.data_dir = Path(data_dir)
        self.clock = clock or SystemClock()
        self.metrics = DaemonMetrics()
        self.store = Store(retention=config.storage.retention)
        self.scrape = ScrapeManager(self.store, self.clock, self.metrics)
        self.probes = ProbeManager(self.store, self.clock, self.metrics)
        self.cloudwatch = CloudWatchSource(self.store, self.clock, self.metrics)
        # Alerts to send; the notification side consumes this queue (see daemon.rules.sink).
        self.alerts = AlertQueue()
        self.rules = RuleManager(self.store, self.clock, registry=self.metrics.registry, sink=self.alerts)
        self.scrape.on_samples = self.rules.samples_landed
        self.state_store: StateStore | None = None
        # The notification side: built at start, when there is a state store and an event loop.
        self.notifier: Notifier | None = None
        self._integrations: dict[str, list[Integration]] = {}
        self._http: httpx.AsyncClient | None = None
        self._session: aiohttp.ClientSession | None = None
        self.log = structlog.get_logger().bind(component="app")
        self._runner: web.AppRunner | None = None
        self._demo: ExporterServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._reload_lock = asyncio.Lock()
        self._consumer: asyncio.Task[None] | None = None
        self._heartbeat: Heartbeat | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._started_at = self.clock.time()
        self.metrics.watch(self._store_gauges)

    def is_ready(self) -> bool:
        return self.scrape.ready.is_set()

    async def start(self) -> None:
        self._started_at = self.clock.time()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        rule_groups = load_rule_files(self.config.rule_files)  # RuleFileError: refuse to start
        self.rules.build(rule_groups, self.rules.settings)
        self.state_store = self.rules.state = open_state_store(self.data_dir)
        self._runner = web.AppRunner(server.build(self), access_log=None, handle_signals=False)
        await self._runner.setup()
        host, port = split_listen(self.listen)
        await web.TCPSite(self._runner, host, port, reuse_address=True).start()
        await self._start_demo(self.config)
        await self.scrape.apply(self.config.scrape_configs)
        await self.probes.apply(self.config.probes)
        await self.cloudwatch.apply(self.config.cloudwatch)
        await self._apply_rules(self.config, rule_groups)
        await self._start_notifier()
        self.metrics.config_reload_ok.set(1)
        self.metrics.config_reload_time.set(self.clock.time())
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(every(self.clock, GC_PERIOD, self._gc)), loop.create_task(self._watch_lag())]
        assert self.notifier is not None
        self._tasks.append(loop.create_task(self.notifier.consume(self.alerts), name="notifier"))
        self._consumer = self._tasks[-1]
        self._apply_heartbeat(self.config)
        self.log.info(
            "alertd started",
            listen=self.listen,
            config=self.config.source,
            jobs=len(self.config.scrape_configs),
            data_dir=str(self.data_dir),
        )

    async def reload(self) -> str | None:
        """Load the config file again and apply it; on error keep the running config.

        Returns None on success, else the reason the new config was refused.
        """
        async with self._reload_lock:
            try:
                new = load_config(self.config_path) if self.config_path else load_default_config()
                rule_groups = load_rule_files(new.rule_files)
                self.rules.build(rule_groups, self.rules.settings)  # the engine's own checks, before anything changes
            except (ConfigError, RuleFileError) as exc:
                self.metrics.config_reload_ok.set(0)
                self.metrics.config_reloads.labels("failure").inc()
                for issue in exc.issues:
                    self.log.error("config reload refused, keeping the running config", error=str(issue))
                return str(exc)
            if new.web.listen != self.config.web.listen:
                self.log.warning("web.listen changed: it takes effect at the next restart")
            self.store.retention = new.storage.retention
            if new.demo_exporter != self.config.demo_exporter:
                await self._stop_demo()
                await self._start_demo(new)
            await self.scrape.apply(new.scrape_configs)
            await self.probes.apply(new.probes)
            await self.cloudwatch.apply(new.cloudwatch)
            await self._apply_rules(new, rule_groups)
            if self.notifier is not None:
                old, self._integrations = self._integrations, self._build_integrations(new)
                await self.notifier.reload(new, self._integrations)
                await _close_all(old)
            self._apply_heartbeat(new)
            self.config = new
            self.metrics.config_reload_ok.set(1)
            self.metrics.config_reload_time.set(self.clock.time())
            self.metrics.config_reloads.labels("success").inc()
            self.log.info("config reloaded", config=new.source, jobs=len(new.scrape_configs))
            return None

    async def stop(self) -> None:
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat_task
            self._heartbeat_task = None
        await self.rules.stop()  # alert state is saved at every evaluation: nothing to flush
        if self.notifier is not None:
            await self.notifier.stop()
            self.notifier = None
        await _close_all(self._integrations)
        self._integrations = {}
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.scrape.stop()
        await self.probes.stop()
        await self.cloudwatch.stop()
        await self._stop_demo()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.state_store is not None:
            self.state_store.close()
            self.state_store = self.rules.state = None
        self.log.info("alertd stopped")

    async def serve(self) -> int:
        """Run until SIGTERM or SIGINT; reload on SIGHUP. Returns the exit code."""
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stopping.set)
        loop.add_signal_handler(signal.SIGINT, stopping.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload()))
        try:
            try:
                await self.start()
            except OSError as exc:  # most often: the listen address is taken
                self.log.error("cannot start", listen=self.listen, error=str(exc))
                return 1
            except RuleFileError as exc:
                for issue in exc.issues:
                    self.log.error("cannot start: invalid rule file", error=issue)
                return 1
            await stopping.wait()
            self.log.info("stopping")
        finally:
            try:
                await asyncio.wait_for(self.stop(), STOP_DEADLINE)
            except TimeoutError:
                self.log.error("stop took longer than the deadline, exiting anyway", deadline=STOP_DEADLINE)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
        return 0

    def external_url(self, config: Config) -> str:
        """Where people reach this alertd: generator URLs in alerts and links in notifications."""
        port = split_listen(self.listen)[1]
        return config.global_.external_url or config.web.external_url or f"http://{socket.gethostname()}:{port}"

    def pipeline_health(self) -> list[str]:
        """What keeps alerts from reaching receivers now: rule groups not evaluated on time, the
        notifier or its dispatcher not running (empty when healthy end to end)."""
        problems: list[str] = []
        now = self.clock.time()
        for group in self.rules.groups():
            late = 2 * group.interval + 5.0
            since = now - (group.last_evaluation or self._started_at)
            if since > late:
                problems.append(f"rule group {group.name} not evaluated for {since:.0f}s")
        if self.notifier is None or self._consumer is None or self._consumer.done():
            problems.append("the notifier is not running")
        elif self.notifier.dispatcher is not None and not self.notifier.dispatcher.is_running():
            problems.append("the dispatcher is not running")
        return problems

    def _apply_heartbeat(self, config: Config) -> None:
        """Start, change or stop the heartbeat to match ``config.heartbeat``."""
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            self._heartbeat_task = None
        settings = config.heartbeat
        if settings is None or self.notifier is None:
            return
        if self._heartbeat is None:
            self._heartbeat = Heartbeat(clock=self.clock, health=self.pipeline_health, registry=self.metrics.registry)
        beat = self._heartbeat
        beat.http, beat.url, beat.method = self._http, settings.url, settings.method
        beat.interval, beat.timeout = settings.interval, settings.timeout
        beat.alerts = self.notifier.alerts if settings.watchdog else None
        beat.labels = dict(config.global_.external_labels)
        self._heartbeat_task = asyncio.get_running_loop().create_task(beat.run(), name="heartbeat")

    async def _start_notifier(self) -> None:
        assert self.state_store is not None
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(30.0))
        self._session = aiohttp.ClientSession()
        self._integrations = self._build_integrations(self.config)
        self.notifier = Notifier(
            self.config,
            self.state_store,
            self.clock,
            self.metrics.registry,
            self._integrations,
            external_url=self.external_url(self.config),
            evaluation_intervals=lambda: [group.interval for group in self.rules.groups()],
        )
        await self.notifier.start()

    def _build_integrations(self, config: Config) -> dict[str, list[Integration]]:
        assert self._http is not None
        return {
            receiver.name: build_integrations(
                receiver, http=self._http, aiohttp_session=self._session, clock=self.clock, store=self.state_store
            )
            for receiver in config.receivers
        }

    async def _apply_rules(self, config: Config, groups: list[GroupSpec]) -> None:
        g = config.global_
        settings = RuleSettings(
            evaluation_interval=g.evaluation_interval,
            external_labels=dict(g.external_labels),
            external_url=self.external_url(config),
            after_scrape=config.rule_evaluation.after_scrape,
            after_scrape_groups=config.rule_evaluation.after_scrape_groups(),
        )
        await self.rules.apply(groups, settings)
        # Keep what the rules read, even when storage.retention is shorter.
        self.store.retention = max(config.storage.retention, self.rules.retention_needed())

    async def _start_demo(self, config: Config) -> None:
        if config.demo_exporter is None:
            return
        host, port = split_listen(config.demo_exporter.listen)
        self._demo = ExporterServer(SyntheticExporter(config.demo_exporter.series), host, port)
        await self._demo.start()

    async def _stop_demo(self) -> None:
        if self._demo is not None:
            await self._demo.stop()
            self._demo = None

    def _gc(self) -> None:
        dropped = self.store.gc(int(self.clock.time() * 1000))
        if dropped:
            self.log.debug("dropped series with no samples left", series=dropped)

    async def _watch_lag(self) -> None:
        # Measured on the real event loop, not the injected clock: lag is a property of this process.
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(LAG_PERIOD)
            self.metrics.event_loop_lag.set(max(0.0, loop.time() - before - LAG_PERIOD))

    def _store_gauges(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("alertd_store_series", "Series held in memory.", value=self.store.num_series)
        yield GaugeMetricFamily("alertd_store_samples", "Samples held in memory.", value=self.store.num_samples)
        targets = GaugeMetricFamily("alertd_scrape_targets", "Active scrape targets.", labels=["job"])
        for job, loops in sorted(self.scrape.loops().items()):
            targets.add_metric([job], len(loops))
        yield targets


async def _close_all(integrations: dict[str, list[Integration]]) -> None:
    for receiver_integrations in integrations.values():
        await close_integrations(receiver_integrations)


def split_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9095``, ``:9095`` for all interfaces) as a host and a port number."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{listen!r} is not HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)
