"""Message formats: fields from labels, annotations and the rule's expression; safe substitution."""

from __future__ import annotations

import io
import json

import pytest

from daemon.clock import FakeClock
from daemon.config.receivers import ReceiverConfig
from daemon.dispatch.alert import Alert
from daemon.notify.message import (
    alert_fields,
    expression_facts,
    expression_of,
    html_escape,
    render,
    single_line,
    slack_escape,
    truncate,
)
from daemon.notify.notification import Notification, build_integrations
from daemon.tsdb.labels import Labels

NOW = 1_700_000_000.0


def url(expr: str) -> str:
    from urllib.parse import quote

    return "http://prometheus:9090/graph?g0.expr=" + quote(expr, safe="") + "&g0.tab=1"


@pytest.mark.parametrize(
    ("expr", "metric", "threshold"),
    [
        ('up{job="digitallz-frontend"} == 0', "up", "0"),
        ("histogram_quantile(0.95, rate(http_request_duration_seconds_bucket[5m])) > 1", "http_request_duration_seconds_bucket", "1"),
        ('rate(http_requests_total{status=~"5.."}[5m]) / rate(http_requests_total[5m]) > 0.05', "http_requests_total", "0.05"),
        ('100 - (avg by(instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])) * 100) > 80', "node_cpu_seconds_total", "80"),
        ("(1 - (node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)) * 100 > 80", "node_memory_MemAvailable_bytes", "80"),
        ("0.5 < redis_hit_ratio", "redis_hit_ratio", "0.5"),
        ("(disk_free < -1)", "disk_free", "-1"),
        ("errors > 5 and on() hour() > 8", "errors", "5"),
        ("queue_depth > queue_capacity * 0.9", "queue_depth", "queue_capacity * 0.9"),
        ("absent(up)", "up", ""),
        ("vector(1) > 0", "vector(1)", "0"),
        ("not promql (((", "", ""),
        ("", "", ""),
    ],
)
def test_expression_facts(expr: str, metric: str, threshold: str) -> None:
    facts = expression_facts(expr)
    assert (facts.metric_name, facts.threshold) == (metric, threshold)


def test_expression_from_generator_urls() -> None:
    expr = 'rate(x{a=~"5.."}[5m]) > 0.05'
    assert expression_of(url(expr)) == expr
    assert expression_of("http://p/graph?g0.expr=up+%3D%3D+0&g0.tab=1") == "up == 0"
    assert expression_of("http://p/alerts") == "" and expression_of("") == "" and expression_of("http://[::1") == ""


def notification(*alerts: Alert) -> Notification:
    return Notification("team", "{}:{}", {}, alerts, "http://alertd:9095", NOW)


def test_fields_annotations_win_over_the_expression() -> None:
    a = Alert(
        labels=Labels.of({"alertname": "CPU", "severity": "P1", "instance": "web-1"}),
        annotations={"threshold": "80 %", "value": "93.5", "dashboard": "https://grafana/d/cpu"},
        starts_at=NOW - 60,
        ends_at=NOW + 300,
        generator_url=url("cpu_usage_percent > 80"),
    )
    fields = alert_fields(a, notification(a))
    assert {k: fields[k] for k in ("alert_name", "severity", "metric_name", "threshold", "current_value", "dashboard_url", "status", "instance")} == {
        "alert_name": "CPU",
        "severity": "P1",
        "metric_name": "cpu_usage_percent",
        "threshold": "80 %",
        "current_value": "93.5",
        "dashboard_url": "https://grafana/d/cpu",
        "status": "firing",
        "instance": "web-1",
    }
    assert fields["timestamp"] == "2023-11-14 22:12:20 UTC"
    resolved = Alert(labels=a.labels, starts_at=NOW - 60, ends_at=NOW - 10)
    fields = alert_fields(resolved, notification(resolved))
    assert fields["status"] == "resolved" and fields["timestamp"] == "2023-11-14 22:13:10 UTC"
    assert fields["metric_name"] == fields["threshold"] == fields["current_value"] == "n/a"
    assert fields["dashboard_url"] == "http://alertd:9095"


@pytest.mark.parametrize(
    "template",
    ["{labels.__class__}", "{severity.__class__.__mro__}", "{0}", "{severity!r}", "{severity:>99999999}", "{__import__}", "{{severity}}"],
)
def test_substitution_is_fields_only(template: str) -> None:
    # Nothing but a plain {name} is replaced; everything else stays as written.
    out = render(template, {"severity": "P0"})
    assert out == template.replace("{{severity}}", "{{severity}}").replace("{severity}", "P0")


def test_unknown_fields_stay_visible_and_values_are_not_reinterpreted() -> None:
    assert render("{severity} {nope}", {"severity": "{nope} {severity}"}) == "{nope} {severity} {nope}"


def test_escapes() -> None:
    assert slack_escape("<!here> & <@U1>") == "&lt;!here&gt; &amp; &lt;@U1&gt;"
    assert html_escape('<script>"x"&') == "&lt;script&gt;&quot;x&quot;&amp;"
    assert single_line("a\r\nBcc: x\x00\u2028y") == "a Bcc: x y"
    assert truncate("x" * 100_000, 10) == "x" * 9 + "…" and truncate("short", 10) == "short"
    assert render("{v}", {"v": "y" * 100_000}, limit=50) == "y" * 49 + "…"


def test_console_prints_one_line_per_alert() -> None:
    out = io.StringIO()
    receiver = ReceiverConfig.model_validate({"name": "console", "console_configs": [{}, {"format": "json"}]})
    text, as_json = build_integrations(receiver, http=None, aiohttp_session=None, clock=FakeClock(NOW), stdout=out)  # type: ignore[arg-type]
    a = Alert(
        labels=Labels.of({"alertname": "Down", "severity": "P2", "x": "a\nb"}),
        starts_at=NOW,
        ends_at=NOW + 60,
        generator_url=url("up == 0"),
    )
    assert (text.name, text.index, as_json.index, text.send_resolved) == ("console", 0, 1, True)
    import asyncio

    asyncio.run(text.notify(notification(a)))
    asyncio.run(as_json.notify(notification(a)))
    line, obj = out.getvalue().splitlines()
    assert line == "team: [firing] [P2] Down - 2023-11-14 22:13:20 UTC up = n/a (threshold 0)"
    assert json.loads(obj)["x"] == "a\nb"
