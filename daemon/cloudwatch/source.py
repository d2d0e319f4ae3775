"""The CloudWatch source: polls GetMetricData on the clock and appends the samples to the store.

Every ``interval`` a poll asks, for every configured metric, dimension set and statistic, for the
periods that ended at least ``delay`` ago, and stores each value at CloudWatch's own timestamp
(the start of its period) under the name cloudwatch_exporter would give it. Queries go out
500 to a GetMetricData call (CloudWatch's limit), grouped by region and period, and every
``NextToken`` is followed. Throttling, 5xx answers and network errors are retried with jittered
backoff until the poll's deadline (``timeout``). Wildcard dimensions are resolved through
ListMetrics every ``discovery_interval``.

Health: every poll writes ``up{job="cloudwatch"}``: 1 when every call of the poll succeeded and
every result was complete or partial, else 0 (AccessDenied, deadline exceeded, no credentials...).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import structlog
from prometheus_client import Counter

from daemon.clock import Clock
from daemon.cloudwatch.api import AioCloudWatch, CloudWatchAPI, CloudWatchError, classify
from daemon.cloudwatch.naming import series_labels
from daemon.cloudwatch.retry import Backoff
from daemon.config.cloudwatch import WILDCARD, CloudWatchConfig, CloudWatchMetric
from daemon.metrics import DaemonMetrics
from daemon.tsdb import OK, Labels, Store

MAX_QUERIES_PER_CALL = 500
"""GetMetricData takes at most 500 queries per request."""
MAX_BACKFILL = 3600.0
"""After failed polls, the next one reads back the missed periods, up to this many seconds."""
HEALTH_LABELS = Labels.of({"__name__": "up", "job": "cloudwatch"})

Dimensions = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Query:
    """One statistic of one metric with one dimension set: one MetricDataQuery, one series."""

    metric: CloudWatchMetric
    dimensions: Dimensions
    statistic: str
    region: str
    period: float
    labels: Labels

    def request(self, query_id: str) -> dict[str, Any]:
        """The MetricDataQuery for GetMetricData."""
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.metric.namespace,
                    "MetricName": self.metric.metric_name,
                    "Dimensions": [{"Name": name, "Value": value} for name, value in self.dimensions],
                },
                "Period": int(self.period),
                "Stat": self.statistic,
            },
            "ReturnData": True,
        }


class _Metrics:
    """The source's own counters, on the daemon's registry."""

    def __init__(self, metrics: DaemonMetrics) -> None:
        r = metrics.registry
        self.requests = Counter(
            "alertd_cloudwatch_requests",
            "CloudWatch API requests sent, retries included, by operation (ListMetrics is billed per request).",
            ["operation"],
            registry=r,
        )
        self.metrics_requested = Counter(
            "alertd_cloudwatch_metrics_requested",
            "Metric queries sent in GetMetricData requests (GetMetricData is billed per metric requested).",
            registry=r,
        )
        self.errors = Counter(
            "alertd_cloudwatch_request_errors",
            "CloudWatch API requests that failed, by operation and kind "
            "(throttled, server, network, denied, credentials, invalid, timeout).",
            ["operation", "kind"],
            registry=r,
        )
        self.samples = Counter("alertd_cloudwatch_samples", "Samples from CloudWatch appended to the store.", registry=r)
        self.polls = Counter("alertd_cloudwatch_polls", "CloudWatch polls, by result.", ["result"], registry=r)


class _DeadlineExceeded(Exception):
    pass


class CloudWatchSource:
    """Runs the CloudWatch poll loop for the ``cloudwatch`` config section; ``apply`` follows reloads.

    ``api_factory`` builds the CloudWatch client from the section (aiobotocore by default; tests
    pass a fake). The client lives as long as the section's connection settings stay the same.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        metrics: DaemonMetrics,
        *,
        api_factory: Callable[[CloudWatchConfig], CloudWatchAPI] | None = None,
        backoff: Backoff = Backoff(),
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._metrics = _Metrics(metrics)
        self._api_factory = api_factory or _aiobotocore_api
        self._backoff = backoff
        self._rng = rng or random.Random()
        self._log = structlog.get_logger().bind(component="cloudwatch")
        self._config: CloudWatchConfig | None = None
        self._api: CloudWatchAPI | None = None
        self._task: asyncio.Task[None] | None = None
        self._discovered: dict[Any, tuple[Dimensions, ...]] = {}
        self._discovered_at: float | None = None
        self._newest: dict[Labels, int] = {}  # newest timestamp stored per series, in ms
        self._covered: dict[tuple[str, float], float] = {}  # end of the last window read, per group
        self.healthy: bool | None = None
        """Whether the last poll succeeded; ``None`` before the first one."""

    @property
    def config(self) -> CloudWatchConfig | None:
        return self._config

    async def apply(self, config: CloudWatchConfig | None) -> None:
        """Start, change or stop polling to match ``config`` (``None``: no CloudWatch section)."""
        if config == self._config and (config is None or self._task is not None):
            return
        await self._stop_loop()
        await self.configure(config)
        if config is not None:
            self._task = asyncio.get_running_loop().create_task(self._run(config))

    async def configure(self, config: CloudWatchConfig | None) -> None:
        """Take ``config`` without polling on the clock (``poll_once`` then polls on demand)."""
        old = self._config
        if old is None or config is None or _connection(old) != _connection(config):
            await self._close_api()
        self._config = config
        self._discovered_at = None  # the metrics may have changed: discover again now
        if config is not None and config.oldest_newest_sample() > 300:
            self._log.warning(
                "CloudWatch samples may be older than the 5m lookback of instant queries: "
                "shorten delay, period or interval, or use last_over_time() in rules",
                delay=config.delay,
                interval=config.interval,
            )

    async def stop(self) -> None:
        """Stop polling and close the client."""
        await self._stop_loop()
        await self._close_api()

    async def _stop_loop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _close_api(self) -> None:
        if self._api is not None:
            api, self._api = self._api, None
            await api.close()

    async def _run(self, config: CloudWatchConfig) -> None:
        while True:
            started = self._clock.monotonic()
            await self.poll_once()
            # A poll that overran (it cannot: its deadline is within the interval) would start the next at once.
            await self._clock.sleep(config.interval - (self._clock.monotonic() - started))

    async def poll_once(self) -> bool:
        """One poll: discover if due, fetch, store, write the health sample. Returns the health.

        Never raises (other than on cancellation): every failure is logged and makes the health 0.
        """
        config = self._config
        if config is None:
            raise RuntimeError("poll_once needs a config: call apply() first")
        now = self._clock.time()
        deadline = self._clock.monotonic() + config.timeout
        problems: list[str] = []
        try:
            if self._api is None:
                self._api = self._api_factory(config)
            await self._discover(config, deadline, problems)
            await self._fetch(config, now, deadline, problems)
        except _DeadlineExceeded as exc:
            problems.append(str(exc))
            self._log.error("CloudWatch poll ran out of time", timeout=config.timeout, error=str(exc))
        except CloudWatchError as exc:
            problems.append(str(exc))
            self._log_failure(exc)
        except Exception as exc:  # a poll must never take the daemon down
            problems.append(repr(exc))
            self._log.exception("CloudWatch poll failed unexpectedly")
        healthy = not problems
        self.healthy = healthy
        self._metrics.polls.labels("success" if healthy else "failure").inc()
        series, _ = self._store.series(HEALTH_LABELS)
        self._store.append(series, int(self._clock.time() * 1000), 1.0 if healthy else 0.0)
        return healthy

    def _log_failure(self, exc: CloudWatchError) -> None:
        if exc.kind == "denied":
            self._log.error(
                "CloudWatch refused the credentials: grant cloudwatch:GetMetricData and cloudwatch:ListMetrics",
                code=exc.code,
                error=exc.message,
            )
        elif exc.kind == "credentials":
            self._log.error("no AWS credentials for CloudWatch", error=exc.message)
        else:
            self._log.error("CloudWatch request failed", kind=exc.kind, code=exc.code, error=exc.message)

    # -- calls ---------------------------------------------------------------------------------

    async def _call(self, operation: str, region: str, params: dict[str, Any], deadline: float) -> dict[str, Any]:
        """One API call, retried on throttling, 5xx and network errors until ``deadline``."""
        assert self._api is not None
        method = self._api.get_metric_data if operation == "GetMetricData" else self._api.list_metrics
        retry = 0
        while True:
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                raise _DeadlineExceeded(f"{operation}: deadline exceeded")
            self._metrics.requests.labels(operation).inc()
            if operation == "GetMetricData":
                self._metrics.metrics_requested.inc(len(params.get("MetricDataQueries", ())))
            try:
                async with asyncio.timeout(remaining):
                    return await method(region, **params)
            except TimeoutError:
                self._metrics.errors.labels(operation, "timeout").inc()
                raise _DeadlineExceeded(f"{operation}: no answer before the deadline") from None
            except Exception as exc:
                error = classify(exc)
                self._metrics.errors.labels(operation, error.kind).inc()
                if not error.retryable:
                    raise error from exc
                delay = self._backoff.delay(retry, self._rng)
                if self._clock.monotonic() + delay >= deadline:
                    raise _DeadlineExceeded(f"{operation}: still failing at the deadline ({error})") from exc
                self._log.info(
                    "CloudWatch request failed, retrying",
                    operation=operation,
                    kind=error.kind,
                    code=error.code,
                    retry_in=round(delay, 3),
                )
                await self._clock.sleep(delay)
                retry += 1

    # -- discovery -----------------------------------------------------------------------------

    async def _discover(self, config: CloudWatchConfig, deadline: float, problems: list[str]) -> None:
        wildcards = [metric for metric in config.metrics if metric.wildcard]
        now = self._clock.monotonic()
        if not wildcards or (self._discovered_at is not None and now - self._discovered_at < config.discovery_interval):
            return
        found: dict[Any, tuple[Dimensions, ...]] = {}
        for metric in wildcards:
            try:
                found[metric.key] = await self._list(config, metric, deadline)
            except CloudWatchError as exc:
                # Keep what the last discovery found: a ListMetrics hiccup must not drop live series.
                problems.append(str(exc))
                self._log_failure(exc)
                if metric.key in self._discovered:
                    found[metric.key] = self._discovered[metric.key]
                continue
            if not found[metric.key]:
                self._log.warning(
                    "wildcard discovered no metric",
                    namespace=metric.namespace,
                    metric_name=metric.metric_name,
                    dimensions=metric.dimensions,
                )
        self._discovered = found
        if not problems:
            self._discovered_at = now

    async def _list(self, config: CloudWatchConfig, metric: CloudWatchMetric, deadline: float) -> tuple[Dimensions, ...]:
        """Dimension sets of ``metric`` that exist, with exactly its dimension names (as cloudwatch_exporter)."""
        filters = [
            {"Name": name} if value == WILDCARD else {"Name": name, "Value": value}
            for name, value in metric.dimensions.items()
        ]
        params: dict[str, Any] = {"Namespace": metric.namespace, "MetricName": metric.metric_name, "Dimensions": filters}
        names = set(metric.dimensions)
        found: dict[Dimensions, None] = {}
        while True:
            response = await self._call("ListMetrics", config.region_of(metric), params, deadline)
            for item in response.get("Metrics", ()):
                dimensions = {d["Name"]: d["Value"] for d in item.get("Dimensions", ())}
                # ListMetrics also returns metrics with more dimensions than asked for.
                if set(dimensions) != names or item.get("MetricName") != metric.metric_name:
                    continue
                if any(value not in (WILDCARD, dimensions[name]) for name, value in metric.dimensions.items()):
                    continue
                found[_ordered(metric, dimensions)] = None
            token = response.get("NextToken")
            if not token:
                return tuple(found)
            params = {**params, "NextToken": token}

    # -- fetching ------------------------------------------------------------------------------

    def plan(self, config: CloudWatchConfig) -> list[Query]:
        """Every query a poll sends, given what discovery has found so far."""
        queries: list[Query] = []
        for metric in config.metrics:
            if metric.wildcard:
                dimension_sets: Sequence[Dimensions] = self._discovered.get(metric.key, ())
            else:
                dimension_sets = (tuple(metric.dimensions.items()),)
            for dimensions in dimension_sets:
                for statistic in metric.statistics:
                    labels = series_labels(metric.namespace, metric.metric_name, statistic, dimensions)
                    queries.append(
                        Query(metric, dimensions, statistic, config.region_of(metric), config.period_of(metric), labels)
                    )
        return queries

    async def _fetch(self, config: CloudWatchConfig, now: float, deadline: float, problems: list[str]) -> None:
        groups: dict[tuple[str, float], list[Query]] = {}
        planned = self.plan(config)
        for query in planned:
            groups.setdefault((query.region, query.period), []).append(query)
        wanted = {query.labels for query in planned}
        self._newest = {labels: t for labels, t in self._newest.items() if labels in wanted}
        for (region, period), queries in groups.items():
            end = math.floor((now - config.delay) / period) * period
            span = period * (math.ceil(max(config.interval, period) / period) + 1)
            start = end - span
            covered = self._covered.get((region, period))
            if covered is not None and covered < start:
                start = max(covered, end - max(MAX_BACKFILL, span))
                start = math.floor(start / period) * period
            complete = True
            for first in range(0, len(queries), MAX_QUERIES_PER_CALL):
                batch = queries[first : first + MAX_QUERIES_PER_CALL]
                complete &= await self._fetch_batch(region, batch, start, end, deadline, problems)
            if complete:
                self._covered[(region, period)] = end

    async def _fetch_batch(
        self, region: str, batch: list[Query], start: float, end: float, deadline: float, problems: list[str]
    ) -> bool:
        by_id = {f"q{index}": query for index, query in enumerate(batch)}
        params: dict[str, Any] = {
            "MetricDataQueries": [query.request(query_id) for query_id, query in by_id.items()],
            "StartTime": datetime.fromtimestamp(start, tz=timezone.utc),
            "EndTime": datetime.fromtimestamp(end, tz=timezone.utc),
            "ScanBy": "TimestampAscending",
        }
        points: dict[str, list[tuple[int, float]]] = {query_id: [] for query_id in by_id}
        statuses: dict[str, str] = {}
        messages: dict[str, Any] = {}
        partial: set[str] = set()
        pages = 0
        while True:
            response = await self._call("GetMetricData", region, params, deadline)
            pages += 1
            for result in response.get("MetricDataResults", ()):
                query_id = result.get("Id")
                if query_id not in points:
                    continue
                points[query_id].extend(
                    (_ms(t), float(v)) for t, v in zip(result.get("Timestamps", ()), result.get("Values", ()))
                )
                statuses[query_id] = result.get("StatusCode", "Complete")
                if statuses[query_id] == "PartialData":
                    partial.add(query_id)
                if result.get("Messages"):
                    messages[query_id] = result["Messages"]
            token = response.get("NextToken")
            if not token:
                break
            params = {**params, "NextToken": token}
        if partial:
            # CloudWatch cut these results at a page boundary; the rest came with the NextToken pages.
            # A result still partial after the last page is kept as it is.
            still = sum(statuses.get(query_id) == "PartialData" for query_id in partial)
            self._log.info(
                "CloudWatch returned partial data, NextToken followed",
                queries=len(partial),
                pages=pages,
                still_partial=still,
            )
        complete = True
        for query_id, query in by_id.items():
            status = statuses.get(query_id, "Complete")
            if status in ("InternalError", "Forbidden"):
                complete = False
                problems.append(f"{query.labels}: {status}")
                self._log.error(
                    "CloudWatch could not answer a query",
                    series=str(query.labels),
                    status=status,
                    messages=messages.get(query_id),
                )
            self._store_points(query.labels, points[query_id])
        return complete

    def _store_points(self, labels: Labels, points: list[tuple[int, float]]) -> None:
        if not points:
            return
        points.sort()
        newest = self._newest.get(labels, -1)
        series = None
        stored = 0
        for t_ms, value in points:
            if t_ms <= newest:
                continue  # read again because windows overlap
            if series is None:
                series, _ = self._store.series(labels)
            if self._store.append(series, t_ms, value) == OK:
                stored += 1
            newest = t_ms
        self._newest[labels] = newest
        self._metrics.samples.inc(stored)


def _ordered(metric: CloudWatchMetric, dimensions: dict[str, str]) -> Dimensions:
    # Configured order, so that a series keeps one identity whatever order ListMetrics returns.
    return tuple((name, dimensions[name]) for name in metric.dimensions)


def _ms(timestamp: Any) -> int:
    if isinstance(timestamp, datetime):
        return int(round(timestamp.timestamp() * 1000))
    return int(round(float(timestamp) * 1000))


def _connection(config: CloudWatchConfig) -> tuple[Any, ...]:
    return (config.region, config.role_arn, config.endpoint_url, config.sts_endpoint_url)


def _aiobotocore_api(config: CloudWatchConfig) -> CloudWatchAPI:
    return AioCloudWatch(
        config.region,
        role_arn=config.role_arn,
        endpoint_url=config.endpoint_url,
        sts_endpoint_url=config.sts_endpoint_url,
        read_timeout=config.timeout,
    )
