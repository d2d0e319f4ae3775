"""The CloudWatch source over real sockets: moto's server, and a fake speaking CloudWatch's JSON protocol.

The aiobotocore client is the real one: credentials from the environment, SigV4 signing, retries
off, errors parsed from the wire.
"""

from __future__ import annotations

import asyncio
import random
import re
import urllib.request
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from aiobotocore.session import get_session
from moto.server import ThreadedMotoServer
from structlog.testing import capture_logs

from daemon.app import App
from daemon.clock import FakeClock
from daemon.cloudwatch import HEALTH_LABELS, Backoff, CloudWatchSource, series_labels
from daemon.cloudwatch.fake import Failure, FakeCloudWatchServer
from daemon.config import load_config, parse_config
from daemon.config.cloudwatch import CloudWatchConfig
from daemon.metrics import DaemonMetrics
from daemon.tsdb import Labels, Store, parse_selector

T0 = 1_700_000_000.0
MINUTE = (T0 // 60) * 60
ACCESS_KEY = "AKIDALERTDTEST"
SIGV4 = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[A-Z0-9]+)/\d{8}/(?P<region>[a-z0-9-]+)/(?P<service>[a-z]+)/aws4_request, "
    r"SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}"
)


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    # The default chain, confined to the environment: no profile files, no instance metadata.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def moto() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        # moto's backends live in the process, shared by every server: start each test empty.
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()
        yield url
    finally:
        server.stop()


@pytest.fixture
async def fake() -> AsyncIterator[FakeCloudWatchServer]:
    async with FakeCloudWatchServer() as server:
        yield server


def section(endpoint: str, metrics: str, **settings: str) -> CloudWatchConfig:
    values = {"region": "eu-west-1", "endpoint_url": endpoint, **settings}
    head = "\n".join(f"  {key}: {value}" for key, value in values.items())
    config = parse_config(f"cloudwatch:\n{head}\n  metrics:\n{metrics}")
    assert config.cloudwatch is not None
    return config.cloudwatch


def make_source(clock: FakeClock | None = None) -> tuple[CloudWatchSource, Store, FakeClock]:
    clock = clock or FakeClock(T0)
    store = Store(retention=3 * 3600)
    source = CloudWatchSource(store, clock, DaemonMetrics(), backoff=Backoff(base=0.2, cap=1.0), rng=random.Random(7))
    return source, store, clock


def samples(store: Store, labels: Labels) -> list[tuple[int, float]]:
    series, _ = store.series(labels)
    times, values = series.window(0, 2**62)
    return list(zip(times, values))


async def put_metric_data(endpoint: str, namespace: str, data: list[dict[str, object]]) -> None:
    async with get_session().create_client("cloudwatch", region_name="eu-west-1", endpoint_url=endpoint) as client:
        await client.put_metric_data(Namespace=namespace, MetricData=data)


def datum(name: str, dimensions: dict[str, str], at: float, value: float) -> dict[str, object]:
    return {
        "MetricName": name,
        "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
        "Timestamp": datetime.fromtimestamp(at, tz=timezone.utc),
        "Value": value,
    }


async def drive(clock: FakeClock, coroutine: object) -> object:
    """Run ``coroutine`` to its end, moving the fake clock while it waits on real sockets."""
    task = asyncio.ensure_future(coroutine)  # type: ignore[arg-type]
    while not task.done():
        await clock.advance(0.05)
        await asyncio.sleep(0.005)
    return task.result()


async def test_moto_put_metric_data_read_into_the_store(moto: str) -> None:
    ecs = {"ClusterName": "prod", "ServiceName": "api"}
    await put_metric_data(
        moto,
        "AWS/ECS",
        [datum("CPUUtilization", ecs, MINUTE - 240 + 5, 41.5), datum("CPUUtilization", ecs, MINUTE - 180 + 5, 63.25)],
    )
    source, store, _ = make_source()
    metrics = "    - {namespace: AWS/ECS, metric_name: CPUUtilization, dimensions: {ClusterName: prod, ServiceName: api}, statistics: [Average, SampleCount]}\n"
    await source.configure(section(moto, metrics))
    assert await source.poll_once()
    average = Labels.of(
        {"__name__": "aws_ecs_cpuutilization_average", "job": "aws_ecs", "cluster_name": "prod", "service_name": "api"}
    )
    assert samples(store, average) == [(int((MINUTE - 240) * 1000), 41.5), (int((MINUTE - 180) * 1000), 63.25)]
    count = series_labels("AWS/ECS", "CPUUtilization", "SampleCount", ecs.items())
    assert count.metric_name == "aws_ecs_cpuutilization_sample_count"
    assert [v for _, v in samples(store, count)] == [1.0, 1.0]
    assert samples(store, HEALTH_LABELS) == [(int(T0 * 1000), 1.0)]
    await source.stop()


