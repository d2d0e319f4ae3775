"""Scrape loops against real HTTP targets on 127.0.0.1."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import pytest

from daemon.clock import FakeClock
from daemon.config import parse_config
from daemon.scrape.fetch import Clients
from daemon.scrape.loop import ScrapeLoop, ScrapeOptions
from daemon.scrape.target import TargetGroup, targets_for
from daemon.testing.target import FakeTarget
from daemon.tsdb import Store, is_stale, parse_selector

GOOD = """# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{code="200",method="get"} 10
http_requests_total{code="500",method="get"} 2
temperature_celsius 21.5
"""


@pytest.fixture
async def target() -> AsyncIterator[FakeTarget]:
    async with FakeTarget() as fake:
        yield fake


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    pool = Clients()
    yield pool
    await pool.aclose()


def make_loop(target: FakeTarget, clients: Clients, store: Store, clock: FakeClock, job_yaml: str = "") -> ScrapeLoop:
    config = parse_config(
        f"""
scrape_configs:
  - job_name: app
    scrape_interval: 15s
    scrape_timeout: 1s
{job_yaml}
    static_configs: [{{targets: ["{target.address}"]}}]
""",
        "test.yml",
    )
    job = config.scrape_configs[0]
    (scrape_target,) = targets_for(job, [TargetGroup([target.address], {}, "test")])
    return ScrapeLoop(scrape_target, ScrapeOptions.of(job), clients.fetcher_for(job), store, clock)


def value(store: Store, selector: str, t_ms: int) -> float | None:
    series = store.select(parse_selector(selector))
    assert len(series) == 1, [str(s.labels) for s in series]
    return series[0].latest_at(t_ms)


def last_raw(store: Store, selector: str) -> float:
    (series,) = store.select(parse_selector(selector))
    last = series.last()
    assert last is not None
    return last[1]


async def test_good_scrape_stores_samples_with_target_labels(target: FakeTarget, clients: Clients) -> None:
    store, clock = Store(), FakeClock()
    target.set(GOOD)
    loop = make_loop(target, clients, store, clock)
    await loop.scrape_once()
    now = int(clock.time() * 1000)
    instance = target.address
    assert value(store, f'http_requests_total{{code="500",job="app",instance="{instance}"}}', now) == 2
    assert value(store, "temperature_celsius", now) == 21.5
    assert value(store, 'up{job="app"}', now) == 1
    assert value(store, "scrape_samples_scraped", now) == 3
    assert value(store, "scrape_samples_post_metric_relabeling", now) == 3
    assert value(store, "scrape_series_added", now) == 3
    assert value(store, "scrape_duration_seconds", now) is not None
    assert loop.health.health == "up" and loop.health.last_error == ""
    request = target.requests[-1]
    assert "application/openmetrics-text" in request.headers["Accept"]
    assert "text/plain;version=0.0.4" in request.headers["Accept"]
    assert request.headers["X-Prometheus-Scrape-Timeout-Seconds"] == "1"

    # A repeat scrape reuses the series: nothing new is added.
    await clock.advance(15)
    target.set(GOOD.replace("} 10", "} 11"))
    await loop.scrape_once()
    now = int(clock.time() * 1000)
    assert value(store, 'http_requests_total{code="200"}', now) == 11
    assert value(store, "scrape_series_added", now) == 0


async def test_gzip_payload(target: FakeTarget, clients: Clients) -> None:
    store, clock = Store(), FakeClock()
    target.set(gzip.compress(GOOD.encode()), encoding="gzip")
    loop = make_loop(target, clients, store, clock)
    await loop.scrape_once()
    assert loop.health.health == "up", loop.health.last_error
    assert value(store, "temperature_celsius", int(clock.time() * 1000)) == 21.5
    assert "gzip" in target.requests[-1].headers["Accept-Encoding"]


async def test_openmetrics_content_type_selects_that_parser(target: FakeTarget, clients: Clients) -> None:
    store, clock = Store(), FakeClock()
    target.set(
        "# TYPE jobs counter\njobs_total 3\njobs_created 1700000000.5\n# EOF\n",
        content_type="application/openmetrics-text; version=1.0.0; charset=utf-8",
    )
    loop = make_loop(target, clients, store, clock)
    await loop.scrape_once()
    now = int(clock.time() * 1000)
    assert loop.health.health == "up", loop.health.last_error
    assert value(store, "jobs_total", now) == 3
    assert value(store, "jobs_created", now) == 1700000000.5


BAD_ANSWERS = {
    "http 500": (dict(body=b"oops", status=500), "HTTP status 500"),
    "html": (dict(body=b"<html><body>Login</body></html>", content_type="text/html"), "line 1"),
    "binary garbage": (dict(body=bytes(range(256)) * 4), "not UTF-8"),
    "malformed escape": (dict(body=b'metric{a="bad\\"} 1\n'), "line 1: unterminated label value"),
    "invalid second line": (dict(body=b"ok_metric 1\nbroken{ 2\n"), "line 2"),
}


@pytest.mark.parametrize("case", sorted(BAD_ANSWERS))
async def test_bad_payload_is_a_failed_scrape_with_stale_markers(target: FakeTarget, clients: Clients, case: str) -> None:
    store, clock = Store(), FakeClock()
    target.set(GOOD)
    loop = make_loop(target, clients, store, clock)
    await loop.scrape_once()

    await clock.advance(15)
    answer, reason = BAD_ANSWERS[case]
    target.set(**answer)  # type: ignore[arg-type]
    await loop.scrape_once()
    now = int(clock.time() * 1000)
    assert loop.health.health == "down"
    assert reason in loop.health.last_error
    assert value(store, "up", now) == 0
    assert value(store, "scrape_samples_scraped", now) == 0
    # All or nothing: no sample of the bad payload, and every previous series is stale.
    assert is_stale(last_raw(store, "temperature_celsius"))
    assert is_stale(last_raw(store, 'http_requests_total{code="200"}'))
    assert value(store, "temperature_celsius", now) is None
    if case == "invalid second line":
        assert store.select(parse_selector("ok_metric")) == []


async def test_endless_body_hits_body_size_limit(target: FakeTarget, clients: Clients) -> None:
    store, clock = Store(), FakeClock()
    target.set(b"big_metric 1\n", endless=True)
    loop = make_loop(target, clients, store, clock, "    body_size_limit: 64KB")
    await loop.scrape_once()
    assert loop.health.health == "down"
    assert "body size limit" in loop.health.last_error


async def test_response_that_never_ends_times_out(target: FakeTarget, clients: Clients) -> None:
    store, clock = Store(), FakeClock()
    target.set(GOOD, hang=True)
    loop = make_loop(target, clients, store, clock)
    await loop.scrape_once()
    assert loop.health.health == "down"
    assert "timed out" in loop.health.last_error


async def test_connection_refused(clients: Clients) -> None:
    store, clock = Store(), FakeClock()
    closed = FakeTarget()
    await closed.start()
    await closed.stop()
    loop = make_loop(closed, clients, store, clock)
    await loop.scrape_once()
    assert loop.health.health == "down"
    assert loop.health.last_error


async def test_series_missing_from_a_scrape_goes_stale(target: FakeTarget, clients: Clients) -> None:
    store, clock = Store(), FakeClock()
    target.set(GOOD)
    loop = make_loop(target, clients, store, clock)
    await loop.scrape_once()
    await clock.advance(15)
    target.set(GOOD.replace("temperature_celsius 21.5\n", ""))
    await loop.scrape_once()
    now = int(clock.time() * 1000)
    assert is_stale(last_raw(store, "temperature_celsius"))
    assert value(store, 'http_requests_total{code="200"}', now) == 10


async def test_duplicate_series_keeps_first_sample_and_counts(target: FakeTarget, clients: Clients) -> None:
    store, clock = Store(), FakeClock()
    target.set("dup_metric 1\ndup_metric 2\nother 3\n")
    seen = []
    loop = make_loop(target, clients, store, clock)
    loop._on_scrape = lambda _loop, _d, error, stats: seen.append((error, stats))
    await loop.scrape_once()
    now = int(clock.time() * 1000)
    assert loop.health.health == "up"
    assert value(store, "dup_metric", now) == 1
    assert value(store, "other", now) == 3
    error, stats = seen[-1]
    assert error is None and stats is not None and stats.rejected == 1


async def test_remove_target_marks_everything_stale(target: FakeTarget, clients: Clients) -> None:
    store, clock = Store(), FakeClock()
    target.set(GOOD)
    loop = make_loop(target, clients, store, clock)
    await loop.scrape_once()
    await clock.advance(5)
    await loop.stop(mark_stale=True)
    assert is_stale(last_raw(store, "temperature_celsius"))
    assert is_stale(last_raw(store, "up"))


async def test_honor_labels_and_exported_prefix(target: FakeTarget, clients: Clients) -> None:
    payload = 'from_pushgateway{job="batch",instance="x"} 1\n'
    store, clock = Store(), FakeClock()
    target.set(payload)
    await make_loop(target, clients, store, clock).scrape_once()
    (series,) = store.select(parse_selector("from_pushgateway"))
    assert series.labels.get("job") == "app"
    assert series.labels.get("exported_job") == "batch"
    assert series.labels.get("exported_instance") == "x"

    store = Store()
    await make_loop(target, clients, store, clock, "    honor_labels: true").scrape_once()
    (series,) = store.select(parse_selector("from_pushgateway"))
    assert series.labels.get("job") == "batch" and series.labels.get("instance") == "x"


async def test_metric_relabel_drop_and_sample_limit(target: FakeTarget, clients: Clients) -> None:
    store, clock = Store(), FakeClock()
    target.set(GOOD)
    relabel = """    metric_relabel_configs:
      - source_labels: [__name__]
        regex: temperature_.*
        action: drop"""
    loop = make_loop(target, clients, store, clock, relabel)
    await loop.scrape_once()
    now = int(clock.time() * 1000)
    assert store.select(parse_selector("temperature_celsius")) == []
    assert value(store, "scrape_samples_post_metric_relabeling", now) == 2

    store = Store()
    loop = make_loop(target, clients, store, clock, "    sample_limit: 2")
    await loop.scrape_once()
    assert loop.health.health == "down"
    assert "sample_limit" in loop.health.last_error
    assert store.select(parse_selector("http_requests_total")) == []


async def test_explicit_timestamps_honoured_or_not(target: FakeTarget, clients: Clients) -> None:
    store, clock = Store(), FakeClock()
    stamp = int(clock.time() * 1000) - 5_000
    target.set(f"with_ts 4 {stamp}\n")
    await make_loop(target, clients, store, clock).scrape_once()
    assert store.select(parse_selector("with_ts"))[0].last() == (stamp, 4.0)

    store = Store()
    await make_loop(target, clients, store, clock, "    honor_timestamps: false").scrape_once()
    assert store.select(parse_selector("with_ts"))[0].last() == (int(clock.time() * 1000), 4.0)


def test_offsets_are_stable_and_spread() -> None:
    config = parse_config(
        "scrape_configs: [{job_name: a, scrape_interval: 15s, static_configs: [{targets: []}]}]", "t.yml"
    )
    job = config.scrape_configs[0]
    targets = targets_for(job, [TargetGroup([f"10.0.0.{i}:9100" for i in range(50)], {}, "t")])
    offsets = [t.offset() for t in targets]
    assert all(0 <= o < 15 for o in offsets)
    assert len({round(o, 3) for o in offsets}) > 40
    again = targets_for(job, [TargetGroup([f"10.0.0.{i}:9100" for i in range(50)], {}, "t")])
    assert offsets == [t.offset() for t in again]


@pytest.mark.parametrize(
    ("limit", "reason"),
    [
        ("label_limit: 3", "label_limit exceeded"),
        ("label_name_length_limit: 5", "label_name_length_limit exceeded"),
        ("label_value_length_limit: 4", "label_value_length_limit exceeded"),
    ],
)
async def test_label_limits_fail_the_scrape(target: FakeTarget, clients: Clients, limit: str, reason: str) -> None:
    store, clock = Store(), FakeClock()
    target.set(GOOD)
    loop = make_loop(target, clients, store, clock, "    " + limit)
    await loop.scrape_once()
    assert loop.health.health == "down"
    assert reason in loop.health.last_error
    assert store.select(parse_selector("http_requests_total")) == []
