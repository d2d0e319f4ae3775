"""One scrape loop per target: fetch, parse, relabel, append, and keep staleness honest."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from daemon.clock import Clock
from daemon.config import ScrapeConfig
from daemon.schedule import Ticker
from daemon.scrape.fetch import FetchError, Fetcher
from daemon.scrape.parser import ParseError, ParserMemo, format_of, parse
from daemon.scrape.relabel import Relabeler
from daemon.scrape.target import Target
from daemon.tsdb import OK, STALE_NAN, Series, Store
from daemon.tsdb.labels import METRIC_NAME, Labels

# Cache value for a series that metric_relabel_configs dropped: the line is skipped without
# relabelling it again on every scrape.
DROPPED = object()

REPORT_NAMES = (
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
)


class ScrapeFailed(Exception):
    """A scrape that produced no samples: HTTP error, timeout, oversized or invalid payload, limit."""


@dataclass(frozen=True, slots=True)
class ScrapeOptions:
    """What a job's config says about the samples of each of its targets."""

    honor_labels: bool = False
    honor_timestamps: bool = True
    sample_limit: int = 0
    label_limit: int = 0
    label_name_length_limit: int = 0
    label_value_length_limit: int = 0
    metric_relabel: Relabeler | None = None

    @classmethod
    def of(cls, job: ScrapeConfig) -> ScrapeOptions:
        """The options of a scrape job's config."""
        return cls(
            honor_labels=job.honor_labels,
            honor_timestamps=job.honor_timestamps,
            sample_limit=job.sample_limit,
            label_limit=job.label_limit,
            label_name_length_limit=job.label_name_length_limit,
            label_value_length_limit=job.label_value_length_limit,
            metric_relabel=Relabeler(job.metric_relabel_configs) if job.metric_relabel_configs else None,
        )


@dataclass(frozen=True, slots=True)
class ScrapeStats:
    """Counts of one successful scrape."""

    scraped: int
    kept: int
    added: int
    rejected: int


@dataclass(slots=True)
class TargetHealth:
    """What /api/v1/targets shows of a target's last scrape."""

    health: str = "unknown"
    last_error: str = ""
    last_scrape: float = 0.0
    last_scrape_duration: float = 0.0
    scrapes: int = 0


