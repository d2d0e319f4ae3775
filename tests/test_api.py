"""The HTTP API, in process: Prometheus' response shapes and errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient, TestServer

from daemon.api import server
from daemon.clock import FakeClock
from daemon.config import parse_config
from daemon.metrics import DaemonMetrics
from daemon.scrape.manager import ScrapeManager
from daemon.tsdb import Store
from daemon.tsdb.labels import Labels


@dataclass
class View:
    store: Store
    scrape: ScrapeManager
    metrics: DaemonMetrics
    ready: bool = False
    reload_error: str | None = None

    def is_ready(self) -> bool:
        return self.ready

    async def reload(self) -> str | None:
        return self.reload_error


@pytest.fixture
async def client() -> AsyncIterator[tuple[TestClient, View]]:
    store, clock, metrics = Store(), FakeClock(), DaemonMetrics()
    for code in ("200", "500"):
        series, _ = store.series(Labels.of({"__name__": "http_requests_total", "code": code, "job": "api"}))
        store.append(series, 1_000, 1.0)
    series, _ = store.series(Labels.of({"__name__": "up", "job": "node", "instance": "a:9100"}))
    store.append(series, 1_000, 1.0)
    manager = ScrapeManager(store, clock, metrics)
    config = parse_config(
        """
scrape_configs:
  - job_name: node
    scrape_interval: 30s
    static_configs: [{targets: ["a:9100", "b:9100"], labels: {env: prod}}]
    relabel_configs: [{source_labels: [__address__], regex: "b:.*", action: drop}]
""",
        "t.yml",
    )
    await manager.apply(list(config.scrape_configs))
    view = View(store, manager, metrics)
    test_client = TestClient(TestServer(server.build(view)))
    await test_client.start_server()
    yield test_client, view
    await test_client.close()
    await manager.stop()


async def test_health_and_readiness(client) -> None:  # type: ignore[no-untyped-def]
    http, view = client
    assert (await http.get("/-/healthy")).status == 200
    assert (await http.get("/-/ready")).status == 503
    view.ready = True
    assert (await http.get("/-/ready")).status == 200


async def test_reload_reports_refusal(client) -> None:  # type: ignore[no-untyped-def]
    http, view = client
    assert (await http.post("/-/reload")).status == 200
    view.reload_error = "alertd.yml:3: global.x: unknown key"
    response = await http.post("/-/reload")
    assert response.status == 500
    assert "unknown key" in await response.text()


async def test_targets_active_and_dropped(client) -> None:  # type: ignore[no-untyped-def]
    http, _ = client
    body = await (await http.get("/api/v1/targets")).json()
    assert body["status"] == "success"
    (active,) = body["data"]["activeTargets"]
    assert active["labels"] == {"env": "prod", "instance": "a:9100", "job": "node"}
    assert active["discoveredLabels"]["__address__"] == "a:9100"
    assert active["health"] == "unknown" and active["lastScrape"] == "0001-01-01T00:00:00Z"
    assert active["scrapeInterval"] == "30s" and active["scrapePool"] == "node"
    (dropped,) = body["data"]["droppedTargets"]
    assert dropped["discoveredLabels"]["__address__"] == "b:9100"
    only_dropped = await (await http.get("/api/v1/targets", params={"state": "dropped"})).json()
    assert only_dropped["data"]["activeTargets"] == []
    bad = await http.get("/api/v1/targets", params={"state": "sideways"})
    assert bad.status == 400 and (await bad.json())["errorType"] == "bad_data"


async def test_series_get_and_post(client) -> None:  # type: ignore[no-untyped-def]
    http, _ = client
    got = await (await http.get("/api/v1/series", params=[("match[]", 'http_requests_total{code="500"}'), ("match[]", "up")])).json()
    assert sorted(got["data"], key=str) == sorted(
        [{"__name__": "http_requests_total", "code": "500", "job": "api"},
         {"__name__": "up", "instance": "a:9100", "job": "node"}],
        key=str,
    )
    posted = await (await http.post("/api/v1/series", data={"match[]": '{job="api"}'})).json()
    assert len(posted["data"]) == 2
    missing = await http.get("/api/v1/series")
    assert missing.status == 400
    assert await missing.json() == {"status": "error", "errorType": "bad_data", "error": "no match[] parameter provided"}
    bad = await (await http.get("/api/v1/series", params={"match[]": '{code=~"("}'})).json()
    assert bad["errorType"] == "bad_data" and "match[]" in bad["error"]


async def test_label_names_and_values(client) -> None:  # type: ignore[no-untyped-def]
    http, _ = client
    names = await (await http.get("/api/v1/labels")).json()
    assert names["data"] == ["__name__", "code", "instance", "job"]
    narrowed = await (await http.get("/api/v1/labels", params={"match[]": "up"})).json()
    assert narrowed["data"] == ["__name__", "instance", "job"]
    values = await (await http.get("/api/v1/label/job/values")).json()
    assert values["data"] == ["api", "node"]
    codes = await (await http.post("/api/v1/labels", data={"match[]": '{job="api"}'})).json()
    assert codes["data"] == ["__name__", "code", "job"]


async def test_own_metrics(client) -> None:  # type: ignore[no-untyped-def]
    http, _ = client
    response = await http.get("/metrics")
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = await response.text()
    assert "alertd_build_info{" in text
