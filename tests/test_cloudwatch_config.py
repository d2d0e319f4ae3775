"""The ``cloudwatch`` config section, the example config, and cloudwatch_exporter's naming."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.cli import main
from daemon.cloudwatch.naming import label_name, metric_name, series_labels, snake_case
from daemon.config import ConfigError, load_config, parse_config

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "cloudwatch-example.yml"


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "alertd.yml")
    return [str(issue) for issue in caught.value.issues]


def test_example_config_loads_and_covers_the_services() -> None:
    config = load_config(EXAMPLE)
    assert config.cloudwatch is not None
    wanted = {
        ("AWS/ECS", "CPUUtilization"),
        ("AWS/ECS", "MemoryUtilization"),
        ("ECS/ContainerInsights", "RunningTaskCount"),
        ("AWS/ApplicationELB", "TargetResponseTime"),
        ("AWS/ApplicationELB", "HealthyHostCount"),
        ("AWS/ApplicationELB", "UnHealthyHostCount"),
        ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"),
        ("AWS/ApplicationELB", "RequestCount"),
        ("AWS/CloudFront", "Requests"),
        ("AWS/CloudFront", "CacheHitRate"),
        ("AWS/CloudFront", "4xxErrorRate"),
        ("AWS/CloudFront", "5xxErrorRate"),
        ("AWS/CloudFront", "OriginLatency"),
        ("AWS/RDS", "DatabaseConnections"),
        ("AWS/RDS", "ReplicaLag"),
        ("AWS/RDS", "CPUUtilization"),
        ("AWS/RDS", "FreeStorageSpace"),
        ("AWS/ElastiCache", "DatabaseMemoryUsagePercentage"),
        ("AWS/ElastiCache", "CurrConnections"),
        ("AWS/ElastiCache", "CacheHitRate"),
    }
    assert {(m.namespace, m.metric_name) for m in config.cloudwatch.metrics} == wanted
    assert all(config.cloudwatch.region_of(m) == "us-east-1" for m in config.cloudwatch.metrics if m.namespace == "AWS/CloudFront")
    # Newest samples stay inside the 5m lookback of instant queries.
    assert config.cloudwatch.oldest_newest_sample() <= 300


def test_check_config_accepts_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "config", str(EXAMPLE)]) == 0
    assert "cloudwatch in eu-west-1: 20 metrics" in capsys.readouterr().out


def test_defaults() -> None:
    config = parse_config("cloudwatch:\n  region: eu-west-1\n  metrics:\n    - {namespace: App, metric_name: Jobs}\n")
    section = config.cloudwatch
    assert section is not None
    assert (section.period, section.delay, section.interval, section.timeout, section.discovery_interval) == (
        60.0,
        120.0,
        60.0,
        30.0,
        600.0,
    )
    assert section.metrics[0].statistics == ("Average",)
    assert section.role_arn is None and section.endpoint_url is None
    assert parse_config("").cloudwatch is None


def test_unknown_namespaces_and_statistics_name_file_line_and_key() -> None:
    found = errors(
        """cloudwatch:
  region: eu-west-1
  metrics:
    - namespace: AWS/ALB
      metric_name: RequestCount
    - namespace: AWS/Elasticache
      metric_name: CurrConnections
      statistics: [Average, Avg, p99.9, p101, sum]
    - namespace: ":bad"
      metric_name: X
