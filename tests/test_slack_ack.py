"""The Slack "Acknowledge" button against the fake Slack: present on P0 and P1 messages (bot token
and incoming webhook), absent on P2 and resolved ones; a signed click at /slack/interactions
acknowledges the group and the posted messages are edited to say who acknowledged, without
the button. The Notifier runs on a fake clock; Slack is FakeSlack on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import aiohttp
import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from daemon.api import acks, server
from daemon.clock import FakeClock
from daemon.config.load import parse_config
from daemon.notify.acknowledge import ACK_ACTION, ack_token, slack_signature
from daemon.notify.notification import build_integrations, close_integrations
from daemon.notify.pipeline import Notifier
from daemon.rules.sink import OutgoingAlert
from daemon.store import MemoryStateStore
from daemon.testing.slack import FakeSlack, SlackMessage

T0 = time.time()
TOKEN = "xoxb-slack-ack"
SECRET = "slack-ack-signing-secret"
WEBHOOK = "T000/B000/ACK"
CONFIG = """
route:
  receiver: info
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 4h
  routes:
    - matchers: [priority="P0"]
      receiver: critical
      escalation: oncall
    - matchers: [priority="P1"]
      receiver: important
receivers:
  - name: critical
    slack_configs: [{api_url: "$api", token: $token, channel: "#alerts-critical", mention: "@here", update_message: true}]
  - name: important
    slack_configs: [{api_url: "$webhook", channel: "#alerts-important"}]
  - name: info
    slack_configs: [{api_url: "$api", token: $token, channel: "#alerts-info", update_message: true}]
  - name: oncall-engineer
    slack_configs: [{api_url: "$api", token: $token, channel: "#oncall", update_message: true}]
escalation_policies:
  - name: oncall
    levels: [{after: 0s, receivers: [oncall-engineer]}, {after: 5m, receivers: [oncall-engineer]}]
acknowledgements:
  slack_signing_secret: $secret
