"""/api/v1/acks, /slack/interactions and /pagerduty/webhook over HTTP on 127.0.0.1, with the
Notifier on a fake clock: acknowledgement stops escalation; bad input gets a clear 4xx."""

from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from daemon.api import acks, server
from daemon.clock import FakeClock
from daemon.config.load import parse_config
from daemon.notify.acknowledge import ack_token, pagerduty_signature, slack_signature
from daemon.notify.pagerduty import dedup_key
from daemon.notify.pipeline import Notifier
from daemon.rules.sink import OutgoingAlert
from daemon.store import MemoryStateStore
from daemon.testing.alerts import RecordingIntegration

CONFIG = """
route:
  receiver: slack
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1m
  escalation: oncall
receivers: [{name: slack}, {name: primary}, {name: senior}]
escalation_policies:
  - name: oncall
    levels: [{after: 0s, receivers: [primary]}, {after: 5m, receivers: [senior]}]
acknowledgements:
  slack_signing_secret: slack-secret
  pagerduty_webhook_secret: pd-secret
"""


@pytest.fixture
async def rig():  # type: ignore[no-untyped-def]
    # Slack signs with real timestamps: the fake clock starts at the real time of this test (not of
    # module import, which may be minutes earlier in a full run) and moves only a few seconds.
    clock = FakeClock(time.time())
    start = clock.time()
    receivers = {name: RecordingIntegration() for name in ("slack", "primary", "senior")}
    notifier = Notifier(parse_config(CONFIG), MemoryStateStore(), clock, CollectorRegistry(), {k: [v] for k, v in receivers.items()})
    await notifier.start()
    app = web.Application()
    app[server.DAEMON] = SimpleNamespace(notifier=notifier)  # type: ignore[misc]
    acks.add_routes(app)
    client = TestClient(TestServer(app))
    await client.start_server()

    async def run(seconds: int) -> None:
        for second in range(seconds):
            if second % 30 == 0:
                fire()
            await clock.advance(1)
            for _ in range(20):
                await asyncio.sleep(0)

    def fire(name: str = "SiteDown", resolved: bool = False) -> None:
        now = clock.time()
        notifier.receive([OutgoingAlert({"alertname": name, "priority": "P0"}, {}, start, now if resolved else now + 240, "", resolved=resolved)])

    yield SimpleNamespace(client=client, notifier=notifier, clock=clock, receivers=receivers, run=run, fire=fire)
    await client.close()
    await notifier.stop()


async def test_ack_through_the_api_stops_escalation(rig) -> None:  # type: ignore[no-untyped-def]
    await rig.run(5)
    assert len(rig.receivers["primary"].notifications) == 1
    answer = await rig.client.post("/api/v1/acks", json={"matchers": ["alertname=SiteDown"], "by": "alice", "comment": "on it"})
    assert answer.status == 200
    (ack,) = (await answer.json())["data"]
    assert ack["by"] == "alice" and ack["comment"] == "on it" and ack["alertnames"] == ["SiteDown"]
    listed = await (await rig.client.get("/api/v1/acks")).json()
    assert [a["id"] for a in listed["data"]] == [ack["id"]]
    await rig.run(10 * 60)
    assert rig.receivers["senior"].notifications == []
    # Un-acknowledged: escalation starts again from level 1.
    assert (await rig.client.delete(f"/api/v1/acks/{ack['id']}")).status == 200
    await rig.run(2)
    assert len(rig.receivers["primary"].notifications) == 2
    assert (await (await rig.client.get("/api/v1/acks")).json())["data"] == []


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"matchers": ["alertname=Nothing"], "by": "a"}, 404, "no alert matches {alertname=\"Nothing\"}"),
        ({"group_key": "{}:{alertname=\"Nope\"}", "by": "a"}, 404, "no alert matches group"),
        ({"matchers": ["alertname=SiteDown"]}, 400, '"by" is required'),
        ({"matchers": ["alertname=~("], "by": "a"}, 400, "matchers.0"),
        ({"by": "a"}, 400, 'give "matchers"'),
        ({"matchers": "alertname=SiteDown", "by": ["a"]}, 400, '"by" must be a string'),
    ],
)
async def test_bad_acks_get_a_clear_answer(rig, body, status, message) -> None:  # type: ignore[no-untyped-def]
    await rig.run(3)
    answer = await rig.client.post("/api/v1/acks", json=body)
    assert answer.status == status
    assert message in (await answer.json())["error"]


async def test_acks_for_resolved_alerts_are_refused(rig) -> None:  # type: ignore[no-untyped-def]
    await rig.run(3)
    rig.fire(resolved=True)
    answer = await rig.client.post("/api/v1/acks", json={"matchers": ["alertname=SiteDown"], "by": "a"})
    assert answer.status == 409
    assert "resolved" in (await answer.json())["error"]


