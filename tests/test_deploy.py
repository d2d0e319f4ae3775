"""The deployment files are checked here as far as this machine can check them.

Dockerfile and .dockerignore are parsed (no Docker engine here to build them); the systemd unit
goes through ``systemd-analyze verify`` and ``security``; the ECS task definition through
botocore's own RegisterTaskDefinition input model; docker-compose.yml through the Compose
Specification's JSON schema; every Grafana query through alertd's PromQL parser and, against a
running alertd, through its query API, as Grafana would send it.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from daemon.cli import _parser as cli_parser
from daemon.config import load_config, parse_config
from daemon.config.model import Config
from daemon.promql.parser import parse_expr
from daemon.rules.spec import load_rule_files
from daemon.testing.process import DaemonProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
# The variables Grafana itself defines, and a value each that PromQL accepts where it is used.
GRAFANA_BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h", "__range_s": "3600"}
# The env variables the deployments hand to alertd for the config's ${...} secret fields.
SECRET_ENV = {"SLACK_BOT_TOKEN", "PAGERDUTY_ROUTING_KEY", "SMTP_PASSWORD"}


# --------------------------------------------------------------------------- Dockerfile


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def stages(instructions: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """The instructions of each build stage, FROM first (ARGs before the first FROM dropped)."""
    result: list[list[tuple[str, str]]] = []
    for keyword, args in instructions:
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, args))
    return result


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(a, str) for a in value), f"not exec form: {args}"
    return value


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return dockerfile_instructions((ROOT / "Dockerfile").read_text())


def final_stage(dockerfile: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return stages(dockerfile)[-1]


def last(stage: list[tuple[str, str]], keyword: str) -> str:
    values = [args for k, args in stage if k == keyword]
    assert values, f"no {keyword} in the final stage"
    return values[-1]


def image_command(dockerfile: list[tuple[str, str]]) -> list[str]:
    stage = final_stage(dockerfile)
    return exec_form(last(stage, "ENTRYPOINT")) + exec_form(last(stage, "CMD"))


def healthcheck_command(dockerfile: list[tuple[str, str]]) -> list[str]:
    args = last(final_stage(dockerfile), "HEALTHCHECK")
    options, _, command = args.partition("CMD ")
    assert command, "HEALTHCHECK has no CMD"
    return exec_form(command)


def run_args(argv: list[str]) -> Any:
    """``alertd run`` arguments as alertd's own command line parses them."""
    assert argv[0] == "run", argv
    return cli_parser().parse_args(argv)


def test_dockerfile_is_multi_stage_on_python_slim(dockerfile: list[tuple[str, str]]) -> None:
    args = dict(a.partition("=")[::2] for k, a in dockerfile if k == "ARG" and "=" in a)
    froms = [a for k, a in dockerfile if k == "FROM"]
    assert len(froms) >= 2
    images = [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], f.split()[0]) for f in froms]
    assert all(image == "python:3.11-slim" for image in images), images
    assert froms[0].split()[-2:] == ["AS", "builder"]
    runtime = final_stage(dockerfile)
    assert any(k == "COPY" and a.startswith("--from=builder ") for k, a in runtime)
    # The runtime stage installs nothing: what it runs was built and installed in the builder.
    assert not any(k == "RUN" and re.search(r"pip |apt-get", a) for k, a in runtime)


def test_dockerfile_runs_as_a_non_root_user(dockerfile: list[tuple[str, str]]) -> None:
    user = last(final_stage(dockerfile), "USER").split(":")[0]
    assert user not in {"root", "0"}
    assert any(k == "RUN" and f"useradd --system --uid 10001" in a for k, a in final_stage(dockerfile))


def test_dockerfile_volume_port_and_command(dockerfile: list[tuple[str, str]]) -> None:
    stage = final_stage(dockerfile)
    volumes = [a for k, a in stage if k == "VOLUME"]
    assert any(v in ("/data", '["/data"]') for v in volumes)
    assert "9095" in last(stage, "EXPOSE").split()
    assert last(stage, "STOPSIGNAL") == "SIGTERM"
    command = image_command(dockerfile)
    assert command[0] == "alertd"
    args = run_args(command[1:])
    assert (args.config, args.data_dir, args.log_format) == (
        "/etc/alertd/alertd.yml",
        "/data",
        "json",
    )


