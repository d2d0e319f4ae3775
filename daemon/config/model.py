"""The whole config file: Prometheus' ``global``/``scrape_configs``/``rule_files`` plus alertd's sections.

A new section is a new ``Section`` subclass and one field on ``Config``.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, PrivateAttr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from daemon.config.alerting import InhibitRuleConfig, RouteConfig, TimeIntervalConfig, fallback_errors, reference_errors
from daemon.config.cloudwatch import CloudWatchConfig
from daemon.config.duration import Duration
from daemon.config.heartbeat import HeartbeatConfig
from daemon.config.escalation import AcknowledgementsConfig, EscalationPolicyConfig, escalation_errors
from daemon.config.probes import ProbeConfigs
from daemon.config.receivers import AlertingGlobal, ReceiverConfig, alerting_global, with_global_defaults
from daemon.config.scrape import (
    DEFAULT_SCRAPE_INTERVAL,
    DEFAULT_SCRAPE_TIMEOUT,
    INHERITED_FROM_GLOBAL,
    SCRAPE_PROTOCOLS,
    ByteSize,
    Count,
    ScrapeConfig,
    check_scrape_protocols,
    tolerant_duration,
)
from daemon.config.section import FIELD_ERROR, Section, base_dir, check_label_name, field_error, join_dir

DEFAULT_SOURCE = "<default>"
SEE_ALSO = "see"
"""Context key of a field error naming another key path whose line the message should cite."""


def check_listen_address(address: str) -> str:
    """``host:port`` (host may be empty or a bracketed IPv6 address), port 0..65535."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535 or (host.startswith("[") != host.endswith("]")):
        raise ValueError(f'"{address}" is not a valid listen address (host:port)')
    return address


def check_external_url(url: str) -> str:
    """An absolute http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f'"{url}" is not an absolute http(s) URL')
    return url


ListenAddress = Annotated[str, AfterValidator(check_listen_address)]
ExternalURL = Annotated[str, AfterValidator(check_external_url)]


class GlobalConfig(AlertingGlobal):
    """``global``: defaults for every job and every receiver, and labels added to alerts sent outside.

    It takes the keys of both prometheus.yml's and alertmanager.yml's ``global`` sections.
    """

    unsupported = AlertingGlobal.unsupported | frozenset(
        {
            "query_log_file",
            "scrape_failure_log_file",
            "rule_query_offset",
            "keep_dropped_targets",
            "metric_name_validation_scheme",
            "metric_name_escaping_scheme",
            "always_scrape_classic_histograms",
            "convert_classic_histograms_to_nhcb",
            "scrape_native_histograms",
            "native_histogram_bucket_limit",
            "native_histogram_min_bucket_factor",
        }
    )

    scrape_interval: Duration = DEFAULT_SCRAPE_INTERVAL
    scrape_timeout: Duration = DEFAULT_SCRAPE_TIMEOUT
    evaluation_interval: Duration = 60.0
    external_labels: dict[str, str] = Field(default_factory=dict)
    external_url: ExternalURL | None = None
    scrape_protocols: tuple[str, ...] = SCRAPE_PROTOCOLS
    body_size_limit: ByteSize = 0
    sample_limit: Count = 0
    label_limit: Count = 0
    label_name_length_limit: Count = 0
    label_value_length_limit: Count = 0
    target_limit: Count = 0

    @model_validator(mode="before")
    @classmethod
    def _zero_means_default(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key, default in (("scrape_interval", DEFAULT_SCRAPE_INTERVAL), ("evaluation_interval", 60.0)):
            if tolerant_duration(data.get(key)) == 0.0:
                data[key] = default
        timeout = data.get("scrape_timeout")
        if timeout is None or tolerant_duration(timeout) == 0.0:
            interval = tolerant_duration(data.get("scrape_interval")) or DEFAULT_SCRAPE_INTERVAL
            data["scrape_timeout"] = min(DEFAULT_SCRAPE_TIMEOUT, interval)
        return data

    @field_validator("external_labels")
    @classmethod
    def _label_names(cls, labels: dict[str, str]) -> dict[str, str]:
        for name in labels:
            check_label_name(name)
        return labels

    @field_validator("scrape_protocols")
    @classmethod
    def _known_protocols(cls, protocols: tuple[str, ...]) -> tuple[str, ...]:
        return check_scrape_protocols(protocols)

    @model_validator(mode="after")
    def _timeout_within_interval(self) -> GlobalConfig:
        if self.scrape_timeout > self.scrape_interval:
            raise field_error("scrape_timeout", "must not be longer than scrape_interval")
        return self


class StorageConfig(Section):
    """``storage``: how long samples are kept when no rule needs them longer."""

    unsupported = frozenset({"tsdb", "exemplars"})

    retention: Duration = 3600.0

    @field_validator("retention")
    @classmethod
    def _positive(cls, retention: float) -> float:
        if retention <= 0:
            raise ValueError("retention must be longer than 0s")
        return retention


class WebConfig(Section):
    """``web``: alertd's own HTTP server (API, UI, /metrics)."""

    listen: ListenAddress = "0.0.0.0:9095"
    external_url: ExternalURL | None = None


