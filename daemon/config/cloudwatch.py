"""``cloudwatch``: which CloudWatch metrics alertd polls, how often, and with which credentials.

Namespaces: AWS reserves the ``AWS/`` prefix for its own services, so a namespace starting with
``AWS/`` must be one of the services in ``AWS_NAMESPACES`` (``AWS/ALB`` or ``AWS/Elasticache`` are
typos that CloudWatch would answer with silence, never an error). Any other namespace is a custom
one (``ECS/ContainerInsights``, an application's own) and is only checked for CloudWatch's syntax.
Statistics are checked by name: ``Average``, ``Sum``, ``Minimum``, ``Maximum``, ``SampleCount`` and
percentiles ``pNN`` / ``pNN.NN``.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, field_validator, model_validator

from daemon.config.duration import Duration, format_duration
from daemon.config.section import Section, field_error

WILDCARD = "*"
"""A dimension value meaning "every value CloudWatch knows", found through ListMetrics."""

STATISTICS = ("Average", "Sum", "Minimum", "Maximum", "SampleCount")
_PERCENTILE = re.compile(r"p(100|[1-9]?[0-9])(\.[0-9]{1,2})?")

# AWS services that publish metrics under the reserved AWS/ prefix (CloudWatch User Guide,
# "AWS services that publish CloudWatch metrics").
AWS_NAMESPACES = frozenset(
    {
        "AWS/AmazonMQ", "AWS/ApiGateway", "AWS/AppFlow", "AWS/AppRunner", "AWS/AppStream",
        "AWS/AppSync", "AWS/ApplicationELB", "AWS/Athena", "AWS/AutoScaling", "AWS/Backup",
        "AWS/Bedrock", "AWS/Billing", "AWS/CertificateManager", "AWS/Cassandra", "AWS/CloudFront",
        "AWS/CloudHSM", "AWS/CloudSearch", "AWS/CodeBuild", "AWS/Cognito", "AWS/Connect",
        "AWS/DAX", "AWS/DMS", "AWS/DX", "AWS/DataSync", "AWS/DocDB", "AWS/DynamoDB", "AWS/EBS",
        "AWS/EC2", "AWS/EC2Spot", "AWS/ECR", "AWS/ECS", "AWS/EFS", "AWS/EKS", "AWS/ELB",
        "AWS/ES", "AWS/ElastiCache", "AWS/ElasticBeanstalk", "AWS/ElasticMapReduce",
        "AWS/ElasticTranscoder", "AWS/Events", "AWS/FSx", "AWS/Firehose", "AWS/GameLift",
        "AWS/GatewayELB", "AWS/GlobalAccelerator", "AWS/Glue", "AWS/Inspector", "AWS/IoT",
        "AWS/KMS", "AWS/Kafka", "AWS/KafkaConnect", "AWS/Kinesis", "AWS/KinesisAnalytics",
        "AWS/KinesisVideo", "AWS/Lambda", "AWS/Lex", "AWS/Logs", "AWS/MediaConnect",
        "AWS/MediaConvert", "AWS/MediaLive", "AWS/MediaPackage", "AWS/MediaTailor",
        "AWS/MemoryDB", "AWS/NATGateway", "AWS/Neptune", "AWS/NetworkELB", "AWS/NetworkFirewall",
        "AWS/OpsWorks", "AWS/Polly", "AWS/PrivateLinkEndpoints", "AWS/PrivateLinkServices",
        "AWS/Prometheus", "AWS/QLDB", "AWS/RDS", "AWS/Redshift", "AWS/Redshift-Serverless",
        "AWS/Route53", "AWS/Route53Resolver", "AWS/S3", "AWS/S3/Storage-Lens", "AWS/SES",
        "AWS/SNS", "AWS/SQS", "AWS/SWF", "AWS/SageMaker", "AWS/Scheduler", "AWS/SecretsManager",
        "AWS/ServiceCatalog", "AWS/States", "AWS/StorageGateway", "AWS/Textract",
        "AWS/TransitGateway", "AWS/Translate", "AWS/TrustedAdvisor", "AWS/Usage", "AWS/VPN",
        "AWS/WAFV2", "AWS/WorkSpaces", "AWS/XRay",
    }
)  # fmt: skip

_NAMESPACE = re.compile(r"[0-9A-Za-z.\-_/# ][0-9A-Za-z.\-_/#: ]{0,254}")
# Names people reach for that CloudWatch spells otherwise.
_NAMESPACE_ALIASES = {"AWS/ALB": "AWS/ApplicationELB", "AWS/NLB": "AWS/NetworkELB", "AWS/GWLB": "AWS/GatewayELB"}
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")
_ROLE_ARN = re.compile(r"arn:aws[a-z\-]*:iam::[0-9]{12}:role/[\w+=,.@\-/]{1,512}")
_ENDPOINT = re.compile(r"https?://[^\s/]+(/\S*)?")
MAX_DIMENSIONS = 30


def check_statistic(name: str) -> str:
    """``name`` if CloudWatch knows the statistic, else ``ValueError`` naming the closest one."""
    if name in STATISTICS or _PERCENTILE.fullmatch(name):
        return name
    close = difflib.get_close_matches(name, STATISTICS, n=1, cutoff=0.6)
    if not close:
        close = [s for s in STATISTICS if s.lower() == name.lower()]
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise ValueError(
        f'unknown statistic "{name}"{hint}; use Average, Sum, Minimum, Maximum, SampleCount or a percentile such as p99'
    )


def check_namespace(namespace: str) -> str:
    """A custom namespace in CloudWatch's syntax, or one of the AWS service namespaces."""
    if not _NAMESPACE.fullmatch(namespace):
        raise ValueError(
            f'"{namespace}" is not a valid namespace (1 to 255 letters, digits, spaces and . - _ / # :, not starting with :)'
        )
    if namespace.startswith("AWS/") and namespace not in AWS_NAMESPACES:
        lowered = {known.lower(): known for known in AWS_NAMESPACES}
        close = [lowered[namespace.lower()]] if namespace.lower() in lowered else []
        close = close or ([_NAMESPACE_ALIASES[namespace]] if namespace in _NAMESPACE_ALIASES else [])
        close = close or difflib.get_close_matches(namespace, sorted(AWS_NAMESPACES), n=1, cutoff=0.75)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValueError(f'unknown AWS namespace "{namespace}"{hint}; AWS/ is reserved for AWS services')
    return namespace


