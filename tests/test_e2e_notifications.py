"""The notification pipeline end to end: `alertd run` against fake Slack, PagerDuty and SMTP peers.

Also the command lines of the fakes (``python -m daemon.testing.slack`` / ``.pagerduty``), which the
docker-compose demo runs.
"""

from __future__ import annotations

import re
import signal
import string
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon.testing.pagerduty import FakePagerDuty
from daemon.testing.process import DaemonProcess, free_port
from daemon.testing.slack import FakeSlack, channel_id
from daemon.testing.smtp import ReceivedMail, RecordingSMTP
from daemon.testing.target import ThreadedFakeTarget
from daemon.testing.threaded import ThreadedServer

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).parent / "e2e"
ROOT = Path(__file__).parent.parent
SLACK_TOKEN = "xoxb-e2e-notifications"
ROUTING_KEY = "e2e0routing0key0000000000000000a"
WEBHOOK_PATH = "T000/B000/E2E"
PAYLOAD = "# TYPE app_info gauge\napp_info{version=\"1.0\"} 1\n"
DASHBOARD = "https://grafana.example.com/d/app-availability"
TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"
WAIT = 45.0


@pytest.fixture
def target() -> Iterator[ThreadedFakeTarget]:
    with ThreadedFakeTarget() as fake:
        fake.set(PAYLOAD)
        yield fake


@pytest.fixture
def slack() -> Iterator[ThreadedServer[FakeSlack]]:
    with ThreadedServer(FakeSlack(tokens={SLACK_TOKEN})) as fake:
        yield fake


@pytest.fixture
def pagerduty() -> Iterator[ThreadedServer[FakePagerDuty]]:
    with ThreadedServer(FakePagerDuty()) as fake:
        yield fake


@pytest.fixture
def smtp() -> Iterator[RecordingSMTP]:
    with RecordingSMTP() as server:
        yield server


def write_config(tmp_path: Path, target: str, slack: FakeSlack, pagerduty: FakePagerDuty, smtp: RecordingSMTP) -> Path:
    config = tmp_path / "alertd.yml"
    template = string.Template((FIXTURES / "alertd.yml").read_text())
    config.write_text(
        template.substitute(
            smarthost=smtp.smarthost,
            target=target,
            rules=str(FIXTURES / "rules.yml"),
            slack_api=slack.api_url,
            slack_webhook=slack.webhook_url(WEBHOOK_PATH),
            pagerduty_url=pagerduty.url,
        )
    )
    return config