class DemoExporterConfig(Section):
    """``demo_exporter``: an in-process synthetic target, so that ``alertd run`` has data from the start."""

    listen: ListenAddress = "127.0.0.1:9101"
    series: Annotated[int, Field(ge=1)] = 200


class RuleGroupEvaluation(Section):
    """``rule_evaluation.groups.<name>``: per-group overrides of ``rule_evaluation``."""

    after_scrape: bool | None = None


class RuleEvaluationConfig(Section):
    """``rule_evaluation``: when rule groups are evaluated besides their interval.

    ``after_scrape`` evaluates groups shortly after scrapes land new samples; ``groups`` overrides
    it per rule group name (rule files stay as promtool accepts them).
    """

    after_scrape: bool = False
    groups: dict[str, RuleGroupEvaluation] = Field(default_factory=dict)

    def after_scrape_groups(self) -> dict[str, bool]:
        """The per-group overrides that are set, by group name."""
        return {name: g.after_scrape for name, g in self.groups.items() if g.after_scrape is not None}


class Config(Section):
    """The config file. ``source`` is the file it came from, or ``<default>``."""

    unsupported = frozenset(
        {"alerting", "remote_write", "remote_read", "tracing", "scrape_config_files", "otlp", "runtime"}
    )

    global_: GlobalConfig = Field(default_factory=GlobalConfig, alias="global")
    scrape_configs: tuple[ScrapeConfig, ...] = ()
    rule_files: tuple[str, ...] = ()
    storage: StorageConfig = Field(default_factory=StorageConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    demo_exporter: DemoExporterConfig | None = None
    cloudwatch: CloudWatchConfig | None = None
    probes: ProbeConfigs = ()
    rule_evaluation: RuleEvaluationConfig = Field(default_factory=RuleEvaluationConfig)
    heartbeat: HeartbeatConfig | None = None
    route: RouteConfig | None = None
    receivers: tuple[ReceiverConfig, ...] = ()
    inhibit_rules: tuple[InhibitRuleConfig, ...] = ()
    time_intervals: tuple[TimeIntervalConfig, ...] = ()
    mute_time_intervals: tuple[TimeIntervalConfig, ...] = ()
    """The legacy name of ``time_intervals`` (Alertmanager reads both)."""
    escalation_policies: tuple[EscalationPolicyConfig, ...] = ()
    acknowledgements: AcknowledgementsConfig = Field(default_factory=AcknowledgementsConfig)

    _source: str = PrivateAttr(default=DEFAULT_SOURCE)

    @property
    def source(self) -> str:
        return self._source

    @classmethod
    def from_data(cls, data: Any, source: str, context: dict[str, Any]) -> Config:
        """Validate plain data (parsed YAML); raises pydantic's ``ValidationError``."""
        config = cls.model_validate({} if data is None else data, context=context)
        config._source = source
        return config

    def job(self, name: str) -> ScrapeConfig | None:
        """The scrape job called ``name``, if any."""
        return next((job for job in self.scrape_configs if job.job_name == name), None)

    @field_validator("rule_files")
    @classmethod
    def _rule_globs(cls, patterns: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        return tuple(join_dir(base_dir(info.context), pattern) for pattern in patterns)

    @model_validator(mode="after")
    def _alerting_references(self) -> Config:
        # Routes name receivers and time intervals defined in other sections.
        names = [receiver.name for receiver in self.receivers]
        errors = reference_errors(self.route, names, self.time_intervals, self.mute_time_intervals)
        errors += fallback_errors(self.receivers)
        errors += escalation_errors(self.escalation_policies, names, self.route)
        if errors:
            raise ValidationError.from_exception_data(Config.__name__, errors)
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _whole_file(cls, data: Any, handler: Any, info: ValidationInfo) -> Config:
        if not isinstance(data, dict):
            return handler(data)  # type: ignore[no-any-return]
        data = _with_global_defaults(data, info.context)
        duplicates = _duplicate_job_names(data)
        try:
            config: Config = handler(data)
        except ValidationError as exc:
            if not duplicates:
                raise
            raise _combined(exc.errors(), duplicates) from None
        if duplicates:
            raise _combined([], duplicates)
        return config


def _with_global_defaults(data: dict[str, Any], context: Any) -> dict[str, Any]:
    # Jobs and receivers take unset settings from `global`; a broken `global` is reported on its
    # own, and the jobs are then checked against the built-in defaults.
    try:
        glob = GlobalConfig.model_validate(data.get("global") or {}, context=context)
    except ValidationError:
        glob = GlobalConfig()
    if "receivers" in data:
        data = {**data, "receivers": with_global_defaults(data["receivers"], alerting_global(data.get("global"), context))}
    jobs = data.get("scrape_configs")
    if not isinstance(jobs, list):
        return data
    resolved: list[Any] = []
    for job in jobs:
        if isinstance(job, dict):
            job = dict(job)
            interval = tolerant_duration(job.get("scrape_interval"))
            if job.get("scrape_interval") is None or interval == 0.0:
                job["scrape_interval"] = interval = glob.scrape_interval
            timeout = job.get("scrape_timeout")
            if timeout is None or tolerant_duration(timeout) == 0.0:
                job["scrape_timeout"] = min(glob.scrape_timeout, interval or glob.scrape_interval)
            for key in INHERITED_FROM_GLOBAL:
                if job.get(key) is None:
                    job[key] = getattr(glob, key)
        resolved.append(job)
    return {**data, "scrape_configs": resolved}


def _duplicate_job_names(data: dict[str, Any]) -> list[InitErrorDetails]:
    jobs = data.get("scrape_configs")
    if not isinstance(jobs, list):
        return []
    first: dict[str, int] = {}
    errors: list[InitErrorDetails] = []
    for index, job in enumerate(jobs):
        name = job.get("job_name") if isinstance(job, dict) else None
        if not isinstance(name, str):
            continue
        if name in first:
            error = PydanticCustomError(
                FIELD_ERROR,
                "{message}",
                {
                    "message": f'duplicate job_name "{name}", also used by scrape_configs.{first[name]}',
                    "field": None,
                    SEE_ALSO: ("scrape_configs", first[name], "job_name"),
                },
            )
            errors.append(InitErrorDetails(type=error, loc=("scrape_configs", index, "job_name"), input=name))
        else:
            first[name] = index
    return errors


def _combined(errors: list[Any], extra: list[InitErrorDetails]) -> ValidationError:
    details: list[InitErrorDetails] = []
    for error in errors:
        if error["type"] == FIELD_ERROR:
            custom = PydanticCustomError(FIELD_ERROR, "{message}", error["ctx"])
        else:
            # Without a context the message is taken as it is, braces included.
            custom = PydanticCustomError(error["type"], error["msg"])
        details.append(InitErrorDetails(type=custom, loc=error["loc"], input=None))
    return ValidationError.from_exception_data(Config.__name__, [*details, *extra])
