"""Slack receiver: an incoming webhook, or a bot token with the Web API (slack_sdk's async clients).

Both run on the one long-lived aiohttp session they are given. With a bot token and
``update_message: true``, the first firing notification of a group is posted and its message
``ts`` kept in the state store (kind ``slack_message``), so that later notifications of the group
are posted in its thread and the resolved one edits it in place (``chat.update``), also after a
restart.

Each ``notify`` is one attempt: slack_sdk's own retry handlers are off, because they sleep on the
real clock outside the pipeline's deadline; a 429 becomes a retryable ``DeliveryError`` carrying
``Retry-After`` instead. ``ok: false`` answers are permanent unless the error names a passing
condition (``ratelimited``, ``internal_error``, ...).
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from daemon.clock import Clock
from daemon.config.receivers import SLACK_MENTIONS, SlackConfig
from daemon.notify.acknowledge import ack_blocks, is_urgent
from daemon.notify.message import first_fields, render, render_alerts, slack_escape, truncate
from daemon.notify.notification import DeliveryError, Notification, describe, parse_retry_after, retryable_status, ssl_context
from daemon.store import StateStore

STATE_KIND = "slack_message"
FIELD_LIMIT = 3000
MESSAGE_LIMIT = 39000  # Slack cuts messages at 40,000 characters
TIMEOUT = 30
RETRYABLE_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org"}
)
# chat.update failures after which a new message is posted instead.
LOST_MESSAGE_ERRORS = frozenset({"message_not_found", "cant_update_message", "edit_window_closed", "channel_not_found", "is_archived"})


def message_key(receiver: str, index: int, group_key: str) -> str:
    """The state store key of a group's message for one Slack config of a receiver."""
    digest = hashlib.sha256(f"{receiver}\x00{index}\x00{group_key}".encode()).hexdigest()
    return digest[:40]


class SlackError(DeliveryError):
    """A failed Slack call; ``code`` is the ``ok: false`` error (or the webhook's answer body)."""

    def __init__(self, code: str, status: int, retry_after: float | None) -> None:
        retryable = retryable_status(status) or code in RETRYABLE_ERRORS
        super().__init__(
            f"slack: {code or 'HTTP ' + str(status)}" + (f" (HTTP {status})" if code and status != 200 else ""),
            retryable=retryable,
            retry_after=retry_after if retryable else None,
        )
        self.code = code


