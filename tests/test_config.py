"""The config file: prometheus.yml compatibility, defaults, secrets, and errors that name line and key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from daemon.config import (
    ConfigError,
    ConfigIssue,
    Secret,
    format_duration,
    load_config,
    load_default_config,
    parse_config,
    parse_duration,
    summarize,
)


def issues_of(text: str, **kwargs: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(textwrap.dedent(text), "alertd.yml", **kwargs)  # type: ignore[arg-type]
    return [str(issue) for issue in caught.value.issues]


# --- durations -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("0s", 0.0),
        ("15s", 15.0),
        ("500ms", 0.5),
        ("1h30m", 5400.0),
        ("1d", 86400.0),
        ("1w", 604800.0),
        ("1y", 31536000.0),
        ("2h45m10s250ms", 9910.25),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "-5s", "1.5h", "5", "30m1h", "1h1h", "1 h", "5S", "ms"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (5400, "1h30m"), (0.5, "500ms"), (90 * 86400, "90d"), (14 * 86400, "2w"), (31536000, "1y"), (61.5, "1m1s500ms")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


# --- a realistic prometheus.yml loads unchanged --------------------------------------------------

PROMETHEUS_YML = """\
# my global config
global:
  scrape_interval: 15s
  evaluation_interval: 30s
  external_labels:
    cluster: prod-eu
    replica: "1"

rule_files:
  - "rules/*.yml"
  - /etc/prometheus/extra.rules.yml

scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["localhost:9090"]

  - job_name: node
    scrape_interval: 30s
    scrape_timeout: 20s
    honor_labels: true
    static_configs:
      - targets: ["10.0.0.1:9100", "10.0.0.2:9100"]
        labels:
          env: prod
          version: 1.10
    file_sd_configs:
      - files: ["targets/*.json", "targets/*.yml"]
        refresh_interval: 1m
    relabel_configs:
      - source_labels: [__address__]
        regex: "([^:]+):\\\\d+"
        target_label: host
        replacement: "${1}"
      - regex: __meta_(.+)
        action: labelmap
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: "go_.*"
        action: drop

  - job_name: api
    scheme: https
    metrics_path: /internal/metrics
    params:
      format: [prometheus]
    body_size_limit: 10MB
    sample_limit: 50000
    basic_auth:
      username: scraper
      password: ${SCRAPE_PASSWORD}
    tls_config:
      server_name: api.internal
      insecure_skip_verify: false
    follow_redirects: false
    enable_http2: true
    static_configs:
      - targets: ["api.internal:443"]

  - job_name: legacy
    bearer_token: "tok3n-value"
    scrape_protocols: [PrometheusText0.0.4]
    static_configs:
      - targets: ["legacy:8080"]
