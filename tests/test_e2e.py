"""The real `alertd run` process: scraping, API, reload, shutdown, and what reaches its log."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from daemon.testing.process import DaemonProcess
from daemon.testing.target import ThreadedFakeTarget

pytestmark = pytest.mark.e2e

SECRET = "hunter2-do-not-log-me"

PAYLOAD = """# TYPE http_requests_total counter
http_requests_total{code="200",handler="/api"} 7
http_requests_total{code="500",handler="/api"} 1
"""


def config_for(*addresses: str, job: str = "app", extra: str = "") -> str:
    targets = ", ".join(f'"{a}"' for a in addresses)
    return f"""
global:
  scrape_interval: 1s
  scrape_timeout: 500ms
scrape_configs:
  - job_name: {job}
    basic_auth:
      username: alertd
      password: ${{ALERTD_TEST_PASSWORD}}
    static_configs:
      - targets: [{targets}]
        labels: {{team: web}}
{extra}
"""


@pytest.fixture
def target() -> Iterator[ThreadedFakeTarget]:
    with ThreadedFakeTarget() as fake:
        fake.set(PAYLOAD)
        yield fake


def api(daemon: DaemonProcess, path: str, **params: str) -> dict:
    response = httpx.get(daemon.url + path, params=params, timeout=5)
    return response.json()  # type: ignore[no-any-return]


def target_health(daemon: DaemonProcess) -> dict[str, str]:
    active = api(daemon, "/api/v1/targets")["data"]["activeTargets"]
    return {t["labels"]["instance"]: t["health"] for t in active}


def metric(daemon: DaemonProcess, name: str) -> float:
    for line in httpx.get(daemon.url + "/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise KeyError(name)


def test_scrapes_serves_api_reloads_and_stops(tmp_path: Path, target: ThreadedFakeTarget) -> None:
    config = tmp_path / "alertd.yml"
    config.write_text(config_for(target.address))
    env = {"ALERTD_TEST_PASSWORD": SECRET}
    with DaemonProcess(config, tmp_path / "data", env=env) as daemon:
        daemon.wait_ready()
        daemon.wait_for(lambda: target_health(daemon) == {target.address: "up"}, what="target up")
        (active,) = api(daemon, "/api/v1/targets")["data"]["activeTargets"]
        assert active["labels"] == {"instance": target.address, "job": "app", "team": "web"}
        assert active["scrapeUrl"] == f"http://{target.address}/metrics"
        assert active["scrapeInterval"] == "1s" and active["lastError"] == ""
        assert target.target.requests[-1].headers["Authorization"].startswith("Basic ")

        series = api(daemon, "/api/v1/series", **{"match[]": 'http_requests_total{code="500"}'})
        assert series["status"] == "success"
        assert series["data"] == [
            {"__name__": "http_requests_total", "code": "500", "handler": "/api", "instance": target.address,
             "job": "app", "team": "web"}
        ]
        labels = api(daemon, "/api/v1/labels")["data"]
        assert {"__name__", "code", "handler", "instance", "job", "team"} <= set(labels)
        names = api(daemon, "/api/v1/label/__name__/values")["data"]
        assert {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added",
                "scrape_samples_post_metric_relabeling", "http_requests_total"} <= set(names)
        bad = httpx.get(daemon.url + "/api/v1/series", params={"match[]": "up{"}, timeout=5)
        assert bad.status_code == 400 and bad.json()["errorType"] == "bad_data"
        assert metric(daemon, "alertd_config_last_reload_successful") == 1
        assert metric(daemon, "alertd_build_info") == 1

        # The target starts answering garbage: it goes down, the daemon stays up and logs why.
        target.set(b"\x00\x01\x02 garbage")
        daemon.wait_for(lambda: target_health(daemon) == {target.address: "down"}, what="target down")
        assert httpx.get(daemon.url + "/-/healthy", timeout=5).status_code == 200
        target.set(PAYLOAD)
        daemon.wait_for(lambda: target_health(daemon) == {target.address: "up"}, what="target up again")

        # An invalid config on SIGHUP is refused; the running config goes on.
        config.write_text(config_for(target.address) + "  - job_name: broken\n    scrape_interval: -5s\n")
        daemon.signal(signal.SIGHUP)
        daemon.wait_for(lambda: metric(daemon, "alertd_config_last_reload_successful") == 0, what="reload refused")
        assert target_health(daemon) == {target.address: "up"}
        assert "config reload refused" in daemon.log()

        # A valid one through the API replaces the job; its old series go stale.
        with ThreadedFakeTarget() as second:
            second.set("other_metric 1\n")
            config.write_text(config_for(second.address, job="other"))
            response = httpx.post(daemon.url + "/-/reload", timeout=10)
            assert response.status_code == 200, response.text
            assert metric(daemon, "alertd_config_last_reload_successful") == 1
            daemon.wait_for(lambda: target_health(daemon) == {second.address: "up"}, what="new target up")

        process = daemon.process
        assert process is not None
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0

    log = daemon.log()
    assert SECRET not in log
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert records and all("event" in r and "level" in r for r in records)
    assert any(r["event"] == "scrape failed" and target.address in r.get("url", "") for r in records)


def test_secrets_never_reach_the_log_even_in_errors(tmp_path: Path) -> None:
    secret_file = tmp_path / "token"
    secret_file.write_text(SECRET)
    config = tmp_path / "alertd.yml"
    config.write_text(
        f"""
