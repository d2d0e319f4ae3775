"""``scrape_configs``: one job per entry, with the keys (and defaults) of Prometheus' scrape_config."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from daemon.config.duration import Duration, parse_duration
from daemon.config.httpclient import Authorization, BasicAuth, TLSConfig, check_http_client, secret_from_file
from daemon.config.secret import Secret
from daemon.config.section import Section, base_dir, check_label_name, field_error, join_dir
from daemon.config.relabel import RelabelConfig

SCRAPE_PROTOCOLS = ("PrometheusText0.0.4", "PrometheusText1.0.0", "OpenMetricsText1.0.0", "OpenMetricsText0.0.1")
"""The exposition formats alertd parses, in its default order of preference.

Prometheus asks for OpenMetrics first; alertd asks for the text format first because its parser
follows Prometheus' lenient text parser (a client_golang OpenMetrics payload can break the strict
OpenMetrics rules and would fail the scrape) and takes the cached fast path on repeat scrapes.
Targets that speak only OpenMetrics still get it.
"""

DEFAULT_SCRAPE_INTERVAL = 60.0
DEFAULT_SCRAPE_TIMEOUT = 10.0

# Job keys that default to the value in ``global`` (besides the interval and timeout).
INHERITED_FROM_GLOBAL = (
    "scrape_protocols",
    "body_size_limit",
    "sample_limit",
    "label_limit",
    "label_name_length_limit",
    "label_value_length_limit",
    "target_limit",
)

_BYTE_UNITS = {
    "B": 1,
    **{f"{prefix}B": 1024**power for power, prefix in enumerate("KMGTPE", start=1)},
    **{f"{prefix}iB": 1024**power for power, prefix in enumerate("KMGTPE", start=1)},
}
_BYTE_SIZE = re.compile(r"(\d+)([KMGTPE]i?B|B)?")
_FILE_SD_NAME = re.compile(r"[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)")


def parse_byte_size(value: Any) -> int:
    """Bytes in ``10MB``/``512KiB``/``0`` (units are powers of 1024, as Prometheus' body_size_limit)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        match = _BYTE_SIZE.fullmatch(value.strip())
        if match:
            return int(match.group(1)) * _BYTE_UNITS[match.group(2) or "B"]
    raise PydanticCustomError("byte_size", "must be a size in bytes such as 0, 512KB or 10MB")


ByteSize = Annotated[int, PlainValidator(parse_byte_size)]
Count = Annotated[int, Field(ge=0)]


def tolerant_duration(value: Any) -> float | None:
    """A duration if ``value`` is one, else ``None`` (its error is reported by the field itself)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError:
            return None
    return None


class StaticConfig(Section):
    """One ``static_configs`` entry: addresses and the labels they share.

    Addresses are not checked here: a blackbox-style job lists URLs that relabelling moves
    into a parameter, so (as in Prometheus) only the address left after relabelling must be
    ``host:port``.
    """

    targets: tuple[str, ...] = ()
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("labels")
    @classmethod
    def _label_names(cls, labels: dict[str, str]) -> dict[str, str]:
        for name in labels:
            check_label_name(name)
        return labels


class FileSDConfig(Section):
    """One ``file_sd_configs`` entry: globs of JSON/YAML target files, relative to the config file."""

    files: tuple[str, ...]
    refresh_interval: Duration = 300.0

    @field_validator("files")
    @classmethod
    def _globs(cls, files: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if not files:
            raise ValueError("file service discovery config must contain at least one path name")
        for name in files:
            if not _FILE_SD_NAME.fullmatch(name):
                raise ValueError(f'path name "{name}" is not valid for file discovery')
        return tuple(join_dir(base_dir(info.context), name) for name in files)


class ScrapeConfig(Section):
    """One scrape job. Two jobs are the same job across a reload exactly when ``same_as`` says so."""

    unsupported = frozenset(
        {
            "oauth2",
            "proxy_url",
            "no_proxy",
            "proxy_from_environment",
            "proxy_connect_header",
            "http_headers",
            "keep_dropped_targets",
            "track_timestamps_staleness",
            "native_histogram_bucket_limit",
            "native_histogram_min_bucket_factor",
            "scrape_classic_histograms",
            "always_scrape_classic_histograms",
            "convert_classic_histograms_to_nhcb",
            "scrape_native_histograms",
            "enable_compression",
            "fallback_scrape_protocol",
            "metric_name_validation_scheme",
            "metric_name_escaping_scheme",
            "scrape_failure_log_file",
            "scrape_fallback_protocol",
        }
    )

    job_name: str
    honor_labels: bool = False
    honor_timestamps: bool = True
    scrape_interval: Duration = DEFAULT_SCRAPE_INTERVAL
    scrape_timeout: Duration = DEFAULT_SCRAPE_TIMEOUT
    scrape_protocols: tuple[str, ...] = SCRAPE_PROTOCOLS
    metrics_path: str = "/metrics"
    scheme: Literal["http", "https"] = "http"
    params: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    body_size_limit: ByteSize = 0
    sample_limit: Count = 0
    label_limit: Count = 0
    label_name_length_limit: Count = 0
    label_value_length_limit: Count = 0
    target_limit: Count = 0
    basic_auth: BasicAuth | None = None
    authorization: Authorization | None = None
    bearer_token: Secret | None = None
    bearer_token_file: str | None = None
    tls_config: TLSConfig | None = None
    follow_redirects: bool = True
    enable_http2: bool = True
    static_configs: tuple[StaticConfig, ...] = ()
    file_sd_configs: tuple[FileSDConfig, ...] = ()
    relabel_configs: tuple[RelabelConfig, ...] = ()
    metric_relabel_configs: tuple[RelabelConfig, ...] = ()

    def same_as(self, other: ScrapeConfig) -> bool:
        """Whether a reload from ``self`` to ``other`` may keep the job's targets and their series."""
        return self == other

    @model_validator(mode="before")
    @classmethod
    def _default_timeout(cls, data: Any) -> Any:
        # Prometheus: an unset (or zero) timeout is the default, but never longer than the interval.
        if not isinstance(data, dict):
            return data
        given = data.get("scrape_timeout")
        if given is not None and tolerant_duration(given) != 0.0:
            return data
        interval = tolerant_duration(data.get("scrape_interval")) or DEFAULT_SCRAPE_INTERVAL
        return {**data, "scrape_timeout": min(DEFAULT_SCRAPE_TIMEOUT, interval)}

    @field_validator("scrape_interval")
    @classmethod
    def _interval_not_zero(cls, interval: float) -> float:
        # Zero means "the default" in Prometheus; a lone job has only the built-in one.
        return interval or DEFAULT_SCRAPE_INTERVAL

    @field_validator("scrape_protocols")
    @classmethod
    def _known_protocols(cls, protocols: tuple[str, ...]) -> tuple[str, ...]:
        return check_scrape_protocols(protocols)

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> ScrapeConfig:
        job = self
        if not job.job_name:
            raise field_error("job_name", "job_name is empty")
        if job.scrape_timeout > job.scrape_interval:
            raise field_error("scrape_timeout", "must not be longer than scrape_interval")
        check_http_client(job.basic_auth, job.authorization, job.bearer_token, job.bearer_token_file)
        # The legacy bearer_token settings become an authorization, as in Prometheus.
        if job.bearer_token is not None:
            authorization = Authorization.model_construct(type="Bearer", credentials=job.bearer_token)
            self._settle(authorization=authorization, bearer_token=None)
        elif job.bearer_token_file is not None:
            secret, path = secret_from_file(job.bearer_token_file, "bearer_token_file", info.context)
            authorization = Authorization.model_construct(type="Bearer", credentials=secret, credentials_file=path)
            self._settle(authorization=authorization, bearer_token_file=None)
        return self


def check_scrape_protocols(protocols: tuple[str, ...]) -> tuple[str, ...]:
    """``protocols`` if every entry is a known, supported format given once."""
    if not protocols:
        raise ValueError("scrape_protocols cannot be empty")
    for protocol in protocols:
        if protocol == "PrometheusProto":
            raise ValueError("PrometheusProto (protobuf) is not supported by alertd")
        if protocol not in SCRAPE_PROTOCOLS:
            raise ValueError(f"unknown scrape protocol {protocol}, supported: {', '.join(SCRAPE_PROTOCOLS)}")
    if len(set(protocols)) != len(protocols):
        raise ValueError(f"duplicated protocol in scrape_protocols, got {', '.join(protocols)}")
    return protocols