"""


def test_prometheus_yml_loads_unchanged() -> None:
    config = parse_config(PROMETHEUS_YML, "prometheus.yml", env={"SCRAPE_PASSWORD": "hunter2"}, base_dir="/etc/prometheus")
    assert config.source == "prometheus.yml"
    assert config.global_.scrape_interval == 15
    assert config.global_.scrape_timeout == 10
    assert config.global_.evaluation_interval == 30
    assert config.global_.external_labels == {"cluster": "prod-eu", "replica": "1"}
    assert config.rule_files == ("/etc/prometheus/rules/*.yml", "/etc/prometheus/extra.rules.yml")
    prometheus, node, api, legacy = config.scrape_configs
    assert prometheus.scrape_interval == 15 and prometheus.scrape_timeout == 10
    assert prometheus.metrics_path == "/metrics" and prometheus.scheme == "http" and prometheus.honor_timestamps
    assert node.scrape_interval == 30 and node.scrape_timeout == 20 and node.honor_labels
    assert node.static_configs[0].targets == ("10.0.0.1:9100", "10.0.0.2:9100")
    assert node.static_configs[0].labels == {"env": "prod", "version": "1.10"}  # text kept, as in Go
    assert node.file_sd_configs[0].files == ("/etc/prometheus/targets/*.json", "/etc/prometheus/targets/*.yml")
    assert node.file_sd_configs[0].refresh_interval == 60
    assert node.relabel_configs[0].regex == "([^:]+):\\d+"
    assert node.relabel_configs[1].action == "labelmap"
    assert node.metric_relabel_configs[0].action == "drop"
    assert api.scheme == "https" and api.params == {"format": ("prometheus",)}
    assert api.body_size_limit == 10 * 1024 * 1024 and api.sample_limit == 50000
    assert api.basic_auth is not None and api.basic_auth.password == Secret("hunter2")
    assert api.tls_config is not None and api.tls_config.server_name == "api.internal"
    assert not api.follow_redirects
    assert legacy.bearer_token is None  # folded into authorization, as Prometheus does
    assert legacy.authorization is not None and legacy.authorization.type == "Bearer"
    assert legacy.authorization.credentials is not None and legacy.authorization.credentials.reveal() == "tok3n-value"
    assert legacy.scrape_protocols == ("PrometheusText0.0.4",)


def test_defaults_match_prometheus() -> None:
    config = parse_config("", "empty.yml")
    assert config.global_.scrape_interval == 60 and config.global_.scrape_timeout == 10
    assert config.global_.evaluation_interval == 60
    assert config.scrape_configs == () and config.rule_files == ()
    assert config.storage.retention == 3600
    assert config.web.listen == "0.0.0.0:9095"
    assert config.demo_exporter is None


def test_job_timeout_defaults_to_at_most_its_interval() -> None:
    config = parse_config("scrape_configs:\n  - job_name: fast\n    scrape_interval: 5s\n")
    assert config.scrape_configs[0].scrape_timeout == 5


def test_global_short_interval_caps_default_timeout() -> None:
    config = parse_config("global:\n  scrape_interval: 5s\nscrape_configs:\n  - job_name: a\n")
    assert config.global_.scrape_timeout == 5
    assert config.scrape_configs[0].scrape_interval == 5 and config.scrape_configs[0].scrape_timeout == 5


def test_global_limits_are_inherited() -> None:
    config = parse_config("global:\n  sample_limit: 100\nscrape_configs:\n  - job_name: a\n  - job_name: b\n    sample_limit: 5\n")
    assert [job.sample_limit for job in config.scrape_configs] == [100, 5]


def test_null_values_mean_default() -> None:
    config = parse_config("global:\nscrape_configs:\n  - job_name: a\n    static_configs:\n    relabel_configs:\n")
    assert config.global_.scrape_interval == 60
    assert config.scrape_configs[0].static_configs == ()


def test_yaml_anchors_and_merge_keys() -> None:
    text = """\
    scrape_configs:
      - &base
        job_name: a
        scrape_interval: 30s
      - <<: *base
        job_name: b
    """
    config = parse_config(textwrap.dedent(text))
    assert [(job.job_name, job.scrape_interval) for job in config.scrape_configs] == [("a", 30), ("b", 30)]


def test_alertd_sections() -> None:
    text = """\
    storage: {retention: 2h}
    web: {listen: "127.0.0.1:8080", external_url: "https://alerts.example.com/"}
    demo_exporter: {series: 10}
    """
    config = parse_config(textwrap.dedent(text))
    assert config.storage.retention == 7200
    assert config.web.listen == "127.0.0.1:8080" and config.web.external_url == "https://alerts.example.com/"
    assert config.demo_exporter is not None
    assert config.demo_exporter.listen == "127.0.0.1:9101" and config.demo_exporter.series == 10


def test_default_config() -> None:
    config = load_default_config()
    assert config.source == "<default>"
    assert config.global_.scrape_interval == 15 and config.global_.evaluation_interval == 15
    jobs = {job.job_name: job for job in config.scrape_configs}
    assert jobs["alertd"].static_configs[0].targets == ("127.0.0.1:9095",)
    assert jobs["demo"].static_configs[0].targets == ("127.0.0.1:9101",)
    assert config.demo_exporter is not None and config.demo_exporter.listen == "127.0.0.1:9101"


def test_same_job_across_reloads() -> None:
    first = parse_config(PROMETHEUS_YML, env={"SCRAPE_PASSWORD": "a"})
    again = parse_config(PROMETHEUS_YML, env={"SCRAPE_PASSWORD": "a"})
    rotated = parse_config(PROMETHEUS_YML, env={"SCRAPE_PASSWORD": "b"})
    assert all(old.same_as(new) for old, new in zip(first.scrape_configs, again.scrape_configs))
    assert not first.job("api").same_as(rotated.job("api"))  # type: ignore[union-attr,arg-type]
    assert first.job("node").same_as(rotated.job("node"))  # type: ignore[union-attr,arg-type]


def test_summarize() -> None:
    config = parse_config(PROMETHEUS_YML, "prometheus.yml", env={"SCRAPE_PASSWORD": "x"}, base_dir="/etc/prometheus")
    text = summarize(config)
    assert "prometheus.yml" in text
    assert "node: 2 static targets, file_sd /etc/prometheus/targets/*.json, /etc/prometheus/targets/*.yml" in text
    assert "prometheus: 1 static target" in text
    assert "/etc/prometheus/rules/*.yml" in text


# --- load_config from files ----------------------------------------------------------------------


def test_load_config_resolves_files_next_to_it(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    (tmp_path / "token").write_text("  tok \n")
    (tmp_path / "ca.pem").write_text("not really a cert")
    path = tmp_path / "alertd.yml"
    path.write_text(
        textwrap.dedent(
            """\
            scrape_configs:
              - job_name: a
                basic_auth: {username: u, password_file: pw}
                tls_config: {ca_file: ca.pem}
              - job_name: b
                authorization: {credentials_file: token}
              - job_name: c
                bearer_token_file: token
            """
        )
    )
    config = load_config(path)
    a, b, c = config.scrape_configs
    assert a.basic_auth is not None and a.basic_auth.password is not None
    assert a.basic_auth.password.reveal() == "s3cret"
    assert a.tls_config is not None and a.tls_config.ca_file == str(tmp_path / "ca.pem")
    assert b.authorization is not None and b.authorization.credentials == Secret("tok")
    assert c.authorization is not None and c.authorization.credentials == Secret("tok")
    assert config.source == str(path)


def test_load_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yml")
    assert "cannot read config file" in str(caught.value)


# --- errors name file, line and key --------------------------------------------------------------


def test_issue_format() -> None:
    issue = ConfigIssue("alertd.yml", 12, "scrape_configs.0.scrape_timeout", "must not be longer than scrape_interval")
    assert str(issue) == "alertd.yml:12: scrape_configs.0.scrape_timeout: must not be longer than scrape_interval"
    assert str(ConfigIssue("a.yml", 3, "", "invalid YAML: x")) == "a.yml:3: invalid YAML: x"


def test_invalid_yaml_gives_line() -> None:
    issues = issues_of("global:\n  scrape_interval: 15s\n scrape_timeout: [\n")
    assert len(issues) == 1 and issues[0].startswith("alertd.yml:3: invalid YAML:")


def test_not_a_mapping() -> None:
    assert issues_of("- a\n- b\n") == ["alertd.yml:1: the config must be a mapping of sections"]


def test_duplicate_yaml_key() -> None:
    assert issues_of("global:\n  scrape_interval: 1m\n  scrape_interval: 2m\n") == [
        "alertd.yml:3: global.scrape_interval: duplicate key (first at line 2)"
    ]


def test_unknown_keys_nested() -> None:
    text = """\
    global:
      scrape_intervall: 15s
    scrape_configs:
      - job_name: a
        static_configs:
          - targets: [a:1]
            lables: {x: y}
        tls_config:
          verify: false
    frobnicate: 1
    """
    assert issues_of(text) == [
        "alertd.yml:2: global.scrape_intervall: unknown key (did you mean scrape_interval?)",
        "alertd.yml:7: scrape_configs.0.static_configs.0.lables: unknown key (did you mean labels?)",
        "alertd.yml:9: scrape_configs.0.tls_config.verify: unknown key",
        "alertd.yml:10: frobnicate: unknown key",
    ]


def test_known_but_unsupported_prometheus_keys() -> None:
    text = """\
    alerting:
      alertmanagers: []
    scrape_configs:
      - job_name: k8s
        kubernetes_sd_configs: [{role: pod}]
        oauth2: {client_id: x}
    """
    assert issues_of(text) == [
        "alertd.yml:1: alerting: not supported by alertd",
        "alertd.yml:5: scrape_configs.0.kubernetes_sd_configs: this service discovery is not supported by alertd"
        " (use static_configs or file_sd_configs)",
        "alertd.yml:6: scrape_configs.0.oauth2: not supported by alertd",
    ]


def test_wrong_types() -> None:
    text = """\
    global:
      external_labels: [a, b]
    scrape_configs:
      - job_name: a
        honor_labels: perhaps
        sample_limit: lots
        scheme: ftp
        static_configs: {targets: [x:1]}
    rule_files: rules.yml
    """
    assert issues_of(text) == [
        "alertd.yml:2: global.external_labels: must be a mapping",
        "alertd.yml:5: scrape_configs.0.honor_labels: must be true or false",
        "alertd.yml:6: scrape_configs.0.sample_limit: must be an integer",
        "alertd.yml:7: scrape_configs.0.scheme: must be 'http' or 'https'",
        "alertd.yml:8: scrape_configs.0.static_configs: must be a list",
        "alertd.yml:9: rule_files: must be a list",
    ]


def test_bad_durations() -> None:
    text = """\
    global:
      scrape_interval: -15s
      evaluation_interval: 1.5m
    storage:
      retention: 0s
    """
    assert issues_of(text) == [
        'alertd.yml:2: global.scrape_interval: not a valid duration string: "-15s"',
        'alertd.yml:3: global.evaluation_interval: not a valid duration string: "1.5m"',
        "alertd.yml:5: storage.retention: retention must be longer than 0s",
    ]


def test_missing_required_key_uses_parent_line() -> None:
    assert issues_of("scrape_configs:\n  - scrape_interval: 1m\n") == [
        "alertd.yml:2: scrape_configs.0.job_name: missing required key"
    ]


def test_duplicate_job_names_name_both() -> None:
    text = """\
    scrape_configs:
      - job_name: api
      - job_name: db
      - job_name: api
        honor_labels: nope
    """
    assert issues_of(text) == [
        'alertd.yml:4: scrape_configs.2.job_name: duplicate job_name "api", also used by scrape_configs.0 (line 2)',
        "alertd.yml:5: scrape_configs.2.honor_labels: must be true or false",
    ]


def test_timeout_longer_than_interval() -> None:
    text = """\
    scrape_configs:
      - job_name: a
        scrape_interval: 10s
        scrape_timeout: 20s
    """
    assert issues_of(text) == ["alertd.yml:4: scrape_configs.0.scrape_timeout: must not be longer than scrape_interval"]
    assert issues_of("global:\n  scrape_interval: 5s\n  scrape_timeout: 6s\n") == [
        "alertd.yml:3: global.scrape_timeout: must not be longer than scrape_interval"
    ]


def test_job_level_checks() -> None:
    text = """\
    scrape_configs:
      - job_name: ""
      - job_name: b
        static_configs:
          - targets: ["http://host:80/metrics"]  # fine: relabelling may move it into a parameter
            labels: {"bad-name": x}
      - job_name: c
        file_sd_configs:
          - files: [targets.txt]
      - job_name: d
        scrape_protocols: [PrometheusProto]
      - job_name: e
        body_size_limit: 10 parsecs
    """
    assert issues_of(text) == [
        "alertd.yml:2: scrape_configs.0.job_name: job_name is empty",
        'alertd.yml:6: scrape_configs.1.static_configs.0.labels: "bad-name" is not a valid label name',
        'alertd.yml:9: scrape_configs.2.file_sd_configs.0.files: path name "targets.txt" is not valid for file discovery',
        "alertd.yml:11: scrape_configs.3.scrape_protocols: PrometheusProto (protobuf) is not supported by alertd",
        "alertd.yml:13: scrape_configs.4.body_size_limit: must be a size in bytes such as 0, 512KB or 10MB",
    ]


def test_auth_combinations() -> None:
    text = """\
    scrape_configs:
      - job_name: a
        basic_auth: {username: u, password: p}
        bearer_token: t
      - job_name: b
        authorization: {credentials: x}
        basic_auth: {username: u}
      - job_name: c
        authorization: {type: Basic, credentials: x}
      - job_name: d
        basic_auth: {username: u, password: p, password_file: f}
    """
    assert issues_of(text) == [
        "alertd.yml:2: scrape_configs.0: at most one of basic_auth, bearer_token & bearer_token_file must be configured",
        "alertd.yml:5: scrape_configs.1: at most one of basic_auth & authorization must be configured",
        'alertd.yml:9: scrape_configs.2.authorization.type: authorization type cannot be set to "basic",'
        ' use "basic_auth" instead',
        "alertd.yml:11: scrape_configs.3.basic_auth: at most one of basic_auth password & password_file must be configured",
    ]


def test_bad_regex_in_relabel_config() -> None:
    text = """\
    scrape_configs:
      - job_name: a
        relabel_configs:
          - source_labels: [a]
            regex: "(unclosed"
        metric_relabel_configs:
          - regex: "(?<=x)y"
            action: labeldrop
    """
    issues = issues_of(text)
    assert len(issues) == 2
    assert issues[0].startswith("alertd.yml:5: scrape_configs.0.relabel_configs.0.regex: error parsing regexp")
    assert issues[1].startswith("alertd.yml:7: scrape_configs.0.metric_relabel_configs.0.regex: error parsing regexp")


def test_missing_env_var_names_key() -> None:
    text = """\
    scrape_configs:
      - job_name: a
        basic_auth:
          username: u
          password: ${SCRAPE_PASSWORD}
    """
    assert issues_of(text, env={}) == [
        "alertd.yml:5: scrape_configs.0.basic_auth.password: environment variable SCRAPE_PASSWORD is not set"
    ]


def test_env_only_expanded_in_secrets() -> None:
    text = "scrape_configs:\n  - job_name: ${JOB}\n    bearer_token: a-${TOKEN}-$${X}\n"
    config = parse_config(text, env={"JOB": "expanded", "TOKEN": "t"})
    job = config.scrape_configs[0]
    assert job.job_name == "${JOB}"
    assert job.authorization is not None and job.authorization.credentials == Secret("a-t-${X}")


def test_unreadable_password_file_names_key(tmp_path: Path) -> None:
    text = f"""\
    scrape_configs:
      - job_name: a
        basic_auth:
          username: u
          password_file: {tmp_path}/missing
    """
    assert issues_of(text) == [
        f'alertd.yml:5: scrape_configs.0.basic_auth.password_file: cannot read "{tmp_path}/missing":'
        " No such file or directory"
    ]


def test_all_errors_collected_across_sections() -> None:
    text = """\
    global:
      scrape_interval: soon
    scrape_configs:
      - job_name: a
        scrape_interval: later
    web:
      listen: nowhere
    demo_exporter:
      series: 0
    """
    issues = issues_of(text)
    assert [issue.split(":")[1] for issue in issues] == ["2", "5", "7", "9"]


# --- secrets never shown -------------------------------------------------------------------------


def test_secret_repr() -> None:
    secret = Secret("hunter2")
    assert repr(secret) == str(secret) == "<secret>" and f"{secret}" == "<secret>"
    assert secret.reveal() == "hunter2"


def test_secrets_not_in_repr_dump_or_errors(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("file-secret-value")
    text = f"""\
    scrape_configs:
      - job_name: a
        basic_auth: {{username: u, password: "env-secret-${{PW}}"}}
      - job_name: b
        basic_auth: {{username: u, password_file: {tmp_path}/pw}}
      - job_name: c
        bearer_token: inline-secret-value
    """
    config = parse_config(textwrap.dedent(text), env={"PW": "value"})
    shown = repr(config) + str(config) + config.model_dump_json() + repr(config.model_dump()) + summarize(config)
    for value in ("env-secret-value", "file-secret-value", "inline-secret-value"):
        assert value not in shown
    broken = textwrap.dedent(text) + "    honor_labels: nope\n  - job_name: a\n    bearer_token: other-secret-value\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(broken, env={"PW": "value"})
    assert len(caught.value.issues) == 2
    message = str(caught.value) + repr(caught.value.issues)
    for value in ("env-secret-value", "file-secret-value", "inline-secret-value", "other-secret-value"):
        assert value not in message


def test_yaml_error_does_not_echo_the_line() -> None:
    issues = issues_of("scrape_configs:\n  - job_name: a\n    bearer_token: leaked: value\n")
    assert "leaked" not in "".join(issues)


def test_secret_wrong_type_does_not_echo() -> None:
    issues = issues_of("scrape_configs:\n  - job_name: a\n    bearer_token: [secret-in-a-list]\n")
    assert issues == ["alertd.yml:3: scrape_configs.0.bearer_token: must be a string"]


def test_alertmanager_global_keys_load_and_receivers_inherit_them() -> None:
    config = parse_config(
        """
global:
  scrape_interval: 15s
  smtp_smarthost: smtp.example.com:587
  smtp_from: alertd@example.com
  slack_api_url: https://hooks.slack.com/services/T/B/X
  resolve_timeout: 2m
route: {receiver: team}
receivers:
  - name: team
    email_configs: [{to: "a@example.com"}]
    slack_configs: [{channel: "#alerts"}]
""",
        "alertd.yml",
    )
    assert config.global_.resolve_timeout == 120.0
    (team,) = config.receivers
    assert team.email_configs[0].smarthost == "smtp.example.com:587"
    assert team.slack_configs[0].api_url is not None
    assert team.slack_configs[0].api_url.reveal() == "https://hooks.slack.com/services/T/B/X"
