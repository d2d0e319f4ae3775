"""Webhook receiver against a sink on 127.0.0.1: Alertmanager's version 4 payload, max_alerts, auth, failures."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from daemon.clock import FakeClock
from daemon.config.receivers import ReceiverConfig
from daemon.dispatch.alert import Alert
from daemon.notify.notification import DeliveryError, Notification, build_integrations
from daemon.tsdb.labels import Labels

NOW = 1_700_000_000.0


class Sink:
    """Keeps what it receives; answers ``status`` (with ``headers``)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.status = 200
        self.answer_headers: dict[str, str] = {}
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(json.loads(await request.read()))
        self.headers.append(dict(request.headers))
        return web.Response(status=self.status, text="nope" if self.status >= 300 else "", headers=self.answer_headers)


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    s = Sink()
    app = web.Application()
    app.router.add_post("/hook", s.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    s.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    yield s
    await runner.cleanup()


def alert(i: int, resolved: bool = False) -> Alert:
    return Alert(
        labels=Labels.of({"alertname": "Disk", "instance": f"h{i}", "team": "ops"}),
        annotations={"summary": "disk <>&\r\n full"},
        starts_at=NOW - 100,
        ends_at=NOW - 5 if resolved else NOW + 300,
        generator_url="http://p/graph",
    )


async def notify(sink: Sink, config: dict[str, Any], *alerts: Alert) -> None:
    receiver = ReceiverConfig.model_validate({"name": "hooks", "webhook_configs": [{"url": sink.url, **config}]})
    async with httpx.AsyncClient() as http:
        (hook,) = build_integrations(receiver, http=http, aiohttp_session=None, clock=FakeClock(NOW))
        await hook.notify(Notification("hooks", '{}:{alertname="Disk"}', {"alertname": "Disk"}, alerts, "http://alertd:9095", NOW))


async def test_version_4_payload(sink: Sink) -> None:
    await notify(sink, {}, alert(1), alert(2, resolved=True))
    (body,) = sink.bodies
    assert body == {
        "receiver": "hooks",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "Disk", "instance": "h1", "team": "ops"},
                "annotations": {"summary": "disk <>&\r\n full"},
                "startsAt": "2023-11-14T22:11:40.000Z",
                "endsAt": "0001-01-01T00:00:00.000Z",
                "generatorURL": "http://p/graph",
                "fingerprint": alert(1).fingerprint,
            },
            {
                "status": "resolved",
                "labels": {"alertname": "Disk", "instance": "h2", "team": "ops"},
                "annotations": {"summary": "disk <>&\r\n full"},
                "startsAt": "2023-11-14T22:11:40.000Z",
                "endsAt": "2023-11-14T22:13:15.000Z",
                "generatorURL": "http://p/graph",
                "fingerprint": alert(2).fingerprint,
            },
        ],
        "groupLabels": {"alertname": "Disk"},
        "commonLabels": {"alertname": "Disk", "team": "ops"},
        "commonAnnotations": {"summary": "disk <>&\r\n full"},
        "externalURL": "http://alertd:9095",
        "version": "4",
        "groupKey": '{}:{alertname="Disk"}',
        "truncatedAlerts": 0,
    }
    assert sink.headers[0]["Content-Type"] == "application/json"


async def test_max_alerts_truncates(sink: Sink) -> None:
    await notify(sink, {"max_alerts": 2}, *(alert(i) for i in range(5)))
    assert len(sink.bodies[0]["alerts"]) == 2 and sink.bodies[0]["truncatedAlerts"] == 3


async def test_basic_auth_from_http_config(sink: Sink) -> None:
    await notify(sink, {"http_config": {"basic_auth": {"username": "u", "password": "p"}}}, alert(1))
    assert sink.headers[0]["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode()


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (429, True), (400, False), (404, False)])
async def test_failures(sink: Sink, status: int, retryable: bool) -> None:
    sink.status = status
    sink.answer_headers = {"Retry-After": "9"} if status == 429 else {}
    with pytest.raises(DeliveryError) as info:
        await notify(sink, {}, alert(1))
    assert info.value.retryable is retryable and f"HTTP {status}" in str(info.value)
    assert info.value.retry_after == (9.0 if status == 429 else None)


async def test_huge_label_values_are_delivered_whole(sink: Sink) -> None:
    big = Alert(labels=Labels.of({"alertname": "X", "v": "y" * 100_000}), starts_at=NOW, ends_at=NOW + 60)
    await notify(sink, {}, big)
    assert sink.bodies[0]["alerts"][0]["labels"]["v"] == "y" * 100_000
