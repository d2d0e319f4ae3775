"""Scale run: alertd scraping T targets x S series, measured from outside the process.

    python -m bench.scale [--targets 100] [--series 1000] [--interval 15s] [--retention 5m] [--duration 360]

Starts a fleet of synthetic exporters (``bench.exporter --targets T``) in one process and
``alertd run`` in another, lets the store fill for ``--warmup`` seconds, then reports over the next
``--duration`` seconds: alertd's CPU (user+system, from /proc) as % of one core, its RSS, the
active series it holds, and RSS per active series above an idle alertd's RSS. Linux only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from daemon.config import parse_duration
from daemon.testing.process import DaemonProcess, free_port

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def own_metric(url: str, name: str) -> float:
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise KeyError(name)


def config_text(addresses: list[str], interval: str, retention: str) -> str:
    targets = ", ".join(f'"{a}"' for a in addresses)
    return f"""
global:
  scrape_interval: {interval}
  scrape_timeout: {interval}
storage:
  retention: {retention}
scrape_configs:
  - job_name: fleet
    static_configs: [{{targets: [{targets}]}}]
"""


def idle_rss(workdir: Path) -> int:
    config = workdir / "idle.yml"
    config.write_text("scrape_configs: []\n")
    with DaemonProcess(config, workdir / "idle") as daemon:
        daemon.wait_ready()
        time.sleep(3)
        assert daemon.process is not None
        return rss_bytes(daemon.process.pid)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--interval", default="15s")
    parser.add_argument("--retention", default="5m")
    parser.add_argument("--warmup", type=float, default=None, help="seconds before measuring (default: retention + 2 intervals)")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds measured")
    args = parser.parse_args(argv)
    interval = parse_duration(args.interval)
    warmup = args.warmup if args.warmup is not None else parse_duration(args.retention) + 2 * interval

    with tempfile.TemporaryDirectory(prefix="alertd-scale-") as tmp:
        workdir = Path(tmp)
        baseline = idle_rss(workdir)
        port = free_port()
        fleet = subprocess.Popen(
            [sys.executable, "-m", "bench.exporter", "--targets", str(args.targets), "--series", str(args.series),
             "--port", str(port)],
            stdout=subprocess.DEVNULL,
        )
        try:
            addresses = [f"127.0.0.1:{port + i}" for i in range(args.targets)]
            _wait_fleet(addresses[-1])
            config = workdir / "alertd.yml"
            config.write_text(config_text(addresses, args.interval, args.retention))
            with DaemonProcess(config, workdir / "data") as daemon:
                assert daemon.process is not None
                pid = daemon.process.pid
                daemon.wait_ready(timeout=interval * 3)
                print(f"warming up for {warmup:.0f}s ({args.targets} targets x ~{args.series} series, every {args.interval})", flush=True)
                time.sleep(warmup)
                cpu0, wall0 = cpu_seconds(pid), time.monotonic()
                time.sleep(args.duration)
                cpu1, wall1 = cpu_seconds(pid), time.monotonic()
                rss = rss_bytes(pid)
                series = own_metric(daemon.url, "alertd_store_series")
                samples = own_metric(daemon.url, "alertd_store_samples")
        finally:
            fleet.terminate()
            fleet.wait(10)

    cpu_percent = 100 * (cpu1 - cpu0) / (wall1 - wall0)
    print(f"targets x series     {args.targets} x {args.series} every {args.interval}, retention {args.retention}")
    print(f"CPU                  {cpu_percent:.1f} % of one core over {wall1 - wall0:.0f}s")
    print(f"RSS                  {rss / 2**20:.1f} MiB (idle alertd: {baseline / 2**20:.1f} MiB)")
    print(f"active series        {series:.0f} ({samples:.0f} samples held)")
    print(f"bytes/active series  {(rss - baseline) / series:.0f} B above idle")


def _wait_fleet(last_address: str) -> None:
    for _ in range(600):
        try:
            httpx.get(f"http://{last_address}/metrics", timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("the exporter fleet did not start")


if __name__ == "__main__":
    main()
