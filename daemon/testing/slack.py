"""A fake Slack on 127.0.0.1: ``chat.postMessage``, ``chat.update`` and incoming webhooks.

It keeps the messages it was sent (by channel, with ``ts`` and threads), records every request,
and answers with failures on demand, one planned answer per request::

    async with FakeSlack(tokens={"xoxb-test"}) as slack:
        slack.fail_next(status=429, retry_after=7)       # rate limited, once
        slack.fail_next(error="channel_not_found")       # ok: false, once
        slack.fail_next(status=500)
        ... point api_url at slack.api_url (bot token) or slack.webhook_url("T/B/X") ...
        slack.messages["#alerts-critical"][0].text

From a shell, ``python -m daemon.testing.slack --host 0.0.0.0 --port 8081`` serves one until
SIGINT or SIGTERM.

Channels are known by name; the answers give a channel id ``C`` + the name's hash, and either
form is accepted afterwards.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from daemon.testing.server import FakeServer, serve_from_command_line


@dataclass
class SlackMessage:
    """A message as the fake keeps it; ``edits`` are the texts it had before ``chat.update``."""

    channel: str
    ts: str
    text: str
    body: dict[str, Any]
    thread_ts: str | None = None
    edits: list[str] = field(default_factory=list)


@dataclass
class RecordedRequest:
    """One request the fake received: its path, headers and decoded body (JSON or form)."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class _Planned:
    status: int = 200
    error: str | None = None
    retry_after: float | None = None


class FakeSlack(FakeServer):
    """An aiohttp server imitating the parts of Slack alertd uses. ``tokens`` empty = any token."""

    def __init__(self, tokens: set[str] | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.tokens = set(tokens or ())
        self.requests: list[RecordedRequest] = []
        self.messages: dict[str, list[SlackMessage]] = {}
        self.archived: set[str] = set()
        self._planned: deque[_Planned] = deque()
        self._ts = itertools.count(1)

    # -- test controls ------------------------------------------------------------------------

    def fail_next(self, *, status: int = 200, error: str | None = None, retry_after: float | None = None) -> None:
        """Answer the next request with this failure: an HTTP status, or ``ok: false`` + ``error``."""
        self._planned.append(_Planned(status=status, error=error, retry_after=retry_after))

    @property
    def api_url(self) -> str:
        """The Web API base to give a bot-token config as ``api_url``."""
        return f"http://{self._host}:{self._port}/api/"

    def webhook_url(self, path: str = "T000/B000/XXX") -> str:
        """An incoming webhook URL; messages posted to it land in channel ``webhook:<path>`` unless
        the body names a channel."""
        return f"http://{self._host}:{self._port}/services/{path}"

    def all_messages(self) -> list[SlackMessage]:
        return [m for messages in self.messages.values() for m in messages]

    # -- server -------------------------------------------------------------------------------

    def _application(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_post("/api/chat.postMessage", self._post_message)
        app.router.add_post("/api/chat.update", self._update)
        app.router.add_post("/services/{path:.*}", self._webhook)
        return app

    async def _read(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        if request.content_type == "application/x-www-form-urlencoded":
            body: dict[str, Any] = dict((await request.post()).items())
        else:
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {"_invalid": raw.decode(errors="replace")}
        self.requests.append(RecordedRequest(request.path, dict(request.headers), body))
        return body

    def _planned_answer(self, api: bool) -> web.Response | None:
        if not self._planned:
            return None
        plan = self._planned.popleft()
        headers = {"Retry-After": str(int(plan.retry_after))} if plan.retry_after is not None else {}
        if plan.error is not None and api:
            return web.json_response({"ok": False, "error": plan.error}, status=plan.status, headers=headers)
        if plan.error is not None:
            return web.Response(text=plan.error, status=plan.status if plan.status != 200 else 400, headers=headers)
        text = "rate limited" if plan.status == 429 else "server error"
        if api and plan.status == 429:
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429, headers=headers)
        return web.Response(text=text, status=plan.status, headers=headers)

    def _auth_error(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return web.json_response({"ok": False, "error": "not_authed"})
        if self.tokens and auth[len("Bearer ") :] not in self.tokens:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        return None

    def _channel(self, name: str) -> str | None:
        """The channel's name for a name or an id the fake gave out."""
        for known in self.messages:
            if name in (known, channel_id(known)):
                return known
        return name or None

    async def _post_message(self, request: web.Request) -> web.Response:
        body = await self._read(request)
        answer = self._planned_answer(api=True) or self._auth_error(request)
        if answer is not None:
            return answer
        channel = self._channel(str(body.get("channel", "")))
        if channel is None:
            return web.json_response({"ok": False, "error": "channel_not_found"})
        if channel in self.archived:
            return web.json_response({"ok": False, "error": "is_archived"})
        if not body.get("text") and not body.get("attachments") and not body.get("blocks"):
            return web.json_response({"ok": False, "error": "no_text"})
        thread_ts = body.get("thread_ts")
        if thread_ts and not any(m.ts == thread_ts for m in self.messages.get(channel, [])):
            return web.json_response({"ok": False, "error": "thread_not_found"})
        message = SlackMessage(channel, self._next_ts(), str(body.get("text", "")), body, thread_ts=thread_ts)
        self.messages.setdefault(channel, []).append(message)
        return web.json_response({"ok": True, "channel": channel_id(channel), "ts": message.ts, "message": {"text": message.text}})

    async def _update(self, request: web.Request) -> web.Response:
        body = await self._read(request)
        answer = self._planned_answer(api=True) or self._auth_error(request)
        if answer is not None:
            return answer
        channel = self._channel(str(body.get("channel", "")))
        for message in self.messages.get(channel or "", []):
            if message.ts == body.get("ts"):
                message.edits.append(message.text)
                message.text = str(body.get("text", ""))
                message.body = body
                return web.json_response({"ok": True, "channel": channel_id(message.channel), "ts": message.ts, "text": message.text})
        return web.json_response({"ok": False, "error": "message_not_found"})

    async def _webhook(self, request: web.Request) -> web.Response:
        body = await self._read(request)
        answer = self._planned_answer(api=False)
        if answer is not None:
            return answer
        if "_invalid" in body:
            return web.Response(text="invalid_payload", status=400)
        if not body.get("text") and not body.get("attachments") and not body.get("blocks"):
            return web.Response(text="no_text", status=400)
        channel = str(body.get("channel") or f"webhook:{request.match_info['path']}")
        message = SlackMessage(channel, self._next_ts(), str(body.get("text", "")), body)
        self.messages.setdefault(channel, []).append(message)
        return web.Response(text="ok")

    def _next_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"


def channel_id(name: str) -> str:
    """The id the fake gives a channel name."""
    return "C" + hashlib.sha1(name.encode()).hexdigest()[:10].upper()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m daemon.testing.slack``: serve a fake Slack; 0 after SIGINT/SIGTERM, 1 if it cannot listen."""

    def add_token(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--token", action="append", default=[], help="a bot token to accept (repeatable; default: any token)")

    return serve_from_command_line(
        argv,
        module="daemon.testing.slack",
        name="Slack",
        description="A fake Slack Web API and incoming webhooks.",
        default_port=8081,
        make=lambda args: FakeSlack(tokens=set(args.token), host=args.host, port=args.port),
        banner=lambda slack: f"fake Slack: Web API at {slack.api_url}, incoming webhooks at {slack.webhook_url('<path>')}",
        add_arguments=add_token,
    )


if __name__ == "__main__":
    sys.exit(main())
