"""Prometheus' /api/v1/rules and /api/v1/alerts over the running rule groups."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from aiohttp import web

from daemon.api import server
from daemon.api.prom import BadData, ok
from daemon.rules.alert import Alert
from daemon.rules.alerting import AlertingRule
from daemon.rules.group import RuleGroup
from daemon.rules.recording import RecordingRule
from daemon.rules.sink import rfc3339


async def rules(request: web.Request) -> web.Response:
    """Groups with their rules; ``type=alert|record``, ``rule_name[]``, ``rule_group[]``, ``file[]``
    and ``exclude_alerts=true`` filter as in Prometheus."""
    query = request.query
    kind = query.get("type", "")
    if kind not in ("", "alert", "record"):
        raise BadData(f'invalid query parameter type="{kind}": not supported value "{kind}"')
    exclude_alerts = query.get("exclude_alerts", "false").lower()
    if exclude_alerts not in ("true", "false", "1", "0", "t", "f"):
        raise BadData(f'parse exclude_alerts: strconv.ParseBool: parsing "{exclude_alerts}": invalid syntax')
    names = set(query.getall("rule_name[]", []))
    group_names = set(query.getall("rule_group[]", []))
    files = set(query.getall("file[]", []))
    with_alerts = exclude_alerts not in ("true", "1", "t")
    groups = []
    for group in request.app[server.DAEMON].rules.groups():
        if (group_names and group.name not in group_names) or (files and group.file not in files):
            continue
        shown = []
        for rule in group.rules:
            if names and rule.name not in names:
                continue
            if isinstance(rule, AlertingRule) and kind in ("", "alert"):
                shown.append(alerting_rule_json(rule, with_alerts))
            elif isinstance(rule, RecordingRule) and kind in ("", "record"):
                shown.append(recording_rule_json(rule))
        if (kind or names) and not shown:
            continue
        groups.append(group_json(group, shown))
    return ok({"groups": groups})


async def alerts(request: web.Request) -> web.Response:
    """Every pending and firing alert."""
    return ok({"alerts": [alert_json(a) for a in request.app[server.DAEMON].rules.alerts()]})


def group_json(group: RuleGroup, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": group.name,
        "file": group.file,
        "rules": rules,
        "interval": group.interval,
        "limit": group.limit,
        "evaluationTime": group.evaluation_time,
        "lastEvaluation": rfc3339(group.last_evaluation),
    }


def alerting_rule_json(rule: AlertingRule, with_alerts: bool = True) -> dict[str, Any]:
    status = rule.status
    data: dict[str, Any] = {
        "state": rule.state.value,
        "name": rule.name,
        "query": rule.expr,
        "duration": rule.hold,
        "keepFiringFor": rule.keep_firing_for,
        "labels": rule.labels,
        "annotations": rule.annotations,
        "health": status.health,
        "lastError": status.last_error,
        "evaluationTime": status.evaluation_time,
        "lastEvaluation": rfc3339(status.last_evaluation),
        "type": "alerting",
    }
    if with_alerts:
        data["alerts"] = [alert_json(a) for a in rule.alerts()]
    if not data["lastError"]:
        del data["lastError"]  # Prometheus omits it when empty
    return data


def recording_rule_json(rule: RecordingRule) -> dict[str, Any]:
    status = rule.status
    data: dict[str, Any] = {
        "name": rule.name,
        "query": rule.expr,
        "labels": rule.labels,
        "health": status.health,
        "lastError": status.last_error,
        "evaluationTime": status.evaluation_time,
        "lastEvaluation": rfc3339(status.last_evaluation),
        "type": "recording",
    }
    if not data["lastError"]:
        del data["lastError"]
    return data


def alert_json(alert: Alert) -> dict[str, Any]:
    data: dict[str, Any] = {
        "labels": alert.labels.to_dict(),
        "annotations": alert.annotations,
        "state": alert.state.value,
        "activeAt": rfc3339(alert.active_at),
        "value": format_value(alert.value),
    }
    if alert.keep_firing_since is not None:
        data["keepFiringSince"] = rfc3339(alert.keep_firing_since)
    return data


def format_value(value: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'e', -1, 64)``: the shortest exact digits in exponent form."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    digits = Decimal(repr(value)).normalize().as_tuple().digits
    return format(value, f".{max(0, len(digits) - 1)}e")