async def test_oversized_and_non_json_bodies(rig) -> None:  # type: ignore[no-untyped-def]
    big = b"x" * (acks.MAX_BODY + 10)
    for path in ("/api/v1/acks", "/slack/interactions", "/pagerduty/webhook"):
        assert (await rig.client.post(path, data=big)).status == 413
    assert (await rig.client.post("/api/v1/acks", data=b"{not json")).status == 400


def slack_request(payload: object, *, secret: str = "slack-secret", at: float | None = None, raw: bytes | None = None) -> tuple[bytes, dict[str, str]]:
    body = raw if raw is not None else urlencode({"payload": json.dumps(payload)}).encode()
    ts = str(int(at if at is not None else time.time()))
    return body, {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": slack_signature(secret, ts, body),
    }


def button(group_key: str) -> dict[str, object]:
    return {
        "type": "block_actions",
        "user": {"id": "U1", "username": "bob"},
        "actions": [{"action_id": "alertd_ack", "value": ack_token(group_key)}],
    }


async def test_the_slack_button_acknowledges(rig) -> None:  # type: ignore[no-untyped-def]
    await rig.run(3)
    (group,) = rig.notifier.dispatcher.all_groups()
    body, headers = slack_request(button(group.key), at=rig.clock.time())
    answer = await rig.client.post("/slack/interactions", data=body, headers=headers)
    assert answer.status == 200
    assert [(a.by, a.via) for a in rig.notifier.escalator.acks()] == [("bob", "slack")]


async def test_slack_signatures_wrong_missing_or_replayed_get_401(rig) -> None:  # type: ignore[no-untyped-def]
    await rig.run(3)
    (group,) = rig.notifier.dispatcher.all_groups()
    body, headers = slack_request(button(group.key), secret="wrong", at=rig.clock.time())
    assert (await rig.client.post("/slack/interactions", data=body, headers=headers)).status == 401
    body, headers = slack_request(button(group.key), at=rig.clock.time())
    assert (await rig.client.post("/slack/interactions", data=body, headers={"Content-Type": headers["Content-Type"]})).status == 401
    body, headers = slack_request(button(group.key), at=rig.clock.time() - 301)
    answer = await rig.client.post("/slack/interactions", data=body, headers=headers)
    assert answer.status == 401 and "replay" in (await answer.json())["error"]
    body, headers = slack_request(button(group.key), at=rig.clock.time())
    headers["X-Slack-Request-Timestamp"] = str(int(rig.clock.time()) + 1)  # signed for another time
    assert (await rig.client.post("/slack/interactions", data=body, headers=headers)).status == 401
    assert rig.notifier.escalator.acks() == []


@pytest.mark.parametrize("raw", [b"payload=%7Bnot-json", b"nothing=here", b"payload=%5B1%5D", b"payload=%7B%22type%22%3A%22block_actions%22%7D"])
async def test_malformed_slack_payloads_get_400(rig, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    body, headers = slack_request(None, raw=raw, at=rig.clock.time())
    assert (await rig.client.post("/slack/interactions", data=body, headers=headers)).status == 400


async def test_a_pagerduty_acknowledgement_stops_escalation(rig) -> None:  # type: ignore[no-untyped-def]
    await rig.run(3)
    incident_key = dedup_key(rig.receivers["primary"].notifications[0].group_key)  # level 1's incident
    body = json.dumps(
        {"event": {"event_type": "incident.acknowledged", "agent": {"summary": "Carol"}, "data": {"type": "incident", "incident_key": incident_key}}}
    ).encode()
    wrong = await rig.client.post("/pagerduty/webhook", data=body, headers={"X-PagerDuty-Signature": pagerduty_signature("nope", body)})
    assert wrong.status == 401
    assert (await rig.client.post("/pagerduty/webhook", data=body)).status == 401
    signature = f"v1=00, {pagerduty_signature('pd-secret', body)}"
    answer = await rig.client.post("/pagerduty/webhook", data=body, headers={"X-PagerDuty-Signature": signature})
    assert answer.status == 200
    assert [(a.by, a.via) for a in rig.notifier.escalator.acks()] == [("Carol", "pagerduty")]
    await rig.run(10 * 60)
    assert rig.receivers["senior"].notifications == []
    garbage = b'{"event": []}'
    assert (await rig.client.post("/pagerduty/webhook", data=garbage, headers={"X-PagerDuty-Signature": pagerduty_signature("pd-secret", garbage)})).status == 400


async def test_incidents_serve_the_report(rig) -> None:  # type: ignore[no-untyped-def]
    await rig.run(3)
    await rig.client.post("/api/v1/acks", json={"matchers": ["alertname=SiteDown"], "by": "alice"})
    answer = await rig.client.get("/api/v1/incidents", params={"since": "1d"})
    assert answer.status == 200
    data = (await answer.json())["data"]
    assert data["severities"]["P0"]["count"] == 1 and data["severities"]["P0"]["acknowledged"] == 1
    assert data["incidents"][0]["acknowledged_by"] == "alice"
    assert (await rig.client.get("/api/v1/incidents", params={"since": "soon"})).status == 400
