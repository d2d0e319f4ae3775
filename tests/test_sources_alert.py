"""CloudWatch series and probe results reach rules: the alerts built on them fire in the daemon."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.app import App
from daemon.cloudwatch.fake import FakeCloudWatchServer
from daemon.config import load_config


async def firing(app: App, alertname: str) -> None:
    """Wait (bounded, real time: the data arrives over real sockets) for ``alertname`` to fire."""
    def fired() -> bool:
        return any(a.labels.get("alertname") == alertname and a.state.value == "firing" for a in app.rules.alerts())

    await _eventually(fired, f"{alertname} firing")


async def _eventually(condition: Callable[[], bool], what: str) -> None:
    for _ in range(600):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def test_rule_fires_on_cloudwatch_series(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDALERTDTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    async with FakeCloudWatchServer() as cloudwatch:
        minute = (time.time() // 60) * 60
        for back in (4, 3):  # settled periods, older than the default 2 m delay
            cloudwatch.fake.put("AWS/ECS", "CPUUtilization", {"ClusterName": "prod", "ServiceName": "api"}, "Average", minute - back * 60, 97.0)
        (tmp_path / "rules.yml").write_text(
            """
groups:
  - name: ecs
    interval: 1s
    rules:
      - alert: ECSCPUCritical
        expr: aws_ecs_cpuutilization_average > 95
        labels: {severity: critical}
"""
        )
        config = tmp_path / "alertd.yml"
        config.write_text(
            f"""
web: {{listen: "127.0.0.1:0"}}
rule_files: [rules.yml]
cloudwatch:
  region: eu-west-1
  endpoint_url: {cloudwatch.url}
  metrics:
    - {{namespace: AWS/ECS, metric_name: CPUUtilization, dimensions: {{ClusterName: prod, ServiceName: "*"}}, statistics: [Average]}}
"""
        )
        app = App(load_config(config), config_path=str(config), data_dir=tmp_path / "data")
        await app.start()
        try:
            await firing(app, "ECSCPUCritical")
            (alert,) = [a for a in app.rules.alerts() if a.labels.get("alertname") == "ECSCPUCritical"]
            assert alert.labels.get("cluster_name") == "prod" and alert.labels.get("service_name") == "api"
            assert alert.value == 97.0
        finally:
            await app.stop()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command makes the test certificate")
async def test_certificate_expiring_rule_fires_on_a_tls_probe(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "10", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    (tmp_path / "rules.yml").write_text(
        """
groups:
  - name: certificates
    interval: 1s
    rules:
      - alert: CertificateExpiring
        expr: probe_ssl_earliest_cert_expiry - time() < 30 * 86400
        labels: {severity: info}
        annotations: {summary: "certificate of {{ $labels.instance }} expires in {{ $value | humanizeDuration }}"}
"""
    )
    config = tmp_path / "alertd.yml"
    config.write_text(
        f"""
web: {{listen: "127.0.0.1:0"}}
rule_files: [rules.yml]
probes:
  - job_name: certificates
    prober: tls
    interval: 1s
    timeout: 1s
    targets: ["127.0.0.1:{port}"]
    tls: {{ca_file: {cert}}}
"""
    )
    app = App(load_config(config), config_path=str(config), data_dir=tmp_path / "data")
    await app.start()
    try:
        await firing(app, "CertificateExpiring")
        (alert,) = [a for a in app.rules.alerts() if a.labels.get("alertname") == "CertificateExpiring"]
        assert 9 * 86400 < alert.value <= 10 * 86400
        assert alert.annotations["summary"].startswith(f"certificate of 127.0.0.1:{port} expires in 9d")
    finally:
        await app.stop()
        server.close()
        await server.wait_closed()