def test_dockerfile_healthcheck_asks_healthy_with_python(dockerfile: list[tuple[str, str]]) -> None:
    args = last(final_stage(dockerfile), "HEALTHCHECK")
    assert re.search(r"--interval=\d+s", args) and re.search(r"--timeout=\d+s", args)
    command = healthcheck_command(dockerfile)
    assert command[0] == "python"  # no curl or wget in python:3.11-slim
    assert "http://127.0.0.1:9095/-/healthy" in command[-1]


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves ``path`` (relative, /-separated) out of the build context."""
    excluded = False
    parts = path.split("/")
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        # A pattern matching a parent directory matches everything under it.
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(p, pattern) or fnmatch.fnmatchcase(p, pattern.replace("**/", "")) for p in prefixes):
            excluded = not negate
    return excluded


def test_dockerignore_keeps_what_the_image_copies_and_nothing_else(dockerfile: list[tuple[str, str]]) -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = []
    for keyword, args in dockerfile:
        if keyword == "COPY" and not args.startswith("--from="):
            sources += args.split()[:-1]
    assert sources
    for source in sources:
        assert not dockerignored(source.rstrip("/") + "/x" if source.endswith("/") else source, patterns), source
    for path in (".venv/bin/python", "data/state.db", "tests/test_api.py", ".git/HEAD", "daemon/__pycache__/a.pyc"):
        assert dockerignored(path, patterns), path
    for path in ("daemon/app.py", "pyproject.toml"):
        assert (ROOT / path).exists() and not dockerignored(path, patterns)


# --------------------------------------------------------------------------- systemd


def unit_entries(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every line of a unit file, repeated keys kept in order."""
    entries, section = [], ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.append((section, key.strip(), value.strip()))
    return entries


@pytest.fixture(scope="module")
def unit() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for section, key, value in unit_entries((DEPLOY / "alertd.service").read_text()):
        values.setdefault(f"{section}.{key}", []).append(value)
    return values


