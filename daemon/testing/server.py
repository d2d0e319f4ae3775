"""The life cycle every fake HTTP peer shares: listen on ``host:port``, answer, stop.

A fake (FakeTarget, FakeSlack, FakePagerDuty) subclasses ``FakeServer`` and builds its
``web.Application`` in ``_application()``; the rest is here::

    async with FakeSlack() as slack:     # or await slack.start() ... await slack.stop()
        ... slack.api_url ...

and ``serve_from_command_line`` is the ``main()`` of each fake's ``python -m`` command line,
which the docker-compose demo runs.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Self, TypeVar

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


F = TypeVar("F", bound=FakeServer)


async def serve_until_signalled(server: FakeServer, banner: Callable[[], str]) -> None:
    """Run ``server`` until SIGINT or SIGTERM; print ``banner()`` once it listens."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        print(banner(), flush=True)
        await stop.wait()


def serve_from_command_line(
    argv: Sequence[str] | None,
    *,
    module: str,
    name: str,
    description: str,
    default_port: int,
    make: Callable[[argparse.Namespace], F],
    banner: Callable[[F], str],
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> int:
    """``python -m <module> [--host H] [--port P] ...``: serve the fake ``make(args)`` until
    SIGINT or SIGTERM and return 0, or 1 with one line on stderr if it cannot listen.

    ``add_arguments`` adds the fake's own options to ``--host`` and ``--port``.
    """
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=default_port, help=f"port to listen on (default {default_port})")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    server = make(args)
    try:
        asyncio.run(serve_until_signalled(server, lambda: banner(server)))
    except OSError as exc:
        print(f"fake {name} cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
