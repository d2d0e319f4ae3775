"""``probes``: built-in blackbox checks, one job per entry, with blackbox_exporter's module keys.

A probe job is a blackbox_exporter module and the Prometheus job that would scrape it, in one
entry: ``job_name``, ``interval`` and ``targets`` come from the scrape side; ``prober``,
``timeout`` and the ``http``/``tcp`` blocks take blackbox_exporter's keys. The ``tls`` prober is
alertd's own (blackbox_exporter spells it ``tcp`` with ``tls: true``); its block is a
``tls_config``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from daemon.config.duration import Duration
from daemon.config.httpclient import Authorization, BasicAuth, TLSConfig, check_http_client
from daemon.re2 import RegexError, translate_re2
from daemon.config.scrape import DEFAULT_SCRAPE_INTERVAL, DEFAULT_SCRAPE_TIMEOUT, tolerant_duration
from daemon.config.section import Section, check_label_name, field_error

PROBERS = ("http", "tcp", "tls")
OTHER_BLACKBOX_PROBERS = ("icmp", "dns", "grpc", "unix")
RESERVED_LABELS = ("job", "instance")


def compile_search(pattern: str) -> re.Pattern[str]:
    """An RE2 pattern compiled for searching anywhere in a text, as Go's ``regexp.MatchString``.

    Raises ``RegexError``. Unlike relabelling, blackbox_exporter's regexes are not anchored.
    """
    try:
        return re.compile(translate_re2(pattern), re.ASCII)
    except re.error as exc:
        raise RegexError(f"error parsing regexp: {exc.msg}: `{pattern}`") from None
    except (OverflowError, RecursionError):
        raise RegexError(f"error parsing regexp: expression too large: `{pattern}`") from None


def _check_regex(pattern: str) -> str:
    compile_search(pattern)  # RegexError is a ValueError: pydantic reports it at the key
    return pattern


Regex = Annotated[str, AfterValidator(_check_regex)]
"""An RE2 pattern, kept as text (so configs compare equal across reloads), checked at load."""


class HeaderMatch(Section):
    """One ``fail_if_header_matches`` / ``fail_if_header_not_matches`` entry."""

    header: str
    regexp: Regex
    allow_missing: bool = False


class HTTPProbe(Section):
    """``http``: blackbox_exporter's http module. Valid status codes default to any 2xx."""

    unsupported = frozenset(
        {
            "valid_http_versions",
            "compression",
            "body_size_limit",
            "body_file",
            "oauth2",
            "proxy_url",
            "no_proxy",
            "proxy_from_environment",
            "proxy_connect_header",
            "preferred_ip_protocol",
            "ip_protocol_fallback",
            "skip_resolve_phase_with_proxy",
            "enable_http2",
            "http_client_config",
            "bearer_token_file",
        }
    )

    method: str = "GET"
    valid_status_codes: tuple[Annotated[int, Field(ge=100, le=599)], ...] = ()
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    follow_redirects: bool = True
    no_follow_redirects: bool = False
    fail_if_ssl: bool = False
    fail_if_not_ssl: bool = False
    fail_if_body_matches_regexp: tuple[Regex, ...] = ()
    fail_if_body_not_matches_regexp: tuple[Regex, ...] = ()
    fail_if_header_matches: tuple[HeaderMatch, ...] = ()
    fail_if_header_not_matches: tuple[HeaderMatch, ...] = ()
    basic_auth: BasicAuth | None = None
    authorization: Authorization | None = None
    tls_config: TLSConfig = Field(default_factory=TLSConfig)

    @field_validator("method")
    @classmethod
    def _method(cls, method: str) -> str:
        if not re.fullmatch(r"[A-Za-z]+", method):
            raise ValueError(f'"{method}" is not an HTTP method')
        return method.upper()

    @model_validator(mode="after")
    def _consistent(self) -> HTTPProbe:
        check_http_client(self.basic_auth, self.authorization, None, None)
        if self.fail_if_ssl and self.fail_if_not_ssl:
            raise field_error(None, "fail_if_ssl and fail_if_not_ssl cannot both be true")
        # The old blackbox_exporter spelling, folded into the current one.
        if self.no_follow_redirects:
            self._settle(follow_redirects=False, no_follow_redirects=False)
        return self

    def valid_status(self, code: int) -> bool:
        """Whether ``code`` counts as success: one of ``valid_status_codes``, or any 2xx without them."""
        if self.valid_status_codes:
            return code in self.valid_status_codes
        return 200 <= code < 300


class QueryResponse(Section):
    """One ``query_response`` step: wait for a line matching ``expect``, then ``send`` a line, then
    ``starttls``. ``send`` may use ``${1}`` for the groups of the ``expect`` match."""

    unsupported = frozenset({"expect_bytes", "labels"})

    expect: Regex | None = None
    send: str | None = None
    starttls: bool = False


class TCPProbe(Section):
    """``tcp``: blackbox_exporter's tcp module: connect, optionally TLS, optionally a dialogue."""

    unsupported = frozenset({"preferred_ip_protocol", "ip_protocol_fallback", "source_ip_address"})

    query_response: tuple[QueryResponse, ...] = ()
    tls: bool = False
    tls_config: TLSConfig = Field(default_factory=TLSConfig)


