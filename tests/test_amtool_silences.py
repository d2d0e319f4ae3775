"""Debian's amtool (Alertmanager 0.25) against alertd's API v2 on 127.0.0.1: silence add, query and
expire, and alert add/query, exactly as an operator would type them."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from daemon.api import server
from daemon.clock import SystemClock
from daemon.config.load import parse_config
from daemon.notify.pipeline import Notifier
from daemon.store import SQLiteStateStore
from daemon.testing.alerts import RecordingIntegration

AMTOOL = shutil.which("amtool")
pytestmark = pytest.mark.skipif(
    AMTOOL is None, reason="amtool is not installed (Debian package prometheus-alertmanager)"
)

CONFIG = """
route:
  receiver: default
  routes:
    - matchers: ['severity="P0"']
      receiver: oncall
receivers:
  - name: default
  - name: oncall
"""


@dataclass
class FakeDaemon:
    notifier: Notifier


@dataclass
class Running:
    url: str
    notifier: Notifier


@pytest.fixture
async def alertd(tmp_path: Path) -> AsyncIterator[Running]:
    config = parse_config(CONFIG)
    store = SQLiteStateStore(tmp_path / "state.db")
    notifier = Notifier(config, store, SystemClock(), CollectorRegistry(), {r.name: [RecordingIntegration()] for r in config.receivers})
    runner = web.AppRunner(server.build(FakeDaemon(notifier)))  # type: ignore[arg-type]
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield Running(f"http://127.0.0.1:{port}", notifier)
    await runner.cleanup()
    store.close()


async def amtool(url: str, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        AMTOOL,  # type: ignore[arg-type]
        f"--alertmanager.url={url}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode or 0, out.decode(), err.decode()


async def test_silence_add_query_expire(alertd: Running) -> None:
    code, out, err = await amtool(
        alertd.url, "silence", "add", "alertname=Down", 'env=~"prod|staging"',
        "--comment=database upgrade", "--author=ops", "--duration=2h",
    )
    assert code == 0, err
    silence_id = out.strip()
    assert alertd.notifier.silences.get(silence_id) is not None

    code, out, err = await amtool(alertd.url, "silence", "query", "-o", "json")
    assert code == 0, err
    [listed] = json.loads(out)
    assert listed["id"] == silence_id and listed["status"]["state"] == "active"
    assert listed["createdBy"] == "ops" and listed["comment"] == "database upgrade"
    assert {(m["name"], m["value"], m["isRegex"]) for m in listed["matchers"]} == {
        ("alertname", "Down", False), ("env", "prod|staging", True)
    }

    code, out, err = await amtool(alertd.url, "silence", "query", "-q", "alertname=Down")
    assert (code, out.split()) == (0, [silence_id]), err
    code, out, err = await amtool(alertd.url, "silence", "query", "-q", "alertname=Other")
    assert (code, out.split()) == (0, []), err

    code, out, err = await amtool(alertd.url, "silence", "query")  # the simple table
    assert code == 0 and silence_id in out and "database upgrade" in out, err

    code, out, err = await amtool(alertd.url, "silence", "expire", silence_id)
    assert code == 0, err
    await asyncio.sleep(0.01)
    code, out, err = await amtool(alertd.url, "silence", "query", "-q")
    assert (code, out.split()) == (0, []), err
    code, out, err = await amtool(alertd.url, "silence", "query", "--expired", "-o", "json")
    assert code == 0, err
    assert [(s["id"], s["status"]["state"]) for s in json.loads(out)] == [(silence_id, "expired")]

    code, out, err = await amtool(alertd.url, "silence", "expire", "00000000-0000-4000-8000-000000000000")
    assert code != 0


async def test_silence_add_refused_with_alertmanagers_message(alertd: Running) -> None:
    code, out, err = await amtool(
        alertd.url, "silence", "add", "alertname=Down", "--comment=x", "--start=2000-01-01T00:00:00Z", "--end=2000-01-02T00:00:00Z"
    )
    assert code != 0
    assert "end time can't be in the past" in err


async def test_alert_add_and_query_with_silence_status(alertd: Running) -> None:
    code, _, err = await amtool(alertd.url, "alert", "add", "alertname=Down", "severity=P0", "--annotation=summary=db down")
    assert code == 0, err
    code, out, err = await amtool(alertd.url, "alert", "query", "-o", "json")
    assert code == 0, err
    [alert] = json.loads(out)
    assert alert["labels"] == {"alertname": "Down", "severity": "P0"}
    assert alert["receivers"] == [{"name": "oncall"}] and alert["status"]["state"] == "active"

    code, _, err = await amtool(alertd.url, "silence", "add", "severity=P0", "--comment=known")
    assert code == 0, err
    code, out, err = await amtool(alertd.url, "alert", "query", "-o", "json", "--silenced")
    assert code == 0, err
    assert [a["status"]["state"] for a in json.loads(out)] == ["suppressed"]
    code, out, err = await amtool(alertd.url, "alert", "query", "-o", "json")  # active only by default
    assert code == 0 and json.loads(out) == [], err
