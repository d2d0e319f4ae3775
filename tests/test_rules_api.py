"""/api/v1/rules and /api/v1/alerts in Prometheus' shapes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from daemon.api import server
from daemon.clock import FakeClock
from daemon.metrics import DaemonMetrics
from daemon.rules.manager import RuleManager, RuleSettings
from daemon.rules.spec import AlertingRuleSpec, FrozenMap, GroupSpec, RecordingRuleSpec
from daemon.scrape.manager import ScrapeManager
from daemon.tsdb import Labels, Store

T0 = 1_700_000_000.0


class View:
    def __init__(self) -> None:
        self.store = Store()
        self.clock = FakeClock(T0)
        self.metrics = DaemonMetrics()
        self.scrape = ScrapeManager(self.store, self.clock, self.metrics)
        self.rules = RuleManager(self.store, self.clock)

    def is_ready(self) -> bool:
        return True

    async def reload(self) -> str | None:
        return None


@pytest.fixture
async def client() -> AsyncIterator[tuple[TestClient, View]]:
    view = View()
    groups = [
        GroupSpec(
            name="api",
            file="/etc/alertd/rules/api.yml",
            interval=30.0,
            rules=(
                RecordingRuleSpec(record="job:m:sum", expr="sum by (job) (m)"),
                AlertingRuleSpec(
                    alert="High",
                    expr="m > 5",
                    for_=300.0,
                    keep_firing_for=60.0,
                    labels=FrozenMap({"severity": "page"}),
                    annotations=FrozenMap({"summary": "{{ $labels.instance }} is {{ $value }}"}),
                ),
                AlertingRuleSpec(alert="Broken", expr='{__name__=~"m|n"} + 1'),
            ),
        )
    ]
    await view.rules.apply(groups, RuleSettings())
    for name, value in (("m", 7.5), ("n", 1)):
        series, _ = view.store.series(Labels.of({"__name__": name, "instance": "a", "job": "j"}))
        view.store.append(series, int(T0 * 1000), value)
    view.rules.groups()[0].evaluate(T0)
    async with TestClient(TestServer(server.build(view))) as c:
        yield c, view
    await view.rules.stop()


async def test_rules_shape(client: tuple[TestClient, View]) -> None:
    c, _ = client
    body = await (await c.get("/api/v1/rules")).json()
    assert body["status"] == "success"
    (group,) = body["data"]["groups"]
    assert group["name"] == "api" and group["file"] == "/etc/alertd/rules/api.yml"
    assert group["interval"] == 30 and group["limit"] == 0
    assert group["lastEvaluation"] == "2023-11-14T22:13:20.000000Z"
    record, high, broken = group["rules"]
    assert record == {
        "name": "job:m:sum",
        "query": "sum by (job) (m)",
        "labels": {},
        "health": "ok",
        "evaluationTime": record["evaluationTime"],
        "lastEvaluation": "2023-11-14T22:13:20.000000Z",
        "type": "recording",
    }
    assert high["type"] == "alerting" and high["state"] == "pending" and high["duration"] == 300
    assert high["keepFiringFor"] == 60 and high["labels"] == {"severity": "page"} and high["health"] == "ok"
    assert high["annotations"] == {"summary": "{{ $labels.instance }} is {{ $value }}"}
    assert high["alerts"] == [
        {
            "labels": {"alertname": "High", "instance": "a", "job": "j", "severity": "page"},
            "annotations": {"summary": "a is 7.5"},
            "state": "pending",
            "activeAt": "2023-11-14T22:13:20.000000Z",
            "value": "7.5e+00",
        }
    ]
    assert broken["health"] == "err" and "same labelset" in broken["lastError"] and broken["alerts"] == []


async def test_rules_filters(client: tuple[TestClient, View]) -> None:
    c, _ = client
    only_alerts = await (await c.get("/api/v1/rules", params={"type": "alert"})).json()
    assert [r["name"] for r in only_alerts["data"]["groups"][0]["rules"]] == ["High", "Broken"]
    only_records = await (await c.get("/api/v1/rules", params={"type": "record"})).json()
    assert [r["name"] for r in only_records["data"]["groups"][0]["rules"]] == ["job:m:sum"]
    named = await (await c.get("/api/v1/rules", params={"rule_name[]": "High", "exclude_alerts": "true"})).json()
    (rule,) = named["data"]["groups"][0]["rules"]
    assert "alerts" not in rule
    other_group = await (await c.get("/api/v1/rules", params={"rule_group[]": "nope"})).json()
    assert other_group["data"]["groups"] == []
    bad = await c.get("/api/v1/rules", params={"type": "alerts"})
    assert bad.status == 400 and (await bad.json())["errorType"] == "bad_data"


async def test_alerts_shape(client: tuple[TestClient, View]) -> None:
    c, view = client
    body = await (await c.get("/api/v1/alerts")).json()
    assert body == {
        "status": "success",
        "data": {
            "alerts": [
                {
                    "labels": {"alertname": "High", "instance": "a", "job": "j", "severity": "page"},
                    "annotations": {"summary": "a is 7.5"},
                    "state": "pending",
                    "activeAt": "2023-11-14T22:13:20.000000Z",
                    "value": "7.5e+00",
                }
            ]
        },
    }
    # Held by keep_firing_for: keepFiringSince appears.
    group = view.rules.groups()[0]
    series, _ = view.store.series(Labels.of({"__name__": "m", "instance": "a", "job": "j"}))
    view.store.append(series, int((T0 + 200) * 1000), 7.5)
    group.evaluate(T0 + 300)
    view.store.append(series, int((T0 + 310) * 1000), 1)
    group.evaluate(T0 + 310)
    alerts = (await (await c.get("/api/v1/alerts")).json())["data"]["alerts"]
    (alert,) = [a for a in alerts if a["labels"]["alertname"] == "High"]
    assert alert["state"] == "firing" and alert["keepFiringSince"] == "2023-11-14T22:18:30.000000Z"