class _DuplicateName(str):
    """A job_name already used by the probe job at ``first``."""

    first: int

    def __new__(cls, name: str, first: int) -> _DuplicateName:
        value = super().__new__(cls, name)
        value.first = first
        return value


def _not_duplicate(name: Any) -> Any:
    if isinstance(name, _DuplicateName):
        raise ValueError(f'duplicate job_name "{name}", also used by probes.{name.first}')
    return name


class ProbeConfig(Section):
    """One probe job: every target probed with the same prober, at ``interval``, within ``timeout``.

    ``interval`` and ``timeout`` are always set once the whole config is loaded: they default to
    the ``global`` scrape interval and timeout (the timeout never longer than the interval).
    """

    job_name: Annotated[str, BeforeValidator(_not_duplicate)]
    prober: str
    interval: Duration = DEFAULT_SCRAPE_INTERVAL
    timeout: Duration = DEFAULT_SCRAPE_TIMEOUT
    targets: tuple[str, ...]
    labels: dict[str, str] = Field(default_factory=dict)
    http: HTTPProbe | None = None
    tcp: TCPProbe | None = None
    tls: TLSConfig | None = None

    @field_validator("prober")
    @classmethod
    def _known_prober(cls, prober: str) -> str:
        if prober in OTHER_BLACKBOX_PROBERS:
            raise ValueError(f'prober "{prober}" is not supported by alertd (use one of {", ".join(PROBERS)})')
        if prober not in PROBERS:
            raise ValueError(f'unknown prober "{prober}" (use one of {", ".join(PROBERS)})')
        return prober

    @field_validator("labels")
    @classmethod
    def _label_names(cls, labels: dict[str, str]) -> dict[str, str]:
        for name in labels:
            check_label_name(name)
            if name in RESERVED_LABELS or name.startswith("__"):
                raise ValueError(f'label "{name}" is set by alertd and cannot be given')
        return labels

    @field_validator("interval")
    @classmethod
    def _interval_positive(cls, interval: float) -> float:
        if interval <= 0:
            raise ValueError("interval must be longer than 0s")
        return interval

    @model_validator(mode="after")
    def _consistent(self) -> ProbeConfig:
        if not self.job_name:
            raise field_error("job_name", "job_name is empty")
        if not self.targets:
            raise field_error("targets", "at least one target is needed")
        if self.timeout <= 0:
            raise field_error("timeout", "timeout must be longer than 0s")
        if self.timeout > self.interval:
            raise field_error("timeout", "must not be longer than interval")
        for key in PROBERS:
            if key != self.prober and getattr(self, key) is not None:
                raise field_error(key, f"{key} settings given to a {self.prober} prober")
        for index, target in enumerate(self.targets):
            problem = target_problem(self.prober, target)
            if problem:
                raise field_error(f"targets.{index}", problem)
        # Each prober finds its settings present, so it need not handle their absence.
        if self.prober == "http" and self.http is None:
            self._settle(http=HTTPProbe())
        elif self.prober == "tcp" and self.tcp is None:
            self._settle(tcp=TCPProbe())
        elif self.prober == "tls" and self.tls is None:
            self._settle(tls=TLSConfig())
        return self


def target_problem(prober: str, target: str) -> str | None:
    """Why ``target`` cannot be probed by ``prober``, or None.

    http targets are URLs (``http://`` is assumed without a scheme, as blackbox_exporter does);
    tcp and tls targets are ``host:port``.
    """
    if prober == "http":
        url = target if "://" in target else "http://" + target
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
        except ValueError as exc:
            return f'"{target}" is not a valid URL: {exc}'
        if parts.scheme not in ("http", "https"):
            return f'"{target}" is not an http(s) URL'
        if not parts.hostname:
            return f'"{target}" has no host'
        return None
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return f'"{target}" is not host:port'
    if host.startswith("[") != host.endswith("]"):
        return f'"{target}" is not host:port'
    return None


def _with_global_defaults(probes: Any, info: ValidationInfo) -> Any:
    # Runs inside Config's validation, after `global` (an earlier field); a broken global has
    # already been reported, and the probes are checked against the built-in defaults.
    glob = info.data.get("global_")
    interval_default = getattr(glob, "scrape_interval", DEFAULT_SCRAPE_INTERVAL)
    timeout_default = getattr(glob, "scrape_timeout", DEFAULT_SCRAPE_TIMEOUT)
    if not isinstance(probes, list):
        return probes
    resolved: list[Any] = []
    first: dict[str, int] = {}
    for index, probe in enumerate(probes):
        if isinstance(probe, dict):
            probe = dict(probe)
            name = probe.get("job_name")
            if isinstance(name, str) and name in first:
                # Marked here, where the whole list is seen, so that the job_name field itself
                # reports it (with its own line).
                probe["job_name"] = _DuplicateName(name, first[name])
            elif isinstance(name, str):
                first[name] = index
            if probe.get("interval") is None:
                probe["interval"] = interval_default
            if probe.get("timeout") is None:
                interval = tolerant_duration(probe["interval"]) or interval_default
                probe["timeout"] = min(timeout_default, interval)
        resolved.append(probe)
    return resolved


ProbeConfigs = Annotated[tuple[ProbeConfig, ...], BeforeValidator(_with_global_defaults)]
"""The ``probes`` section: a list of probe jobs with unique names, defaults taken from ``global``."""
