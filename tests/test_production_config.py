"""config/alertd.yml, the production config, does what the monitoring specification asks: it loads
with its secrets from the environment, names the mission's rule files, routes P0/P1/P2 to the
specification's channels and recipients (under alertd and under amtool), inhibits what it should,
mutes database alerts during the weekly maintenance; and config/alertd.local.yml is the embedded
default config. Also the checks of the README's "Concepts" and "Migrating" sections."""

from __future__ import annotations

import contextlib
import glob
import io
import os
import re
import shlex
import shutil
import subprocess
import textwrap
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from daemon.cli import main
from daemon.clock import FakeClock
from daemon.config import Config, load_config, load_default_config, parse_config
from daemon.config.alerting import time_interval_map
from daemon.config.receivers import SPEC_EMAIL_SUBJECT, SPEC_EMAIL_TEXT, SPEC_SLACK_TEXT
from daemon.dispatch.alerts import AlertStore, Marker
from daemon.dispatch.inhibit import InhibitRule, Inhibitor
from daemon.dispatch.route import Route
from daemon.rules.spec import AlertingRuleSpec, expand_patterns, load_rule_files
from daemon.testing.alerts import make_alert
from daemon.tsdb.labels import Labels

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = ROOT / "config" / "alertd.yml"
LOCAL = ROOT / "config" / "alertd.local.yml"
README = ROOT / "README.md"
ENV = {"SLACK_BOT_TOKEN": "xoxb-test", "PAGERDUTY_ROUTING_KEY": "R0UT1NGKEY", "SMTP_PASSWORD": "smtp-secret"}
AMTOOL = shutil.which("amtool")
PARIS = ZoneInfo("Europe/Paris")

# The specification's matrix ("Canaux de notification"): channel, mention, e-mail recipients, PagerDuty.
MATRIX = {
    "P0": ("critical", "#alerts-critical", "@here", ["alerts@digitallz.com", "dev-team@digitallz.com", "management@digitallz.com"], True),
    "P1": ("important", "#alerts-important", "@channel", ["alerts@digitallz.com", "management@digitallz.com"], False),
    "P2": ("info", "#alerts-info", "none", [], False),
}
SEVERITY = {"P0": "critical", "P1": "warning", "P2": "info"}


@cache
def production() -> Config:
    return load_config(PRODUCTION, env=ENV)


@cache
def alert_rules() -> dict[str, AlertingRuleSpec]:
    groups = load_rule_files(production().rule_files)
    return {rule.name: rule for group in groups for rule in group.rules if isinstance(rule, AlertingRuleSpec)}


def receiver(name: str) -> Any:
    return next(r for r in production().receivers if r.name == name)


def routes_test(*args: str) -> tuple[str, int]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["config", "routes", "test", *args])
    return out.getvalue(), code


def alert_labels(name: str, **sample: str) -> dict[str, str]:
    """An alert of the rule ``name`` as the rule engine makes it: sample labels, rule labels, alertname."""
    rule = alert_rules()[name]
    return {**sample, **dict(rule.labels), "alertname": name}


# --- loading -------------------------------------------------------------------------------------


def test_loads_with_the_secrets_from_the_environment() -> None:
    config = production()
    assert config.global_.smtp_auth_password is not None and config.global_.smtp_auth_password.reveal() == "smtp-secret"
    assert receiver("critical").pagerduty_configs[0].routing_key.reveal() == "R0UT1NGKEY"
    assert all(
        slack.token is not None and slack.token.reveal() == "xoxb-test"
        for r in config.receivers
        for slack in r.slack_configs
    )
    text = PRODUCTION.read_text(encoding="utf-8")
    assert set(re.findall(r"\$\{(\w+)\}", text)) == set(ENV)


def test_scrape_jobs_cover_the_applications_and_the_exporters() -> None:
    config = production()
    jobs = {job.job_name: job for job in config.scrape_configs}
    assert {"digitallz-frontend", "digitallz-backend", "digitallz-postgres", "digitallz-redis", "node"} <= set(jobs)
    for name in ("digitallz-frontend", "digitallz-backend", "node"):
        assert jobs[name].file_sd_configs, name
    targets = {t for job in config.scrape_configs for sc in job.static_configs for t in sc.targets}
    # The exporters, never the databases' own ports.
    assert not any(t.endswith((":5432", ":6379")) for t in targets), targets
    assert any(t.endswith(":9187") for t in jobs["digitallz-postgres"].static_configs[0].targets)
    assert any(t.endswith(":9121") for t in jobs["digitallz-redis"].static_configs[0].targets)


