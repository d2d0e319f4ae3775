"""The real `alertd run`: an alert fires from a scraped target and survives kill -9 with its start time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon.testing.process import DaemonProcess
from daemon.testing.target import ThreadedFakeTarget

pytestmark = pytest.mark.e2e

RULES = """
groups:
  - name: app
    rules:
      - alert: AppBroken
        expr: app_broken > 0
        labels: {severity: page}
        annotations: {summary: "{{ $labels.instance }} is broken ({{ $value }})"}
      - alert: AppSlowlyBroken
        expr: app_broken > 0
        for: 1h
      - record: app:broken:sum
        expr: sum(app_broken)
"""


def config(target: str) -> str:
    return f"""
global:
  scrape_interval: 1s
  scrape_timeout: 500ms
  evaluation_interval: 1s
scrape_configs:
  - job_name: app
    static_configs: [{{targets: ["{target}"]}}]
rule_files: ["rules.yml"]
rule_evaluation:
  after_scrape: true
"""


def alerts(daemon: DaemonProcess) -> dict[str, dict[str, Any]]:
    body = httpx.get(daemon.url + "/api/v1/alerts", timeout=5).json()
    return {a["labels"]["alertname"]: a for a in body["data"]["alerts"]}


def test_alert_fires_and_survives_kill_9_with_its_active_at(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(RULES)
    with ThreadedFakeTarget() as target:
        target.set("app_broken 0\n")
        (tmp_path / "alertd.yml").write_text(config(target.address))
        data = tmp_path / "data"
        daemon = DaemonProcess(tmp_path / "alertd.yml", data)
        with daemon:
            daemon.wait_ready()
            daemon.wait_for(lambda: httpx.get(daemon.url + "/api/v1/rules", timeout=5).json()["data"]["groups"][0]["rules"][0]["health"] == "ok", what="rules evaluated")
            assert alerts(daemon) == {}
            target.set("app_broken 1\n")
            daemon.wait_for(lambda: alerts(daemon).get("AppBroken", {}).get("state") == "firing", what="alert firing")
            fired = alerts(daemon)["AppBroken"]
            assert fired["labels"] == {"alertname": "AppBroken", "instance": target.address, "job": "app", "severity": "page"}
            assert fired["annotations"] == {"summary": f"{target.address} is broken (1)"}
            daemon.wait_for(lambda: "AppSlowlyBroken" in alerts(daemon), what="pending alert")
            assert alerts(daemon)["AppSlowlyBroken"]["state"] == "pending"
            rules = httpx.get(daemon.url + "/api/v1/rules", params={"type": "record"}, timeout=5).json()
            assert rules["data"]["groups"][0]["rules"][0]["name"] == "app:broken:sum"
            assert daemon.process is not None
            daemon.process.kill()  # kill -9: no chance to save anything on the way out
            daemon.process.wait(10)

        restarted = DaemonProcess(tmp_path / "alertd.yml", data)
        with restarted:
            restarted.wait_for(lambda: "AppBroken" in alerts(restarted), what="alert restored")
            again = alerts(restarted)
            assert again["AppBroken"]["state"] == "firing"
            assert again["AppBroken"]["activeAt"] == fired["activeAt"]
            assert again["AppSlowlyBroken"]["state"] == "pending"
            # Still firing, with the same start, once evaluations run on fresh data.
            restarted.wait_ready()
            restarted.wait_for(
                lambda: httpx.get(restarted.url + "/api/v1/rules", timeout=5).json()["data"]["groups"][0]["lastEvaluation"]
                > again["AppBroken"]["activeAt"],
                what="an evaluation after the restart",
            )
            assert alerts(restarted)["AppBroken"]["activeAt"] == fired["activeAt"]
            # The condition clears: the alert resolves.
            target.set("app_broken 0\n")
            restarted.wait_for(lambda: alerts(restarted) == {}, what="alert resolved")
            assert "alert state restored" in restarted.log()