class ScrapeLoop:
    """Scrapes one target at its interval, from an offset fixed by its identity.

    Samples are stamped with the time the scrape started. A scrape stores all its samples or none;
    whatever the target exposed last time and not this time (or everything, when the scrape fails)
    gets a stale marker, as Prometheus does.
    """

    def __init__(
        self,
        target: Target,
        options: ScrapeOptions,
        fetcher: Fetcher,
        store: Store,
        clock: Clock,
        *,
        on_scrape: Callable[[ScrapeLoop, float, ScrapeFailed | None, ScrapeStats | None], None] | None = None,
    ) -> None:
        self.target = target
        self.options = options
        self.health = TargetHealth()
        self.fetcher = fetcher
        self._store = store
        self._clock = clock
        self._on_scrape = on_scrape
        self._cache: dict[str, Any] = {}
        self._memo = ParserMemo()  # what the parser learnt of this target's OpenMetrics lines
        self._previous: set[Series] = set()
        self._report: list[Series] = []  # created at the first scrape, so no series exists without samples
        self._ticker: Ticker | None = None

    def start(self) -> None:
        target = self.target
        self._ticker = Ticker(self._clock, target.interval, target.offset(), self.scrape_once, name=f"scrape {target.url}")
        self._ticker.start()

    async def stop(self, *, mark_stale: bool = True) -> None:
        """Stop scraping. A target that goes away marks all its series stale."""
        if self._ticker is not None:
            await self._ticker.stop()
            self._ticker = None
        if mark_stale:
            t_ms = int(self._clock.time() * 1000)
            self._mark_stale(self._previous, t_ms)
            self._previous = set()
            for series in self._report:
                self._store.append(series, t_ms, STALE_NAN)

    async def scrape_once(self) -> None:
        """Scrape now, store the result, and update health and the report series."""
        started = self._clock.time()
        start_mono = self._clock.monotonic()
        t_ms = int(started * 1000)
        error: ScrapeFailed | None = None
        stats: ScrapeStats | None = None
        try:
            stats = await self._scrape(t_ms)
        except ScrapeFailed as exc:
            error = exc
            self._mark_stale(self._previous, t_ms)
            self._previous = set()
        duration = self._clock.monotonic() - start_mono
        health = self.health
        health.health = "down" if error else "up"
        health.last_error = str(error) if error else ""
        health.last_scrape = started
        health.last_scrape_duration = duration
        health.scrapes += 1
        if stats is None:
            report = (0.0, duration, 0.0, 0.0, 0.0)
        else:
            report = (1.0, duration, float(stats.scraped), float(stats.kept), float(stats.added))
        if not self._report:
            labels = self.target.labels.to_dict()
            self._report = [self._store.series(Labels.of({**labels, METRIC_NAME: name}))[0] for name in REPORT_NAMES]
        for series, value in zip(self._report, report):
            self._store.append(series, t_ms, value)
        if self._on_scrape is not None:
            self._on_scrape(self, duration, error, stats)

    async def _scrape(self, t_ms: int) -> ScrapeStats:
        try:
            body, content_type = await self.fetcher.fetch(self.target)
        except FetchError as exc:
            raise ScrapeFailed(str(exc)) from None
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ScrapeFailed(f"payload is not UTF-8 text (byte {exc.start})") from None
        try:
            parsed = parse(text, self._cache, format_of(content_type), self._memo)
        except ParseError as exc:
            raise ScrapeFailed(f"invalid payload: {exc}") from None

        refs = parsed.refs
        fresh = [(i, self._sample_labels(refs[i].labels)) for i in parsed.new]
        kept = len(refs) - refs.count(DROPPED) - sum(1 for _, labels in fresh if labels is None)
        limit = self.options.sample_limit
        if limit and kept > limit:
            raise ScrapeFailed(f"sample_limit exceeded: {kept} samples, limit {limit}")
        # Only now, with the scrape known good, do its new series enter the store and the cache.
        added = 0
        for i, labels in fresh:
            head = refs[i].head
            if labels is None:
                ref: Any = DROPPED
            else:
                ref, created = self._store.series(labels)
                added += created
            refs[i] = ref
            self._cache[head] = ref
        current = set(refs)
        current.discard(DROPPED)

        values = parsed.values
        stamps = parsed.timestamps if self.options.honor_timestamps else {}
        store_append = self._store.append
        rejected = 0
        for i, ref in enumerate(refs):
            if ref is DROPPED:
                continue
            if store_append(ref, stamps.get(i, t_ms) if stamps else t_ms, values[i]) != OK:
                rejected += 1
        self._mark_stale(self._previous - current, t_ms)
        self._previous = current
        if len(self._cache) > 2 * len(refs) + 64:
            # Series the target no longer exposes would otherwise pin their cache entries forever.
            self._cache = {head: ref for head, ref in self._cache.items() if ref in current}
        return ScrapeStats(len(refs), kept, added, rejected)

    def _sample_labels(self, exposed: Labels) -> Labels | None:
        """The stored label set of an exposed series: target labels attached, then metric relabelling."""
        labels = exposed.to_dict()
        for name, value in self.target.labels.items():
            if name in labels and labels[name] != "":
                if self.options.honor_labels:
                    continue
                labels["exported_" + name] = labels[name]
            labels[name] = value
        if self.options.metric_relabel is not None:
            relabelled = self.options.metric_relabel.apply(labels)
            if relabelled is None:
                return None
            labels = relabelled
        self._check_label_limits(labels)
        return Labels.of(labels)

    def _check_label_limits(self, labels: dict[str, str]) -> None:
        # Only new series get here: a series already in the cache passed these checks.
        options = self.options
        if options.label_limit and len(labels) > options.label_limit:
            raise ScrapeFailed(f"label_limit exceeded: {len(labels)} labels, limit {options.label_limit}")
        for name, value in labels.items():
            if options.label_name_length_limit and len(name) > options.label_name_length_limit:
                raise ScrapeFailed(f"label_name_length_limit exceeded by label name {name[:64]!r}")
            if options.label_value_length_limit and len(value) > options.label_value_length_limit:
                raise ScrapeFailed(f"label_value_length_limit exceeded by the value of label {name!r}")

    def _mark_stale(self, gone: set[Series], t_ms: int) -> None:
        append = self._store.append
        for series in gone:
            append(series, t_ms, STALE_NAN)
