"""Health, readiness, reload and the daemon's own /metrics."""

from __future__ import annotations

from aiohttp import web

from daemon.api import server
from daemon.metrics import CONTENT_TYPE


async def healthy(request: web.Request) -> web.Response:
    return web.Response(text="alertd is Healthy.\n")


async def ready(request: web.Request) -> web.Response:
    if request.app[server.DAEMON].is_ready():
        return web.Response(text="alertd is Ready.\n")
    return web.Response(status=503, text="Service Unavailable\n")


async def reload(request: web.Request) -> web.Response:
    error = await request.app[server.DAEMON].reload()
    if error is not None:
        return web.Response(status=500, text=f"failed to reload config: {error}\n")
    return web.Response(text="")


async def metrics(request: web.Request) -> web.Response:
    body = request.app[server.DAEMON].metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
