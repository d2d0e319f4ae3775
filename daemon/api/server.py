"""The aiohttp application: routes and the small view of the daemon that handlers need."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from daemon.api import acks, alertmanager, lifecycle, prom, query, rules
from daemon.clock import Clock
from daemon.metrics import DaemonMetrics
from daemon.rules.manager import RuleManager
from daemon.scrape.manager import ScrapeManager
from daemon.tsdb import Store

DAEMON: web.AppKey[Daemon] = web.AppKey("daemon")


class Daemon(Protocol):
    """What the HTTP handlers see of the running daemon."""

    store: Store
    clock: Clock
    scrape: ScrapeManager
    metrics: DaemonMetrics
    rules: RuleManager

    def is_ready(self) -> bool: ...

    async def reload(self) -> str | None:
        """Load the config again; None on success, else the reason it was refused."""


def build(daemon: Daemon) -> web.Application:
    app = web.Application(middlewares=[prom.errors_as_json])
    app[DAEMON] = daemon
    app.router.add_get("/-/healthy", lifecycle.healthy)
    app.router.add_get("/-/ready", lifecycle.ready)
    app.router.add_post("/-/reload", lifecycle.reload)
    app.router.add_put("/-/reload", lifecycle.reload)
    app.router.add_get("/metrics", lifecycle.metrics)
    app.router.add_get("/api/v1/targets", prom.targets)
    for method in ("GET", "POST"):
        app.router.add_route(method, "/api/v1/series", prom.series)
        app.router.add_route(method, "/api/v1/labels", prom.labels)
        app.router.add_route(method, "/api/v1/query", query.query)
        app.router.add_route(method, "/api/v1/query_range", query.query_range)
    app.router.add_get("/api/v1/label/{name}/values", prom.label_values)
    app.router.add_get("/api/v1/rules", rules.rules)
    app.router.add_get("/api/v1/alerts", rules.alerts)
    alertmanager.add_routes(app)
    acks.add_routes(app)
    return app
