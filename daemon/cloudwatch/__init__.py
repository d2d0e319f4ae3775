"""CloudWatch as a source of samples: GetMetricData polled on the clock, series named as cloudwatch_exporter names them."""

from daemon.cloudwatch.api import AioCloudWatch, CloudWatchAPI, CloudWatchError
from daemon.cloudwatch.naming import metric_name, series_labels, snake_case
from daemon.cloudwatch.retry import Backoff
from daemon.cloudwatch.source import HEALTH_LABELS, MAX_QUERIES_PER_CALL, CloudWatchSource, Query

__all__ = [
    "HEALTH_LABELS",
    "MAX_QUERIES_PER_CALL",
    "AioCloudWatch",
    "Backoff",
    "CloudWatchAPI",
    "CloudWatchError",
    "CloudWatchSource",
    "Query",
    "metric_name",
    "series_labels",
    "snake_case",
]
