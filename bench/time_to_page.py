"""Time to page: from a target going down to the first notification, alertd against Prometheus
plus Alertmanager, both on their defaults with 15 s scrape and evaluation intervals.

Each trial starts fresh processes: the real ``prometheus`` (rule ``up{job="bench"} == 0``,
no ``for``) sending to the real ``prometheus-alertmanager`` (default route, a webhook
receiver), and ``alertd run`` with the same rule and a webhook receiver. Both scrape the same
fake target; once both have scraped it up, at a random phase of the scrape schedule, the
target starts answering 503, and the trial measures the time until each stack's webhook
receives its first notification::

    .venv/bin/python -m bench.time_to_page --trials 5

Prints every trial and the medians. Every process it starts is stopped at the end, also on
Ctrl-C or SIGTERM. Needs ``prometheus`` and ``prometheus-alertmanager`` on the PATH (or
``--prometheus``/``--alertmanager``).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType

import httpx

from daemon.testing.process import DaemonProcess, free_port
from daemon.testing.target import ThreadedFakeTarget

INTERVAL = 15.0
TIMEOUT = 150.0

RULES = """
groups:
  - name: bench
    rules:
      - alert: TargetDown
        expr: up{job="bench"} == 0
        labels: {severity: critical}
"""

PAYLOAD = "bench_requests_total 1\n"


class Webhook:
    """An HTTP server that notes when the first POST reached each path (``/prometheus``, ``/alertd``)."""

    def __init__(self) -> None:
        self.first: dict[str, float] = {}
        self.count: dict[str, int] = {}
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                with outer._lock:
                    outer.first.setdefault(self.path, time.monotonic())
                    outer.count[self.path] = outer.count.get(self.path, 0) + 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def reset(self) -> None:
        with self._lock:
            self.first.clear()
            self.count.clear()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Processes:
    """Child processes stopped together: SIGTERM, then SIGKILL after a grace period."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen[bytes]] = []
        self.daemons: list[DaemonProcess] = []

    def start(self, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            child = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        self.children.append(child)
        return child

    def stop(self) -> None:
        for daemon in self.daemons:
            daemon.stop()
        self.daemons.clear()
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self.children.clear()


def prometheus_config(target: str, alertmanager: str) -> str:
    return f"""
global:
  scrape_interval: 15s
  evaluation_interval: 15s
rule_files: ["rules.yml"]
alerting:
  alertmanagers:
    - static_configs: [{{targets: ["{alertmanager}"]}}]
scrape_configs:
  - job_name: bench
    static_configs: [{{targets: ["{target}"]}}]
"""


def alertmanager_config(webhook: str) -> str:
    return f"""
route:
  receiver: hook
receivers:
  - name: hook
    webhook_configs: [{{url: "{webhook}/prometheus"}}]
"""


def alertd_config(target: str, webhook: str) -> str:
    return f"""
global:
  scrape_interval: 15s
  evaluation_interval: 15s
rule_files: ["rules.yml"]
scrape_configs:
  - job_name: bench
    static_configs: [{{targets: ["{target}"]}}]
route:
  receiver: hook
receivers:
  - name: hook
    webhook_configs: [{{url: "{webhook}/alertd"}}]
"""


def up(client: httpx.Client, url: str) -> bool:
    try:
        result = client.get(url + "/api/v1/query", params={"query": 'up{job="bench"}'}).json()["data"]["result"]
    except (httpx.HTTPError, KeyError, ValueError):
        return False
    return bool(result) and result[0]["value"][1] == "1"


def trial(
    number: int, rng: random.Random, binaries: tuple[str, str], webhook: Webhook, processes: Processes, keep: Path | None
) -> dict[str, float]:
    prometheus, alertmanager = binaries
    directory = Path(tempfile.mkdtemp(prefix=f"time-to-page-{number}-", dir=keep))
    try:
        with ThreadedFakeTarget() as target, httpx.Client(timeout=2) as client:
            target.set(PAYLOAD)
            webhook.reset()
            (directory / "rules.yml").write_text(RULES)
            am_port, prom_port = free_port(), free_port()
            (directory / "alertmanager.yml").write_text(alertmanager_config(webhook.url))
            (directory / "prometheus.yml").write_text(prometheus_config(target.address, f"127.0.0.1:{am_port}"))
            (directory / "alertd.yml").write_text(alertd_config(target.address, webhook.url))
            processes.start(
                [
                    alertmanager,
                    f"--config.file={directory / 'alertmanager.yml'}",
                    f"--storage.path={directory / 'am-data'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",
                ],
                directory / "alertmanager.log",
            )
            processes.start(
                [
                    prometheus,
                    f"--config.file={directory / 'prometheus.yml'}",
                    f"--storage.tsdb.path={directory / 'prom-data'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                directory / "prometheus.log",
            )
            daemon = DaemonProcess(directory / "alertd.yml", directory / "alertd-data")
            processes.daemons.append(daemon)
            daemon.start()
            prom_url = f"http://127.0.0.1:{prom_port}"
            deadline = time.monotonic() + 3 * INTERVAL + 10
            while not (up(client, prom_url) and up(client, daemon.url)):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the target was not scraped up by both stacks; logs in {directory}")
                time.sleep(0.2)
            # A random phase of the wall clock: unrelated to when either stack last scraped
            # (each aligns its scrapes and evaluations by hashes of the target and rule group).
            phase = rng.uniform(0, INTERVAL)
            time.sleep(INTERVAL + (phase - time.time()) % INTERVAL)
            target.set(PAYLOAD, status=503)
            down = time.monotonic()
            deadline = down + TIMEOUT
            while len(webhook.first) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            result = {
                name: webhook.first[f"/{name}"] - down for name in ("prometheus", "alertd") if f"/{name}" in webhook.first
            }
            processes.stop()
            return result
    finally:
        processes.stop()
        if keep is None:
            shutil.rmtree(directory, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--prometheus", default=shutil.which("prometheus") or "/usr/bin/prometheus")
    parser.add_argument("--alertmanager", default=shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager")
    parser.add_argument("--keep", type=Path, help="keep each trial's configs and logs under this folder")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args(argv)

    def interrupted(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    rng = random.Random(args.seed)
    webhook = Webhook()
    webhook.start()
    processes = Processes()
    results: dict[str, list[float]] = {"prometheus": [], "alertd": []}
    try:
        for number in range(1, args.trials + 1):
            got = trial(number, rng, (args.prometheus, args.alertmanager), webhook, processes, args.keep)
            for name in results:
                if name in got:
                    results[name].append(got[name])
            shown = "  ".join(f"{name} {got[name]:5.1f}s" if name in got else f"{name} timeout" for name in results)
            print(f"trial {number}: {shown}", flush=True)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        processes.stop()
        webhook.stop()
    medians = {name: statistics.median(values) for name, values in results.items() if values}
    if args.json:
        print(json.dumps({"trials": results, "median": medians}))
    for name, values in results.items():
        if values:
            print(f"{name:10} median {medians[name]:5.1f}s  min {min(values):5.1f}s  max {max(values):5.1f}s  ({len(values)} trials)")
    if len(medians) == 2:
        print(f"alertd / Prometheus+Alertmanager: {medians['alertd'] / medians['prometheus']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
