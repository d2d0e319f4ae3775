"""The heartbeat on a fake clock: pings and the Watchdog alert only while the pipeline is healthy."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import CollectorRegistry

from daemon.clock import FakeClock
from daemon.config import ConfigError, parse_config
from daemon.dispatch.alerts import AlertStore
from daemon.notify.heartbeat import WATCHDOG, Heartbeat

T0 = 1_700_000_000.0


def make(problems: list[str], status: int = 200) -> tuple[Heartbeat, list[httpx.Request], AlertStore, FakeClock]:
    clock = FakeClock(T0)
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(status)

    alerts = AlertStore(clock)
    beat = Heartbeat(
        clock=clock,
        health=lambda: problems,
        http=httpx.AsyncClient(transport=httpx.MockTransport(answer)),
        url="https://hc-ping.example.com/secret-uuid",
        method="POST",
        interval=60.0,
        alerts=alerts,
        labels={"cluster": "prod"},
        registry=CollectorRegistry(),
    )
    return beat, requests, alerts, clock


async def test_healthy_pings_and_keeps_the_watchdog_firing() -> None:
    beat, requests, alerts, clock = make([])
    assert await beat.beat()
    assert [(r.method, str(r.url)) for r in requests] == [("POST", "https://hc-ping.example.com/secret-uuid")]
    (alert,) = alerts.list()
    assert alert.labels.to_dict() == {"alertname": WATCHDOG, "severity": "none", "cluster": "prod"}
    assert not alert.resolved_at(T0 + 179) and alert.resolved_at(T0 + 180)
    await clock.advance(60)
    assert await beat.beat()
    (alert,) = alerts.list()
    assert alert.starts_at == T0 and not alert.resolved_at(T0 + 239)
    assert beat.pings.labels("ok")._value.get() == 2


async def test_unhealthy_pipeline_neither_pings_nor_refreshes_the_watchdog() -> None:
    problems = ["rule group api not evaluated for 300s"]
    beat, requests, alerts, _ = make(problems)
    assert not await beat.beat()
    assert requests == [] and alerts.list() == []
    assert beat.pings.labels("unhealthy")._value.get() == 1


async def test_a_failing_ping_is_counted_and_does_not_stop_the_watchdog() -> None:
    beat, requests, alerts, _ = make([], status=500)
    assert await beat.beat()
    assert len(requests) == 1 and len(alerts.list()) == 1
    assert beat.pings.labels("failed")._value.get() == 1


def test_heartbeat_config() -> None:
    config = parse_config("heartbeat: {url: 'https://hc-ping.com/x', interval: 30s, method: POST, watchdog: true}\n")
    assert config.heartbeat is not None
    assert (config.heartbeat.interval, config.heartbeat.method, config.heartbeat.watchdog) == (30.0, "POST", True)
    assert parse_config("").heartbeat is None
    with pytest.raises(ConfigError, match="heartbeat.url: must be an http"):
        parse_config("heartbeat: {url: 'ftp://x'}\n")
    with pytest.raises(ConfigError, match="heartbeat.method"):
        parse_config("heartbeat: {url: 'https://x', method: PUT}\n")


def test_readme_heartbeat_example_loads() -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    (example,) = re.findall(r"```yaml heartbeat\n(.*?)```", readme, flags=re.S)
    config = parse_config(example)
    assert config.heartbeat is not None and config.heartbeat.watchdog
