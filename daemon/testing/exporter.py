"""A synthetic exporter: a fake scrape target with a realistic, steadily changing payload.

Benchmarks, tests and users point scrapers at it; the daemon can also run it in-process as a
demo target. The series set is fixed at construction (seeded, so it is reproducible); every
``render()`` advances counters and histograms and moves gauges, like a live service would.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from aiohttp import web

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Twelve buckets including +Inf, as in a typical latency histogram.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BUCKET_TEXT = tuple(repr(b) for b in _BUCKETS) + ("+Inf",)

_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
_STATUSES = ("200", "201", "204", "301", "400", "401", "403", "404", "429", "500", "502", "503")
_SERVICES = ("api", "billing", "checkout", "search", "auth", "catalog", "cart", "notifications")
_ZONES = ("eu-west-1a", "eu-west-1b", "eu-west-1c", "us-east-1a", "us-east-1b")
_COUNTER_FAMILIES = (
    ("http_requests_total", "Total HTTP requests handled."),
    ("http_request_errors_total", "HTTP requests that ended in an error."),
    ("db_queries_total", "Database queries issued."),
    ("cache_lookups_total", "Cache lookups, by result."),
    ("queue_messages_processed_total", "Queue messages processed."),
)
_HISTOGRAM_FAMILIES = (
    ("http_request_duration_seconds", "HTTP request latency."),
    ("db_query_duration_seconds", "Database query latency."),
)
_GAUGE_FAMILIES = (
    ("process_resident_memory_bytes", "Resident memory size in bytes."),
    ("queue_depth", "Messages waiting in the queue."),
    ("connections_open", "Open client connections."),
)


@dataclass(slots=True)
class _Family:
    name: str
    help: str
    kind: str
    label_sets: list[str] = field(default_factory=list)


class SyntheticExporter:
    """About ``series`` series: counters with 4-5 labels, 12-bucket histograms and gauges (3-4).

    Roughly half of the series are counters, a third histogram series (``_bucket``, ``_sum``,
    ``_count``) and the rest gauges. ``render()`` returns the Prometheus text format 0.0.4 and
    advances the values each call; the set of series stays the same.
    """

    def __init__(self, series: int, seed: int = 0) -> None:
        if series < 1:
            raise ValueError("series must be at least 1")
        self._random = random.Random(seed)
        self._families = self._plan(series)
        self._counters: dict[str, list[float]] = {}
        self._histograms: dict[str, list[list[float]]] = {}
        self._gauges: dict[str, list[float]] = {}
        for family in self._families:
            n = len(family.label_sets)
            if family.kind == "counter":
                self._counters[family.name] = [float(self._random.randrange(0, 10_000)) for _ in range(n)]
            elif family.kind == "histogram":
                # per label set: 12 cumulative bucket counts, then sum
                self._histograms[family.name] = [[0.0] * (len(_BUCKET_TEXT) + 1) for _ in range(n)]
            else:
                self._gauges[family.name] = [self._random.uniform(0, 1000) for _ in range(n)]

    @property
    def series(self) -> int:
        """The exact number of series each render produces."""
        total = 0
        for family in self._families:
            per_set = len(_BUCKET_TEXT) + 2 if family.kind == "histogram" else 1
            total += per_set * len(family.label_sets)
        return total

    def _plan(self, series: int) -> list[_Family]:
        rnd = self._random
        histogram_series = series * 35 // 100
        gauge_series = series * 15 // 100
        counter_series = series - histogram_series - gauge_series
        per_histogram = len(_BUCKET_TEXT) + 2
        families: list[_Family] = []

        def spread(specs: tuple[tuple[str, str], ...], kind: str, label_sets: int) -> None:
            chosen = [_Family(name, text, kind) for name, text in specs]
            for i in range(label_sets):
                family = chosen[i % len(chosen)]
                family.label_sets.append(self._label_set(kind, len(family.label_sets), rnd))
            families.extend(f for f in chosen if f.label_sets)

        spread(_COUNTER_FAMILIES, "counter", max(1, counter_series))
        spread(_HISTOGRAM_FAMILIES, "histogram", histogram_series // per_histogram)
        spread(_GAUGE_FAMILIES, "gauge", gauge_series)
        return families

    @staticmethod
    def _label_set(kind: str, n: int, rnd: random.Random) -> str:
        # The running number n, spelled into the instance address, keeps label sets unique.
        pairs = [
            ("service", _SERVICES[n % len(_SERVICES)]),
            ("instance", f"10.{n // 62_500 % 256}.{n // 250 % 250}.{n % 250 + 1}:9100"),
        ]
        if kind == "gauge":
            pairs.append(("pod", f"pod-{n:06d}"))
        else:
            pairs.append(("method", rnd.choice(_METHODS)))
        if kind == "counter":
            pairs.append(("status", rnd.choice(_STATUSES)))
        if rnd.random() < 0.3:
            pairs.append(("zone", rnd.choice(_ZONES)))
        # Sorted by name, as client libraries write them (histograms then append le).
        return ",".join(f'{k}="{v}"' for k, v in sorted(pairs))

    def render(self) -> str:
        """The payload of one scrape, in the text format; values move on with each call."""
        rnd = self._random
        out: list[str] = []
        for family in self._families:
            out.append(f"# HELP {family.name} {family.help}")
            out.append(f"# TYPE {family.name} {family.kind}")
            if family.kind == "counter":
                values = self._counters[family.name]
                for i, label_set in enumerate(family.label_sets):
                    values[i] += rnd.randrange(0, 50)
                    out.append(f"{family.name}{{{label_set}}} {values[i]!r}")
            elif family.kind == "histogram":
                self._render_histogram(family, out, rnd)
            else:
                gauges = self._gauges[family.name]
                for i, label_set in enumerate(family.label_sets):
                    gauges[i] = max(0.0, gauges[i] + rnd.uniform(-5.0, 5.0))
                    out.append(f"{family.name}{{{label_set}}} {gauges[i]!r}")
        out.append("")
        return "\n".join(out)

    def _render_histogram(self, family: _Family, out: list[str], rnd: random.Random) -> None:
        name = family.name
        last = len(_BUCKET_TEXT)
        for state, label_set in zip(self._histograms[name], family.label_sets):
            for _ in range(rnd.randrange(1, 4)):
                observed = rnd.expovariate(4.0)
                state[last] += observed
                for b in range(last):
                    if b == last - 1 or observed <= _BUCKETS[b]:
                        state[b] += 1.0
            for b, le in enumerate(_BUCKET_TEXT):
                out.append(f'{name}_bucket{{{label_set},le="{le}"}} {state[b]!r}')
            out.append(f"{name}_sum{{{label_set}}} {state[last]!r}")
            out.append(f"{name}_count{{{label_set}}} {state[last - 1]!r}")


class ExporterServer:
    """An HTTP server answering ``GET /metrics`` with a fresh render of ``exporter``.

    ``port=0`` picks a free port; read the bound one from ``.port`` after ``start()``.
    Use as ``async with ExporterServer(exporter) as server:`` or call ``start``/``stop``.
    """

    def __init__(self, exporter: SyntheticExporter, host: str = "127.0.0.1", port: int = 0) -> None:
        self.exporter = exporter
        self.host = host
        self.port = port
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.exporter.render().encode(), headers={"Content-Type": CONTENT_TYPE})

    @property
    def url(self) -> str:
        """The scrape URL, e.g. ``http://127.0.0.1:39123/metrics``."""
        return f"http://{self.host}:{self.port}/metrics"

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def __aenter__(self) -> ExporterServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def serve(exporter: SyntheticExporter, host: str = "127.0.0.1", port: int = 0) -> ExporterServer:
    """Start serving ``exporter`` on ``host:port``; the caller stops the returned server."""
    server = ExporterServer(exporter, host, port)
    await server.start()
    return server
