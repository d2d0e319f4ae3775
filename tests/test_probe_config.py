"""The ``probes`` config section: defaults, blackbox_exporter's keys, and errors naming file, line and key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from daemon.config import ConfigError, parse_config
from daemon.config.probes import ProbeConfig, compile_search, target_problem
from daemon.re2 import RegexError

README = Path(__file__).resolve().parent.parent / "README.md"


def probes(text: str) -> tuple[ProbeConfig, ...]:
    return parse_config(text, "alertd.yml").probes


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "alertd.yml")
    return [str(issue) for issue in caught.value.issues]


def test_interval_and_timeout_default_to_the_global_scrape_settings() -> None:
    site, fast = probes(
        """
global: {scrape_interval: 30s, scrape_timeout: 12s}
probes:
  - job_name: site
    prober: http
    targets: ["https://app.example.com/health"]
  - job_name: fast
    prober: tcp
    interval: 5s
    targets: ["db:5432"]
"""
    )
    assert (site.interval, site.timeout) == (30.0, 12.0)
    assert (fast.interval, fast.timeout) == (5.0, 5.0)


def test_without_global_the_prometheus_defaults_apply() -> None:
    (probe,) = probes("probes: [{job_name: a, prober: tls, targets: ['x:443']}]")
    assert (probe.interval, probe.timeout) == (60.0, 10.0)


def test_each_prober_gets_its_settings_block_filled_in() -> None:
    http, tcp, tls = probes(
        """
probes:
  - {job_name: a, prober: http, targets: ["a.example"]}
  - {job_name: b, prober: tcp, targets: ["b:1"]}
  - {job_name: c, prober: tls, targets: ["c:443"]}
"""
    )
    assert http.http is not None and http.http.method == "GET" and http.http.valid_status(204)
    assert not http.http.valid_status(301)
    assert tcp.tcp is not None and tcp.tcp.query_response == () and not tcp.tcp.tls
    assert tls.tls is not None and not tls.tls.insecure_skip_verify


def test_blackbox_exporter_module_keys() -> None:
    (probe,) = probes(
        """
probes:
  - job_name: site
    prober: http
    timeout: 5s
    targets: ["https://app.example.com/health"]
    labels: {severity_hint: p0}
    http:
      method: post
      valid_status_codes: [200, 204]
      fail_if_body_not_matches_regexp: ["ok"]
      fail_if_body_matches_regexp: ["(?i)error"]
      headers: {Host: app.example.com}
      no_follow_redirects: true
      fail_if_not_ssl: true
      fail_if_header_matches: [{header: Server, regexp: "^old"}]
      tls_config: {insecure_skip_verify: true, server_name: app.example.com}