def check_metric_name(name: str) -> str:
    """1 to 255 printable ASCII characters, not only spaces (CloudWatch's rule)."""
    if not 1 <= len(name) <= 255 or not name.isascii() or not name.isprintable() or not name.strip():
        raise ValueError(f'"{name}" is not a valid metric name (1 to 255 printable ASCII characters)')
    return name


def check_region(region: str) -> str:
    if not _REGION.fullmatch(region):
        raise ValueError(f'"{region}" is not an AWS region name such as eu-west-1')
    return region


def check_role_arn(arn: str) -> str:
    if not _ROLE_ARN.fullmatch(arn):
        raise ValueError(f'"{arn}" is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)')
    return arn


def check_endpoint_url(url: str) -> str:
    if not _ENDPOINT.fullmatch(url):
        raise ValueError(f'"{url}" is not an absolute http(s) URL')
    return url


def check_period(seconds: float) -> float:
    """CloudWatch periods: 1, 5, 10 or 30 seconds (high resolution) or a multiple of 60."""
    if seconds in (1.0, 5.0, 10.0, 30.0) or (seconds >= 60 and seconds % 60 == 0):
        return seconds
    raise ValueError("period must be 1s, 5s, 10s, 30s or a multiple of 1m")


Region = Annotated[str, AfterValidator(check_region)]
Period = Annotated[Duration, AfterValidator(check_period)]
EndpointURL = Annotated[str, AfterValidator(check_endpoint_url)]


