"""Exposition parser throughput against prometheus_client's text parser, same payload, same run.

    python -m bench.parser [--series 50000] [--repeat 5]

Prints lines per second for prometheus_client, alertd on a first scrape (empty series cache)
and alertd on a repeat scrape (warm cache, new values), and the ratios.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from daemon.scrape.parser import TEXT, parse
from daemon.testing.exporter import SyntheticExporter


def _best_interleaved(runs: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """The fastest time of each contender, in seconds, running them in turn each round so that
    a burst of load from elsewhere on the machine hits all of them alike."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.parser", description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=50_000, help="series in the synthetic payload")
    parser.add_argument("--repeat", type=int, default=5, help="rounds; the best time of each is kept")
    args = parser.parse_args(argv)

    exporter = SyntheticExporter(args.series, seed=1)
    first = exporter.render()
    repeat_scrape = exporter.render()
    lines = first.count("\n")
    samples = len(parse(first, {}, TEXT).refs)

    cold = parse(first, {}, TEXT)
    cache: dict[str, object] = {cold.refs[i].head: i for i in cold.new}  # type: ignore[attr-defined]
    warm = parse(repeat_scrape, cache, TEXT)
    assert not warm.new and len(warm.refs) == samples

    def client() -> None:
        for family in text_string_to_metric_families(first):
            family.samples  # noqa: B018  (families are built lazily by the generator)

    best = _best_interleaved(
        {
            "client": client,
            "cold": lambda: parse(first, {}, TEXT),
            "warm": lambda: parse(repeat_scrape, cache, TEXT),
        },
        args.repeat,
    )
    t_client, t_cold, t_warm = best["client"], best["cold"], best["warm"]

    print(f"payload: {lines} lines, {samples} samples, {len(first) / 1e6:.1f} MB ({args.series} series requested)")
    print(f"prometheus_client   {lines / t_client:>12,.0f} lines/s   {t_client * 1e3:8.1f} ms")
    print(f"alertd cold cache   {lines / t_cold:>12,.0f} lines/s   {t_cold * 1e3:8.1f} ms   x{t_client / t_cold:.1f}")
    print(f"alertd warm cache   {lines / t_warm:>12,.0f} lines/s   {t_warm * 1e3:8.1f} ms   x{t_client / t_warm:.1f}")


if __name__ == "__main__":
    main()
