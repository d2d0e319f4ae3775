"""The life cycle every fake HTTP peer shares: listen on ``host:port``, answer, stop.

A fake (FakeTarget, FakeSlack, FakePagerDuty) subclasses ``FakeServer`` and builds its
``web.Application`` in ``_application()``; the rest is here::

    async with FakeSlack() as slack:     # or await slack.start() ... await slack.stop()
        ... slack.api_url ...
"""

from __future__ import annotations

from typing import Self

from aiohttp import web


class FakeServer:
    """An aiohttp server on ``host:port``; ``port=0`` takes a free port, the bound one is known
    after ``start()``. ``stop()`` may be called more than once, and before ``start()``.

    The server installs no signal handlers: it runs inside tests and daemons that own theirs.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None

    def _application(self) -> web.Application:
        """The routes this fake answers, built anew for each ``start()``."""
        raise NotImplementedError

    async def start(self) -> None:
        self._runner = web.AppRunner(self._application(), access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