async def test_moto_wildcard_discovered_through_list_metrics(moto: str) -> None:
    await put_metric_data(
        moto,
        "AWS/RDS",
        [
            datum("ReplicaLag", {"DBInstanceIdentifier": "db-a"}, MINUTE - 180, 0.5),
            datum("ReplicaLag", {"DBInstanceIdentifier": "db-b"}, MINUTE - 180, 7.0),
        ],
    )
    source, store, _ = make_source()
    metrics = "    - {namespace: AWS/RDS, metric_name: ReplicaLag, dimensions: {DBInstanceIdentifier: '*'}, statistics: [Maximum]}\n"
    await source.configure(section(moto, metrics))
    assert await source.poll_once()
    for name, value in (("db-a", 0.5), ("db-b", 7.0)):
        labels = series_labels("AWS/RDS", "ReplicaLag", "Maximum", [("DBInstanceIdentifier", name)])
        assert samples(store, labels) == [(int((MINUTE - 180) * 1000), value)]
        assert labels.get("job") == "aws_rds" and labels.get("dbinstance_identifier") == name
    await source.stop()


async def test_moto_wildcard_that_discovers_nothing(moto: str) -> None:
    source, store, _ = make_source()
    metrics = "    - {namespace: AWS/RDS, metric_name: ReplicaLag, dimensions: {DBInstanceIdentifier: '*'}}\n"
    await source.configure(section(moto, metrics))
    with capture_logs() as logs:
        assert await source.poll_once()
    assert [log["event"] for log in logs if log["log_level"] == "warning"] == ["wildcard discovered no metric"]
    assert store.num_series == 1
    await source.stop()


async def test_requests_are_sigv4_signed_for_the_region_and_service(fake: FakeCloudWatchServer) -> None:
    source, _, _ = make_source()
    metrics = "    - {namespace: App, metric_name: Jobs}\n"
    await source.configure(section(fake.url, metrics, region="ap-southeast-2"))
    assert await source.poll_once()
    operation, headers, body = fake.requests[0]
    assert operation == "GetMetricData"
    match = SIGV4.fullmatch(headers["Authorization"])
    assert match is not None, headers["Authorization"]
    assert match.group("key", "region", "service") == (ACCESS_KEY, "ap-southeast-2", "monitoring")
    assert "X-Amz-Date" in headers
    assert body["MetricDataQueries"][0]["MetricStat"]["Stat"] == "Average"
    await source.stop()


async def test_role_arn_assumed_through_sts(moto: str, fake: FakeCloudWatchServer) -> None:
    source, _, _ = make_source()
    metrics = "    - {namespace: App, metric_name: Jobs}\n"
    config = section(fake.url, metrics, role_arn="arn:aws:iam::123456789012:role/alertd-read", sts_endpoint_url=moto)
    await source.configure(config)
    assert await source.poll_once()
    match = SIGV4.fullmatch(fake.requests[0][1]["Authorization"])
    assert match is not None
    assert match.group("key") != ACCESS_KEY  # signed with the role's temporary credentials
    assert "X-Amz-Security-Token" in fake.requests[0][1]
    await source.stop()


async def test_percentile_statistic(fake: FakeCloudWatchServer) -> None:
    alb = {"LoadBalancer": "app/prod/123"}
    fake.fake.put("AWS/ApplicationELB", "TargetResponseTime", alb, "p99", MINUTE - 180, 1.25)
    fake.fake.put("AWS/ApplicationELB", "TargetResponseTime", alb, "p99.9", MINUTE - 180, 2.5)
    source, store, _ = make_source()
    metrics = "    - {namespace: AWS/ApplicationELB, metric_name: TargetResponseTime, dimensions: {LoadBalancer: app/prod/123}, statistics: [p99, p99.9]}\n"
    await source.configure(section(fake.url, metrics))
    assert await source.poll_once()
    p99 = Labels.of(
        {"__name__": "aws_applicationelb_target_response_time_p99", "job": "aws_applicationelb", "load_balancer": "app/prod/123"}
    )
    assert samples(store, p99) == [(int((MINUTE - 180) * 1000), 1.25)]
    p999 = series_labels("AWS/ApplicationELB", "TargetResponseTime", "p99.9", alb.items())
    assert p999.metric_name == "aws_applicationelb_target_response_time_p99_9"
    assert samples(store, p999) == [(int((MINUTE - 180) * 1000), 2.5)]
    await source.stop()