scrape_configs:
  - job_name: guarded
    scrape_interval: 1s
    scrape_timeout: 1s
    authorization:
      credentials_file: {secret_file}
    static_configs: [{{targets: ["127.0.0.1:1"]}}]
"""
    )
    with DaemonProcess(config, tmp_path / "data", extra_args=["--log-level", "debug"]) as daemon:
        daemon.wait_ready()
        # A reload whose error sits next to a secret.
        config.write_text(config.read_text().replace("credentials_file", "credentials: " + SECRET + "\n      bogus"))
        httpx.post(daemon.url + "/-/reload", timeout=10)
    assert "scrape failed" in daemon.log()
    assert SECRET not in daemon.log()


def test_sigint_exits_zero(tmp_path: Path, target: ThreadedFakeTarget) -> None:
    config = tmp_path / "alertd.yml"
    config.write_text(config_for(target.address))
    daemon = DaemonProcess(config, tmp_path / "data", env={"ALERTD_TEST_PASSWORD": "x"})
    with daemon:
        daemon.wait_ready()
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGINT)
        assert daemon.process.wait(10) == 0


def test_bad_config_exits_1_naming_file_line_and_key(tmp_path: Path) -> None:
    config = tmp_path / "alertd.yml"
    config.write_text("global:\n  scrape_interval: 15s\n  scrape_intervall: 1m\n")
    result = subprocess.run(
        [sys.executable, "-m", "daemon", "run", "--config", str(config), "--listen", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert f"{config}:3: global.scrape_intervall:" in result.stderr


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_default_config_runs_with_nothing_else(tmp_path: Path) -> None:
    if not (_port_free(9095) and _port_free(9101)):
        pytest.skip("the embedded default config needs ports 9095 and 9101 free")
    with DaemonProcess(None, tmp_path / "data", port=9095) as daemon:
        daemon.wait_ready()
        daemon.wait_for(
            lambda: set(target_health(daemon).values()) == {"up"} and len(target_health(daemon)) == 2,
            what="the daemon's own /metrics and the demo exporter scraped",
        )
        jobs = api(daemon, "/api/v1/label/job/values")["data"]
        assert {"alertd", "demo"} <= set(jobs)
        # The demo rule fires in the first half of every minute and goes to the console receiver.
        daemon.wait_for(lambda: "console: [firing] [info] DemoHalfMinute" in daemon.log(), 90, "a console notification")
    assert (tmp_path / "data").is_dir()


def test_listen_address_in_use_exits_1_with_a_log_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "alertd.yml"
        config.write_text("scrape_configs: []\n")
        result = subprocess.run(
            [sys.executable, "-m", "daemon", "run", "--config", str(config), "--listen", f"127.0.0.1:{port}",
             "--data-dir", str(tmp_path / "data"), "--log-format", "json"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert "cannot start" in result.stdout and "Traceback" not in result.stdout + result.stderr