class CloudWatchMetric(Section):
    """One ``metrics`` entry: a CloudWatch metric, its dimensions and the statistics to fetch.

    ``dimensions`` maps each dimension name to an exact value or to ``*`` (every value that
    ListMetrics finds; only metrics with exactly these dimension names are taken, as
    cloudwatch_exporter does). ``period`` and ``region`` default to the section's.
    """

    namespace: Annotated[str, AfterValidator(check_namespace)]
    metric_name: Annotated[str, AfterValidator(check_metric_name)]
    dimensions: dict[str, str] = Field(default_factory=dict)
    statistics: tuple[Annotated[str, AfterValidator(check_statistic)], ...] = ("Average",)
    period: Period | None = None
    region: Region | None = None

    @field_validator("statistics")
    @classmethod
    def _known_statistics(cls, statistics: tuple[str, ...]) -> tuple[str, ...]:
        if not statistics:
            raise ValueError("at least one statistic is needed")
        if len(set(statistics)) != len(statistics):
            raise ValueError(f"a statistic is listed twice in {', '.join(statistics)}")
        return statistics

    @field_validator("dimensions")
    @classmethod
    def _valid_dimensions(cls, dimensions: dict[str, str]) -> dict[str, str]:
        if len(dimensions) > MAX_DIMENSIONS:
            raise ValueError(f"CloudWatch metrics have at most {MAX_DIMENSIONS} dimensions")
        for name, value in dimensions.items():
            if not 1 <= len(name) <= 255 or not name.isascii() or not name.isprintable() or name.startswith(":"):
                raise field_error(name, f'"{name}" is not a valid dimension name')
            if not 1 <= len(value) <= 1024 or not value.strip():
                raise field_error(name, "a dimension value must not be empty (use * for every value)")
        return dimensions

    @property
    def key(self) -> tuple[str, str, tuple[tuple[str, str], ...], str | None]:
        """What tells two entries apart (the entry itself is not hashable: it holds a mapping)."""
        return (self.namespace, self.metric_name, tuple(self.dimensions.items()), self.region)

    @property
    def wildcard(self) -> bool:
        """Whether the dimension sets are discovered through ListMetrics."""
        return WILDCARD in self.dimensions.values()


class CloudWatchConfig(Section):
    """``cloudwatch``: the CloudWatch source.

    Every ``interval`` alertd asks GetMetricData for the periods that ended at least ``delay``
    ago, so that only settled data is read; ``timeout`` bounds one poll, retries included.
    """

    unsupported = frozenset({"set_timestamp", "range_seconds", "use_get_metric_data"})

    region: Region
    role_arn: Annotated[str, AfterValidator(check_role_arn)] | None = None
    endpoint_url: EndpointURL | None = None
    sts_endpoint_url: EndpointURL | None = None
    period: Period = 60.0
    delay: Duration = 120.0
    interval: Duration = 60.0
    timeout: Duration = 30.0
    discovery_interval: Duration = 600.0
    metrics: tuple[CloudWatchMetric, ...]

    @model_validator(mode="after")
    def _consistent(self) -> CloudWatchConfig:
        if not self.metrics:
            raise field_error("metrics", "at least one metric is needed")
        if self.interval <= 0:
            raise field_error("interval", "must be longer than 0s")
        if not 0 < self.timeout <= self.interval:
            raise field_error("timeout", "must be longer than 0s and not longer than interval")
        if self.discovery_interval < self.interval:
            raise field_error("discovery_interval", "must not be shorter than interval")
        seen: dict[tuple[Any, ...], int] = {}
        for index, metric in enumerate(self.metrics):
            key = (metric.namespace, metric.metric_name, tuple(sorted(metric.dimensions.items())))
            if key in seen:
                raise field_error(f"metrics.{index}", f"the same metric and dimensions as metrics.{seen[key]}")
            seen[key] = index
        return self

    def summary_lines(self) -> list[str]:
        """What ``alertd check config`` says about this section."""
        wildcards = sum(metric.wildcard for metric in self.metrics)
        count = len(self.metrics)
        return [
            f"  cloudwatch in {self.region}: {count} metric{'s' if count != 1 else ''}"
            f" ({wildcards} discovered through ListMetrics), every {format_duration(self.interval)},"
            f" periods ending {format_duration(self.delay)} ago"
        ]

    def period_of(self, metric: CloudWatchMetric) -> float:
        """The period ``metric`` is fetched with."""
        return metric.period if metric.period is not None else self.period

    def region_of(self, metric: CloudWatchMetric) -> str:
        """The region ``metric`` is read from (CloudFront publishes only in us-east-1)."""
        return metric.region or self.region

    def oldest_newest_sample(self) -> float:
        """How old, in seconds, the newest sample of a series can be just before a poll.

        CloudWatch stamps a period's value with the period's start, so that is delay + period +
        interval; past the 5 m lookback of instant queries, rules need ``last_over_time``.
        """
        longest = max(self.period_of(metric) for metric in self.metrics)
        return self.delay + longest + self.interval