"""
    )
    assert found == [
        'alertd.yml:4: cloudwatch.metrics.0.namespace: unknown AWS namespace "AWS/ALB" (did you mean AWS/ApplicationELB?); '
        "AWS/ is reserved for AWS services",
        'alertd.yml:6: cloudwatch.metrics.1.namespace: unknown AWS namespace "AWS/Elasticache" (did you mean AWS/ElastiCache?); '
        "AWS/ is reserved for AWS services",
        'alertd.yml:8: cloudwatch.metrics.1.statistics.1: unknown statistic "Avg" (did you mean Average?); '
        "use Average, Sum, Minimum, Maximum, SampleCount or a percentile such as p99",
        'alertd.yml:8: cloudwatch.metrics.1.statistics.3: unknown statistic "p101"; '
        "use Average, Sum, Minimum, Maximum, SampleCount or a percentile such as p99",
        'alertd.yml:8: cloudwatch.metrics.1.statistics.4: unknown statistic "sum" (did you mean Sum?); '
        "use Average, Sum, Minimum, Maximum, SampleCount or a percentile such as p99",
        'alertd.yml:9: cloudwatch.metrics.2.namespace: ":bad" is not a valid namespace '
        "(1 to 255 letters, digits, spaces and . - _ / # :, not starting with :)",
    ]


def test_custom_namespaces_are_accepted() -> None:
    config = parse_config(
        "cloudwatch:\n  region: eu-west-1\n  metrics:\n"
        "    - {namespace: ECS/ContainerInsights, metric_name: RunningTaskCount}\n"
        "    - {namespace: 'My Company/Billing', metric_name: Invoices Sent, statistics: [Sum, p50, p99.99]}\n"
    )
    assert config.cloudwatch is not None and len(config.cloudwatch.metrics) == 2


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ("region: europe", 'alertd.yml:2: cloudwatch.region: "europe" is not an AWS region name such as eu-west-1'),
        ("timeout: 2m", "alertd.yml:2: cloudwatch.timeout: must be longer than 0s and not longer than interval"),
        ("period: 45s", "alertd.yml:2: cloudwatch.period: period must be 1s, 5s, 10s, 30s or a multiple of 1m"),
        ("role_arn: admin", 'alertd.yml:2: cloudwatch.role_arn: "admin" is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)'),
        ("endpoint_url: localhost:4566", 'alertd.yml:2: cloudwatch.endpoint_url: "localhost:4566" is not an absolute http(s) URL'),
        ("range_seconds: 600", "alertd.yml:2: cloudwatch.range_seconds: not supported by alertd"),
        ("metric: x", "alertd.yml:2: cloudwatch.metric: unknown key (did you mean metrics?)"),
    ],
)
def test_section_errors(settings: str, expected: str) -> None:
    text = "cloudwatch:\n  " + settings + "\n  metrics:\n    - {namespace: App, metric_name: Jobs}\n"
    if not settings.startswith("region"):
        text = text.replace("cloudwatch:\n", "cloudwatch:\n  region: eu-west-1\n", 1)
        expected = expected.replace("alertd.yml:2:", "alertd.yml:3:")
    assert expected in errors(text)


def test_metric_errors() -> None:
    found = errors(
        """cloudwatch:
  region: eu-west-1
  metrics:
    - namespace: App
      metric_name: ""
      dimensions: {Service: ""}
      statistics: []
    - {namespace: App, metric_name: Jobs, dimensions: {A: '*'}}
    - {namespace: App, metric_name: Jobs, dimensions: {A: '*'}}
"""
    )
    assert "alertd.yml:5: cloudwatch.metrics.0.metric_name: \"\" is not a valid metric name (1 to 255 printable ASCII characters)" in found
    assert "alertd.yml:6: cloudwatch.metrics.0.dimensions.Service: a dimension value must not be empty (use * for every value)" in found
    assert "alertd.yml:7: cloudwatch.metrics.0.statistics: at least one statistic is needed" in found
    assert errors(
        """cloudwatch:
  region: eu-west-1
  metrics:
    - {namespace: App, metric_name: Jobs, dimensions: {A: '*'}}
    - {namespace: App, metric_name: Jobs, dimensions: {A: '*'}}
"""
    ) == ["alertd.yml:3: cloudwatch.metrics.1: the same metric and dimensions as metrics.0"]


@pytest.mark.parametrize(
    ("text", "snake"),
    [
        ("CPUUtilization", "cpuutilization"),
        ("HTTPCode_Target_5XX_Count", "httpcode_target_5_xx_count"),
        ("UnHealthyHostCount", "un_healthy_host_count"),
        ("4xxErrorRate", "4xx_error_rate"),
        ("DBInstanceIdentifier", "dbinstance_identifier"),
        ("SampleCount", "sample_count"),
    ],
)
def test_snake_case_as_the_exporter(text: str, snake: str) -> None:
    assert snake_case(text) == snake


def test_series_names_and_labels_as_the_exporter() -> None:
    labels = series_labels("AWS/ECS", "CPUUtilization", "Average", [("ClusterName", "prod"), ("ServiceName", "api")])
    assert str(labels) == 'aws_ecs_cpuutilization_average{cluster_name="prod",job="aws_ecs",service_name="api"}'
    assert metric_name("AWS/ApplicationELB", "TargetResponseTime", "p99") == "aws_applicationelb_target_response_time_p99"
    assert metric_name("AWS/ApplicationELB", "TargetResponseTime", "p99.9") == "aws_applicationelb_target_response_time_p99_9"
    assert metric_name("AWS/RDS", "FreeStorageSpace", "SampleCount") == "aws_rds_free_storage_space_sample_count"
    assert metric_name("ECS/ContainerInsights", "RunningTaskCount", "Average") == "ecs_containerinsights_running_task_count_average"
    assert metric_name("AWS/CloudFront", "5xxErrorRate", "Average") == "aws_cloudfront_5xx_error_rate_average"
    assert label_name("Job") == "exported_job" and label_name("2ndZone") == "_2nd_zone"