def test_probes_are_the_ones_the_rules_read() -> None:
    probes = {probe.job_name: probe.prober for probe in production().probes}
    assert probes == {"site": "http", "api": "http", "database": "tcp", "redis": "tcp", "certificate": "tls"}


def test_cloudwatch_polls_the_example_s_metrics() -> None:
    example = load_config(ROOT / "config" / "cloudwatch-example.yml")
    assert example.cloudwatch is not None and production().cloudwatch is not None
    assert production().cloudwatch.metrics == example.cloudwatch.metrics


def test_every_rule_file_it_names_loads() -> None:
    files = expand_patterns(production().rule_files)
    assert [Path(f).name for f in files] == sorted(p.name for p in (ROOT / "rules").glob("*.rules.yml"))
    assert not any(f.endswith(".test.yml") for f in files)
    assert len(alert_rules()) > 40


def test_rule_files_resolve_in_the_image_as_in_the_repository() -> None:
    # The image copies config/ to /etc/alertd/ and rules/ to /etc/alertd/rules/, and links
    # /etc/rules to alertd/rules: a pattern relative to the config file must go through that link.
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "COPY config/ /etc/alertd/" in dockerfile and "COPY rules/ /etc/alertd/rules/" in dockerfile
    assert "ln -s alertd/rules /etc/rules" in dockerfile
    for pattern in yaml.safe_load(PRODUCTION.read_text(encoding="utf-8"))["rule_files"]:
        in_image = os.path.normpath(os.path.join("/etc/alertd", pattern))
        assert in_image.startswith("/etc/rules/"), in_image


