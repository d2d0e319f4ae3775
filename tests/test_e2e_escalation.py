"""Escalation end to end: `alertd run` with a policy of short delays, a scraped target that goes
down, and fake PagerDuty and Slack servers that note when each request arrived.

The policy: level 1 pages the on-call engineer (PagerDuty, their own routing key) at once,
level 2 the senior engineer (PagerDuty) after 2 s, level 3 the engineering managers' Slack channel
after 4 s; the route's own receiver posts to #alerts-critical (bot token, update_message) with an
Acknowledge button. Nobody acknowledges: levels 1, 2, 3 arrive in order, none before its time.
An acknowledgement after level 1 (through `alertd ack`, or a signed Slack interaction) stops it,
and the Slack message says who acknowledged. A daemon stopped after level 1 (SIGTERM or SIGKILL)
and started again on the same data directory sends levels 2 and 3 once each, level 1 not again.
"""

from __future__ import annotations

import json
import string
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from aiohttp import web

from daemon.notify.acknowledge import ACK_ACTION, slack_signature
from daemon.testing.pagerduty import FakePagerDuty
from daemon.testing.process import DaemonProcess
from daemon.testing.slack import FakeSlack, channel_id
from daemon.testing.target import ThreadedFakeTarget
from daemon.testing.threaded import ThreadedServer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parent.parent
SLACK_TOKEN = "xoxb-e2e-escalation"
SIGNING_SECRET = "e2e-slack-signing-secret"
ONCALL_KEY = "oncall0engineer0routing0key00001"
SENIOR_KEY = "senior0engineer0routing0key00002"
TEAM_CHANNEL = "#alerts-critical"
MANAGERS_CHANNEL = "#engineering-managers"
LEVEL_AFTER = (0.0, 2.0, 4.0)
PAYLOAD = "# TYPE app_info gauge\napp_info{version=\"1.0\"} 1\n"
WAIT = 45.0
EVALUATIONS = "alertd_rule_group_evaluations_total"

CONFIG = string.Template(
    """
global:
  scrape_interval: 1s
  scrape_timeout: 500ms
  evaluation_interval: 1s
scrape_configs:
  - job_name: app
    static_configs: [{targets: ["$target"]}]
rule_files: ["$rules"]
rule_evaluation:
  after_scrape: true
route:
  receiver: team
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: [priority="P0"]
      receiver: team
      escalation: p0
receivers:
  - name: team
    slack_configs:
      - {api_url: "$slack_api", token: $slack_token, channel: "$team_channel", update_message: true}
  - name: oncall-engineer
    pagerduty_configs: [{url: "$pagerduty_url", routing_key: $oncall_key, severity: critical}]
  - name: senior-engineer
    pagerduty_configs: [{url: "$pagerduty_url", routing_key: $senior_key, severity: critical}]
  - name: engineering-managers
    slack_configs:
      - {api_url: "$slack_api", token: $slack_token, channel: "$managers_channel"}
escalation_policies:
  - name: p0
    levels:
      - {after: 0s, receivers: [oncall-engineer]}
      - {after: 2s, receivers: [senior-engineer]}
      - {after: 4s, receivers: [engineering-managers]}
acknowledgements:
  slack_signing_secret: $signing_secret
"""
)

RULES = """
groups:
  - name: app
    rules:
      - alert: AppDown
        expr: up{job="app"} == 0
        labels: {priority: P0, severity: critical}
        annotations:
          summary: "{{ $labels.instance }} cannot be scraped"
          current_value: "{{ $value }}"
"""


# -- fakes that note arrival times ------------------------------------------------------------------


class TimedPagerDuty(FakePagerDuty):
    """A FakePagerDuty that keeps, for each accepted event, the wall time it arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, dict[str, Any]]] = []

    async def _enqueue(self, request: web.Request) -> web.Response:
        at = time.time()
        answer = await super()._enqueue(request)
        if answer.status == 202:
            self.arrivals.append((at, self.events[-1]))
        return answer


class TimedSlack(FakeSlack):
    """A FakeSlack that keeps the wall time each posted message arrived, by its ``ts``."""

    def __init__(self) -> None:
        super().__init__(tokens={SLACK_TOKEN})
        self.posted_at: dict[str, float] = {}

    async def _post_message(self, request: web.Request) -> web.Response:
        at = time.time()
        answer = await super()._post_message(request)
        body = json.loads(answer.text or "{}")
        if body.get("ok"):
            self.posted_at[body["ts"]] = at
        return answer


# -- what the fakes saw, as escalation levels -------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One notification a fake accepted: the escalation level it belongs to (0 for the route's
    own receiver), when it arrived and what it was."""

    level: int
    at: float
    what: str


