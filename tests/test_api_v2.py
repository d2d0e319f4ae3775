"""Alertmanager's API v2 over a Notifier built from a config, served on 127.0.0.1: alerts in and out
with filters and statuses, groups, silences, status and receivers, and bad input."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from daemon.api import server
from daemon.clock import FakeClock
from daemon.config.load import parse_config
from daemon.dispatch.alert import fingerprint, rfc3339
from daemon.notify.pipeline import Notifier
from daemon.store import MemoryStateStore, SQLiteStateStore, StateStore
from daemon.testing.alerts import RecordingIntegration

T0 = 1_700_000_000.0

CONFIG = """
route:
  receiver: default
  group_by: [alertname]
  routes:
    - matchers: ['severity="P0"']
      receiver: oncall
      continue: true
    - matchers: ['team="db"']
      receiver: dba
receivers:
  - name: default
  - name: oncall
  - name: dba
inhibit_rules:
  - source_matchers: ['severity="P0"']
    target_matchers: ['severity="P2"']
    equal: [cluster]
"""


@dataclass
class FakeDaemon:
    notifier: Notifier | None


class Served:
    def __init__(self, notifier: Notifier | None, url: str, clock: FakeClock) -> None:
        self.notifier = notifier
        self.url = url
        self.clock = clock
        self.http = httpx.AsyncClient(base_url=url)


def build_notifier(store: StateStore, clock: FakeClock, text: str = CONFIG) -> Notifier:
    config = parse_config(text)
    counter = itertools.count(1)
    integrations = {r.name: [RecordingIntegration()] for r in config.receivers}
    return Notifier(
        config,
        store,
        clock,
        CollectorRegistry(),
        integrations,
        new_silence_id=lambda: f"00000000-0000-4000-8000-{next(counter):012d}",
    )


async def serve(notifier: Notifier | None, clock: FakeClock) -> tuple[web.AppRunner, str]:
    app = server.build(FakeDaemon(notifier))  # type: ignore[arg-type]
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def api() -> AsyncIterator[Served]:
    clock = FakeClock(T0)
    notifier = build_notifier(MemoryStateStore(), clock)
    await notifier.start()
    runner, url = await serve(notifier, clock)
    served = Served(notifier, url, clock)
    yield served
    await served.http.aclose()
    await notifier.stop()
    await runner.cleanup()


def postable(labels: dict[str, str], **kw: Any) -> dict[str, Any]:
    return {"labels": labels, "annotations": kw.pop("annotations", {}), **kw}


async def test_post_then_get_alerts(api: Served) -> None:
    posted = [
        postable({"alertname": "Down", "severity": "P0", "cluster": "eu"}, annotations={"summary": "down"},
                 generatorURL="http://prom/graph?g0.expr=up+%3D%3D+0"),
        postable({"alertname": "Slow", "severity": "P2", "cluster": "eu", "team": "db"}),
        postable({"alertname": "Old"}, startsAt=rfc3339(T0 - 600), endsAt=rfc3339(T0 - 60)),
    ]
    response = await api.http.post("/api/v2/alerts", json=posted)
    assert response.status_code == 200
    alerts = (await api.http.get("/api/v2/alerts")).json()
    assert [a["fingerprint"] for a in alerts] == sorted(a["fingerprint"] for a in alerts)
    assert sorted(a["labels"]["alertname"] for a in alerts) == ["Down", "Slow"]  # Old is resolved
    down = next(a for a in alerts if a["labels"]["alertname"] == "Down")
    assert down == {
        "annotations": {"summary": "down"},
        "endsAt": rfc3339(T0 + 300),  # resolve_timeout after receipt
        "fingerprint": fingerprint({"alertname": "Down", "severity": "P0", "cluster": "eu"}),
        "receivers": [{"name": "oncall"}],  # continue, but no later sibling matches
        "startsAt": rfc3339(T0),
        "status": {"inhibitedBy": [], "silencedBy": [], "state": "active"},
        "updatedAt": rfc3339(T0),
        "generatorURL": "http://prom/graph?g0.expr=up+%3D%3D+0",
        "labels": {"alertname": "Down", "cluster": "eu", "severity": "P0"},
    }
    slow = next(a for a in alerts if a["labels"]["alertname"] == "Slow")
    assert slow["status"] == {"inhibitedBy": [down["fingerprint"]], "silencedBy": [], "state": "suppressed"}
    assert slow["receivers"] == [{"name": "dba"}]


async def test_alert_filters(api: Served) -> None:
    await api.http.post("/api/v2/alerts", json=[
        postable({"alertname": "Down", "severity": "P0", "cluster": "eu"}),
        postable({"alertname": "Slow", "severity": "P2", "cluster": "eu"}),
        postable({"alertname": "Disk", "severity": "P2", "cluster": "us", "team": "db"}),
    ])
    await api.http.post("/api/v2/silences", json={
        "matchers": [{"name": "alertname", "value": "Disk", "isRegex": False}],
        "startsAt": rfc3339(T0), "endsAt": rfc3339(T0 + 3600), "createdBy": "ops", "comment": "disk work",
    })

    async def names(**params: Any) -> list[str]:
        response = await api.http.get("/api/v2/alerts", params=params)
        assert response.status_code == 200, response.text
        return sorted(a["labels"]["alertname"] for a in response.json())

    assert await names() == ["Disk", "Down", "Slow"]
    assert await names(filter='severity="P2"') == ["Disk", "Slow"]
    assert await names(filter=['severity=~"P.*"', 'cluster!="us"']) == ["Down", "Slow"]
    assert await names(filter='team=""') == ["Down", "Slow"]  # a missing label matches ""
    assert await names(silenced="false") == ["Down", "Slow"]
    assert await names(inhibited="false") == ["Disk", "Down"]
    assert await names(active="false") == ["Disk", "Slow"]
    assert await names(receiver="dba") == ["Disk"]
    assert await names(receiver="on.*") == ["Down"]
    bad = await api.http.get("/api/v2/alerts", params={"filter": "severity=~\"(\""})
    assert bad.status_code == 400 and isinstance(bad.json(), str)
    assert (await api.http.get("/api/v2/alerts", params={"active": "maybe"})).status_code == 400
    assert (await api.http.get("/api/v2/alerts", params={"receiver": "("})).status_code == 400


async def test_alert_groups(api: Served) -> None:
    await api.http.post("/api/v2/alerts", json=[
        postable({"alertname": "Down", "severity": "P0", "instance": "a"}),
        postable({"alertname": "Down", "severity": "P0", "instance": "b"}),
        postable({"alertname": "Disk", "team": "db"}),
        postable({"alertname": "Down", "severity": "P0", "team": "db", "instance": "c"}),
    ])
    await api.clock.advance(0)
    groups = (await api.http.get("/api/v2/alerts/groups")).json()
    assert [(g["labels"], g["receiver"]["name"], len(g["alerts"])) for g in groups] == [
        ({"alertname": "Disk"}, "dba", 1),
        ({"alertname": "Down"}, "dba", 1),
        ({"alertname": "Down"}, "oncall", 3),
    ]
    assert [a["labels"]["instance"] for a in groups[2]["alerts"]] == ["a", "b", "c"]
    assert groups[2]["alerts"][0]["receivers"] == [{"name": "oncall"}]
    # An alert in two groups (continue) lists both receivers.
    assert groups[1]["alerts"][0]["receivers"] == [{"name": "dba"}, {"name": "oncall"}]
    only = (await api.http.get("/api/v2/alerts/groups", params={"receiver": "dba"})).json()
    assert [g["receiver"]["name"] for g in only] == ["dba", "dba"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "parsing alerts body failed"),
        (b'{"labels": {}}', "expected a JSON array"),
        (b'[{"annotations": {"a": "b"}}]', "labels in body is required"),
        (b'[{"labels": {}}]', "at least one label pair required"),
        (b'[{"labels": {"a": 1}}]', "labels must map strings to strings"),
        (b'[{"labels": {"0a": "x"}}]', 'invalid name "0a"'),
        (b'[{"labels": {"a": "x"}, "startsAt": "yesterday"}]', "not an RFC 3339 date-time"),
        (b'[{"labels": {"a": "x"}, "startsAt": "2024-01-02T00:00:00Z", "endsAt": "2024-01-01T00:00:00Z"}]',
         "start time must be before end time"),
    ],
)
async def test_bad_alerts_are_400(api: Served, body: bytes, message: str) -> None:
    response = await api.http.post("/api/v2/alerts", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert message in response.json()


async def test_valid_alerts_of_a_partly_bad_batch_are_kept(api: Served) -> None:
    response = await api.http.post("/api/v2/alerts", json=[postable({}), postable({"alertname": "Good"})])
    assert response.status_code == 400
    assert [a["labels"]["alertname"] for a in (await api.http.get("/api/v2/alerts")).json()] == ["Good"]


async def test_awkward_label_values_round_trip(api: Served) -> None:
    values = {"alertname": "X", "crlf": "a\r\nSubject: injected", "html": "<b>&amp;</b>", "big": "x" * 100_000, "empty": ""}
    response = await api.http.post("/api/v2/alerts", json=[postable(values)])
    assert response.status_code == 200
    [alert] = (await api.http.get("/api/v2/alerts")).json()
    assert alert["labels"] == {k: v for k, v in values.items() if v}


async def test_silences_lifecycle(api: Served) -> None:
    body = {
        "matchers": [{"name": "alertname", "value": "Down", "isRegex": False, "isEqual": True},
                     {"name": "env", "value": "prod|staging", "isRegex": True}],
        "startsAt": rfc3339(T0 - 10), "endsAt": rfc3339(T0 + 3600), "createdBy": "ops", "comment": "deploy",
    }
    created = await api.http.post("/api/v2/silences", json=body)
    assert created.status_code == 200
    sid = created.json()["silenceID"]
    got = (await api.http.get(f"/api/v2/silence/{sid}")).json()
    assert got == {
        "id": sid,
        "status": {"state": "active"},
        "updatedAt": rfc3339(T0),
        "comment": "deploy",
        "createdBy": "ops",
        "endsAt": rfc3339(T0 + 3600),
        "matchers": [
            {"name": "alertname", "value": "Down", "isRegex": False, "isEqual": True},
            {"name": "env", "value": "prod|staging", "isRegex": True, "isEqual": True},
        ],
        "startsAt": rfc3339(T0),
    }
    # Extend in place.
    body2 = {**body, "id": sid, "startsAt": rfc3339(T0), "endsAt": rfc3339(T0 + 7200)}
    assert (await api.http.post("/api/v2/silences", json=body2)).json() == {"silenceID": sid}
    listed = (await api.http.get("/api/v2/silences", params={"filter": 'env=~"prod|staging"'})).json()
    assert [s["id"] for s in listed] == [sid]
    assert (await api.http.get("/api/v2/silences", params={"filter": 'env="prod"'})).json() == []
    assert (await api.http.delete(f"/api/v2/silence/{sid}")).status_code == 200
    await api.clock.advance(1)
    assert (await api.http.get(f"/api/v2/silence/{sid}")).json()["status"] == {"state": "expired"}
    assert (await api.http.delete(f"/api/v2/silence/{sid}")).status_code == 500  # already expired
    assert (await api.http.delete("/api/v2/silence/00000000-0000-4000-8000-999999999999")).status_code == 404
    assert (await api.http.get("/api/v2/silence/00000000-0000-4000-8000-999999999999")).status_code == 404


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"matchers": []}, 400, "at least one matcher required"),
        ({"endsAt": rfc3339(T0 - 7200)}, 400, "start time must be before end time"),
        ({"startsAt": rfc3339(T0 - 7200), "endsAt": rfc3339(T0 - 3600)}, 400, "end time can't be in the past"),
        ({"matchers": [{"name": "a", "value": "(", "isRegex": True}]}, 400, "invalid regular expression"),
        ({"comment": None}, 400, "comment in body"),
        ({"id": "00000000-0000-4000-8000-999999999999"}, 404, "not found"),
    ],
)
async def test_bad_silences(api: Served, change: dict[str, Any], status: int, message: str) -> None:
    body = {
        "matchers": [{"name": "alertname", "value": "Down", "isRegex": False}],
        "startsAt": rfc3339(T0), "endsAt": rfc3339(T0 + 3600), "createdBy": "ops", "comment": "c",
    }
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    response = await api.http.post("/api/v2/silences", json=body)
    assert response.status_code == status
    assert message in response.json()


async def test_bad_silence_json(api: Served) -> None:
    response = await api.http.post("/api/v2/silences", content=b"{", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "parsing silence body failed" in response.json()


async def test_status_and_receivers(api: Served) -> None:
    status = (await api.http.get("/api/v2/status")).json()
    assert status["cluster"] == {"peers": [], "status": "disabled"}
    assert status["uptime"] == rfc3339(T0)
    assert set(status["versionInfo"]) == {"branch", "buildDate", "buildUser", "goVersion", "revision", "version"}
    assert "receiver: default" in status["config"]["original"]
    assert (await api.http.get("/api/v2/receivers")).json() == [{"name": "default"}, {"name": "oncall"}, {"name": "dba"}]


async def test_without_a_notifier_the_api_says_so() -> None:
    clock = FakeClock(T0)
    runner, url = await serve(None, clock)
    async with httpx.AsyncClient(base_url=url) as http:
        response = await http.get("/api/v2/silences")
    await runner.cleanup()
    assert response.status_code == 503 and "not configured" in response.json()


async def test_silences_survive_a_restart_of_the_api(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    store = SQLiteStateStore(tmp_path / "state.db")
    notifier = build_notifier(store, clock)
    runner, url = await serve(notifier, clock)
    async with httpx.AsyncClient(base_url=url) as http:
        sid = (await http.post("/api/v2/silences", json={
            "matchers": [{"name": "alertname", "value": "Down", "isRegex": False}],
            "startsAt": rfc3339(T0), "endsAt": rfc3339(T0 + 3600), "createdBy": "ops", "comment": "c",
        })).json()["silenceID"]
    await runner.cleanup()
    store.close()

    store = SQLiteStateStore(tmp_path / "state.db")
    runner, url = await serve(build_notifier(store, clock), clock)
    async with httpx.AsyncClient(base_url=url) as http:
        listed = (await http.get("/api/v2/silences")).json()
    await runner.cleanup()
    store.close()
    assert [(s["id"], s["status"]["state"]) for s in listed] == [(sid, "active")]
    assert json.dumps(listed)
