"""Detection latency: from a target's metric changing to the alert firing in /api/v1/alerts.

Runs the real ``alertd run`` against a fake target, once with rule evaluation on its interval
only and once with ``rule_evaluation.after_scrape``, flipping the target at random phases of
the scrape interval and polling the API every 20 ms::

    .venv/bin/python -m bench.detection --flips 20 --scrape-interval 5s --evaluation-interval 5s

Prints the median, p95 and maximum latency of each mode.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from daemon.config.duration import parse_duration
from daemon.testing.process import DaemonProcess
from daemon.testing.target import ThreadedFakeTarget

RULES = """
groups:
  - name: detection
    rules:
      - alert: Broken
        expr: app_broken > 0
"""

POLL = 0.02


def config(target: str, scrape: str, evaluation: str, after_scrape: bool) -> str:
    return f"""
global:
  scrape_interval: {scrape}
  scrape_timeout: 1s
  evaluation_interval: {evaluation}
scrape_configs:
  - job_name: app
    static_configs: [{{targets: ["{target}"]}}]
rule_files: ["rules.yml"]
rule_evaluation:
  after_scrape: {"true" if after_scrape else "false"}
"""


def firing(client: httpx.Client, url: str) -> bool:
    alerts = client.get(url + "/api/v1/alerts").json()["data"]["alerts"]
    return any(a["state"] == "firing" for a in alerts)


def wait(client: httpx.Client, url: str, want: bool, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if firing(client, url) == want:
            return time.monotonic()
        time.sleep(POLL)
    raise TimeoutError(f"alert firing={want} not seen within {timeout}s")


def measure(after_scrape: bool, flips: int, scrape: str, evaluation: str, seed: int) -> list[float]:
    rng = random.Random(seed)
    interval = parse_duration(scrape)
    timeout = 3 * max(interval, parse_duration(evaluation)) + 10
    latencies = []
    with tempfile.TemporaryDirectory() as tmp, ThreadedFakeTarget() as target, httpx.Client(timeout=5) as client:
        directory = Path(tmp)
        target.set("app_broken 0\n")
        (directory / "rules.yml").write_text(RULES)
        (directory / "alertd.yml").write_text(config(target.address, scrape, evaluation, after_scrape))
        with DaemonProcess(directory / "alertd.yml", directory / "data") as daemon:
            daemon.wait_ready()
            for _ in range(flips):
                time.sleep(rng.uniform(0, interval))  # a random phase of the scrape schedule
                target.set("app_broken 1\n")
                changed = time.monotonic()
                latencies.append(wait(client, daemon.url, True, timeout) - changed)
                target.set("app_broken 0\n")
                wait(client, daemon.url, False, timeout)
    return latencies


def summary(name: str, latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return (
        f"{name:<28} n={len(ordered):<3} median={statistics.median(ordered):6.2f}s "
        f"p95={p95:6.2f}s max={ordered[-1]:6.2f}s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flips", type=int, default=20, help="changes of the target per mode")
    parser.add_argument("--scrape-interval", default="5s")
    parser.add_argument("--evaluation-interval", default="5s")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mode", choices=["both", "interval", "after-scrape"], default="both")
    args = parser.parse_args()
    print(f"scrape_interval={args.scrape_interval} evaluation_interval={args.evaluation_interval}, alert without for")
    if args.mode in ("both", "interval"):
        print(summary("evaluation on interval", measure(False, args.flips, args.scrape_interval, args.evaluation_interval, args.seed)))
    if args.mode in ("both", "after-scrape"):
        print(summary("evaluation after scrape", measure(True, args.flips, args.scrape_interval, args.evaluation_interval, args.seed)))


if __name__ == "__main__":
    main()
