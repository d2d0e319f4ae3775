"""Memory per active series: the store plus a scrape loop's cache, after ~25 scrapes.

    python -m bench.store_memory --series 100000

Builds, in a fresh process per measurement, the state a daemon scraping ``--series`` series
holds: one target per ~1000 series (``job``, ``instance`` shared), realistic metric families
(histogram buckets with ``le``, counters by code/handler/method, per-CPU counters, process
gauges), each target's cache mapping the raw series text to its ``Series``, and ``--scrapes``
scrapes of samples ``--interval`` seconds apart with ``--retention`` seconds kept. Prints the
RSS growth per series and, from a second process under tracemalloc, the bytes allocated per
series with the top allocation sites.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator

from daemon.tsdb import Labels, Series, Store

SERIES_PER_TARGET = 1000
_HANDLERS = [f"/api/v1/{name}" for name in ("users", "orders", "items", "search", "login", "cart", "payments", "health")]
_BUCKETS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"]
_CODES = ["200", "500"]
_METHODS = ["get", "post"]
_CPU_MODES = ["idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"]


def target_series() -> Iterator[tuple[str, dict[str, str]]]:
    """The metric families one target exposes, as (name, labels) pairs; at least 1000 of them."""
    for handler in _HANDLERS:
        for method in _METHODS:
            for code in _CODES:
                base = {"code": code, "handler": handler, "method": method}
                yield "http_requests_total", base
                yield "http_request_duration_seconds_count", base
                yield "http_request_duration_seconds_sum", base
                for le in _BUCKETS:
                    yield "http_request_duration_seconds_bucket", {**base, "le": le}
    for cpu in range(8):
        for mode in _CPU_MODES:
            yield "node_cpu_seconds_total", {"cpu": str(cpu), "mode": mode}
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "go_goroutines"):
        yield name, {}
    i = 0
    while True:
        yield "app_queue_messages", {"queue": f"queue-{i}", "state": "ready"}
        i += 1


def raw_text(name: str, labels: dict[str, str]) -> str:
    """The series as it appears in the exposition text, the scrape loop's cache key."""
    if not labels:
        return name
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def build(total: int, scrapes: int, interval_s: float, retention_s: float) -> tuple[Store, list[dict[str, Series]]]:
    store = Store(retention=retention_s)
    caches: list[dict[str, Series]] = []
    targets = max(1, total // SERIES_PER_TARGET)
    per_target = total // targets
    for t in range(targets):
        target = {"job": f"api-{t % 10}", "instance": f"ip-10-0-{t // 250}-{t % 250}.ec2.internal:9100"}
        cache: dict[str, Series] = {}
        for (name, labels), _ in zip(target_series(), range(per_target)):
            series, _ = store.series(Labels.of({**target, **labels, "__name__": name}))
            cache[raw_text(name, labels)] = series
        caches.append(cache)
    start_ms = 1_700_000_000_000
    interval_ms = int(interval_s * 1000)
    for k in range(scrapes):
        for t, cache in enumerate(caches):
            t_ms = start_ms + k * interval_ms + t % 7  # targets are scraped a few ms apart
            value = float(k * 3)
            for series in cache.values():
                store.append(series, t_ms, value)
    return store, caches


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def measure(mode: str, args: argparse.Namespace) -> dict[str, object]:
    gc.collect()
    if mode == "tracemalloc":
        tracemalloc.start(1)
    before = rss_bytes()
    store, caches = build(args.series, args.scrapes, args.interval, args.retention)
    gc.collect()
    result: dict[str, object] = {"series": store.num_series, "samples": store.num_samples}
    if mode == "rss":
        result["rss_per_series"] = (rss_bytes() - before) / store.num_series
    else:
        snapshot = tracemalloc.take_snapshot()
        current, _ = tracemalloc.get_traced_memory()
        result["traced_per_series"] = current / store.num_series
        top = snapshot.statistics("lineno")[:8]
        result["top"] = [f"{s.size / store.num_series:7.1f} B/series  {s.traceback[0]}" for s in top]
    del caches
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--scrapes", type=int, default=25)
    parser.add_argument("--interval", type=float, default=15.0, help="seconds between scrapes")
    parser.add_argument("--retention", type=float, default=300.0, help="seconds of samples kept")
    parser.add_argument("--mode", choices=("rss", "tracemalloc"), help="measure in this process only")
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(measure(args.mode, args)))
        return
    passed = [a for a in sys.argv[1:]]
    results = {}
    for mode in ("rss", "tracemalloc"):
        out = subprocess.run(
            [sys.executable, "-m", "bench.store_memory", *passed, "--mode", mode],
            check=True, capture_output=True, text=True,
        ).stdout
        results[mode] = json.loads(out)
    rss, traced = results["rss"], results["tracemalloc"]
    print(f"series: {rss['series']}  samples: {rss['samples']} ({rss['samples'] / rss['series']:.1f}/series)")  # type: ignore[operator]
    print(f"RSS delta per series:        {rss['rss_per_series']:8.0f} B")
    print(f"tracemalloc bytes per series: {traced['traced_per_series']:8.0f} B")
    print("top allocation sites:")
    for line in traced["top"]:  # type: ignore[union-attr]
        print("  " + line)


if __name__ == "__main__":
    main()
