"""A dead alertd must be noticed: the heartbeat pings an external dead-man's switch, and the
``Watchdog`` alert fires through the normal routes, both only while the pipeline is healthy.

Every ``interval`` the heartbeat asks ``health()`` for problems (rule groups not evaluated on
time, the dispatcher not running). With none, it requests the configured URL (healthchecks.io,
Dead Man's Snitch, Cronitor, a PagerDuty heartbeat...) and, with ``watchdog``, refreshes the
``Watchdog`` alert (``severity="none"``) so that it stays firing; with a problem it does
neither, logs why, and the external service raises the alarm when the pings stop. The
``Watchdog`` alert expires by itself 3 intervals after its last refresh.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import httpx
import structlog
from prometheus_client import CollectorRegistry, Counter

from daemon.clock import Clock
from daemon.dispatch.alert import Alert
from daemon.dispatch.alerts import AlertStore
from daemon.tsdb.labels import Labels

WATCHDOG = "Watchdog"

log = structlog.get_logger("alertd.heartbeat")


class Heartbeat:
    """Pings ``url`` and refreshes the ``Watchdog`` alert in ``alerts`` while ``health()`` is empty.

    ``run()`` loops until cancelled; ``beat()`` is one round (returns whether the pipeline was
    healthy). ``http`` is the shared client; ``labels`` are added to the Watchdog alert.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        health: Callable[[], list[str]],
        http: httpx.AsyncClient | None = None,
        url: str | None = None,
        method: str = "GET",
        interval: float = 60.0,
        timeout: float = 10.0,
        alerts: AlertStore | None = None,
        labels: Mapping[str, str] | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.clock = clock
        self.health = health
        self.http = http
        self.url = url
        self.method = method
        self.interval = interval
        self.timeout = timeout
        self.alerts = alerts
        self.labels = dict(labels or {})
        self.pings = Counter(
            "alertd_heartbeat_pings", "Heartbeat rounds, by result (ok, failed, unhealthy).", ["result"], registry=registry
        )
        self._started: float | None = None

    async def run(self) -> None:
        while True:
            await self.beat()
            await self.clock.sleep(self.interval)

    async def beat(self) -> bool:
        problems = self.health()
        if problems:
            self.pings.labels("unhealthy").inc()
            log.warning("heartbeat_skipped", problems=problems)
            return False
        if self.alerts is not None:
            now = self.clock.time()
            if self._started is None:
                self._started = now
            labels = {**self.labels, "alertname": WATCHDOG, "severity": "none"}
            self.alerts.put(
                Alert(
                    labels=Labels.of(labels),
                    annotations={
                        "summary": "alertd is running: this alert always fires while the pipeline is healthy",
                        "description": "Route it to a dead-man's switch; if it stops arriving, alertd is down.",
                    },
                    starts_at=self._started,
                    ends_at=now + 3 * self.interval,
                    updated_at=now,
                )
            )
        if self.url and self.http is not None:
            try:
                response = await asyncio.wait_for(
                    self.http.request(self.method, self.url, headers={"User-Agent": "alertd"}), self.timeout
                )
                response.raise_for_status()
            except (httpx.HTTPError, TimeoutError) as exc:
                self.pings.labels("failed").inc()
                log.warning("heartbeat_failed", url=_redacted(self.url), error=f"{type(exc).__name__}: {exc}")
                return True
            self.pings.labels("ok").inc()
        return True


def _redacted(url: str) -> str:
    # Ping URLs often carry their secret in the path: show the host only.
    parts = httpx.URL(url)
    return f"{parts.scheme}://{parts.host}/..."
