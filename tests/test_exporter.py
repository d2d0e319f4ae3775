"""The synthetic exporter: its payload, and its HTTP server on loopback."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from daemon.scrape.parser import TEXT, format_of, parse
from daemon.testing.exporter import CONTENT_TYPE, SyntheticExporter, serve


def test_payload_parses_with_both_parsers() -> None:
    exporter = SyntheticExporter(2000, seed=3)
    text = exporter.render()
    parsed = parse(text, {}, TEXT)
    assert len(parsed.refs) == exporter.series
    assert 1800 <= exporter.series <= 2000
    client_samples = sum(len(f.samples) for f in text_string_to_metric_families(text))
    assert client_samples == exporter.series
    kinds = {f.type for f in text_string_to_metric_families(text)}
    assert kinds == {"counter", "histogram", "gauge"}


def test_series_shape() -> None:
    parsed = parse(SyntheticExporter(3000).render(), {})
    labels = [ref.labels for ref in parsed.refs]  # type: ignore[attr-defined]
    assert len(set(labels)) == len(labels)  # every series is unique
    counters = [ls for ls in labels if ls.metric_name.endswith("_total")]
    assert counters and all(3 <= len(ls) // 2 - 1 <= 5 for ls in counters)
    buckets = [ls for ls in labels if ls.metric_name.endswith("_bucket")]
    per_histogram: dict[object, int] = {}
    for ls in buckets:
        key = ls.with_(le="")
        per_histogram[key] = per_histogram.get(key, 0) + 1
    assert per_histogram and set(per_histogram.values()) == {12}


def test_render_advances_values_but_keeps_the_series() -> None:
    exporter = SyntheticExporter(500, seed=7)
    first = parse(exporter.render(), {})
    cache = {first.refs[i].head: i for i in first.new}  # type: ignore[attr-defined]
    second = parse(exporter.render(), cache)
    assert second.new == []
    assert second.refs == list(range(len(first.refs)))
    counters = [i for i, ref in enumerate(first.refs) if ref.labels.metric_name.endswith("_total")]  # type: ignore[attr-defined]
    assert all(second.values[i] >= first.values[i] for i in counters)
    assert any(second.values[i] > first.values[i] for i in counters)
    assert list(second.values) != list(first.values)


def test_same_seed_same_payload() -> None:
    assert SyntheticExporter(300, seed=1).render() == SyntheticExporter(300, seed=1).render()
    assert SyntheticExporter(300, seed=1).render() != SyntheticExporter(300, seed=2).render()


def test_tiny_exporter() -> None:
    exporter = SyntheticExporter(1)
    assert len(parse(exporter.render(), {}).refs) == exporter.series == 1


async def test_server_answers_metrics_on_loopback() -> None:
    exporter = SyntheticExporter(200)
    server = await serve(exporter, "127.0.0.1", 0)
    try:
        assert server.port != 0
        async with httpx.AsyncClient() as client:
            response = await client.get(server.url)
            missing = await client.get(server.url.replace("/metrics", "/nope"))
        assert response.status_code == 200
        assert response.headers["content-type"] == CONTENT_TYPE
        assert format_of(response.headers["content-type"]) == TEXT
        assert len(parse(response.text, {}).refs) == exporter.series
        assert missing.status_code == 404
    finally:
        await server.stop()


async def test_server_as_context_manager() -> None:
    from daemon.testing.exporter import ExporterServer

    async with ExporterServer(SyntheticExporter(50)) as server:
        async with httpx.AsyncClient() as client:
            assert (await client.get(server.url)).status_code == 200