async def test_throttling_and_5xx_retried_then_success(fake: FakeCloudWatchServer) -> None:
    fake.fake.put("App", "Jobs", {}, "Average", MINUTE - 180, 3.0)
    fake.failures.extend([Failure(400, "Throttling", "Rate exceeded"), Failure(503, "ServiceUnavailable")])
    source, store, clock = make_source()
    await source.configure(section(fake.url, "    - {namespace: App, metric_name: Jobs}\n"))
    assert await drive(clock, source.poll_once()) is True
    assert [operation for operation, _, _ in fake.requests] == ["GetMetricData"] * 3
    assert samples(store, series_labels("App", "Jobs", "Average", ())) == [(int((MINUTE - 180) * 1000), 3.0)]
    await source.stop()


async def test_deadline_exceeded_makes_health_zero_and_polling_goes_on(fake: FakeCloudWatchServer) -> None:
    fake.failures.extend([Failure(400, "Throttling", "Rate exceeded")] * 1000)
    source, store, clock = make_source()
    await source.configure(section(fake.url, "    - {namespace: App, metric_name: Jobs}\n", timeout="3s"))
    with capture_logs() as logs:
        assert await drive(clock, source.poll_once()) is False
    assert any(log["event"] == "CloudWatch poll ran out of time" for log in logs)
    assert samples(store, HEALTH_LABELS)[-1][1] == 0.0
    assert clock.monotonic() < 4.0  # gave up at the deadline, not later
    fake.failures.clear()
    assert await drive(clock, source.poll_once()) is True
    assert samples(store, HEALTH_LABELS)[-1][1] == 1.0
    await source.stop()


async def test_access_denied_is_logged_and_not_retried(fake: FakeCloudWatchServer) -> None:
    fake.failures.append(Failure(403, "AccessDenied", "User is not authorized to perform: cloudwatch:GetMetricData"))
    source, store, _ = make_source()
    await source.configure(section(fake.url, "    - {namespace: App, metric_name: Jobs}\n"))
    with capture_logs() as logs:
        assert await source.poll_once() is False
    errors = [log for log in logs if log["log_level"] == "error"]
    assert len(errors) == 1 and errors[0]["code"] == "AccessDenied"
    assert "cloudwatch:GetMetricData" in errors[0]["error"]
    assert len(fake.requests) == 1
    assert samples(store, HEALTH_LABELS) == [(int(T0 * 1000), 0.0)]
    await source.stop()


async def test_unanswered_request_bounded_by_the_deadline() -> None:
    async with FakeCloudWatchServer(hang=30.0) as server:
        source, store, _ = make_source()
        await source.configure(section(server.url, "    - {namespace: App, metric_name: Jobs}\n", timeout="1s"))
        with capture_logs() as logs:
            assert await asyncio.wait_for(source.poll_once(), 10) is False
        assert any(log["event"] == "CloudWatch poll ran out of time" for log in logs)
        await source.stop()


async def test_the_daemon_polls_cloudwatch_and_follows_reloads(fake: FakeCloudWatchServer, tmp_path: Path) -> None:
    fake.fake.put("AWS/ECS", "CPUUtilization", {"ClusterName": "prod"}, "Maximum", MINUTE - 180, 97.0)
    path = tmp_path / "alertd.yml"
    text = (
        'web: {listen: "127.0.0.1:0"}\n'
        f"cloudwatch:\n  region: eu-west-1\n  endpoint_url: {fake.url}\n  metrics:\n"
        "    - {namespace: AWS/ECS, metric_name: CPUUtilization, dimensions: {ClusterName: prod}, statistics: [Maximum]}\n"
    )
    path.write_text(text)
    clock = FakeClock(T0)
    app = App(load_config(path), config_path=str(path), data_dir=tmp_path / "data", clock=clock)
    await app.start()
    try:
        async with asyncio.timeout(10):  # the HTTP exchange itself is real
            while not app.store.select(parse_selector('up{job="cloudwatch"}')):
                await asyncio.sleep(0.01)
        (cpu,) = app.store.select(parse_selector('aws_ecs_cpuutilization_maximum{job="aws_ecs",cluster_name="prod"}'))
        assert cpu.last() == (int((MINUTE - 180) * 1000), 97.0)
        path.write_text(text.replace("Maximum]", "Maximum, Average]"))
        assert await app.reload() is None
        assert app.cloudwatch.config is not None and app.cloudwatch.config.metrics[0].statistics == ("Maximum", "Average")
        path.write_text('web: {listen: "127.0.0.1:0"}\n')
        assert await app.reload() is None
        assert app.cloudwatch.config is None
    finally:
        await app.stop()