def test_check_config_exits_0(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert main(["check", "config", str(PRODUCTION)]) == 0
    assert "OK" in capsys.readouterr().out


def test_check_config_names_a_missing_secret(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    assert main(["check", "config", str(PRODUCTION)]) == 1
    printed = capsys.readouterr().out
    assert "SLACK_BOT_TOKEN" in printed and "xoxb-test" not in printed


# --- the severity matrix -------------------------------------------------------------------------


@pytest.mark.parametrize("priority", ["P0", "P1", "P2"])
def test_receivers_are_the_specification_s_matrix(priority: str) -> None:
    name, channel, mention, recipients, pagerduty = MATRIX[priority]
    r = receiver(name)
    assert [(s.channel, s.mention) for s in r.slack_configs] == [(channel, mention)]
    assert all(s.update_message and s.send_resolved for s in r.slack_configs)
    to = sorted(a.strip() for e in r.email_configs for a in e.to.split(","))
    assert to == sorted(recipients)
    assert bool(r.pagerduty_configs) is pagerduty
    if pagerduty:
        assert r.pagerduty_configs[0].severity == "critical"


def test_messages_are_the_specification_s_formats() -> None:
    for r in production().receivers:
        for slack in r.slack_configs:
            assert slack.text == SPEC_SLACK_TEXT, r.name
        for email in r.email_configs:
            assert email.subject == SPEC_EMAIL_SUBJECT and "Subject" not in email.headers, r.name
            assert email.text == SPEC_EMAIL_TEXT, r.name
            assert email.smarthost and email.from_.endswith("@digitallz.com>"), r.name


SAMPLES = {
    "P0": ["alertname=SiteDown", "severity=critical", "priority=P0", "category=availability", "job=digitallz-frontend"],
    "P1": ["alertname=ErrorRateElevated", "severity=warning", "priority=P1", "category=performance", "job=digitallz-backend"],
    "P2": ["alertname=BackupFailed", "severity=info", "priority=P2", "category=maintenance", "backup=postgres"],
}


@pytest.mark.parametrize("priority", ["P0", "P1", "P2"])
def test_routes_test_gives_the_matrix(priority: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    out, code = routes_test("--config", str(PRODUCTION), f"--verify.receivers={MATRIX[priority][0]}", *SAMPLES[priority])
    assert (out, code) == (MATRIX[priority][0] + "\n", 0)


def test_every_mission_alert_reaches_the_receiver_of_its_tier() -> None:
    root = Route.build(production().route)  # type: ignore[arg-type]
    wrong = {}
    for name in alert_rules():
        labels = alert_labels(name, job="j", instance="i")
        expected = MATRIX[labels["priority"]][0]
        assert labels["severity"] == SEVERITY[labels["priority"]], name
        got = [route.receiver for route in root.match(labels)]
        if got != [expected]:
            wrong[name] = got
    assert not wrong


def test_p0_escalates_through_the_specification_s_ladder() -> None:
    config = production()
    root = Route.build(config.route)  # type: ignore[arg-type]
    policies = {p.name: p.policy() for p in config.escalation_policies}
    for name, rule in alert_rules().items():
        (route,) = root.match(alert_labels(name))
        assert route.escalation == ("digitallz-production" if rule.labels["severity"] == "critical" else ""), name
    policy = policies["digitallz-production"]
    assert [(level.after, level.receivers) for level in policy.levels] == [
        (0.0, ("on-call-engineer",)),
        (300.0, ("senior-engineer",)),
        (1200.0, ("engineering-manager",)),
    ]
    assert policy.repeat == 0


def alertmanager_only(config: Mapping[str, Any]) -> dict[str, Any]:
    """route, receivers, inhibit_rules and time_intervals of an alertd config as Alertmanager reads
    them: alertd's own keys removed, a Slack bot token replaced by an incoming webhook URL."""
    alertmanager_global = {
        "smtp_smarthost", "smtp_from", "smtp_hello", "smtp_auth_username", "smtp_auth_password",
        "smtp_require_tls", "slack_api_url", "pagerduty_url", "resolve_timeout",
    }  # fmt: skip

    def route(node: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in node.items() if k != "escalation"}
        if "routes" in out:
            out["routes"] = [route(child) for child in out["routes"]]
        return out

    def receiver(entry: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in entry.items():
            if key in ("console_configs", "fallback_receivers"):
                continue
            if key == "slack_configs":
                value = [
                    {
                        **{k: v for k, v in slack.items() if k not in ("token", "token_file", "mention", "update_message", "resolved_text")},
                        "api_url": "https://hooks.slack.com/services/T000/B000/XXXX",
                    }
                    for slack in value
                ]
            out[key] = value
        return out

    return {
        "global": {k: v for k, v in config.get("global", {}).items() if k in alertmanager_global},
        "route": route(config["route"]),
        "receivers": [receiver(r) for r in config["receivers"]],
        "inhibit_rules": config.get("inhibit_rules", []),
        "time_intervals": config.get("time_intervals", []),
    }


@pytest.mark.skipif(AMTOOL is None, reason="amtool is not installed (Debian package prometheus-alertmanager)")
@pytest.mark.parametrize("priority", ["P0", "P1", "P2"])
def test_amtool_gives_the_same_matrix(priority: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert AMTOOL is not None
    for name, value in ENV.items():  # alertd reads the extracted file too, secrets and all
        monkeypatch.setenv(name, value)
    path = tmp_path / "alertmanager.yml"
    extracted = alertmanager_only(yaml.safe_load(PRODUCTION.read_text(encoding="utf-8")))
    path.write_text(yaml.safe_dump(extracted, allow_unicode=True, sort_keys=False), encoding="utf-8")
    checked = subprocess.run([AMTOOL, "check-config", str(path)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for args in (SAMPLES[priority], [*SAMPLES[priority][:-1], "category=database"]):
        done = subprocess.run(
            [AMTOOL, "config", "routes", "test", f"--config.file={path}", "--tree", *args],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        mine, _ = routes_test(f"--config.file={path}", "--tree", *args)
        assert done.returncode == 0, done.stderr
        assert done.stdout.rstrip("\n").endswith(MATRIX[priority][0])
        assert done.stdout == mine


# --- inhibition ----------------------------------------------------------------------------------

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC


def inhibitor() -> tuple[AlertStore, Inhibitor]:
    clock = FakeClock(T0)
    marker = Marker()
    alerts = AlertStore(clock, marker)
    rules = [InhibitRule(r.source(), r.target(), frozenset(r.equal)) for r in production().inhibit_rules]
    return alerts, Inhibitor(rules, alerts, clock, marker)


def fire(alerts: AlertStore, labels: Mapping[str, str]) -> None:
    alerts.put(make_alert(labels, starts_at=T0, ends_at=T0 + 600))


def muted(inh: Inhibitor, labels: Mapping[str, str]) -> bool:
    return inh.mutes(Labels.of(labels))


@pytest.mark.parametrize(
    ("down", "job", "other_job"),
    [("SiteDown", "digitallz-frontend", "digitallz-backend"), ("APIDown", "digitallz-backend", "digitallz-frontend")],
)
def test_a_service_down_mutes_its_latency_and_error_rate_alerts(down: str, job: str, other_job: str) -> None:
    for source_job in (job, "site" if down == "SiteDown" else "api"):  # through `up`, or through the probe
        alerts, inh = inhibitor()
        fire(alerts, alert_labels(down, job=source_job, instance="x"))
        for name in ("ResponseTimeHigh", "ResponseTimeElevated", "ErrorRateHigh", "ErrorRateElevated"):
            assert muted(inh, alert_labels(name, job=job)), (down, source_job, name)
            assert not muted(inh, alert_labels(name, job=other_job)), (down, source_job, name)
        assert not muted(inh, alert_labels("CPUUsageHigh", job=job, instance="x"))
        assert not muted(inh, alert_labels("ALBTargetResponseTimeHigh", load_balancer="app/prod/1"))


def test_a_p0_mutes_its_p1_twin_only() -> None:
    alerts, inh = inhibitor()
    fire(alerts, alert_labels("ErrorRateHigh", job="digitallz-backend"))
    fire(alerts, alert_labels("CPUUsageCritical", job="aws_ecs", cluster_name="prod", service_name="backend"))
    assert muted(inh, alert_labels("ErrorRateElevated", job="digitallz-backend"))
    assert not muted(inh, alert_labels("ErrorRateElevated", job="digitallz-frontend"))
    assert not muted(inh, alert_labels("ResponseTimeElevated", job="digitallz-backend"))
    assert muted(inh, alert_labels("CPUUsageHigh", job="aws_ecs", cluster_name="prod", service_name="backend"))
    assert not muted(inh, alert_labels("CPUUsageHigh", job="aws_ecs", cluster_name="prod", service_name="frontend"))
    # Alerts without a symptom are no one's twin: a P0 does not mute every P1 of its job.
    fire(alerts, alert_labels("DatabaseDown", job="digitallz-postgres", instance="pg:9187"))
    assert not muted(inh, alert_labels("PostgresConnectionsHigh", job="digitallz-postgres", instance="pg:9187"))
    # The P0 itself is never muted.
    assert not muted(inh, alert_labels("ErrorRateHigh", job="digitallz-backend"))


def test_twins_share_a_symptom() -> None:
    rules = alert_rules()
    twins = {r.labels["symptom"]: [] for r in rules.values() if "symptom" in r.labels}
    for name, rule in rules.items():
        if "symptom" in rule.labels:
            twins[rule.labels["symptom"]].append(rule.labels["severity"])
    assert twins and all(sorted(s) == ["critical", "warning"] for s in twins.values()), twins


# --- the database maintenance window -------------------------------------------------------------


def paris(*when: int) -> float:
    return datetime(*when, tzinfo=PARIS).timestamp()


def test_the_maintenance_window_is_sunday_3_to_4_in_paris() -> None:
    window = time_interval_map(production().time_intervals)["database-maintenance"]
    for year, month, day in ((2026, 1, 4), (2026, 7, 5)):  # Sundays in winter (UTC+1) and summer (UTC+2)
        assert window.contains(paris(year, month, day, 3, 0))
        assert window.contains(paris(year, month, day, 3, 30))
        assert not window.contains(paris(year, month, day, 4, 30))
        assert not window.contains(paris(year, month, day, 4, 0))
        assert not window.contains(paris(year, month, day, 2, 59))
        assert not window.contains(paris(year, month, day - 1, 3, 30))  # Saturday


def test_database_alerts_are_muted_in_the_window_and_others_are_not() -> None:
    config = production()
    root = Route.build(config.route)  # type: ignore[arg-type]
    intervals = time_interval_map(config.time_intervals)
    inside, outside = paris(2026, 3, 8, 3, 30), paris(2026, 3, 8, 4, 30)
    database = [name for name, rule in alert_rules().items() if rule.labels.get("category") == "database"]
    assert database
    for name in database:
        for severity in ("critical", "warning", "info"):  # whatever tier a database alert gets
            (route,) = root.match({**alert_labels(name), "severity": severity})
            assert route.muted_at(inside, intervals) and not route.muted_at(outside, intervals), (name, severity)
    for name in ("SiteDown", "DatabaseDown", "ErrorRateHigh", "BackupFailed"):
        (route,) = root.match(alert_labels(name))
        assert not route.muted_at(inside, intervals), name


# --- config/alertd.local.yml ---------------------------------------------------------------------


def test_local_config_is_the_embedded_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert LOCAL.is_symlink()
    assert LOCAL.resolve() == (ROOT / "daemon" / "config" / "default.yml").resolve()
    assert main(["check", "config", str(LOCAL)]) == 0
    capsys.readouterr()
    local, embedded = load_config(LOCAL), load_default_config()
    assert local.model_dump(exclude={"rule_files"}) == embedded.model_dump(exclude={"rule_files"})
    # The demo rules resolve to the same file (through config/default-rules.yml, a link too).
    local_rules = [os.path.realpath(f) for f in expand_patterns(local.rule_files)]
    embedded_rules = [os.path.realpath(f) for f in expand_patterns(embedded.rule_files)]
    assert local_rules == embedded_rules and len(local_rules) == 1


# --- README: "Concepts" and "Migrating from Prometheus and Alertmanager" ---------------------------


def readme_section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, flags=re.S | re.M)
    assert found, f"README has no {title!r} section"
    return found.group(1)


def fenced(section: str, info: str) -> list[str]:
    """The code blocks of ``section`` opened with ```` ```info ````, indented ones (in a list item) dedented."""
    found = re.findall(rf"^( *)```{re.escape(info)}\n(.*?)^\1```", section, flags=re.S | re.M)
    return [textwrap.dedent(body) for _, body in found]


def test_readme_sections_are_in_place() -> None:
    titles = re.findall(r"^## (.+)$", README.read_text(encoding="utf-8"), flags=re.M)
    assert titles.index("Concepts") == 0 and titles[1] == "Quick start"
    assert titles.index("Migrating from Prometheus and Alertmanager") == titles.index("Layout") - 1


def test_concepts_names_every_stage_and_term() -> None:
    text = readme_section("Concepts")
    for term in ("source", "store", "rule", "route", "receiver", "group", "inhibition", "silence", "escalation"):
        assert re.search(rf"\*\*{term}", text, flags=re.I), term


MIGRATION = "Migrating from Prometheus and Alertmanager"


def test_migration_example_is_a_prometheus_and_alertmanager_pair_that_loads(tmp_path: Path) -> None:
    section = readme_section(MIGRATION)
    (prometheus,) = fenced(section, "yaml prometheus.yml")
    (alertmanager,) = fenced(section, "yaml alertmanager.yml")
    (merged,) = fenced(section, "yaml alertd.yml")
    # What the section says copies over does: both halves appear verbatim in the merged file.
    for part in (prometheus, alertmanager):
        for line in part.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                assert line.split("#")[0].rstrip() in merged, line
    (tmp_path / "rules").mkdir()
    config = parse_config(merged, "alertd.yml", env=ENV, base_dir=str(tmp_path))
    assert config.scrape_configs and config.route is not None and config.receivers
    if AMTOOL is not None:
        path = tmp_path / "alertmanager.yml"
        path.write_text(alertmanager, encoding="utf-8")
        done = subprocess.run([AMTOOL, "check-config", str(path)], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stdout + done.stderr


def test_migration_errors_shown_are_what_check_config_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    section = readme_section(MIGRATION)
    (unsupported,) = fenced(section, "yaml unsupported")
    (shown,) = fenced(section, "text check-config")
    path = tmp_path / "alertd.yml"
    path.write_text(unsupported, encoding="utf-8")
    assert main(["check", "config", str(path)]) == 1
    printed = capsys.readouterr().out.replace(str(path), "alertd.yml")
    for line in shown.splitlines():
        if line.strip():
            assert line in printed, printed


def test_migration_commands_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The merged alertd.yml, with rule files and their unit tests beside it, as the commands expect.
    section = readme_section(MIGRATION)
    (merged,) = fenced(section, "yaml alertd.yml")
    (commands,) = fenced(section, "sh")
    (tmp_path / "alertd.yml").write_text(merged, encoding="utf-8")
    (tmp_path / "rules").mkdir()
    for name in ("availability.rules.yml", "availability.test.yml"):
        shutil.copy(ROOT / "rules" / name, tmp_path / "rules" / name)
    monkeypatch.chdir(tmp_path)
    argvs = [shlex.split(line.split("#")[0]) for line in commands.splitlines() if line.startswith("alertd ")]
    assert [a[:3] for a in argvs] == [["alertd", "check", "config"], ["alertd", "check", "rules"], ["alertd", "test", "rules"]]
    for argv in argvs:
        args = [match for arg in argv[1:] for match in (sorted(glob.glob(arg)) if "*" in arg else [arg])]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert main(args) == 0, argv
    assert "--alertmanager.url=http://localhost:9095" in commands
