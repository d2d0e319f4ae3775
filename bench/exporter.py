"""Run the synthetic exporter as a standalone scrape target (or a fleet of them).

    python -m bench.exporter --series 2500 --port 9100 [--host 127.0.0.1] [--targets N]

Serves ``/metrics`` until SIGINT or SIGTERM, then shuts down cleanly. With ``--targets N`` it
serves N independent exporters (seeds seed..seed+N-1) on ports port..port+N-1.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from daemon.testing.exporter import ExporterServer, SyntheticExporter, serve

__all__ = ["ExporterServer", "SyntheticExporter", "serve", "main"]


async def _run(series: int, host: str, port: int, seed: int, targets: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    servers: list[ExporterServer] = []
    try:
        for i in range(targets):
            exporter = SyntheticExporter(series, seed=seed + i)
            servers.append(await serve(exporter, host, port + i if port else 0))
            print(f"serving {exporter.series} series at {servers[-1].url}", flush=True)
        await stop.wait()
    finally:
        for server in servers:
            await server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.exporter", description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=2500, help="about how many series to expose")
    parser.add_argument("--port", type=int, default=9100, help="TCP port (0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--seed", type=int, default=0, help="seed of the series set and values")
    parser.add_argument("--targets", type=int, default=1, help="how many exporters, on consecutive ports")
    args = parser.parse_args(argv)
    if args.series < 1:
        parser.error("--series must be at least 1")
    if args.targets < 1:
        parser.error("--targets must be at least 1")
    asyncio.run(_run(args.series, args.host, args.port, args.seed, args.targets))


if __name__ == "__main__":
    main()
