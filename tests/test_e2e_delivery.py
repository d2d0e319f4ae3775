"""Time to page and delivery guarantees with the real `alertd run`: batching of targets going
down together, receivers failing for a while (HTTP 503, SMTP 451), a daemon killed with a
notification in its outbox, and a permanent PagerDuty error with its failure alert and fallback."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from daemon.testing.pagerduty import FakePagerDuty
from daemon.testing.process import DaemonProcess
from daemon.testing.smtp import RecordingSMTP
from daemon.testing.target import ThreadedFakeTarget
from daemon.testing.threaded import ThreadedServer

pytestmark = pytest.mark.e2e

RULES = """
groups:
  - name: targets
    rules:
      - alert: TargetDown
        expr: up == 0
        labels: {severity: critical}
"""
PAYLOAD = "app_info 1\n"
ROUTING_KEY = "e2e0routing0key0000000000000000b"


class Webhook:
    """Records the Alertmanager webhook payloads POSTed to each path; ``fail(path, *statuses)``
    makes the next requests to that path answer those statuses; ``down(path)`` answers 503 until
    ``up(path)``."""

    def __init__(self) -> None:
        self.received: dict[str, list[dict[str, Any]]] = {}
        self.requests: dict[str, int] = {}
        self._planned: dict[str, list[int]] = {}
        self._down: set[str] = set()
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = outer._answer(self.path, body)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _answer(self, path: str, body: bytes) -> int:
        with self._lock:
            self.requests[path] = self.requests.get(path, 0) + 1
            if path in self._down:
                return 503
            planned = self._planned.get(path)
            if planned:
                return planned.pop(0)
            self.received.setdefault(path, []).append(json.loads(body) if body else {})
            return 200

    def fail(self, path: str, *statuses: int) -> None:
        with self._lock:
            self._planned.setdefault(path, []).extend(statuses)

    def down(self, path: str) -> None:
        with self._lock:
            self._down.add(path)

    def up(self, path: str) -> None:
        with self._lock:
            self._down.discard(path)

    def payloads(self, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.received.get(path, []))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def write_config(directory: Path, targets: list[str], route: str, receivers: str, interval: str = "1s") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "rules.yml").write_text(RULES)
    listed = ", ".join(f'"{t}"' for t in targets)
    path = directory / "alertd.yml"
    path.write_text(
        f"""
global:
  scrape_interval: {interval}
  scrape_timeout: 500ms
  evaluation_interval: {interval}
scrape_configs:
  - job_name: app
    static_configs: [{{targets: [{listed}]}}]
rule_files: ["rules.yml"]
route:
{route}
receivers:
{receivers}
"""
    )
    return path


def wait_until(condition: Any, timeout: float, what: str, daemon: DaemonProcess | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}" + (f"; alertd log:\n{daemon.log()[-5000:]}" if daemon else ""))


def firing_names(payloads: list[dict[str, Any]]) -> list[list[str]]:
    return [sorted(a["labels"].get("instance", a["labels"]["alertname"]) for a in p["alerts"] if a["status"] == "firing") for p in payloads]


def test_twenty_targets_down_together_page_at_most_twice(tmp_path: Path, webhook: Webhook) -> None:
    with ExitStack() as stack:
        targets = [stack.enter_context(ThreadedFakeTarget()) for _ in range(20)]
        for target in targets:
            target.set(PAYLOAD)
        config = write_config(
            tmp_path,
            [t.address for t in targets],
            "  receiver: hook\n  group_by: [job]",
            f'  - name: hook\n    webhook_configs: [{{url: "{webhook.url}/hook"}}]',
            interval="5s",
        )
        daemon = stack.enter_context(DaemonProcess(config, tmp_path / "data"))
        daemon.wait_ready()
        time.sleep(6)  # every target scraped up once
        for target in targets:
            target.set(PAYLOAD, status=503)
        down = time.monotonic()
        wait_until(lambda: webhook.payloads("/hook"), 30, "the first page", daemon)
        first = time.monotonic() - down
        # Scrapes are spread over 5 s and evaluated every 5 s: the catch-up comes 10 s after the
        # first page. Then group_interval (5 m): nothing more within the first two minutes.
        time.sleep(max(0.0, 45 - (time.monotonic() - down)))
        pages = webhook.payloads("/hook")
        assert 1 <= len(pages) <= 2, firing_names(pages)
        assert len(firing_names(pages)[-1]) == 20
        assert first < 12  # one scrape interval, one evaluation interval, and the 1 s settle


def test_receiver_answering_503_for_a_while_gets_the_notification_once(tmp_path: Path, webhook: Webhook) -> None:
    with ThreadedFakeTarget() as target:
        target.set(PAYLOAD)
        webhook.fail("/hook", 503, 503, 503)
        config = write_config(
            tmp_path,
            [target.address],
            "  receiver: hook",
            f'  - name: hook\n    webhook_configs: [{{url: "{webhook.url}/hook"}}]',
        )
        with DaemonProcess(config, tmp_path / "data") as daemon:
            daemon.wait_ready()
            target.set(PAYLOAD, status=503)
            wait_until(lambda: webhook.payloads("/hook"), 30, "the notification", daemon)
            time.sleep(5)
            assert len(webhook.payloads("/hook")) == 1
            assert webhook.requests["/hook"] == 4


class FlakySMTP(RecordingSMTP):
    """Answers the first ``failures`` messages with 451, then accepts."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.refused = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.refused < self.failures:
            self.refused += 1
            return "451 4.3.0 Temporary local problem, try again later"
        return await super().handle_DATA(server, session, envelope)