def target_health(daemon: DaemonProcess) -> list[str]:
    active = httpx.get(daemon.url + "/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
    return [t["health"] for t in active]


def slack_calls(fake: FakeSlack) -> list[tuple[str, str]]:
    """Every Slack request as (path, channel) in the order received."""
    return [(r.path, str(r.body.get("channel", ""))) for r in fake.requests]


def slack_messages(fake: FakeSlack) -> dict[str, list[tuple[str, list[str], str | None]]]:
    """Per channel: (text now, texts before edits, thread) of each message."""
    return {channel: [(m.text, list(m.edits), m.thread_ts) for m in messages] for channel, messages in fake.messages.items()}


def mail_status(mail: ReceivedMail) -> str:
    html = mail.message.get_body(preferencelist=("html",))
    assert html is not None, mail.message
    match = re.search(r"<th[^>]*>Status</th><td>(\w+)</td>", html.get_content())
    assert match, html.get_content()
    return match.group(1)


def mail_summary(smtp: RecordingSMTP) -> Counter[tuple[str, str, frozenset[str]]]:
    """Each mail as (alert name from the subject, status, envelope recipients), counted."""
    summary: Counter[tuple[str, str, frozenset[str]]] = Counter()
    for mail in smtp.mails:
        name = mail.subject.split(" - ")[0]
        summary[(name, mail_status(mail), frozenset(mail.recipients))] += 1
    return summary


def check_slack_text(text: str, severity: str, alert: str, metric: str, threshold: str, mention: str | None) -> None:
    """The specification's Slack format, after the mention line when there is one."""
    lines = text.split("\n")
    if mention is not None:
        assert lines.pop(0) == mention, text
    assert lines[0] == f"🚨 *{severity}* - {alert}", text
    assert re.fullmatch(rf"📊 \*Métrique\*: {re.escape(metric)} = [0-9.]+", lines[1]), text
    assert lines[2] == f"🎯 *Seuil*: {threshold}", text
    assert re.fullmatch(rf"⏰ \*Temps\*: {TIME}", lines[3]), text
    assert lines[4] == f"🔗 *Lien*: {DASHBOARD}", text
    assert len(lines) == 5, text
    assert "<!" not in "\n".join(lines), text  # no other mention anywhere


def check_slack_resolved_text(text: str, severity: str, alert: str, metric: str) -> None:
    lines = text.split("\n")
    assert lines[0] == f"✅ *{severity}* - {alert} (resolved)", text
    assert lines[1] == f"📊 *Métrique*: {metric}", text
    assert re.fullmatch(rf"⏰ \*Temps\*: {TIME}", lines[2]), text
    assert lines[3] == f"🔗 *Lien*: {DASHBOARD}", text
    assert len(lines) == 4 and "<!" not in text, text


P0_MAIL = frozenset({"alerts@example.com", "dev-team@example.com", "management@example.com"})
P1_MAIL = frozenset({"alerts@example.com", "management@example.com"})


def test_notification_matrix_firing_then_resolved(
    tmp_path: Path,
    target: ThreadedFakeTarget,
    slack: ThreadedServer[FakeSlack],
    pagerduty: ThreadedServer[FakePagerDuty],
    smtp: RecordingSMTP,
) -> None:
    """A scraped target goes down, then comes back; every notification of the specification's
    matrix is delivered exactly once (tests/e2e/alertd.yml, tests/e2e/rules.yml):

    ====================  =========================  ==========================================
    alert (severity)      firing                     resolved
    ====================  =========================  ==========================================
    AppDown (critical)    Slack #alerts-critical      the Slack message edited in place
    P0                    with @here (bot token,      (update_message), resolved mail to the
                          update_message); one mail   same three, PagerDuty resolve with the
                          to alerts@, dev-team@ and   same dedup_key
                          management@; PagerDuty
                          trigger with a dedup_key
    AppScrapesFailing     Slack #alerts-important     nothing (send_resolved off)
    (warning) P1          with @channel (incoming
                          webhook); one mail to
                          alerts@ and management@
    AppScrapeMissed       Slack #alerts-info, no      a new Slack message in #alerts-info
    (info) P2             mention (bot token)         (send_resolved, no update_message)
    ====================  =========================  ==========================================

    Slack texts and mail subjects follow the specification's formats.
    """
    config = write_config(tmp_path, target.address, slack.server, pagerduty.server, smtp)
    env = {"SLACK_BOT_TOKEN": SLACK_TOKEN, "PAGERDUTY_ROUTING_KEY": ROUTING_KEY}
    with DaemonProcess(config, tmp_path / "data", env=env) as daemon:
        daemon.wait_ready()
        daemon.wait_for(lambda: target_health(daemon) == ["up"], WAIT, "the target scraped")
        assert slack.read(slack_calls) == [] and pagerduty.read(lambda p: p.events) == [] and smtp.mails == []

        # -- the target goes down: P0, P1 and P2 fire ----------------------------------------------
        target.set("unavailable\n", status=503)

        # Wait for at least what is expected, then check it is exactly that.
        def fired() -> bool:
            channels = slack.read(lambda s: {c: len(m) for c, m in s.messages.items()})
            return (
                all(channels.get(c, 0) >= 1 for c in ("#alerts-critical", "#alerts-important", "#alerts-info"))
                and len(smtp.mails) >= 2
                and len(pagerduty.read(lambda p: p.events)) >= 1
            )

        daemon.wait_for(fired, WAIT, "the firing notifications")

        messages = slack.read(slack_messages)
        assert {c: len(m) for c, m in messages.items()} == {"#alerts-critical": 1, "#alerts-important": 1, "#alerts-info": 1}
        ((critical, edits, thread),) = messages["#alerts-critical"]
        assert edits == [] and thread is None
        check_slack_text(critical, "critical", "AppDown", "up", "0", mention="<!here>")
        ((important, _, _),) = messages["#alerts-important"]
        check_slack_text(important, "warning", "AppScrapesFailing", "up", "0.9", mention="<!channel>")
        ((info, _, _),) = messages["#alerts-info"]
        check_slack_text(info, "info", "AppScrapeMissed", "up", "1", mention=None)

        assert mail_summary(smtp) == Counter({("[critical] AppDown", "firing", P0_MAIL): 1, ("[warning] AppScrapesFailing", "firing", P1_MAIL): 1})
        for mail in smtp.mails:
            assert re.fullmatch(rf"\[(critical|warning)\] App\w+ - {TIME}", mail.subject), mail.subject
            assert mail.sender == "alertd@example.com"
            assert f"Dashboard: {DASHBOARD}" in mail.text()

        (trigger,) = pagerduty.read(lambda p: list(p.events))
        assert trigger["event_action"] == "trigger" and trigger["routing_key"] == ROUTING_KEY
        dedup_key = trigger["dedup_key"]
        assert re.fullmatch(r"[0-9a-f]{64}", dedup_key)
        assert trigger["payload"]["severity"] == "critical"
        assert trigger["payload"]["summary"].startswith("[critical] AppDown: up = 0 (threshold 0)")

        # -- the target is back: everything resolves -----------------------------------------------
        target.set(PAYLOAD)

        def resolved() -> bool:
            messages = slack.read(slack_messages)
            return (
                len(messages["#alerts-critical"][0][1]) >= 1
                and len(messages["#alerts-info"]) >= 2
                and len(smtp.mails) >= 3
                and len(pagerduty.read(lambda p: p.events)) >= 2
                and daemon_alerts(daemon) == []
            )

        daemon.wait_for(resolved, WAIT, "the resolved notifications")
        # Let a few more group intervals pass, so that a repeated or late notification would have
        # arrived. The rule group's evaluations (every second, and at most once more a second
        # after scrapes) are the daemon's own ticks: six of them take at least three seconds.
        evaluations = daemon.metric_sum("alertd_rule_group_evaluations_total")
        daemon.wait_for(lambda: daemon.metric_sum("alertd_rule_group_evaluations_total") >= evaluations + 6, WAIT, "more evaluations")

        # -- exactly the matrix, nothing more --------------------------------------------------------
        critical_id = channel_id("#alerts-critical")
        assert Counter(slack.read(slack_calls)) == Counter(
            {
                ("/api/chat.postMessage", "#alerts-critical"): 1,
                ("/api/chat.update", critical_id): 1,
                (f"/services/{WEBHOOK_PATH}", "#alerts-important"): 1,
                ("/api/chat.postMessage", "#alerts-info"): 2,
            }
        )
        messages = slack.read(slack_messages)
        assert set(messages) == {"#alerts-critical", "#alerts-important", "#alerts-info"}
        ((now, (before,), thread),) = messages["#alerts-critical"]
        assert before == critical and thread is None
        check_slack_resolved_text(now, "critical", "AppDown", "up")
        assert messages["#alerts-important"] == [(important, [], None)]
        (first, (second, edits, thread)) = messages["#alerts-info"]
        assert first == (info, [], None) and edits == [] and thread is None
        check_slack_resolved_text(second, "info", "AppScrapeMissed", "up")

        assert mail_summary(smtp) == Counter(
            {
                ("[critical] AppDown", "firing", P0_MAIL): 1,
                ("[critical] AppDown", "resolved", P0_MAIL): 1,
                ("[warning] AppScrapesFailing", "firing", P1_MAIL): 1,
            }
        )

        events = pagerduty.read(lambda p: list(p.events))
        assert [(e["event_action"], e["dedup_key"]) for e in events] == [("trigger", dedup_key), ("resolve", dedup_key)]
        assert pagerduty.read(lambda p: {k: i.status for k, i in p.incidents.items()}) == {dedup_key: "resolved"}

        assert '"notify_failed"' not in daemon.log()


def daemon_alerts(daemon: DaemonProcess) -> list[dict[str, Any]]:
    """The alerts alertd holds unresolved (Alertmanager API v2)."""
    return httpx.get(daemon.url + "/api/v2/alerts", timeout=5).json()  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- the fakes' command lines


def _post_slack(base: str) -> bool:
    answer = httpx.post(base + "/api/chat.postMessage", json={"channel": "#demo", "text": "hello"},
                        headers={"Authorization": "Bearer xoxb-demo"}, timeout=2)  # fmt: skip
    return answer.status_code == 200 and answer.json()["ok"] is True


def _post_pagerduty(base: str) -> bool:
    event = {"routing_key": "k" * 32, "event_action": "trigger", "payload": {"summary": "s", "source": "x", "severity": "info"}}
    return httpx.post(base + "/v2/enqueue", json=event, timeout=2).status_code == 202


@pytest.mark.parametrize(
    ("module", "post", "stop"),
    [
        ("daemon.testing.slack", _post_slack, signal.SIGTERM),
        ("daemon.testing.slack", _post_slack, signal.SIGINT),
        ("daemon.testing.pagerduty", _post_pagerduty, signal.SIGTERM),
        ("daemon.testing.pagerduty", _post_pagerduty, signal.SIGINT),
    ],
    ids=["slack-sigterm", "slack-sigint", "pagerduty-sigterm", "pagerduty-sigint"],
)
def test_fake_serves_until_signalled(module: str, post: Callable[[str], bool], stop: signal.Signals) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        answered = False
        while not answered and time.monotonic() < deadline and process.poll() is None:
            try:
                answered = post(f"http://127.0.0.1:{port}")
            except httpx.TransportError:
                time.sleep(0.05)
        assert answered, process.stderr.read() if process.poll() is not None and process.stderr else "no answer"
        process.send_signal(stop)
        out, err = process.communicate(timeout=10)
        assert process.returncode == 0, err
        assert f"127.0.0.1:{port}" in out and "Traceback" not in err
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_fake_refuses_a_port_in_use() -> None:
    with ThreadedServer(FakePagerDuty()) as taken:
        port = int(taken.server.url.split(":")[2].split("/")[0])
        done = subprocess.run(
            [sys.executable, "-m", "daemon.testing.slack", "--port", str(port)], cwd=ROOT, capture_output=True, text=True, timeout=30
        )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "Traceback" not in done.stderr