def deliveries(pagerduty: ThreadedServer[TimedPagerDuty], slack: ThreadedServer[TimedSlack]) -> list[Delivery]:
    """Every firing notification the fakes accepted, in order of arrival."""
    levels = {ONCALL_KEY: 1, SENIOR_KEY: 2}
    found = [
        Delivery(levels.get(event["routing_key"], -1), at, f"pagerduty {event['event_action']} {event['dedup_key'][:12]}")
        for at, event in pagerduty.read(lambda p: list(p.arrivals))
    ]
    channels = {TEAM_CHANNEL: 0, MANAGERS_CHANNEL: 3}
    for channel, ts, text, at in slack.read(
        lambda s: [(m.channel, m.ts, m.text, s.posted_at.get(m.ts, 0.0)) for m in s.all_messages()]
    ):
        found.append(Delivery(channels.get(channel, -1), at, f"slack {channel} {ts} {text.splitlines()[0] if text else ''}"))
    return sorted(found, key=lambda d: d.at)


def escalation_levels(found: list[Delivery]) -> list[int]:
    return [d.level for d in found if d.level != 0]


def escalation(daemon: DaemonProcess) -> dict[str, Any]:
    """The daemon's record of the group's escalation (``/api/v1/incidents``)."""
    data = httpx.get(daemon.url + "/api/v1/incidents", params={"since": "1h"}, timeout=5).json()["data"]
    (record,) = data["escalations"]
    return record  # type: ignore[no-any-return]


def quiet_until(daemon: DaemonProcess, until: float, what: str) -> None:
    """Let wall time pass ``until``, and at least three more rule evaluations (the daemon's own
    ticks), so that a notification due by then has had its chance to arrive."""
    ticks = daemon.metric_sum(EVALUATIONS)
    daemon.wait_for(lambda: time.time() >= until and daemon.metric_sum(EVALUATIONS) >= ticks + 3, WAIT, what)


# -- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture
def target() -> Iterator[ThreadedFakeTarget]:
    with ThreadedFakeTarget() as fake:
        fake.set(PAYLOAD)
        yield fake


@pytest.fixture
def slack() -> Iterator[ThreadedServer[TimedSlack]]:
    with ThreadedServer(TimedSlack()) as fake:
        yield fake


@pytest.fixture
def pagerduty() -> Iterator[ThreadedServer[TimedPagerDuty]]:
    with ThreadedServer(TimedPagerDuty()) as fake:
        yield fake


@pytest.fixture
def config(tmp_path: Path, target: ThreadedFakeTarget, slack: ThreadedServer[TimedSlack], pagerduty: ThreadedServer[TimedPagerDuty]) -> Path:
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    path = tmp_path / "alertd.yml"
    path.write_text(
        CONFIG.substitute(
            target=target.address,
            rules=str(rules),
            slack_api=slack.server.api_url,
            slack_token=SLACK_TOKEN,
            team_channel=TEAM_CHANNEL,
            managers_channel=MANAGERS_CHANNEL,
            pagerduty_url=pagerduty.server.url,
            oncall_key=ONCALL_KEY,
            senior_key=SENIOR_KEY,
            signing_secret=SIGNING_SECRET,
        )
    )
    return path


def take_down(daemon: DaemonProcess, target: ThreadedFakeTarget) -> None:
    daemon.wait_ready()
    daemon.wait_for(lambda: httpx.get(daemon.url + "/api/v1/targets", timeout=5).json()["data"]["activeTargets"][0]["health"] == "up",
                    WAIT, "the target scraped")  # fmt: skip
    target.set("unavailable\n", status=503)


def wait_for_level(daemon: DaemonProcess, pagerduty: ThreadedServer[TimedPagerDuty], slack: ThreadedServer[TimedSlack], level: int) -> None:
    daemon.wait_for(lambda: level in escalation_levels(deliveries(pagerduty, slack)), WAIT, f"escalation level {level}")


def check_offsets(found: list[Delivery], started_at: float) -> None:
    """No level arrived before the policy says (counted from the escalation's start)."""
    for delivery in found:
        if delivery.level >= 1:
            assert delivery.at >= started_at + LEVEL_AFTER[delivery.level - 1], (delivery, started_at)


def describe(found: list[Delivery], started_at: float) -> str:
    return "\n".join(f"  +{d.at - started_at:6.3f}s level {d.level}: {d.what}" for d in found)