def test_unit_runs_alertd_hardened(unit: dict[str, list[str]]) -> None:
    s = {key.removeprefix("Service."): v[-1] for key, v in unit.items() if key.startswith("Service.")}
    assert s["Type"] == "exec"
    argv = shlex.split(s["ExecStart"])
    assert argv[0] == "/opt/alertd/bin/alertd"
    args = run_args(argv[1:])
    assert (args.config, args.data_dir, args.log_format) == (
        "/etc/alertd/alertd.yml",
        "/var/lib/alertd",
        "json",
    )
    assert unit["Service.ExecReload"][-1] == "/bin/kill -HUP $MAINPID"
    expected = {
        "Restart": "on-failure",
        "DynamicUser": "yes",
        "StateDirectory": "alertd",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
    }
    assert {k: s.get(k) for k in expected} == expected
    assert set(s["RestrictAddressFamilies"].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert "@system-service" in unit["Service.SystemCallFilter"]
    # alertd exits within 10 s of SIGTERM; systemd must wait longer than that before SIGKILL.
    assert int(s["TimeoutStopSec"].removesuffix("s")) > 10
    assert unit["Install.WantedBy"] == ["multi-user.target"]


@pytest.fixture(scope="module")
def unit_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file system root holding the unit, systemd's own units and the programs it runs.

    ``systemd-analyze verify`` checks that ExecStart's program exists; alertd is not installed
    under /opt here, so a stand-in takes its place.
    """
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package: systemd)")
    root = tmp_path_factory.mktemp("root")
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "bin").symlink_to("usr/bin")
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    shutil.copy(shutil.which("kill") or "/usr/bin/kill", root / "usr/bin/kill")
    alertd = root / "opt/alertd/bin/alertd"
    alertd.parent.mkdir(parents=True)
    alertd.write_text("#!/bin/sh\n")
    alertd.chmod(0o755)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(DEPLOY / "alertd.service", root / "etc/systemd/system/alertd.service")
    return root


def test_unit_passes_systemd_analyze_verify(unit_root: Path) -> None:
    done = subprocess.run(
        ["systemd-analyze", "verify", f"--root={unit_root}", "alertd.service"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # verify reports unknown keys and bad values as warnings, with exit code 0: none are allowed.
    assert (done.returncode, done.stderr, done.stdout) == (0, "", "")


def test_unit_exposure_is_low(unit_root: Path) -> None:
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", f"--root={unit_root}", "--threshold=20", "alertd.service"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    overall = re.search(r"Overall exposure level for alertd.service: ([\d.]+)", done.stdout)
    assert overall, done.stdout + done.stderr
    assert done.returncode == 0 and float(overall.group(1)) <= 2.0, done.stdout


# --------------------------------------------------------------------------- ECS


@pytest.fixture(scope="module")
def task() -> dict[str, Any]:
    return json.loads((DEPLOY / "ecs-task-definition.json").read_text())


def _enum_errors(value: Any, shape: Any, path: str) -> list[str]:
    # botocore's ParamValidator checks types, required members and lengths, not enums.
    if shape.type_name == "structure" and isinstance(value, dict):
        return [e for k, v in value.items() if k in shape.members for e in _enum_errors(v, shape.members[k], f"{path}.{k}")]
    if shape.type_name == "list" and isinstance(value, list):
        return [e for i, v in enumerate(value) for e in _enum_errors(v, shape.member, f"{path}[{i}]")]
    if shape.type_name == "map" and isinstance(value, dict):
        return [e for k, v in value.items() for e in _enum_errors(v, shape.value, f"{path}.{k}")]
    enum = getattr(shape, "enum", None)
    if enum and value not in enum:
        return [f"{path}: {value!r} is not one of {enum}"]
    return []


def test_task_definition_is_valid_register_task_definition_input(task: dict[str, Any]) -> None:
    botocore_session = pytest.importorskip("botocore.session")
    from botocore.validate import ParamValidator

    operation = botocore_session.get_session().get_service_model("ecs").operation_model("RegisterTaskDefinition")
    report = ParamValidator().validate(task, operation.input_shape)
    assert not report.has_errors(), report.generate_report()
    assert _enum_errors(task, operation.input_shape, "task") == []


# Fargate's CPU units and the memory (MiB) each allows.
FARGATE_MEMORY = {
    256: {512, 1024, 2048},
    512: set(range(1024, 4097, 1024)),
    1024: set(range(2048, 8193, 1024)),
    2048: set(range(4096, 16385, 1024)),
    4096: set(range(8192, 30721, 1024)),
}


def test_task_definition_fits_fargate_and_the_image(task: dict[str, Any], dockerfile: list[tuple[str, str]]) -> None:
    assert task["requiresCompatibilities"] == ["FARGATE"] and task["networkMode"] == "awsvpc"
    assert int(task["memory"]) in FARGATE_MEMORY[int(task["cpu"])]
    (container,) = task["containerDefinitions"]
    assert container["command"] == image_command(dockerfile)[1:]
    assert [(p["containerPort"], p["protocol"]) for p in container["portMappings"]] == [(9095, "tcp")]
    # Fargate sends SIGTERM, waits stopTimeout (at most 120 s), then SIGKILL; alertd needs 10 s.
    assert 10 < container["stopTimeout"] <= 120
    health = container["healthCheck"]
    assert health["command"] == ["CMD", *healthcheck_command(dockerfile)]
    assert 5 <= health["interval"] <= 300 and 2 <= health["timeout"] <= 60 and 1 <= health["retries"] <= 10
    assert health["timeout"] < health["interval"] and 0 <= health["startPeriod"] <= 300
    assert container["logConfiguration"]["logDriver"] == "awslogs"
    options = container["logConfiguration"]["options"]
    assert {"awslogs-group", "awslogs-region", "awslogs-stream-prefix"} <= set(options)


def test_task_definition_secrets_come_from_ssm_or_secrets_manager(task: dict[str, Any]) -> None:
    (container,) = task["containerDefinitions"]
    secrets = {s["name"]: s["valueFrom"] for s in container["secrets"]}
    assert set(secrets) == SECRET_ENV
    for value in secrets.values():
        assert re.match(r"arn:aws:(ssm:[^:]+:\d{12}:parameter/|secretsmanager:[^:]+:\d{12}:secret:)", value), value
    # No secret in plain environment variables.
    assert not SECRET_ENV & {e["name"] for e in container.get("environment", [])}
    execution = json.loads((DEPLOY / "ecs-execution-role-policy.json").read_text())
    actions = {a for statement in execution["Statement"] for a in statement["Action"]}
    assert {"ssm:GetParameters", "secretsmanager:GetSecretValue", "logs:CreateLogStream", "logs:PutLogEvents"} <= actions


def test_task_definition_keeps_data_on_efs_and_the_root_read_only(task: dict[str, Any]) -> None:
    (container,) = task["containerDefinitions"]
    volumes = {v["name"]: v for v in task["volumes"]}
    mounts = {m["containerPath"]: m["sourceVolume"] for m in container["mountPoints"]}
    data = volumes[mounts["/data"]]
    assert data["efsVolumeConfiguration"]["transitEncryption"] == "ENABLED"
    assert data["efsVolumeConfiguration"]["authorizationConfig"]["accessPointId"].startswith("fsap-")
    assert container["readonlyRootFilesystem"] is True and "/tmp" in mounts
    assert container["user"] == "10001:10001"


def test_task_role_policy_allows_cloudwatch_reads() -> None:
    policy = json.loads((DEPLOY / "ecs-task-role-policy.json").read_text())
    assert policy["Version"] == "2012-10-17"
    allowed = {a for s in policy["Statement"] if s["Effect"] == "Allow" for a in s["Action"]}
    assert {"cloudwatch:GetMetricData", "cloudwatch:ListMetrics"} <= allowed
    assert not any(a.endswith("*") for a in allowed)


# --------------------------------------------------------------------------- docker-compose


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed (test extra)")
    try:
        from importlib.resources import files

        schema_file = files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
        schema = json.loads(schema_file.read_text())
    except (ModuleNotFoundError, FileNotFoundError):
        pytest.skip("the Compose Specification schema comes with check-jsonschema, which is not installed")
    validator_class = jsonschema.validators.validator_for(schema)
    errors = sorted(validator_class(schema).iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_compose_runs_the_whole_loop(compose: dict[str, Any], dockerfile: list[tuple[str, str]]) -> None:
    services = compose["services"]
    assert {"alertd", "exporter", "slack", "pagerduty", "smtp"} <= set(services)
    alertd = services["alertd"]
    assert alertd["build"] == "."
    args = run_args(alertd["command"])
    assert args.data_dir == "/data"
    assert "9095:9095" in alertd["ports"]
    assert SECRET_ENV <= set(alertd["environment"])
    # Every bind mount's host side is in the repository.
    for service in services.values():
        for volume in service.get("volumes", []):
            host = volume.split(":")[0]
            if host.startswith("."):
                assert (ROOT / host).exists(), host


def compose_config_path(compose: dict[str, Any]) -> Path:
    """The repository file behind the config path that the alertd service runs with."""
    config = run_args(compose["services"]["alertd"]["command"]).config
    for volume in compose["services"]["alertd"]["volumes"]:
        host, container = volume.split(":")[:2]
        if config.startswith(container + "/"):
            return ROOT / host / config.removeprefix(container + "/")
    raise AssertionError(f"{config} is not mounted from the repository")


def test_compose_config_and_rules_are_valid(compose: dict[str, Any]) -> None:
    path = compose_config_path(compose)
    config = load_config(path, env={name: "x" for name in SECRET_ENV})
    jobs = {job.job_name: job for job in config.scrape_configs}
    exporter = compose["services"]["exporter"]["command"]
    port = int(exporter[exporter.index("--port") + 1])
    targets = int(exporter[exporter.index("--targets") + 1])
    scraped = {t for job in jobs.values() for sc in job.static_configs for t in sc.targets}
    assert {f"exporter:{port + i}" for i in range(targets)} <= scraped
    groups = load_rule_files([str(path.parent / "rules" / "*.yml")])
    assert {rule.name for group in groups for rule in group.rules} >= {"DemoTargetDown", "DemoErrorRateHigh"}


def test_compose_config_notifies_the_compose_services(compose: dict[str, Any]) -> None:
    config = load_config(compose_config_path(compose), env={name: "x" for name in SECRET_ENV})
    receivers = {receiver.name: receiver for receiver in config.receivers}
    assert config.route is not None and config.route.receiver in receivers
    slack = [c for r in receivers.values() for c in r.slack_configs]
    pagerduty = [c for r in receivers.values() for c in r.pagerduty_configs]
    email = [c for r in receivers.values() for c in r.email_configs]
    assert slack and pagerduty and email
    assert all(c.api_url.reveal().startswith("http://slack:") for c in slack)
    assert all(c.url.startswith("http://pagerduty:") for c in pagerduty)
    assert all(c.smarthost.startswith("smtp:") for c in email)
    # The hosts are compose services; the ports are the ones they listen on.
    services = compose["services"]
    for host_port in [slack[0].api_url.reveal().split("/")[2], pagerduty[0].url.split("/")[2]]:
        host, port = host_port.split(":")
        assert port in services[host]["command"], host_port


@pytest.mark.parametrize("service", ["exporter", "slack", "pagerduty"])
def test_compose_python_modules_take_the_flags_given(compose: dict[str, Any], service: str) -> None:
    spec = compose["services"][service]
    entrypoint = spec["entrypoint"]
    assert entrypoint[:2] == ["python", "-m"]
    module = entrypoint[2]
    env = dict(os.environ)
    if "PYTHONPATH" in spec.get("environment", {}):  # a repository folder mounted into the image
        env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    for flag in (a for a in spec["command"] if a.startswith("--")):
        assert flag in done.stdout, f"python -m {module} has no {flag}"


def test_grafana_provisioning_points_at_alertd(compose: dict[str, Any]) -> None:
    datasources = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/alertd.yml").read_text())["datasources"]
    (alertd,) = datasources
    assert alertd["type"] == "prometheus" and alertd["url"] == "http://alertd:9095"
    providers = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/alertd.yml").read_text())["providers"]
    mounts = dict(v.split(":")[:2][::-1] for v in compose["services"]["grafana"]["volumes"])
    assert mounts[providers[0]["options"]["path"]] == "./deploy/grafana/dashboards"


# --------------------------------------------------------------------------- Prometheus snippet


def test_prometheus_scrape_snippet() -> None:
    path = DEPLOY / "prometheus-scrape-alertd.yml"
    config = load_config(path)  # alertd reads the same keys as Prometheus
    assert [job.job_name for job in config.scrape_configs] == ["alertd"]
    meta_rules = re.search(r"^# groups:\n(?:#.*\n)+", path.read_text(), flags=re.M)
    assert meta_rules
    groups = yaml.safe_load(re.sub(r"^# ?", "", meta_rules.group(0), flags=re.M))["groups"]
    for group in groups:
        for rule in group["rules"]:
            parse_expr(rule["expr"])
    if shutil.which("promtool"):
        done = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr


# --------------------------------------------------------------------------- Grafana dashboards


def dashboard_panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in board["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # collapsed rows hold their panels
    return panels


def dashboard_queries(board: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard_panels(board) for t in p.get("targets", [])]


def variable_queries(board: dict[str, Any]) -> list[str]:
    return [v["definition"] for v in board["templating"]["list"] if v["type"] == "query"]


def substitute(expr: str, variables: dict[str, str]) -> str:
    """``expr`` with Grafana's ``$var``, ``${var}`` and ``${var:format}`` replaced by ``variables``."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in variables, f"undefined variable ${name} in {expr}"
        return variables[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", value, expr)


def board_variables(board: dict[str, Any]) -> dict[str, str]:
    # A multi-value variable becomes a regex alternation; ".*" stands for any selection.
    defined = {v["name"]: ".*" for v in board["templating"]["list"]}
    return {**defined, **GRAFANA_BUILTINS}


LABEL_VALUES = re.compile(r"^label_values\((?:(.+),\s*)?(\w+)\)$")


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_structure(path: Path) -> None:
    board = json.loads(path.read_text())
    assert board["title"] and re.fullmatch(r"[\w-]{1,40}", board["uid"])
    assert isinstance(board["schemaVersion"], int)
    panels = dashboard_panels(board)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        covered = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not covered & cells, f"panel {panel['title']!r} overlaps another"
        cells |= covered
        if panel["type"] == "row":
            continue
        assert panel["title"] and panel["targets"], panel
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids))
    (source,) = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
    assert source["name"] == "datasource" and source["query"] == "prometheus"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_queries_parse(path: Path) -> None:
    board = json.loads(path.read_text())
    variables = board_variables(board)
    queries = dashboard_queries(board)
    assert queries
    for expr in queries:
        parse_expr(substitute(expr, variables))
    for query in variable_queries(board):
        match = LABEL_VALUES.match(query)
        assert match, f"unsupported variable query {query}"
        if match.group(1):
            parse_expr(substitute(match.group(1), variables))