class SlackIntegration:
    """One ``slack_configs`` entry."""

    name = "slack"

    def __init__(
        self,
        receiver: str,
        index: int,
        config: SlackConfig,
        *,
        session: aiohttp.ClientSession,
        store: StateStore,
        clock: Clock,
    ) -> None:
        self.receiver = receiver
        self.index = index
        self.config = config
        self.send_resolved = config.send_resolved
        self._store = store
        self._clock = clock
        tls = config.http_config.tls_config if config.http_config is not None else None
        ssl = ssl_context(tls) if tls is not None else None
        proxy = config.http_config.proxy_url if config.http_config is not None else None
        token = config.bot_token()
        self._web: AsyncWebClient | None = None
        self._hook: AsyncWebhookClient | None = None
        if token is not None:
            self._web = AsyncWebClient(
                token=token.reveal(), base_url=config.api_base(), timeout=TIMEOUT, ssl=ssl, proxy=proxy, session=session, retry_handlers=[]
            )
        else:
            assert config.api_url is not None  # checked at load
            headers = config.http_config.auth_headers() if config.http_config is not None else {}
            self._hook = AsyncWebhookClient(
                config.api_url.reveal(), timeout=TIMEOUT, ssl=ssl, proxy=proxy, session=session, default_headers=headers, retry_handlers=[]
            )

    # -- message ------------------------------------------------------------------------------

    def message(self, notification: Notification, *, mention: bool = True) -> dict[str, Any]:
        """The message body (``text`` and the optional keys) for ``notification``."""
        config = self.config
        fields = first_fields(notification)
        lines = []
        tag = SLACK_MENTIONS.get(config.mention, config.mention)
        if mention and tag and notification.status == "firing":
            lines.append(tag)
        title = render(config.title, fields, escape=slack_escape, limit=FIELD_LIMIT)
        if title:
            link = render(config.title_link, fields, limit=FIELD_LIMIT)
            lines.append(f"*<{link}|{title}>*" if link else f"*{title}*")
        if config.pretext:
            lines.append(render(config.pretext, fields, escape=slack_escape, limit=FIELD_LIMIT))
        lines.append(render_alerts(notification, config.text, config.resolved_text, escape=slack_escape, limit=FIELD_LIMIT))
        body: dict[str, Any] = {"text": truncate("\n".join(lines), MESSAGE_LIMIT)}
        for key in ("username", "icon_emoji", "icon_url"):
            value = getattr(config, key)
            if value:
                body[key] = render(value, fields, limit=FIELD_LIMIT)
        if config.link_names:
            body["link_names"] = True
        attachment = self._attachment(notification, fields)
        if attachment:
            body["attachments"] = [attachment]
        if notification.status == "firing" and is_urgent(notification.firing):
            # P0/P1 carry an "Acknowledge" button (handled at POST /slack/interactions).
            body["blocks"] = ack_blocks(body["text"], notification.group_key)
        return body

    async def show_acknowledgement(self, notification: Notification, line: str) -> None:
        """Edit the group's posted message (bot token with ``update_message``) to end with
        ``line`` and lose its button; otherwise post ``line`` as a message of its own."""
        body = self.message(notification, mention=False)
        body.pop("blocks", None)
        body["text"] = truncate(body["text"] + "\n" + line, MESSAGE_LIMIT)
        if self._hook is not None:
            await self._send_webhook({"text": line})
            return
        posted = self._store.load(STATE_KIND).get(message_key(self.receiver, self.index, notification.group_key))
        if posted is not None:
            await self._call("chat_update", channel=posted["channel"], ts=posted["ts"], blocks=[], **body)
            return
        channel = render(self.config.channel, first_fields(notification), limit=200)
        await self._call("chat_postMessage", channel=channel, text=line)

    def _attachment(self, notification: Notification, fields: dict[str, str]) -> dict[str, Any]:
        config = self.config
        attachment: dict[str, Any] = {}
        if config.color:
            attachment["color"] = render(config.color, fields, limit=100)
        if config.fields:
            attachment["fields"] = [
                {
                    "title": render(f.title, fields, escape=slack_escape, limit=FIELD_LIMIT),
                    "value": render(f.value, fields, escape=slack_escape, limit=FIELD_LIMIT),
                    "short": config.short_fields if f.short is None else f.short,
                }
                for f in config.fields
            ]
        for key in ("footer", "fallback", "image_url", "thumb_url"):
            value = getattr(config, key)
            if value:
                attachment[key] = render(value, fields, escape=slack_escape if key in ("footer", "fallback") else None, limit=FIELD_LIMIT)
        if attachment and "color" not in attachment:
            attachment["color"] = "danger" if notification.status == "firing" else "good"
        return attachment

    # -- delivery -----------------------------------------------------------------------------

    async def notify(self, notification: Notification) -> None:
        if self._hook is not None:
            await self._send_webhook(self.message(notification))
            return
        channel = render(self.config.channel, first_fields(notification), limit=200)
        if not self.config.update_message:
            await self._call("chat_postMessage", channel=channel, **self.message(notification))
            return
        key = message_key(self.receiver, self.index, notification.group_key)
        posted = self._store.load(STATE_KIND).get(key)
        if notification.status == "resolved":
            if posted is not None:
                try:
                    await self._call("chat_update", channel=posted["channel"], ts=posted["ts"], **self.message(notification))
                    self._store.delete(STATE_KIND, key)
                    return
                except SlackError as exc:
                    if exc.code not in LOST_MESSAGE_ERRORS:
                        raise
                    self._store.delete(STATE_KIND, key)
            await self._call("chat_postMessage", channel=channel, **self.message(notification))
            return
        if posted is not None:
            await self._call("chat_postMessage", channel=posted["channel"], thread_ts=posted["ts"], **self.message(notification))
            return
        data = await self._call("chat_postMessage", channel=channel, **self.message(notification))
        self._store.put(
            STATE_KIND,
            key,
            {"channel": data.get("channel") or channel, "ts": data.get("ts"), "group_key": notification.group_key, "posted_at": self._clock.time()},
        )

    async def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        assert self._web is not None
        try:
            response = await getattr(self._web, method)(**kwargs)
        except SlackApiError as exc:
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            retry_after = parse_retry_after(exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after"), self._clock.time())
            error = data.get("error") or describe(exc.response.data)
            raise SlackError(str(error), exc.response.status_code, retry_after) from None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise DeliveryError(f"slack: {type(exc).__name__}: {exc}", retryable=True) from None
        except ValueError as exc:  # a body that is not JSON, from a proxy for instance
            raise DeliveryError(f"slack: unreadable answer: {exc}", retryable=True) from None
        return dict(response.data) if isinstance(response.data, dict) else {}

    async def _send_webhook(self, body: dict[str, Any]) -> None:
        assert self._hook is not None
        if self.config.channel:
            body = {**body, "channel": self.config.channel}
        try:
            response = await self._hook.send_dict(body)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise DeliveryError(f"slack: {type(exc).__name__}: {exc}", retryable=True) from None
        if response.status_code == 200:
            return
        headers = response.headers or {}
        retry_after = parse_retry_after(headers.get("Retry-After") or headers.get("retry-after"), self._clock.time())
        raise SlackError(describe(response.body), response.status_code, retry_after)