# -- tests ----------------------------------------------------------------------------------------


def test_nobody_acknowledges_levels_arrive_in_order(
    config: Path, tmp_path: Path, target: ThreadedFakeTarget, slack: ThreadedServer[TimedSlack], pagerduty: ThreadedServer[TimedPagerDuty]
) -> None:
    with DaemonProcess(config, tmp_path / "data") as daemon:
        take_down(daemon, target)
        wait_for_level(daemon, pagerduty, slack, 3)
        started_at = float(escalation(daemon)["started_at"])
        quiet_until(daemon, started_at + LEVEL_AFTER[-1] + 3, "a quiet window after level 3")
        found = deliveries(pagerduty, slack)
        print("observed:\n" + describe(found, started_at))

        assert escalation_levels(found) == [1, 2, 3], describe(found, started_at)
        assert [d.level for d in found].count(0) == 1, describe(found, started_at)  # the team's own message
        check_offsets(found, started_at)
        assert all(d.what.startswith("pagerduty trigger") for d in found if d.level in (1, 2))
        # Each level has an incident of its own.
        assert len({e["dedup_key"] for e in pagerduty.read(lambda p: list(p.events))}) == 2
        record = escalation(daemon)
        assert [(lv["level"], lv["receivers"], lv["ok"]) for lv in record["levels"]] == [
            (1, ["oncall-engineer"], True), (2, ["senior-engineer"], True), (3, ["engineering-managers"], True),
        ]  # fmt: skip
        assert record["acknowledged_by"] is None
        assert '"escalation_level_failed"' not in daemon.log() and '"notify_failed"' not in daemon.log()