def metric_names(expr: str) -> set[str]:
    # Names of series: identifiers not followed by "(" (functions) and not label names or keywords.
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\$\{\w+(?::\w+)?\}|\$\w+", "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", expr))
    return {n for n in names if not re.fullmatch(r"\d.*|and|or|unless|bool|offset|[smhdwy]", n)}


def test_cloudwatch_series_in_dashboards_are_ones_alertd_produces() -> None:
    from daemon.cloudwatch.naming import metric_name

    produced: set[str] = set()
    for config_file in ("config/cloudwatch-example.yml", "config/alertd.yml"):
        if (ROOT / config_file).exists():
            config = load_config(ROOT / config_file, env={name: "x" for name in SECRET_ENV})
            if config.cloudwatch:
                produced |= {
                    metric_name(m.namespace, m.metric_name, s) for m in config.cloudwatch.metrics for s in m.statistics
                }
    used = set()
    for path in DASHBOARDS:
        for expr in dashboard_queries(json.loads(path.read_text())):
            used |= {n for n in metric_names(expr) if n.startswith(("aws_", "ecs_containerinsights_"))}
    assert used and used <= produced, sorted(used - produced)


ALERTD_METRICS = """
alertd_build_info alertd_config_last_reload_successful alertd_config_last_reload_success_timestamp_seconds
alertd_config_reloads_total alertd_scrapes_total alertd_scrape_duration_seconds alertd_scrape_samples_total
alertd_scrape_samples_rejected_total alertd_scrape_targets alertd_store_series alertd_store_samples
alertd_event_loop_lag_seconds alertd_alerts alertd_rule_group_evaluations_total alertd_rule_evaluation_failures_total
alertd_rule_group_iterations_missed_total alertd_rule_group_duration_seconds alertd_rule_group_rules
alertd_rule_group_last_evaluation_timestamp_seconds alertd_rule_group_last_duration_seconds
alertd_rule_group_interval_seconds alertd_state_recovered alertd_state_write_failures_total
alertd_cloudwatch_requests_total alertd_cloudwatch_request_errors_total alertd_cloudwatch_metrics_requested_total
alertd_cloudwatch_samples_total alertd_cloudwatch_polls_total alertd_probes_total alertd_probe_targets
alertd_notifications_total
""".split()