"""


BLOCKS_CLEARED: list[Any] = []  # chat.update with no blocks drops the button


def buttons(message: SlackMessage) -> list[dict[str, Any]]:
    """The Acknowledge buttons of a message as the fake holds it now."""
    return [
        element
        for block in message.body.get("blocks") or []
        if block.get("type") == "actions"
        for element in block.get("elements", [])
        if element.get("action_id") == ACK_ACTION
    ]


async def until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Let the loop run (deliveries to the fake are real I/O) until ``condition()``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


@pytest.fixture
async def rig() -> AsyncIterator[SimpleNamespace]:
    async with FakeSlack(tokens={TOKEN}) as slack, aiohttp.ClientSession() as session, httpx.AsyncClient() as http:
        text = CONFIG.replace("$api", slack.api_url).replace("$webhook", slack.webhook_url(WEBHOOK))
        config = parse_config(text.replace("$token", TOKEN).replace("$secret", SECRET))
        clock, store = FakeClock(T0), MemoryStateStore()
        integrations = {
            r.name: build_integrations(r, http=http, aiohttp_session=session, clock=clock, store=store) for r in config.receivers
        }
        notifier = Notifier(config, store, clock, CollectorRegistry(), integrations)
        await notifier.start()
        app = web.Application()
        app[server.DAEMON] = SimpleNamespace(notifier=notifier)  # type: ignore[misc]
        acks.add_routes(app)
        client = TestClient(TestServer(app))
        await client.start_server()

        def fire(name: str, priority: str, *, resolved: bool = False) -> None:
            now = clock.time()
            labels = {"alertname": name, "priority": priority, "severity": {"P0": "critical", "P1": "warning"}.get(priority, "info")}
            notifier.receive([OutgoingAlert(labels, {}, T0, now if resolved else now + 3600, "", resolved=resolved)])

        async def click(message: SlackMessage, user: str = "bob", secret: str = SECRET) -> Any:
            (button,) = buttons(message)
            payload = {"type": "block_actions", "user": {"id": "U0BOB", "username": user}, "actions": [button]}
            body = urlencode({"payload": json.dumps(payload)}).encode()
            timestamp = str(int(clock.time()))
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": timestamp,
                "X-Slack-Signature": slack_signature(secret, timestamp, body),
            }
            return await client.post("/slack/interactions", data=body, headers=headers)

        try:
            yield SimpleNamespace(slack=slack, notifier=notifier, clock=clock, fire=fire, click=click, client=client)
        finally:
            await client.close()
            await notifier.stop()
            await close_integrations(integrations)


async def fire_all(rig: SimpleNamespace) -> None:
    rig.fire("SiteDown", "P0")
    rig.fire("SlowPages", "P1")
    rig.fire("DiskAlmostFull", "P2")
    await rig.clock.advance(1)
    channels = ("#alerts-critical", "#alerts-important", "#alerts-info", "#oncall")
    await until(lambda: all(rig.slack.messages.get(c) for c in channels), "the first notifications")


async def test_p0_and_p1_messages_carry_the_button_p2_does_not(rig: SimpleNamespace) -> None:
    await fire_all(rig)
    messages = {channel: list(found) for channel, found in rig.slack.messages.items()}
    assert {c: len(m) for c, m in messages.items()} == {"#alerts-critical": 1, "#alerts-important": 1, "#alerts-info": 1, "#oncall": 1}
    (critical,), (important,), (info,), (oncall,) = (messages[c] for c in ("#alerts-critical", "#alerts-important", "#alerts-info", "#oncall"))

    group = '{}/{priority="P0"}:{alertname="SiteDown"}'
    keys = {g.labels["alertname"]: g.key for g in rig.notifier.dispatcher.all_groups()}
    assert keys["SiteDown"] == group
    for message, name in ((critical, "SiteDown"), (oncall, "SiteDown"), (important, "SlowPages")):
        (button,) = buttons(message)
        assert button["type"] == "button" and button["text"] == {"type": "plain_text", "text": "Acknowledge"}
        # The escalation level's message names the same group as the route's.
        assert button["value"] == ack_token(keys[name])
        # The blocks show the message's text (clients that render blocks show nothing else).
        sections = [b["text"]["text"] for b in message.body["blocks"] if b["type"] == "section"]
        assert "".join(sections) == message.text
    assert important.body["channel"] == "#alerts-important"  # through the incoming webhook
    assert buttons(info) == [] and "blocks" not in info.body

    # Resolved: the edited message has no button.
    rig.fire("SiteDown", "P0", resolved=True)
    await rig.clock.advance(61)
    await until(lambda: bool(rig.slack.messages["#alerts-critical"][0].edits), "the resolved edit")
    (resolved,) = rig.slack.messages["#alerts-critical"]
    assert resolved.text.startswith("✅ *critical* - SiteDown (resolved)") and buttons(resolved) == []


async def test_a_signed_click_acknowledges_and_edits_the_messages(rig: SimpleNamespace) -> None:
    await fire_all(rig)
    (critical,) = rig.slack.messages["#alerts-critical"]
    (oncall,) = rig.slack.messages["#oncall"]
    before = (critical.text, oncall.text)
    (button,) = buttons(oncall)

    forged = await rig.click(oncall, user="mallory", secret="not-the-secret")
    assert forged.status == 401
    assert rig.notifier.escalator.acks() == [] and critical.edits == [] and oncall.edits == []

    # The button of the escalation level's message acknowledges the whole group.
    answer = await rig.click(oncall)
    assert answer.status == 200
    assert (await answer.json())["text"] == "Acknowledged by bob."
    assert [(a.by, a.via, a.alertnames) for a in rig.notifier.escalator.acks()] == [("bob", "slack", ("SiteDown",))]

    # Both messages are edited in place: the same text, a line saying who acknowledged, no button.
    await until(lambda: bool(critical.edits and oncall.edits), "the messages edited")
    for message, text in zip((critical, oncall), before):
        assert message.edits == [text]
        assert message.text == text.removeprefix("<!here>\n") + "\n✅ Acknowledged by bob via slack"
        assert buttons(message) == [] and message.body.get("blocks") == BLOCKS_CLEARED, message.body
    updates = [r for r in rig.slack.requests if r.path == "/api/chat.update"]
    assert len(updates) == 2
    assert {m.channel for m in rig.slack.all_messages()} == {"#alerts-critical", "#alerts-important", "#alerts-info", "#oncall"}

    # Escalation stopped: level 2 (5 min) never goes out.
    await rig.clock.advance(10 * 60)
    await asyncio.sleep(0.2)
    assert len(rig.slack.messages["#oncall"]) == 1

    # A second click (on a copy of the message that still shows the button) changes nothing.
    stale = SlackMessage(oncall.channel, oncall.ts, before[1], {"blocks": [{"type": "actions", "elements": [button]}]})
    again = await rig.click(stale, user="dave")
    assert (await again.json())["text"] == "Acknowledged by bob."
    assert [a.by for a in rig.notifier.escalator.acks()] == ["bob"]
    await asyncio.sleep(0.2)
    assert len(critical.edits) == 1 and len(oncall.edits) == 1


async def test_an_ack_of_a_webhook_message_posts_a_line(rig: SimpleNamespace) -> None:
    """An incoming webhook cannot edit what it posted: the acknowledgement is a message of its own."""
    await fire_all(rig)
    answer = await rig.client.post("/api/v1/acks", json={"matchers": ["alertname=SlowPages"], "by": "carol", "comment": "looking"})
    assert answer.status == 200
    await until(lambda: len(rig.slack.messages["#alerts-important"]) == 2, "the acknowledgement line")
    first, line = rig.slack.messages["#alerts-important"]
    assert first.edits == [] and len(buttons(first)) == 1
    assert line.text == "✅ Acknowledged by carol via api: looking" and buttons(line) == []


async def test_a_click_on_a_resolved_group_says_so(rig: SimpleNamespace) -> None:
    await fire_all(rig)
    (critical,) = rig.slack.messages["#alerts-critical"]
    posted = dict(critical.body)
    rig.fire("SiteDown", "P0", resolved=True)
    await asyncio.sleep(0)
    stale = SlackMessage(critical.channel, critical.ts, critical.text, posted)  # the message as the user still sees it
    answer = await rig.click(stale)
    assert answer.status == 200
    assert (await answer.json())["text"] == "These alerts are resolved: nothing to acknowledge."
    assert rig.notifier.escalator.acks() == []