def test_an_ack_through_the_cli_after_level_1_stops_escalation(
    config: Path, tmp_path: Path, target: ThreadedFakeTarget, slack: ThreadedServer[TimedSlack], pagerduty: ThreadedServer[TimedPagerDuty]
) -> None:
    with DaemonProcess(config, tmp_path / "data") as daemon:
        take_down(daemon, target)
        wait_for_level(daemon, pagerduty, slack, 1)
        done = subprocess.run(
            [sys.executable, "-m", "daemon", "ack", "--url", daemon.url, "--by", "alice", "--comment", "on it", "alertname=AppDown"],
            cwd=ROOT, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "acknowledged: " in done.stdout and "(AppDown) by alice" in done.stdout
        record = escalation(daemon)
        started_at = float(record["started_at"])
        assert record["acknowledged_by"] == "alice" and record["acknowledged_via"] == "cli"
        # Premise: the acknowledgement landed before level 2 was due.
        assert record["acknowledged_at"] < started_at + LEVEL_AFTER[1], record

        quiet_until(daemon, started_at + LEVEL_AFTER[-1] + 3, "a quiet window past level 3's time")
        found = deliveries(pagerduty, slack)
        print("observed:\n" + describe(found, started_at))
        assert escalation_levels(found) == [1], describe(found, started_at)
        check_offsets(found, started_at)
        assert [lv["level"] for lv in escalation(daemon)["levels"]] == [1]
        team = slack.read(lambda s: [(m.text, list(m.edits)) for m in s.messages[TEAM_CHANNEL]])
        ((text, edits),) = team
        assert len(edits) == 1 and text.endswith("✅ Acknowledged by alice via cli: on it"), team


def slack_click(url: str, token: str, user: str, secret: str = SIGNING_SECRET) -> httpx.Response:
    """What Slack sends when ``user`` clicks the Acknowledge button carrying ``token``, signed
    with ``secret``."""
    payload = {
        "type": "block_actions",
        "user": {"id": "U0ALICE", "username": user},
        "actions": [{"action_id": ACK_ACTION, "block_id": ACK_ACTION, "type": "button", "value": token}],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": slack_signature(secret, timestamp, body),
    }
    return httpx.post(url + "/slack/interactions", content=body, headers=headers, timeout=10)


def button_value(body: dict[str, Any]) -> str:
    """The value of the Acknowledge button of a posted Slack message."""
    (value,) = [e["value"] for b in body.get("blocks", []) if b.get("type") == "actions" for e in b["elements"] if e["action_id"] == ACK_ACTION]
    return str(value)


def test_a_signed_slack_click_after_level_1_stops_escalation_and_edits_the_message(
    config: Path, tmp_path: Path, target: ThreadedFakeTarget, slack: ThreadedServer[TimedSlack], pagerduty: ThreadedServer[TimedPagerDuty]
) -> None:
    with DaemonProcess(config, tmp_path / "data") as daemon:
        take_down(daemon, target)
        wait_for_level(daemon, pagerduty, slack, 1)
        daemon.wait_for(lambda: slack.read(lambda s: len(s.messages.get(TEAM_CHANNEL, []))) == 1, WAIT, "the team's message")
        ((posted, original),) = slack.read(lambda s: [(m.ts, dict(m.body)) for m in s.messages[TEAM_CHANNEL]])

        # A click signed with another secret is refused and acknowledges nothing.
        forged = slack_click(daemon.url, button_value(original), "mallory", secret="not-the-secret")
        assert forged.status_code == 401, forged.text
        answer = slack_click(daemon.url, button_value(original), "bob")
        assert answer.status_code == 200, answer.text
        assert answer.json()["text"] == "Acknowledged by bob."
        record = escalation(daemon)
        started_at = float(record["started_at"])
        assert record["acknowledged_by"] == "bob" and record["acknowledged_via"] == "slack"
        assert record["acknowledged_at"] < started_at + LEVEL_AFTER[1], record

        quiet_until(daemon, started_at + LEVEL_AFTER[-1] + 3, "a quiet window past level 3's time")
        found = deliveries(pagerduty, slack)
        print("observed:\n" + describe(found, started_at))
        assert escalation_levels(found) == [1], describe(found, started_at)
        check_offsets(found, started_at)

        ((ts, text, edits, body),) = slack.read(lambda s: [(m.ts, m.text, list(m.edits), m.body) for m in s.messages[TEAM_CHANNEL]])
        assert ts == posted and edits == [original["text"]]
        assert text.endswith("✅ Acknowledged by bob via slack"), text
        assert not any(b.get("type") == "actions" for b in body.get("blocks", [])), body  # the button is gone
        updates = slack.read(lambda s: [r.body.get("channel") for r in s.requests if r.path == "/api/chat.update"])
        assert updates == [channel_id(TEAM_CHANNEL)]


@pytest.mark.parametrize(
    ("stop", "outage"),
    [("sigterm", 0.0), ("sigkill", 0.0), ("sigkill", LEVEL_AFTER[-1] + 1)],
    ids=["sigterm", "sigkill", "sigkill-down-past-level-3"],
)
def test_a_restart_after_level_1_sends_levels_2_and_3_once(
    stop: str,
    outage: float,
    config: Path,
    tmp_path: Path,
    target: ThreadedFakeTarget,
    slack: ThreadedServer[TimedSlack],
    pagerduty: ThreadedServer[TimedPagerDuty],
) -> None:
    """Stopped after level 1 and started again on the same data directory: levels 2 and 3 arrive
    once each, level 1 and the team's message not again. With ``outage``, the daemon stays down
    until that long after the escalation started, so levels 2 and 3 are both overdue at start."""
    data = tmp_path / "data"
    with DaemonProcess(config, data) as first:
        take_down(first, target)
        wait_for_level(first, pagerduty, slack, 1)
        # Level 1 is in the daemon's record (and its escalation state saved with it).
        first.wait_for(lambda: len(escalation(first)["levels"]) >= 1, WAIT, "level 1 recorded")
        started_at = float(escalation(first)["started_at"])
        assert first.process is not None
        if stop == "sigkill":
            first.process.kill()
            first.process.wait(10)
        else:
            assert first.stop() == 0
        stopped_at = time.time()
    if outage:
        time.sleep(max(0.0, started_at + outage - time.time()))  # no daemon runs: real time must pass
        assert escalation_levels(deliveries(pagerduty, slack)) == [1]

    restarted_at = time.time()
    with DaemonProcess(config, data) as second:
        second.wait_ready()
        wait_for_level(second, pagerduty, slack, 3)
        quiet_until(second, time.time() + 2, "a quiet window after level 3")
        found = deliveries(pagerduty, slack)
        print(f"observed ({stop} at +{stopped_at - started_at:.3f}s, restarted at +{restarted_at - started_at:.3f}s):\n" + describe(found, started_at))
        assert escalation_levels(found) == [1, 2, 3], describe(found, started_at)
        check_offsets(found, started_at)
        assert [d.level for d in found].count(0) == 1, describe(found, started_at)  # the team's message not posted again
        if outage:
            assert all(d.at >= restarted_at for d in found if d.level in (2, 3))
        record = escalation(second)
        assert float(record["started_at"]) == started_at
        assert [lv["level"] for lv in record["levels"]] == [1, 2, 3]
