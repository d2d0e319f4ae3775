"""Probes inside the daemon: started with it, changed by a config reload, stopped with it."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

from daemon.app import App
from daemon.clock import FakeClock
from daemon.config import load_config
from daemon.tsdb import parse_selector

CONFIG = """
web: {{listen: "127.0.0.1:0"}}
probes:
  - job_name: database
    prober: tcp
    interval: 15s
    timeout: 2s
    targets: [{targets}]
"""


async def _accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def test_app_runs_probes_and_reloads_them(tmp_path: Path) -> None:
    server = await asyncio.start_server(_accept, "127.0.0.1", 0)
    up = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    path = tmp_path / "alertd.yml"
    path.write_text(CONFIG.format(targets=f'"{up}"'))
    clock = FakeClock()
    app = App(load_config(path), config_path=str(path), data_dir=tmp_path / "data", clock=clock)
    store = app.store
    await app.start()
    try:
        await clock.advance(15)
        async with asyncio.timeout(10):  # the connection itself is real
            while not store.select(parse_selector("probe_success")):
                await asyncio.sleep(0.01)
        (series,) = store.select(parse_selector(f'probe_success{{job="database",instance="{up}"}}'))
        assert series.last() is not None and series.last()[1] == 1.0  # type: ignore[index]

        path.write_text(CONFIG.format(targets='"no-such-host.invalid:5432"'))
        assert await app.reload() is None
        assert [loop.target for loop in app.probes.loops()["database"]] == ["no-such-host.invalid:5432"]
        assert math.isnan(series.last()[1])  # type: ignore[index]
    finally:
        await app.stop()
        server.close()
        await server.wait_closed()
    assert app.probes.loops() == {}
