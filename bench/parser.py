"""Exposition parser throughput against prometheus_client's parsers, same payload, same run.

    python -m bench.parser [--series 50000] [--repeat 5]

Prints lines per second for prometheus_client, alertd on a first scrape (empty series cache)
and alertd on a repeat scrape (warm cache, new values), and the ratios: first for the text
format, then for the same series rendered as OpenMetrics, where alertd's repeat scrape also
has the target's warm :class:`ParserMemo` and prometheus_client's OpenMetrics parser is the
reference.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from daemon.scrape.parser import OPENMETRICS, TEXT, Parsed, ParserMemo, parse
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


def as_openmetrics(text: str) -> str:
    """A text-format payload of the synthetic exporter as OpenMetrics: a counter family is
    named without its ``_total`` suffix in its # HELP and # TYPE lines (its samples keep it),
    there are no blank lines, and ``# EOF`` ends the payload."""
    lines = [line for line in text.split("\n") if line]
    counters = {line.split(" ")[2] for line in lines if line.startswith("# TYPE ") and line.endswith(" counter")}
    out = []
    for line in lines:
        if line.startswith("# "):
            keyword, name, rest = line[2:].split(" ", 2)
            if name in counters:
                line = f"# {keyword} {name.removesuffix('_total')} {rest}"
        out.append(line)
    out.append("# EOF")
    return "\n".join(out) + "\n"


def _warm_cache(parsed: Parsed) -> dict[str, object]:
    """What a scrape loop would store after resolving ``parsed``: head -> its own reference."""
    return {parsed.refs[i].head: i for i in parsed.new}  # type: ignore[attr-defined]


def _report(title: str, lines: int, best: dict[str, float]) -> None:
    t_client = best["client"]
    print(title)
    print(f"  prometheus_client   {lines / t_client:>12,.0f} lines/s   {t_client * 1e3:8.1f} ms")
    for key, label in (("cold", "alertd cold cache"), ("warm", "alertd warm cache")):
        t = best[key]
        print(f"  {label:<19} {lines / t:>12,.0f} lines/s   {t * 1e3:8.1f} ms   x{t_client / t:.1f}")


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

    cache = _warm_cache(parse(first, {}, TEXT))
    warm = parse(repeat_scrape, cache, TEXT)
    assert not warm.new and len(warm.refs) == samples

    om_first = as_openmetrics(first)
    om_repeat = as_openmetrics(repeat_scrape)
    om_lines = om_first.count("\n")
    memo = ParserMemo()
    om_cache = _warm_cache(parse(om_first, {}, OPENMETRICS, memo))
    om_warm = parse(om_repeat, om_cache, OPENMETRICS, memo)
    assert not om_warm.new and len(om_warm.refs) == samples
    assert list(om_warm.values) == list(warm.values)

    def client() -> None:
        for family in text_string_to_metric_families(first):
            family.samples  # noqa: B018  (families are built lazily by the generator)

    def om_client() -> None:
        for family in openmetrics_families(om_first):
            family.samples  # noqa: B018

    print(f"payload: {lines} lines, {samples} samples, {len(first) / 1e6:.1f} MB ({args.series} series requested)")
    best = _best_interleaved(
        {
            "client": client,
            "cold": lambda: parse(first, {}, TEXT),
            "warm": lambda: parse(repeat_scrape, cache, TEXT),
        },
        args.repeat,
    )
    _report("text format 0.0.4", lines, best)
    best = _best_interleaved(
        {
            "client": om_client,
            "cold": lambda: parse(om_first, {}, OPENMETRICS, ParserMemo()),
            "warm": lambda: parse(om_repeat, om_cache, OPENMETRICS, memo),
        },
        args.repeat,
    )
    _report(f"OpenMetrics 1.0.0 ({om_lines} lines; warm = series cache and parser memo)", om_lines, best)


if __name__ == "__main__":
    main()
