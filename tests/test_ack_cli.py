"""`alertd ack`, `alertd ack --remove` and `alertd report` against a running daemon (the App on
127.0.0.1, on its own event loop in a thread): success, nothing matching, a bad matcher and an
unreachable or wrong URL each give one clear line and exit 1, never a traceback."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import structlog

from daemon.app import App
from daemon.cli import main
from daemon.config import load_config
from daemon.rules.sink import OutgoingAlert
from daemon.testing.process import free_port
from daemon.testing.target import ThreadedFakeTarget

CONFIG = """
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: app
    static_configs: [{targets: ["{target}"]}]
route:
  receiver: team
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1m
  escalation: oncall
receivers: [{name: team}, {name: primary}]
escalation_policies:
  - name: oncall
    levels: [{after: 0s, receivers: [primary]}]
"""

R = TypeVar("R")


class RunningApp:
    """The daemon's App on 127.0.0.1 on an event loop of its own, for the blocking CLI to call."""

    def __init__(self, config: Path, data_dir: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        self.app = App(load_config(config), config_path=str(config), listen=self.url.removeprefix("http://"), data_dir=data_dir)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="alertd", daemon=True)

    def call(self, fn: Callable[[App], R]) -> R:
        """``fn(app)`` on the App's loop."""

        async def run() -> R:
            return fn(self.app)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def fire(self, name: str, *, resolved: bool = False, **labels: str) -> None:
        def put(app: App) -> None:
            now = time.time()
            assert app.notifier is not None
            alert = OutgoingAlert({"alertname": name, **labels}, {}, now - 60, now if resolved else now + 240, "", resolved=resolved)
            app.notifier.receive([alert])

        self.call(put)

    def __enter__(self) -> RunningApp:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.app.start(), self._loop).result(20)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.app.stop(), self._loop).result(20)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[RunningApp]:
    # The daemon's log lines would otherwise land in the output the tests read.
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())
    with ThreadedFakeTarget() as target:
        target.set("app_info 1\n")
        config = tmp_path / "alertd.yml"
        config.write_text(CONFIG.replace("{target}", target.address))
        with RunningApp(config, tmp_path / "data") as running:
            running.fire("SiteDown", priority="P0", instance="web-1")
            running.fire("DiskFull", severity="warning")
            running.fire("Gone", resolved=True, priority="P2")
            yield running


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def acks(daemon: RunningApp) -> list[dict[str, Any]]:
    return httpx.get(daemon.url + "/api/v1/acks", timeout=5).json()["data"]  # type: ignore[no-any-return]


def test_ack_then_remove(daemon: RunningApp, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "ack", "--url", daemon.url, "--by", "alice", "--comment", "on it", "alertname=SiteDown", "instance=~web-.*")
    assert (code, err) == (0, "")
    assert out == 'acknowledged: {}:{alertname="SiteDown"} (SiteDown) by alice\n'
    (ack,) = acks(daemon)
    assert (ack["by"], ack["comment"], ack["via"], ack["alertnames"]) == ("alice", "on it", "cli", ["SiteDown"])
    escalator = daemon.call(lambda app: app.notifier.escalator)  # type: ignore[union-attr]
    assert [a.by for a in escalator.acks()] == ["alice"]

    code, out, err = run_cli(capsys, "ack", "--url", daemon.url, "--remove", "alertname=SiteDown")
    assert (code, err) == (0, "")
    assert out == 'no longer acknowledged: {}:{alertname="SiteDown"} (SiteDown) by alice\n'
    assert acks(daemon) == []

    # Removing it again: nothing is acknowledged any more.
    code, out, err = run_cli(capsys, "ack", "--url", daemon.url, "--remove", "alertname=SiteDown")
    assert (code, out) == (1, "")
    assert err == "alertd ack: the matching alerts are not acknowledged\n"


