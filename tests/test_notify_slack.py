"""Slack over real sockets: the fake Slack's incoming webhook and Web API, with failures on demand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from daemon.clock import FakeClock
from daemon.config.receivers import ReceiverConfig
from daemon.dispatch.alert import Alert
from daemon.notify.notification import DeliveryError, Notification, build_integrations
from daemon.notify.slack import STATE_KIND, SlackIntegration
from daemon.store import MemoryStateStore
from daemon.testing.slack import FakeSlack, channel_id
from daemon.tsdb.labels import Labels

NOW = 1_700_000_000.0
URL = "http://prometheus:9090/graph?g0.expr=up%7Bjob%3D%22api%22%7D%20%3D%3D%200&g0.tab=1"


def alert(name: str = "SiteDown", severity: str = "P0", resolved: bool = False, **labels: str) -> Alert:
    return Alert(
        labels=Labels.of({"alertname": name, "severity": severity, **labels}),
        annotations={"summary": "down"},
        starts_at=NOW - 120,
        ends_at=NOW - 1 if resolved else NOW + 300,
        generator_url=URL,
    )


def notification(*alerts: Alert, group_key: str = '{}:{alertname="SiteDown"}') -> Notification:
    return Notification("team", group_key, {"alertname": "SiteDown"}, alerts, "http://alertd:9095", NOW)


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(tokens={"xoxb-test"}) as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def integration(config: dict[str, Any], session: aiohttp.ClientSession, store: MemoryStateStore | None = None) -> SlackIntegration:
    receiver = ReceiverConfig.model_validate({"name": "team", "slack_configs": [config]})
    (built,) = build_integrations(receiver, http=None, aiohttp_session=session, clock=FakeClock(NOW), store=store)  # type: ignore[arg-type]
    assert isinstance(built, SlackIntegration)
    return built


async def test_incoming_webhook_posts_the_specification_format(slack: FakeSlack, session: aiohttp.ClientSession) -> None:
    hook = integration({"api_url": slack.webhook_url(), "channel": "#alerts-critical", "mention": "@here"}, session)
    await hook.notify(notification(alert(instance="web-1:80")))
    (message,) = slack.messages["#alerts-critical"]
    assert message.text.splitlines() == [
        "<!here>",
        "🚨 *P0* - SiteDown",
        "📊 *Métrique*: up = n/a",
        "🎯 *Seuil*: 0",
        "⏰ *Temps*: 2023-11-14 22:11:20 UTC",
        "🔗 *Lien*: " + URL.replace("&", "&amp;"),  # Slack shows &amp; as &
    ]


async def test_mentions_by_channel_and_none(slack: FakeSlack, session: aiohttp.ClientSession) -> None:
    for channel, mention in (("#alerts-important", "@channel"), ("#alerts-info", "none")):
        bot = integration({"api_url": slack.api_url, "token": "xoxb-test", "channel": channel, "mention": mention}, session)
        await bot.notify(notification(alert(severity="P1" if mention == "@channel" else "P2")))
    assert slack.messages["#alerts-important"][0].text.startswith("<!channel>\n🚨 *P1* - SiteDown")
    assert slack.messages["#alerts-info"][0].text.startswith("🚨 *P2* - SiteDown")
    assert all(r.headers["Authorization"] == "Bearer xoxb-test" for r in slack.requests)


async def test_update_message_threads_follow_ups_and_edits_on_resolve_across_restarts(
    slack: FakeSlack, session: aiohttp.ClientSession
) -> None:
    store = MemoryStateStore()
    config = {"api_url": slack.api_url, "token": "xoxb-test", "channel": "#alerts-critical", "mention": "@here", "update_message": True}
    await integration(config, session, store).notify(notification(alert()))
    await integration(config, session, store).notify(notification(alert(), alert(instance="b")))
    # A new integration (a restart: same store, nothing in memory) finds the message again.
    await integration(config, session, store).notify(notification(alert(resolved=True), alert(instance="b", resolved=True)))
    first, reply = slack.messages["#alerts-critical"]
    assert reply.thread_ts == first.ts and reply.text.startswith("<!here>")
    assert first.edits and first.edits[0].startswith("<!here>\n🚨 *P0*")
    assert first.text.startswith("✅ *P0* - SiteDown (resolved)") and "<!here>" not in first.text
    assert store.load(STATE_KIND) == {}
    # The next firing starts a new message.
    await integration(config, session, store).notify(notification(alert()))
    assert len(slack.messages["#alerts-critical"]) == 3 and slack.messages["#alerts-critical"][2].thread_ts is None


async def test_resolve_of_a_lost_message_posts_a_new_one(slack: FakeSlack, session: aiohttp.ClientSession) -> None:
    store = MemoryStateStore()
    config = {"api_url": slack.api_url, "token": "xoxb-test", "channel": "#c", "update_message": True}
    bot = integration(config, session, store)
    await bot.notify(notification(alert()))
    slack.messages["#c"].clear()  # deleted in Slack meanwhile
    await bot.notify(notification(alert(resolved=True)))
    (message,) = slack.messages["#c"]
    assert message.text.startswith("✅")


@pytest.mark.parametrize(
    ("plan", "retryable", "retry_after", "text"),
    [
        ({"status": 429, "retry_after": 7}, True, 7.0, "ratelimited"),
        ({"status": 500}, True, None, "HTTP 500"),
        ({"status": 503}, True, None, "HTTP 503"),
        ({"error": "channel_not_found"}, False, None, "channel_not_found"),
        ({"error": "invalid_auth"}, False, None, "invalid_auth"),
        ({"error": "internal_error"}, True, None, "internal_error"),
    ],
)
async def test_web_api_failures_are_classified(
    slack: FakeSlack, session: aiohttp.ClientSession, plan: dict[str, Any], retryable: bool, retry_after: float | None, text: str
) -> None:
    bot = integration({"api_url": slack.api_url, "token": "xoxb-test", "channel": "#c"}, session)
    slack.fail_next(**plan)
    with pytest.raises(DeliveryError) as info:
        await bot.notify(notification(alert()))
    assert (info.value.retryable, info.value.retry_after) == (retryable, retry_after)
    assert text in str(info.value)
    # One attempt per call: the next one goes through.
    await bot.notify(notification(alert()))
    assert len(slack.messages["#c"]) == 1


@pytest.mark.parametrize(
    ("plan", "retryable", "retry_after"),
    [({"status": 429, "retry_after": 3}, True, 3.0), ({"status": 502}, True, None), ({"status": 404, "error": "channel_not_found"}, False, None)],
)
async def test_webhook_failures_are_classified(
    slack: FakeSlack, session: aiohttp.ClientSession, plan: dict[str, Any], retryable: bool, retry_after: float | None
) -> None:
    hook = integration({"api_url": slack.webhook_url()}, session)
    slack.fail_next(**plan)
    with pytest.raises(DeliveryError) as info:
        await hook.notify(notification(alert()))
    assert (info.value.retryable, info.value.retry_after) == (retryable, retry_after)


async def test_wrong_token_is_permanent(slack: FakeSlack, session: aiohttp.ClientSession) -> None:
    bot = integration({"api_url": slack.api_url, "token": "xoxb-wrong", "channel": "#c"}, session)
    with pytest.raises(DeliveryError) as info:
        await bot.notify(notification(alert()))
    assert not info.value.retryable and "invalid_auth" in str(info.value)


async def test_unreachable_slack_is_retryable(session: aiohttp.ClientSession) -> None:
    bot = integration({"api_url": "http://127.0.0.1:9/api/", "token": "x", "channel": "#c"}, session)
    with pytest.raises(DeliveryError) as info:
        await bot.notify(notification(alert()))
    assert info.value.retryable


async def test_label_values_cannot_inject_mentions_or_markup(slack: FakeSlack, session: aiohttp.ClientSession) -> None:
    hook = integration({"api_url": slack.webhook_url(), "text": "{alert_name} on {instance}"}, session)
    evil = alert(name="<!channel> & <@U123>", instance="a\r\nb <https://evil|click>")
    await hook.notify(notification(evil))
    (message,) = slack.all_messages()
    assert "<!channel>" not in message.text and "<@U123>" not in message.text and "<https://evil" not in message.text
    assert "&lt;!channel&gt; &amp; &lt;@U123&gt; on a\r\nb &lt;https://evil|click&gt;" == message.text


async def test_huge_values_are_cut(slack: FakeSlack, session: aiohttp.ClientSession) -> None:
    hook = integration({"api_url": slack.webhook_url(), "text": "{alert_name} {big}"}, session)
    await hook.notify(notification(alert(big="x" * 100_000)))
    (message,) = slack.all_messages()
    assert len(message.text) < 4000 and message.text.endswith("…")


async def test_attachment_keys_and_channel_ids(slack: FakeSlack, session: aiohttp.ClientSession) -> None:
    bot = integration(
        {
            "api_url": slack.api_url + "chat.postMessage",
            "http_config": {"authorization": {"credentials": "xoxb-test"}},
            "channel": "#ops",
            "title": "{alert_name}",
            "title_link": "{dashboard_url}",
            "username": "alertd",
            "fields": [{"title": "Instance", "value": "{instance}", "short": True}],
        },
        session,
    )
    await bot.notify(notification(alert(instance="db-1")))
    (message,) = slack.messages["#ops"]
    assert message.body["username"] == "alertd" and message.text.startswith(f"*<{URL}|SiteDown>*")
    assert message.body["attachments"] == [{"fields": [{"title": "Instance", "value": "db-1", "short": True}], "color": "danger"}]
    assert channel_id("#ops").startswith("C")
