"""A scrape target whose answers a test (or a user trying alertd out) sets at will."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from daemon.testing.server import FakeServer
from daemon.testing.threaded import ThreadedServer

TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Answer:
    """What the target answers to the next scrapes."""

    body: bytes = b""
    status: int = 200
    content_type: str = TEXT_FORMAT
    # Content-Encoding of ``body`` (e.g. "gzip"), when it is already compressed.
    encoding: str | None = None
    # Stream the body forever (a target with a runaway exposition).
    endless: bool = False
    # Send the headers, then never finish the body (a hung target).
    hang: bool = False


class FakeTarget(FakeServer):
    """An HTTP server on 127.0.0.1 that serves ``answer`` at every path and counts requests.

    Use as ``async with FakeTarget() as target:``; ``target.address`` is ``host:port``.
    """

    def __init__(self, answer: Answer | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.answer = answer or Answer()
        self.requests: list[web.Request] = []
        self._release = asyncio.Event()

    def set(self, body: str | bytes, **kwargs: object) -> None:
        """Answer with this body (and Answer fields) from now on."""
        self.answer = Answer(body=body.encode() if isinstance(body, str) else body, **kwargs)  # type: ignore[arg-type]

    @property
    def address(self) -> str:
        return f"{self._host}:{self._port}"

    def _application(self) -> web.Application:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        return app

    async def stop(self) -> None:
        # Hung and endless answers wait for this; the runner's cleanup would wait for them.
        self._release.set()
        await super().stop()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        answer = self.answer
        headers = {"Content-Type": answer.content_type}
        if answer.encoding:
            headers["Content-Encoding"] = answer.encoding
        if not (answer.endless or answer.hang):
            return web.Response(body=answer.body, status=answer.status, headers=headers)
        response = web.StreamResponse(status=answer.status, headers=headers)
        await response.prepare(request)
        if answer.hang:
            await response.write(answer.body[: len(answer.body) // 2])
            await self._release.wait()
            return response
        chunk = (answer.body or b"filler_metric 1\n") * 64
        try:
            while not self._release.is_set():
                await response.write(chunk)
        except ConnectionError:
            pass  # the scraper gave up, as it should
        return response


class ThreadedFakeTarget(ThreadedServer[FakeTarget]):
    """A FakeTarget on its own event loop in a thread, for synchronous callers (end-to-end tests).

    ``with ThreadedFakeTarget() as target: target.set("up_metric 1\\n")``.
    """

    def __init__(self, answer: Answer | None = None) -> None:
        super().__init__(FakeTarget(answer), name="fake-target")

    @property
    def target(self) -> FakeTarget:
        return self.server

    @property
    def address(self) -> str:
        return self.server.address

    def set(self, body: str | bytes, **kwargs: object) -> None:
        self.server.set(body, **kwargs)