def test_smtp_451_then_accepting_delivers_the_mail_once(tmp_path: Path) -> None:
    with ThreadedFakeTarget() as target, FlakySMTP(failures=2) as smtp:
        target.set(PAYLOAD)
        config = write_config(
            tmp_path,
            [target.address],
            "  receiver: mail",
            f"""  - name: mail
    email_configs:
      - to: oncall@example.com
        from: alertd@example.com
        smarthost: {smtp.smarthost}
        require_tls: false""",
        )
        with DaemonProcess(config, tmp_path / "data") as daemon:
            daemon.wait_ready()
            target.set(PAYLOAD, status=503)
            wait_until(lambda: smtp.mails, 30, "the mail", daemon)
            time.sleep(5)
            assert smtp.refused == 2
            assert len(smtp.mailbox("oncall@example.com")) == 1


def test_killed_mid_retry_sends_the_notification_after_restart_once(tmp_path: Path, webhook: Webhook) -> None:
    with ThreadedFakeTarget() as target:
        target.set(PAYLOAD)
        webhook.down("/hook")
        config = write_config(
            tmp_path,
            [target.address],
            "  receiver: hook",
            f'  - name: hook\n    webhook_configs: [{{url: "{webhook.url}/hook"}}]',
        )
        daemon = DaemonProcess(config, tmp_path / "data")
        with daemon:
            daemon.wait_ready()
            target.set(PAYLOAD, status=503)
            wait_until(lambda: webhook.requests.get("/hook", 0) >= 2, 30, "retries", daemon)
            daemon.signal(signal.SIGKILL)
            assert daemon.process is not None
            daemon.process.wait(10)
        webhook.up("/hook")
        assert webhook.payloads("/hook") == []
        with DaemonProcess(config, tmp_path / "data") as again:
            wait_until(lambda: webhook.payloads("/hook"), 30, "the notification after the restart", again)
            time.sleep(6)
            payloads = webhook.payloads("/hook")
            assert len(payloads) == 1, payloads
            assert payloads[0]["alerts"][0]["labels"]["alertname"] == "TargetDown"
            assert "outbox_resend" in again.log()


def test_pagerduty_400_is_not_retried_raises_the_failure_alert_and_uses_the_fallback(
    tmp_path: Path, webhook: Webhook
) -> None:
    with ThreadedFakeTarget() as target, ThreadedServer(FakePagerDuty()) as pd:
        target.set(PAYLOAD)
        pd.read(lambda fake: fake.fail_next(400))
        config = write_config(
            tmp_path,
            [target.address],
            """  receiver: pager
  routes:
    - matchers: [alertname="AlertdNotificationsFailing"]
      receiver: ops""",
            f"""  - name: pager
    pagerduty_configs: [{{routing_key: {ROUTING_KEY}, url: "{pd.server.url}"}}]
    fallback_receivers: [backup]
  - name: backup
    webhook_configs: [{{url: "{webhook.url}/backup"}}]
  - name: ops
    webhook_configs: [{{url: "{webhook.url}/ops"}}]""",
        )
        with DaemonProcess(config, tmp_path / "data") as daemon:
            daemon.wait_ready()
            target.set(PAYLOAD, status=503)
            wait_until(lambda: webhook.payloads("/backup") and webhook.payloads("/ops"), 30, "fallback and alert", daemon)
            time.sleep(3)
            assert "unrecoverable error after 1 attempts: pagerduty: HTTP 400" in daemon.log()  # no retry
            (fallback,) = webhook.payloads("/backup")
            assert [a["labels"]["alertname"] for a in fallback["alerts"]] == ["TargetDown"]
            failing = webhook.payloads("/ops")[0]["alerts"][0]["labels"]
            assert failing["alertname"] == "AlertdNotificationsFailing"
            assert failing["receiver"] == "pager" and failing["integration"] == "pagerduty"
            assert 'alertd_notifications_failed_total{integration="pagerduty"} 1.0' in daemon_metrics(daemon)


def daemon_metrics(daemon: DaemonProcess) -> str:
    import httpx

    return httpx.get(daemon.url + "/metrics", timeout=5).text


def test_heartbeat_pings_and_the_watchdog_alert_is_routed(tmp_path: Path, webhook: Webhook) -> None:
    with ThreadedFakeTarget() as target:
        target.set(PAYLOAD)
        config = write_config(
            tmp_path,
            [target.address],
            """  receiver: hook
  routes:
    - matchers: [alertname="Watchdog"]
      receiver: deadmans-switch
      repeat_interval: 1m""",
            f"""  - name: hook
    webhook_configs: [{{url: "{webhook.url}/hook"}}]
  - name: deadmans-switch
    webhook_configs: [{{url: "{webhook.url}/dms"}}]""",
        )
        config.write_text(config.read_text() + f'heartbeat: {{url: "{webhook.url}/beat", interval: 1s, method: POST, watchdog: true}}\n')
        with DaemonProcess(config, tmp_path / "data") as daemon:
            wait_until(lambda: len(webhook.payloads("/beat")) >= 3, 20, "heartbeat pings", daemon)
            wait_until(lambda: webhook.payloads("/dms"), 20, "the Watchdog notification", daemon)
            (alert,) = webhook.payloads("/dms")[0]["alerts"]
            assert alert["labels"]["alertname"] == "Watchdog" and alert["status"] == "firing"
            assert webhook.payloads("/hook") == []
            assert 'alertd_heartbeat_pings_total{result="ok"}' in daemon_metrics(daemon)
