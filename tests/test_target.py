"""Targets: labels and URLs as Prometheus' populateLabels makes them, and file_sd files."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from daemon.config import ScrapeConfig, parse_config
from daemon.scrape.target import (
    FileSDError,
    TargetGroup,
    parse_file_sd,
    resolve_targets,
    static_groups,
    targets_for,
)
from daemon.tsdb.labels import Labels


def job_from(yaml_text: str) -> ScrapeConfig:
    return parse_config(textwrap.dedent(yaml_text)).scrape_configs[0]


def test_static_target_defaults() -> None:
    job = job_from(
        """\
        scrape_configs:
          - job_name: node
            static_configs:
              - targets: ["10.0.0.1:9100"]
                labels: {env: prod}
        """
    )
    [target] = targets_for(job, static_groups(job))
    assert target.job == "node"
    assert target.labels == Labels.of({"job": "node", "instance": "10.0.0.1:9100", "env": "prod"})
    assert target.url == "http://10.0.0.1:9100/metrics"
    assert (target.interval, target.timeout) == (60.0, 10.0)
    assert target.discovered == Labels.of(
        {
            "__address__": "10.0.0.1:9100",
            "__metrics_path__": "/metrics",
            "__scheme__": "http",
            "__scrape_interval__": "1m",
            "__scrape_timeout__": "10s",
            "env": "prod",
            "job": "node",
        }
    )


def test_relabelling_sets_url_interval_and_drops_meta() -> None:
    job = job_from(
        """\
        scrape_configs:
          - job_name: blackbox
            params: {module: [http_2xx], extra: [a b, c]}
            static_configs:
              - targets: ["https://example.com/health"]
                labels: {__meta_team: payments}
            relabel_configs:
              - source_labels: [__address__]
                target_label: __param_target
              - source_labels: [__param_target]
                target_label: instance
              - target_label: __address__
                replacement: "127.0.0.1:9115"
              - target_label: __metrics_path__
                replacement: probe
              - target_label: __scrape_interval__
                replacement: 30s
              - source_labels: [__meta_team]
                target_label: team
        """
    )
    [target] = targets_for(job, static_groups(job))
    assert target.url == (
        "http://127.0.0.1:9115/probe?extra=a+b&extra=c&module=http_2xx&target=https%3A%2F%2Fexample.com%2Fhealth"
    )
    assert target.interval == 30.0
    assert target.labels == Labels.of({"job": "blackbox", "instance": "https://example.com/health", "team": "payments"})


def test_group_labels_may_override_job_settings_but_not_address() -> None:
    job = job_from("scrape_configs:\n  - job_name: a\n")
    group = TargetGroup(["h:1"], {"job": "other", "__scheme__": "https", "__address__": "ignored:1"}, "g")
    [target] = targets_for(job, [group])
    assert target.labels.get("job") == "other"
    assert target.url == "https://h:1/metrics"


def test_dropped_and_failed_targets() -> None:
    job = job_from(
        """\
        scrape_configs:
          - job_name: a
            scrape_interval: 10s
            relabel_configs:
              - source_labels: [__address__]
                regex: "drop-me:.*"
                action: drop
              - source_labels: [__address__]
                regex: "no-address:.*"
                target_label: __address__
                replacement: ""
              - source_labels: [__address__]
                regex: "slow:.*"
                target_label: __scrape_timeout__
                replacement: 1m
        """
    )
    groups = [TargetGroup(["ok:1", "drop-me:1", "no-address:1", "slow:1", "http://bad/x"], {}, "g")]
    result = resolve_targets(job, groups)
    assert [t.labels.get("instance") for t in result.active] == ["ok:1"]
    reasons = {d.discovered.get("__address__"): d.reason for d in result.dropped}
    assert reasons["drop-me:1"] is None
    assert reasons["no-address:1"] == "no address"
    assert reasons["slow:1"] == 'scrape timeout cannot be greater than scrape interval ("1m" > "10s")'
    assert reasons["http://bad/x"] == '"http://bad/x" is not a valid hostname'


def test_duplicate_targets_are_scraped_once_and_keys_are_stable() -> None:
    job = job_from("scrape_configs:\n  - job_name: a\n")
    first = targets_for(job, [TargetGroup(["h:1", "h:1"], {}, "x"), TargetGroup(["h:1"], {}, "y")])
    assert len(first) == 1
    again = targets_for(job, [TargetGroup(["h:1"], {}, "z")])
    other = targets_for(job, [TargetGroup(["h:1"], {"env": "x"}, "z")])
    assert first[0].key == again[0].key != other[0].key
    assert 0 <= first[0].offset() < first[0].interval


def test_url_path_is_escaped_as_go_does() -> None:
    job = job_from('scrape_configs:\n  - job_name: a\n    metrics_path: "my path/m!x"\n')
    [target] = targets_for(job, [TargetGroup(["[::1]:9090"], {}, "g")])
    assert target.url == "http://[::1]:9090/my%20path/m%21x"


# --- file_sd -------------------------------------------------------------------------------------


def test_file_sd_yaml(tmp_path: Path) -> None:
    path = tmp_path / "targets.yml"
    path.write_text("- targets: [a:1, b:2]\n  labels: {env: prod, port: 8080}\n- targets: [c:3]\n")
    groups = parse_file_sd(str(path))
    assert [g.targets for g in groups] == [("a:1", "b:2"), ("c:3",)]
    assert groups[0].labels == {"env": "prod", "port": "8080", "__meta_filepath": str(path)}
    assert groups[1].labels == {"__meta_filepath": str(path)}
    assert [g.source for g in groups] == [f"{path}:0", f"{path}:1"]


def test_file_sd_json(tmp_path: Path) -> None:
    path = tmp_path / "targets.json"
    path.write_text(json.dumps([{"targets": ["a:1"], "labels": {"env": "dev"}}]))
    [group] = parse_file_sd(str(path))
    assert group.targets == ("a:1",) and group.labels["env"] == "dev"
    job = job_from("scrape_configs:\n  - job_name: f\n")
    [target] = targets_for(job, [group])
    assert target.discovered.get("__meta_filepath") == str(path)
    assert target.labels == Labels.of({"job": "f", "instance": "a:1", "env": "dev"})


def test_file_sd_empty_files(tmp_path: Path) -> None:
    (tmp_path / "e.yml").write_text("")
    (tmp_path / "e.json").write_text("[]")
    assert parse_file_sd(str(tmp_path / "e.yml")) == []
    assert parse_file_sd(str(tmp_path / "e.json")) == []


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("t.json", "[{\"targets\": [\"a:1\"],}]", "t.json:1: invalid JSON"),
        ("t.yml", "- targets: [a:1\n", "t.yml:2: invalid YAML"),
        ("t.yml", "targets: [a]\n", "t.yml:1: must be a list of target groups"),
        ("t.yml", "- targets: [a:1]\n  lables: {}\n", "t.yml:2: 0.lables: unknown key"),
        ("t.yml", "- targets: a:1\n", "t.yml:1: 0.targets: must be a list of strings"),
        ("t.yml", "- targets: [a:1]\n  labels: {bad-name: x}\n", 't.yml:2: 0.labels.bad-name: "bad-name" is not a valid label name'),
        ("t.json", '[{"targets": ["a:1"], "labels": {"n": 1}}]', "t.json: 0.labels.n: label values must be strings"),
        ("t.txt", "", "unsupported file extension .txt"),
    ],
)
def test_file_sd_errors_name_the_file(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(FileSDError) as caught:
        parse_file_sd(str(path))
    assert str(caught.value).startswith(str(tmp_path) + "/")
    assert message in str(caught.value)


def test_file_sd_unreadable(tmp_path: Path) -> None:
    with pytest.raises(FileSDError, match="cannot read"):
        parse_file_sd(str(tmp_path / "missing.json"))