def test_ack_by_group_key(daemon: RunningApp, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "ack", "--url", daemon.url, "--by", "bob", "--group-key", '{}:{alertname="DiskFull"}')
    assert code == 0 and out == 'acknowledged: {}:{alertname="DiskFull"} (DiskFull) by bob\n'


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--by", "alice", "alertname=Nothing"], 'alertd ack: no alert matches {alertname="Nothing"}\n'),
        (["--by", "alice", "alertname=Gone"], 'alertd ack: the alerts matching {alertname="Gone"} are resolved: there is nothing to acknowledge\n'),
        (["--remove", "alertname=Nothing"], 'alertd ack: no alert matches {alertname="Nothing"}\n'),
        (["--by", "alice", "--group-key", "{}:{alertname=\"Nope\"}"], 'alertd ack: no alert matches group "{}:{alertname="Nope"}"\n'),
    ],
    ids=["nothing-matches", "only-resolved", "remove-nothing-matches", "unknown-group-key"],
)
def test_nothing_to_acknowledge(daemon: RunningApp, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, out, err = run_cli(capsys, "ack", "--url", daemon.url, *argv)
    assert (code, out, err) == (1, "", message)
    assert acks(daemon) == []


@pytest.mark.parametrize(
    ("matcher", "why"),
    [("alertname=~(", "alertname=~("), ("=SiteDown", "=SiteDown"), ("alertname", "alertname")],
)
def test_a_bad_matcher_is_refused_before_calling(capsys: pytest.CaptureFixture[str], matcher: str, why: str) -> None:
    # No daemon: the matcher is checked first, so the URL is never called.
    code, out, err = run_cli(capsys, "ack", "--url", f"http://127.0.0.1:{free_port()}", "--by", "alice", matcher)
    assert (code, out) == (1, "")
    assert err.startswith(f"alertd ack: bad matcher {why!r}: ") and err.count("\n") == 1, err


def test_usage_mistakes(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert run_cli(capsys, "ack", "--url", url, "alertname=SiteDown") == (2, "", "alertd ack: --by NAME is required\n")
    code, _, err = run_cli(capsys, "ack", "--url", url, "--by", "alice")
    assert code == 2 and "give at least one matcher" in err
    code, _, err = run_cli(capsys, "report", "--url", url, "--since", "soon")
    assert code == 2 and err.startswith("alertd report: --since: ")


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:{port}", "127.0.0.1:{port}", "http://a:b:c", "http://x\x01y"],
    ids=["refused", "no-scheme", "bad-port", "control-character"],
)
@pytest.mark.parametrize("command", [["ack", "--by", "alice", "alertname=SiteDown"], ["ack", "--remove", "alertname=SiteDown"], ["report"]])
def test_an_unreachable_url_is_one_clear_line(capsys: pytest.CaptureFixture[str], url: str, command: list[str]) -> None:
    url = url.format(port=free_port())
    code, out, err = run_cli(capsys, command[0], "--url", url, *command[1:])
    verb = "cannot read" if command[0] == "report" else "cannot reach"
    assert (code, out) == (1, "")
    assert err.startswith(f"alertd {command[0]}: {verb} {url}: ") and err.count("\n") == 1, err
    assert "Traceback" not in err


def test_a_url_that_is_not_alertd(capsys: pytest.CaptureFixture[str]) -> None:
    # Something else answers there: a server that takes GET only and answers JSON that is not
    # alertd's.
    with ThreadedFakeTarget() as other:
        other.set(json.dumps([1, 2]), content_type="application/json")
        url = f"http://{other.address}"
        assert run_cli(capsys, "report", "--url", url) == (1, "", "alertd report: HTTP 200: [1, 2]\n")
        assert run_cli(capsys, "ack", "--url", url, "--by", "alice", "alertname=SiteDown") == (1, "", "alertd ack: HTTP 405: 405: Method Not Allowed\n")


def test_report(daemon: RunningApp, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "ack", "--url", daemon.url, "--by", "alice", "alertname=SiteDown")[0] == 0
    # Uptime comes from the scraped `up` series: wait for a few samples of the target.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        code, out, err = run_cli(capsys, "report", "--url", daemon.url, "--since", "1h", "--json")
        assert (code, err) == (0, "")
        data = json.loads(out)
        if data["uptime_percent"]:
            break
        time.sleep(0.2)
    assert data["uptime_percent"] == {"app": 100.0}
    assert data["severities"]["P0"]["count"] == 1 and data["severities"]["P0"]["acknowledged"] == 1
    assert data["severities"]["warning"]["count"] == 1 and data["severities"]["warning"]["acknowledged"] == 0
    (escalated,) = [e for e in data["escalations"] if e["alertnames"] == ["SiteDown"]]
    assert escalated["acknowledged_by"] == "alice" and escalated["levels"][0]["receivers"] == ["primary"]

    code, out, err = run_cli(capsys, "report", "--url", daemon.url, "--since", "1h")
    assert (code, err) == (0, "")
    assert out.startswith("Incidents from ")
    assert "\nP0 " in out and "\nwarning " in out
    assert "SiteDown [P0] since " in out and "(open, acknowledged by alice)" in out
    assert "  app " in out and "100.000 %" in out

    code, out, err = run_cli(capsys, "report", "--url", daemon.url, "--since", "0s")
    assert (code, out) == (1, "")
    assert err == 'alertd report: invalid parameter "since": must be longer than 0s\n'