def test_alertd_dashboard_covers_its_metrics() -> None:
    board = json.loads((DEPLOY / "grafana/dashboards/alertd.json").read_text())
    used = {n for expr in dashboard_queries(board) for n in metric_names(expr)}
    # Each under the name its series carry (a histogram through its _bucket series).
    missing = [name for name in ALERTD_METRICS if not any(u == name or u == name + "_bucket" for u in used)]
    assert not missing


@pytest.fixture(scope="module")
def running_alertd(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """alertd scraping itself and its demo exporter, as Grafana's data source."""
    tmp = tmp_path_factory.mktemp("alertd")
    port = free_port()
    demo = free_port()
    config = tmp / "alertd.yml"
    config.write_text(
        f"""global: {{scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: alertd
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
  - job_name: digitallz-backend
    static_configs: [{{targets: ["127.0.0.1:{demo}"]}}]
demo_exporter: {{listen: "127.0.0.1:{demo}", series: 300}}
rule_files: ["{DEPLOY / 'compose/rules/*.yml'}"]
"""
    )
    with DaemonProcess(config, tmp / "data", port=port) as daemon:
        daemon.wait_ready()
        # Two scrapes of everything, so that rate() has two points.
        daemon.wait_for(
            lambda: len(
                httpx.get(daemon.url + "/api/v1/query", params={"query": 'count_over_time(up{job="alertd"}[1m]) >= 3'}).json()[
                    "data"
                ]["result"]
            )
            == 1,
            30,
            "three scrapes",
        )
        yield daemon


@pytest.mark.e2e
@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_queries_run_on_alertd(running_alertd: DaemonProcess, path: Path) -> None:
    board = json.loads(path.read_text())
    variables = board_variables(board)
    end = time.time()
    failures = []
    for expr in dashboard_queries(board):
        query = substitute(expr, variables)
        answer = httpx.post(
            running_alertd.url + "/api/v1/query_range",
            data={"query": query, "start": end - 300, "end": end, "step": 15},
            timeout=30,
        ).json()
        if answer["status"] != "success":
            failures.append(f"{expr}: {answer}")
    for query in variable_queries(board):
        match = LABEL_VALUES.match(query)
        assert match
        params = {"match[]": substitute(match.group(1), variables)} if match.group(1) else {}
        answer = httpx.get(running_alertd.url + f"/api/v1/label/{match.group(2)}/values", params=params, timeout=30).json()
        if answer["status"] != "success":
            failures.append(f"{query}: {answer}")
    assert not failures, "\n".join(failures)


@pytest.mark.e2e
def test_alertd_dashboard_shows_data_from_alertd(running_alertd: DaemonProcess) -> None:
    exposed = httpx.get(running_alertd.url + "/metrics").text
    families = set(re.findall(r"^# TYPE (\w+) (\w+)", exposed, flags=re.M))
    board = json.loads((DEPLOY / "grafana/dashboards/alertd.json").read_text())
    used = {n for expr in dashboard_queries(board) for n in metric_names(expr)}
    series = {name + suffix for name, kind in families for suffix in ("", "_total", "_bucket", "_sum", "_count")}
    # Notification metrics arrive with the notification side; everything else exists now.
    missing = {n for n in used if n.startswith("alertd_") and n not in series and "notification" not in n}
    assert not missing, sorted(missing)


@pytest.mark.e2e
def test_image_healthcheck_command(running_alertd: DaemonProcess, dockerfile: list[tuple[str, str]]) -> None:
    command = healthcheck_command(dockerfile)
    code = command[-1].replace("127.0.0.1:9095", f"127.0.0.1:{running_alertd.port}")
    assert subprocess.run([sys.executable, *command[1:-1], code], timeout=30).returncode == 0
    # Docker reads exit code 1 as "unhealthy".
    dead = code.replace(f":{running_alertd.port}", f":{free_port()}")
    assert subprocess.run([sys.executable, *command[1:-1], dead], capture_output=True, timeout=30).returncode == 1


@pytest.mark.e2e
def test_image_command_stops_on_sigterm_within_the_stop_timeouts(tmp_path: Path, dockerfile: list[tuple[str, str]]) -> None:
    # The image's command, with the repository's compose config and a free port.
    args = run_args(image_command(dockerfile)[1:])
    config = tmp_path / "alertd.yml"
    config.write_text("scrape_configs:\n  - job_name: alertd\n    static_configs: [{targets: ['127.0.0.1:1']}]\n")
    with DaemonProcess(config, tmp_path / "data", extra_args=["--log-format", args.log_format]) as daemon:
        # `docker stop`, ECS and systemd send SIGTERM, then SIGKILL after their stop timeout.
        started = time.monotonic()
        assert daemon.stop(timeout=10) == 0
        assert time.monotonic() - started < 10


# --------------------------------------------------------------------------- README


def test_readme_deployment_section_names_every_deploy_file() -> None:
    readme = (ROOT / "README.md").read_text()
    section = re.search(r"^## Deployment\n(.*?)(?=^## )", readme, flags=re.S | re.M)
    assert section, "README has no Deployment section"
    assert readme.index("## HTTP API") < section.start()
    text = section.group(1)
    for path in sorted(p for p in DEPLOY.rglob("*") if p.is_file()):
        relative = path.relative_to(ROOT).as_posix()
        folders = [p.relative_to(ROOT).as_posix() + "/" for p in path.parents if DEPLOY in p.parents]
        assert relative in text or any(f in text for f in folders), f"{relative} is not mentioned in README's Deployment section"
    for name in ("Dockerfile", "docker-compose.yml", *sorted(SECRET_ENV)):
        assert name in text
