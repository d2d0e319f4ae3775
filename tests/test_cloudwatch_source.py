"""The CloudWatch source against the in-memory fake: schedule, batching, paging, statuses, health."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from structlog.testing import capture_logs

from daemon.clock import FakeClock
from daemon.cloudwatch import HEALTH_LABELS, Backoff, CloudWatchSource, series_labels
from daemon.cloudwatch.fake import Failure, FakeCloudWatch
from daemon.config import parse_config
from daemon.config.cloudwatch import CloudWatchConfig
from daemon.metrics import DaemonMetrics
from daemon.tsdb import Labels, Store

T0 = 1_700_000_000.0  # a whole minute: 1_700_000_000 % 60 == 20, so periods start at T0 - 20


def section(metrics: str, **settings: str) -> CloudWatchConfig:
    head = "\n".join(f"  {key}: {value}" for key, value in {"region": "eu-west-1", **settings}.items())
    config = parse_config(f"cloudwatch:\n{head}\n  metrics:\n{metrics}")
    assert config.cloudwatch is not None
    return config.cloudwatch


ECS_CPU = """\
    - namespace: AWS/ECS
      metric_name: CPUUtilization
      dimensions: {ClusterName: prod, ServiceName: api}
      statistics: [Average, Maximum]
"""


def samples(store: Store, labels: Labels) -> list[tuple[int, float]]:
    series, _ = store.series(labels)
    times, values = series.window(0, 2**62)
    return list(zip(times, values))


def health(store: Store) -> list[float]:
    return [value for _, value in samples(store, HEALTH_LABELS)]


def value_of(metrics: DaemonMetrics, name: str, labels: dict[str, str] | None = None) -> float:
    return metrics.registry.get_sample_value(name, labels or {}) or 0.0


class Fixture:
    def __init__(self, fake: FakeCloudWatch | None = None, start: float = T0) -> None:
        self.clock = FakeClock(start)
        self.store = Store(retention=3 * 3600)
        self.metrics = DaemonMetrics()
        self.fake = fake or FakeCloudWatch()
        self.source = CloudWatchSource(
            self.store,
            self.clock,
            self.metrics,
            api_factory=lambda _config: self.fake,
            backoff=Backoff(base=0.01, cap=0.02),
            rng=random.Random(1),
        )


async def test_polls_on_the_clock_and_stores_cloudwatch_timestamps() -> None:
    f = Fixture()
    minute = (T0 // 60) * 60  # 1_699_999_980
    for i in range(-6, 4):
        f.fake.put("AWS/ECS", "CPUUtilization", {"ClusterName": "prod", "ServiceName": "api"}, "Average", minute + 60 * i, 10.0 + i)
        f.fake.put("AWS/ECS", "CPUUtilization", {"ClusterName": "prod", "ServiceName": "api"}, "Maximum", minute + 60 * i, 50.0 + i)
    await f.source.apply(section(ECS_CPU))
    await f.clock.advance(0)
    average = Labels.of(
        {"__name__": "aws_ecs_cpuutilization_average", "job": "aws_ecs", "cluster_name": "prod", "service_name": "api"}
    )
    # delay 2m, period 1m: at T0 (minute + 20s) the newest period that ended 2m ago is
    # [minute-180, minute-120), stamped with its start.
    first = samples(f.store, average)
    assert first[-1] == (int((minute - 180) * 1000), 7.0)
    assert [t for t, _ in first] == [int((minute - 60 * k) * 1000) for k in (4, 3)]
    assert health(f.store) == [1.0]
    calls = [call for call in f.fake.calls if call[0] == "GetMetricData"]
    assert len(calls) == 1 and calls[0][1] == "eu-west-1"
    assert calls[0][2]["ScanBy"] == "TimestampAscending"
    assert {q["MetricStat"]["Stat"] for q in calls[0][2]["MetricDataQueries"]} == {"Average", "Maximum"}

    await f.clock.advance(60)
    after = samples(f.store, average)
    assert after[-1] == (int((minute - 120) * 1000), 8.0)
    assert len(after) == 3  # the overlapping period is not stored twice
    assert len(health(f.store)) == 2
    assert value_of(f.metrics, "alertd_cloudwatch_requests_total", {"operation": "GetMetricData"}) == 2
    assert value_of(f.metrics, "alertd_cloudwatch_metrics_requested_total") == 4
    assert value_of(f.metrics, "alertd_cloudwatch_samples_total") == 2 * 3
    await f.source.stop()


async def test_batches_of_500_queries_and_next_token_followed() -> None:
    f = Fixture(FakeCloudWatch(page_size=7))
    minute = (T0 // 60) * 60
    lines = []
    for n in range(260):  # 260 metrics x 2 statistics = 520 queries: two calls
        lines.append(
            f"    - {{namespace: App, metric_name: Latency, dimensions: {{Shard: s{n}}}, statistics: [Sum, SampleCount]}}\n"
        )
        f.fake.put("App", "Latency", {"Shard": f"s{n}"}, "Sum", minute - 180, float(n))
    await f.source.apply(section("".join(lines)))
    await f.clock.advance(0)
    calls = [call for call in f.fake.calls if call[0] == "GetMetricData"]
    first_pages = [call for call in calls if "NextToken" not in call[2]]
    assert [len(call[2]["MetricDataQueries"]) for call in first_pages] == [500, 20]
    assert len(calls) > 2  # pages of 7 datapoints: NextToken followed
    for n in (0, 137, 259):
        labels = series_labels("App", "Latency", "Sum", [("Shard", f"s{n}")])
        assert samples(f.store, labels) == [(int((minute - 180) * 1000), float(n))]
    assert labels.metric_name == "app_latency_sum"
    assert health(f.store) == [1.0]
    await f.source.stop()


async def test_partial_data_is_kept_and_logged() -> None:
    f = Fixture(FakeCloudWatch(page_size=1, partial=True))
    minute = (T0 // 60) * 60
    for k in (5, 4, 3):
        f.fake.put("AWS/ECS", "CPUUtilization", {"ClusterName": "prod", "ServiceName": "api"}, "Average", minute - 60 * k, float(k))
    await f.source.configure(section(ECS_CPU, period="1m", interval="2m", timeout="1m"))
    with capture_logs() as logs:
        assert await f.source.poll_once()
    labels = series_labels("AWS/ECS", "CPUUtilization", "Average", [("ClusterName", "prod"), ("ServiceName", "api")])
    assert [v for _, v in samples(f.store, labels)] == [5.0, 4.0, 3.0]
    assert any("partial data" in log["event"] for log in logs)
    await f.source.stop()


async def test_empty_results_store_nothing_and_stay_healthy() -> None:
    f = Fixture()
    await f.source.apply(section(ECS_CPU))
    await f.clock.advance(0)
    assert f.store.num_series == 1  # only up
    assert health(f.store) == [1.0]
    await f.source.stop()


async def test_wildcard_discovery_and_refresh() -> None:
    f = Fixture()
    minute = (T0 // 60) * 60
    put = f.fake.put
    put("AWS/RDS", "ReplicaLag", {"DBInstanceIdentifier": "db-1"}, "Maximum", minute - 180, 1.5)
    put("AWS/RDS", "ReplicaLag", {"DBInstanceIdentifier": "db-2"}, "Maximum", minute - 180, 2.5)
    # More dimensions than asked for: not this entry's metric.
    put("AWS/RDS", "ReplicaLag", {"DBInstanceIdentifier": "db-1", "Role": "READER"}, "Maximum", minute - 180, 9.0)
    rds = "    - {namespace: AWS/RDS, metric_name: ReplicaLag, dimensions: {DBInstanceIdentifier: '*'}, statistics: [Maximum]}\n"
    await f.source.apply(section(rds, discovery_interval="5m"))
    await f.clock.advance(0)
    found = sorted(s.labels.get("dbinstance_identifier") for s in f.store.select([]) if s.labels.metric_name == "aws_rds_replica_lag_maximum")
    assert found == ["db-1", "db-2"]
    listed = [call for call in f.fake.calls if call[0] == "ListMetrics"]
    assert listed[0][2] == {"Namespace": "AWS/RDS", "MetricName": "ReplicaLag", "Dimensions": [{"Name": "DBInstanceIdentifier"}]}

    put("AWS/RDS", "ReplicaLag", {"DBInstanceIdentifier": "db-3"}, "Maximum", minute + 120, 3.5)
    await f.clock.advance(240)  # 4 polls, no new discovery yet
    assert len([call for call in f.fake.calls if call[0] == "ListMetrics"]) == 1
    await f.clock.advance(60)  # 5 minutes: discovered again, db-3 read
    assert len([call for call in f.fake.calls if call[0] == "ListMetrics"]) == 2
    db3 = series_labels("AWS/RDS", "ReplicaLag", "Maximum", [("DBInstanceIdentifier", "db-3")])
    assert samples(f.store, db3) == [(int((minute + 120) * 1000), 3.5)]
    await f.source.stop()


async def test_wildcard_that_discovers_nothing_is_logged_not_an_error() -> None:
    f = Fixture()
    rds = "    - {namespace: AWS/RDS, metric_name: ReplicaLag, dimensions: {DBInstanceIdentifier: '*'}}\n"
    await f.source.configure(section(rds))
    with capture_logs() as logs:
        assert await f.source.poll_once()
    assert any(log["event"] == "wildcard discovered no metric" for log in logs)
    assert not [call for call in f.fake.calls if call[0] == "GetMetricData"]
    await f.source.stop()


async def test_throttling_retried_then_success() -> None:
    f = Fixture()
    f.fake.fail_next(Failure(400, "Throttling"), Failure(503, "ServiceUnavailable"))
    await f.source.configure(section(ECS_CPU))
    task = asyncio.ensure_future(f.source.poll_once())
    while not task.done():
        await f.clock.advance(0.01)
    assert task.result() is True
    assert value_of(f.metrics, "alertd_cloudwatch_request_errors_total", {"operation": "GetMetricData", "kind": "throttled"}) == 1
    assert value_of(f.metrics, "alertd_cloudwatch_request_errors_total", {"operation": "GetMetricData", "kind": "server"}) == 1
    assert value_of(f.metrics, "alertd_cloudwatch_requests_total", {"operation": "GetMetricData"}) == 3
    await f.source.stop()


async def test_access_denied_makes_health_zero_and_polling_goes_on() -> None:
    f = Fixture()
    f.fake.fail_next(Failure(403, "AccessDenied", "not authorized to perform cloudwatch:GetMetricData"))
    await f.source.apply(section(ECS_CPU))
    with capture_logs() as logs:
        await f.clock.advance(0)
    assert health(f.store) == [0.0]
    denied = [log for log in logs if log["log_level"] == "error"]
    assert denied and "cloudwatch:GetMetricData" in denied[0]["event"] and denied[0]["code"] == "AccessDenied"
    await f.clock.advance(60)
    assert health(f.store) == [0.0, 1.0]
    await f.source.stop()


async def test_forbidden_or_internal_error_status_of_a_result_is_unhealthy() -> None:
    class Refusing(FakeCloudWatch):
        async def get_metric_data(self, region: str, **params: Any) -> dict[str, Any]:
            answer = await super().get_metric_data(region, **params)
            answer["MetricDataResults"][0]["StatusCode"] = "Forbidden"
            answer["MetricDataResults"][0]["Messages"] = [{"Code": "Forbidden", "Value": "no access"}]
            return answer

    f = Fixture(Refusing())
    await f.source.configure(section(ECS_CPU))
    with capture_logs() as logs:
        assert not await f.source.poll_once()
    assert any(log["event"] == "CloudWatch could not answer a query" for log in logs)
    await f.source.stop()


async def test_missed_periods_are_read_back_after_failures() -> None:
    f = Fixture()
    minute = (T0 // 60) * 60
    for i in range(-6, 12):
        f.fake.put("AWS/ECS", "CPUUtilization", {"ClusterName": "prod", "ServiceName": "api"}, "Average", minute + 60 * i, float(i))
    await f.source.apply(section(ECS_CPU))
    await f.clock.advance(0)
    f.fake.fail_next(*[Failure(403, "AccessDenied")] * 4)
    await f.clock.advance(240)
    assert health(f.store)[-4:] == [0.0] * 4
    await f.clock.advance(60)
    labels = series_labels("AWS/ECS", "CPUUtilization", "Average", [("ClusterName", "prod"), ("ServiceName", "api")])
    values = [v for _, v in samples(f.store, labels)]
    assert values == [float(i) for i in range(-4, 3)]  # no gap
    await f.source.stop()


async def test_apply_follows_reloads() -> None:
    f = Fixture()
    await f.source.apply(section(ECS_CPU))
    await f.clock.advance(0)
    task = f.source._task
    await f.source.apply(section(ECS_CPU))  # unchanged: the loop goes on
    assert f.source._task is task
    await f.source.apply(section(ECS_CPU, interval="2m"))
    assert f.source._task is not task
    await f.source.apply(None)
    assert f.source._task is None and f.source.config is None
    await f.source.stop()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_backoff_is_bounded(seed: int) -> None:
    rng = random.Random(seed)
    backoff = Backoff(base=0.5, cap=8.0)
    assert all(0 <= backoff.delay(n, rng) <= min(8.0, 0.5 * 2**n) for n in range(10))
