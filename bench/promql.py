"""PromQL evaluation cost of a round of alerting rules over a 100k-series store.

    python -m bench.promql [--instances 100] [--rounds 5] [--profile]

Builds a store of ``instances`` targets x ~1000 series (request counters by method, code and
handler; a 12-bucket latency histogram; CPU counters; process gauges; ``up``) holding 6 minutes
of 15 s samples, compiles 200 alerting expressions of the usual kinds (error-rate ratios,
p95/p99 from buckets, CPU, memory, file descriptors, traffic drops, ``up``/``absent``; each as a
P0/P1 pair that differs only in its threshold, per job), then reports the CPU seconds of one
round evaluated with ``Engine.instant_many`` (shared subexpressions) and query by query (no
sharing), and the cost per expression kind. ``--profile`` prints a pyinstrument profile of one
shared round.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from daemon.promql.engine import Engine, Query
from daemon.tsdb import Labels, Store

JOBS = 10
INTERVAL_MS = 15_000
SAMPLES = 25  # 6 minutes of 15 s samples: a full 5 m window
METHODS = ("GET", "POST", "PUT", "DELETE")
CODES = ("200", "201", "301", "404", "429", "500", "502", "503")
HANDLERS = tuple(f"/api/v1/h{i}" for i in range(10))
BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf")
CPU_MODES = ("idle", "user", "system", "iowait", "steal")


def _series_of_instance(job: str, instance: str) -> list[tuple[dict[str, str], str]]:
    """Label sets (without values) of one target and the kind of value each carries."""
    base = {"job": job, "instance": instance}
    out: list[tuple[dict[str, str], str]] = []
    for method in METHODS:
        for code in CODES:
            for handler in HANDLERS:
                out.append(({**base, "__name__": "http_requests_total", "method": method, "code": code, "handler": handler}, "counter"))
        for handler in HANDLERS:
            for le in BUCKETS:
                labels = {**base, "__name__": "http_request_duration_seconds_bucket", "method": method, "handler": handler}
                out.append(({**labels, "le": le}, "bucket:" + le))
            out.append(({**base, "__name__": "http_request_duration_seconds_sum", "method": method, "handler": handler}, "counter"))
            out.append(({**base, "__name__": "http_request_duration_seconds_count", "method": method, "handler": handler}, "counter"))
    for cpu in range(8):
        for mode in CPU_MODES:
            out.append(({**base, "__name__": "node_cpu_seconds_total", "cpu": str(cpu), "mode": mode}, "cpu"))
    for i in range(75):
        out.append(({**base, "__name__": "process_gauge", "slot": str(i)}, "gauge"))
    out.append(({**base, "__name__": "process_resident_memory_bytes"}, "memory"))
    out.append(({**base, "__name__": "process_open_fds"}, "fds"))
    out.append(({**base, "__name__": "process_max_fds"}, "maxfds"))
    out.append(({**base, "__name__": "up"}, "up"))
    return out


def build_store(instances: int, seed: int = 0) -> tuple[Store, float]:
    """The store and the evaluation time (seconds) at the end of its samples."""
    rnd = random.Random(seed)
    store = Store(retention=3600)
    for n in range(instances):
        job = f"svc-{n % JOBS}"
        instance = f"10.0.{n // 250}.{n % 250}:9100"
        for labels, kind in _series_of_instance(job, instance):
            series, _ = store.series(Labels.of(labels))
            value = rnd.random() * 1000
            slope = _slope(kind, rnd)
            for i in range(SAMPLES):
                if kind in ("memory", "gauge", "fds", "maxfds", "up"):
                    v = {"memory": 4e8 + rnd.random() * 8e8, "fds": 100 + rnd.random() * 900, "maxfds": 1024.0, "up": 1.0}.get(
                        kind, value + rnd.random()
                    )
                else:
                    v = value + slope * i * 15
                store.append(series, i * INTERVAL_MS, v)
    return store, (SAMPLES - 1) * INTERVAL_MS / 1000


def _slope(kind: str, rnd: random.Random) -> float:
    if kind.startswith("bucket:"):
        le = kind.split(":", 1)[1]
        share = 1.0 if le == "+Inf" else min(1.0, float(le) * 1.5)
        return 10 * share
    if kind == "cpu":
        return rnd.random()
    return rnd.random() * 5


def rule_expressions() -> list[tuple[str, str]]:
    """200 alerting expressions as ``(kind, expr)``: ten jobs x ten P0/P1 pairs."""
    rules: list[tuple[str, str]] = []
    for j in range(JOBS):
        job = f'job="svc-{j}"'
        pairs = [
            (
                "error ratio by job",
                f'sum by (job) (rate(http_requests_total{{{job},code=~"5.."}}[5m])) / sum by (job) (rate(http_requests_total{{{job}}}[5m])) > {{}}',
                (0.05, 0.02),
            ),
            (
                "error ratio by handler",
                f'sum by (job, handler) (rate(http_requests_total{{{job},code=~"5.."}}[5m])) / sum by (job, handler) (rate(http_requests_total{{{job}}}[5m])) > {{}}',
                (0.05, 0.02),
            ),
            (
                "client error ratio",
                f'sum by (job) (rate(http_requests_total{{{job},code=~"4.."}}[5m])) / sum by (job) (rate(http_requests_total{{{job}}}[5m])) > {{}}',
                (0.2, 0.1),
            ),
            (
                "p95 latency by job",
                f"histogram_quantile(0.95, sum by (le, job) (rate(http_request_duration_seconds_bucket{{{job}}}[5m]))) > {{}}",
                (1, 0.5),
            ),
            (
                "p99 latency by handler",
                f"histogram_quantile(0.99, sum by (le, job, handler) (rate(http_request_duration_seconds_bucket{{{job}}}[5m]))) > {{}}",
                (2, 1),
            ),
            ("cpu by instance", f'avg by (instance) (rate(node_cpu_seconds_total{{{job},mode!="idle"}}[5m])) > {{}}', (0.95, 0.8)),
            ("memory gauge", f"process_resident_memory_bytes{{{job}}} > {{}}", (1.1e9, 1e9)),
            ("fd ratio", f"process_open_fds{{{job}}} / process_max_fds{{{job}}} > {{}}", (0.9, 0.8)),
            ("traffic drop", f"sum by (job) (rate(http_requests_total{{{job}}}[5m])) < {{}}", (1, 5)),
            ("up / absent", f"up{{{job}}} == {{}}", (0,)),
        ]
        for kind, template, thresholds in pairs:
            for threshold in thresholds:
                rules.append((kind, template.replace("{}", str(threshold))))
        rules.append(("up / absent", f"absent(up{{{job}}})"))
    return rules


def _cpu(fn: Callable[[], object]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="print a pyinstrument profile of one shared round")
    args = parser.parse_args()

    started = time.perf_counter()
    store, t = build_store(args.instances)
    print(f"store: {store.num_series:,} series, {store.num_samples:,} samples, built in {time.perf_counter() - started:.1f} s")

    engine = Engine(store)
    rules = rule_expressions()
    compile_cpu = time.process_time()
    queries: list[Query] = [engine.compile(expr) for _, expr in rules]
    compile_cpu = time.process_time() - compile_cpu
    print(f"rules: {len(queries)} expressions, compiled in {compile_cpu * 1000:.1f} ms CPU")

    shared = [_cpu(lambda: engine.instant_many(queries, t)) for _ in range(args.rounds)]
    unshared = [_cpu(lambda: [q.instant(t) for q in queries]) for _ in range(args.rounds)]
    print(f"round, shared subexpressions (instant_many): median {statistics.median(shared):.3f} s CPU, best {min(shared):.3f} s")
    print(f"round, query by query (no sharing):          median {statistics.median(unshared):.3f} s CPU, best {min(unshared):.3f} s")

    print("\ncost per expression, evaluated alone (median of rounds):")
    by_kind: dict[str, list[float]] = {}
    for (kind, _), query in zip(rules, queries):
        by_kind.setdefault(kind, []).append(statistics.median(_cpu(lambda: query.instant(t)) for _ in range(args.rounds)))
    for kind, costs in by_kind.items():
        print(f"  {kind:<24} {1000 * statistics.mean(costs):8.2f} ms  ({len(costs)} expressions)")

    results = engine.instant_many(queries, t)
    firing = sum(1 for r in results if isinstance(r, list) and r)
    print(f"\n{firing} of {len(queries)} expressions return samples at t={t:.0f}s")

    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
        engine.instant_many(queries, t)
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    main()