"""
    )
    http = probe.http
    assert http is not None
    assert http.method == "POST" and http.valid_status_codes == (200, 204)
    assert http.follow_redirects is False
    assert http.tls_config.insecure_skip_verify and http.tls_config.server_name == "app.example.com"
    assert probe.labels == {"severity_hint": "p0"}


def test_unchanged_config_compares_equal_across_loads() -> None:
    text = "probes: [{job_name: a, prober: tcp, targets: ['x:1'], tcp: {query_response: [{expect: '^ok'}]}}]"
    assert probes(text) == probes(text)
    assert probes(text) != probes(text.replace("^ok", "^OK"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "probes:\n  - job_name: a\n    prober: icmp\n    targets: [x]\n",
            'alertd.yml:3: probes.0.prober: prober "icmp" is not supported by alertd (use one of http, tcp, tls)',
        ),
        (
            "probes:\n  - job_name: a\n    prober: htp\n    targets: [x]\n",
            'alertd.yml:3: probes.0.prober: unknown prober "htp" (use one of http, tcp, tls)',
        ),
        (
            "probes:\n  - job_name: a\n    prober: http\n    targets: [x]\n    http:\n"
            "      fail_if_body_matches_regexp: [ok, '(unclosed']\n",
            "alertd.yml:6: probes.0.http.fail_if_body_matches_regexp.1: error parsing regexp: "
            "missing closing ): `(unclosed`",
        ),
        (
            "probes:\n  - job_name: a\n    prober: tcp\n    targets: ['x:1']\n    tcp:\n"
            "      query_response:\n        - expect: '(?<=x)y'\n",
            "alertd.yml:7: probes.0.tcp.query_response.0.expect: error parsing regexp: "
            "lookbehind assertions are not supported (RE2 syntax): `(?<=x)y`",
        ),
        ("probes:\n  - job_name: a\n    prober: http\n", "alertd.yml:2: probes.0.targets: missing required key"),
        (
            "probes:\n  - job_name: a\n    prober: http\n    targets: []\n",
            "alertd.yml:4: probes.0.targets: at least one target is needed",
        ),
        (
            "probes:\n  - job_name: a\n    prober: tcp\n    targets: ['db:5432', 'db']\n",
            'alertd.yml:4: probes.0.targets.1: "db" is not host:port',
        ),
        (
            "probes:\n  - job_name: a\n    prober: http\n    targets: ['ftp://x/']\n",
            'alertd.yml:4: probes.0.targets.0: "ftp://x/" is not an http(s) URL',
        ),
        (
            "probes:\n  - job_name: a\n    prober: tcp\n    interval: 5s\n    timeout: 10s\n    targets: ['x:1']\n",
            "alertd.yml:5: probes.0.timeout: must not be longer than interval",
        ),
        (
            "probes:\n  - job_name: a\n    prober: tcp\n    targets: ['x:1']\n    http: {method: GET}\n",
            "alertd.yml:5: probes.0.http: http settings given to a tcp prober",
        ),
        (
            "probes:\n  - job_name: a\n    prober: tcp\n    targets: ['x:1']\n    labels: {instance: x}\n",
            'alertd.yml:5: probes.0.labels: label "instance" is set by alertd and cannot be given',
        ),
        (
            "probes:\n  - job_name: a\n    prober: tcp\n    targets: ['x:1']\n    tcp: {tls: yes, tls_confg: {}}\n",
            "alertd.yml:5: probes.0.tcp.tls_confg: unknown key (did you mean tls_config?)",
        ),
        (
            "probes:\n  - job_name: a\n    prober: http\n    targets: ['x']\n    http: {preferred_ip_protocol: ip4}\n",
            "alertd.yml:5: probes.0.http.preferred_ip_protocol: not supported by alertd",
        ),
        (
            "probes:\n  - {job_name: a, prober: tcp, targets: ['x:1']}\n  - {job_name: a, prober: tls, targets: ['x:1']}\n",
            'alertd.yml:3: probes.1.job_name: duplicate job_name "a", also used by probes.0',
        ),
        ("probes:\n  - job_name: a\n    prober: tcp\n    targets: ['x:1']\n    intervall: 1m\n",
         "alertd.yml:5: probes.0.intervall: unknown key (did you mean interval?)"),
    ],
)
def test_errors_name_file_line_and_key(text: str, expected: str) -> None:
    assert expected in errors(text)


def test_every_problem_is_reported_at_once() -> None:
    found = errors(
        """
probes:
  - job_name: a
    prober: icmp
    targets: [x]
  - job_name: b
    prober: http
"""
    )
    assert [line.split(": ")[0] for line in found] == ["alertd.yml:4", "alertd.yml:6"]


def test_searching_regexes_are_unanchored_re2() -> None:
    assert compile_search("ok").search("status: ok!")
    assert compile_search(r"^\+PONG").search("+PONG")
    with pytest.raises(RegexError):
        compile_search("a{2,1}")


@pytest.mark.parametrize(
    ("prober", "target", "ok"),
    [
        ("http", "https://app.example.com/health", True),
        ("http", "app.example.com:8080/health", True),
        ("http", "http://[::1]:9095/", True),
        ("http", "http://host:99999/", False),
        ("tcp", "[::1]:6379", True),
        ("tcp", "db.internal:5432", True),
        ("tls", "db.internal:0", False),
        ("tls", "https://x/", False),
    ],
)
def test_target_forms(prober: str, target: str, ok: bool) -> None:
    assert (target_problem(prober, target) is None) is ok


def test_readme_probe_examples_load() -> None:
    examples = [block for block in re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.S) if "probes:" in block]
    assert examples
    for example in examples:
        config = parse_config(example, "README.md")
        assert {probe.prober for probe in config.probes} == {"http", "tcp", "tls"}
        redis = next(probe for probe in config.probes if probe.job_name == "redis")
        assert redis.tcp is not None and compile_search(redis.tcp.query_response[1].expect or "").search("+PONG")
