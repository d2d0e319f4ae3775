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
    clock: FakeClock
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
    view = View(store, clock, manager, metrics)
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


async def test_instant_query_shapes(client) -> None:  # type: ignore[no-untyped-def]
    http, _ = client
    vector = await (await http.get("/api/v1/query", params={"query": "http_requests_total", "time": "1"})).json()
    assert vector["status"] == "success"
    assert vector["data"]["resultType"] == "vector"
    assert sorted(r["metric"]["code"] for r in vector["data"]["result"]) == ["200", "500"]
    assert vector["data"]["result"][0]["value"] == [1.0, "1"]
    summed = await (await http.post("/api/v1/query", data={"query": "sum(http_requests_total) / 4", "time": "1970-01-01T00:00:01Z"})).json()
    assert summed["data"] == {"resultType": "vector", "result": [{"metric": {}, "value": [1.0, "0.5"]}]}
    scalar = await (await http.get("/api/v1/query", params={"query": "1/0", "time": "2"})).json()
    assert scalar["data"] == {"resultType": "scalar", "result": [2.0, "+Inf"]}
    string = await (await http.get("/api/v1/query", params={"query": '"hi"', "time": "2"})).json()
    assert string["data"] == {"resultType": "string", "result": [2.0, "hi"]}
    matrix = await (await http.get("/api/v1/query", params={"query": "up[5m]", "time": "2"})).json()
    assert matrix["data"]["resultType"] == "matrix"
    assert matrix["data"]["result"][0]["values"] == [[1.0, "1"]]


async def test_range_query(client) -> None:  # type: ignore[no-untyped-def]
    http, _ = client
    body = await (await http.get("/api/v1/query_range", params={"query": "up", "start": "0", "end": "60", "step": "15s"})).json()
    assert body["status"] == "success" and body["data"]["resultType"] == "matrix"
    (series,) = body["data"]["result"]
    assert series["metric"] == {"__name__": "up", "instance": "a:9100", "job": "node"}
    assert [point[0] for point in series["values"]] == [15.0, 30.0, 45.0, 60.0]


@pytest.mark.parametrize(
    ("path", "params", "status", "kind", "message"),
    [
        ("/api/v1/query", {"query": "sum(up"}, 400, "bad_data", "parse error"),
        ("/api/v1/query", {"query": "nope(up)"}, 400, "bad_data", "unknown function"),
        ("/api/v1/query", {}, 400, "bad_data", "missing"),
        ("/api/v1/query", {"query": "up", "time": "yesterday"}, 400, "bad_data", "timestamp"),
        ("/api/v1/query", {"query": "http_requests_total + on(job) http_requests_total", "time": "1"}, 422, "execution", "many-to-many"),
        ("/api/v1/query_range", {"query": "up", "start": "0", "end": "100000", "step": "1"}, 400, "bad_data", "11,000 points"),
        ("/api/v1/query_range", {"query": "up", "start": "10", "end": "0", "step": "1"}, 400, "bad_data", "before start"),
        ("/api/v1/query_range", {"query": "up", "start": "0", "end": "10", "step": "0"}, 400, "bad_data", "step widths"),
    ],
)
async def test_query_errors(client, path: str, params: dict[str, str], status: int, kind: str, message: str) -> None:  # type: ignore[no-untyped-def]
    http, _ = client
    response = await http.get(path, params=params)
    body = await response.json()
    assert response.status == status, body
    assert body["status"] == "error" and body["errorType"] == kind
    assert message in body["error"]
