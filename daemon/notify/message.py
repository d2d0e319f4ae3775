"""The specification's message formats: ``{field}`` substitution over an alert's fields.

A format is plain text in which ``{name}`` is replaced by a field's value; nothing else is
interpreted (no attribute access, no indexing, no expressions), and a name that is not a field
stays as written. Every substituted value goes through the destination's escaping (Slack's
``&<>``, HTML, a header's CR/LF) and a length cap, so label values cannot inject markup, mentions
or headers.

Fields of one alert:

- every label and annotation by its name (``{instance}``, ``{summary}``);
- ``{alert_name}`` (label ``alertname``), ``{severity}`` (label ``severity``), ``{status}``
  (``firing``/``resolved``), ``{fingerprint}``;
- ``{metric_name}`` and ``{threshold}``: the annotations of those names when set, else derived
  from the rule's expression, which the alert carries in its ``generator_url``
  (``.../graph?g0.expr=...``, as Prometheus and alertd's rule engine build it): the constant of
  the top-level comparison and the first metric on the other side (``rate(http_requests_total
  [5m]) > 0.05`` gives ``http_requests_total`` and ``0.05``);
- ``{current_value}``: the annotation ``current_value``, else ``value``, else ``n/a`` (a rule
  sets it with ``current_value: "{{ $value }}"``);
- ``{timestamp}``: when the alert started (firing) or ended (resolved), ``YYYY-MM-DD HH:MM:SS UTC``;
  ``{starts_at}``, ``{ends_at}`` likewise;
- ``{dashboard_url}``: the annotation ``dashboard_url`` or ``dashboard``, else the
  ``generator_url``, else the external URL; ``{generator_url}``, ``{external_url}``, ``{receiver}``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from daemon.promql import ast
from daemon.promql.parser import parse_expr
from daemon.promql.printer import format_expr, format_number

if TYPE_CHECKING:
    from daemon.dispatch.alert import Alert
    from daemon.notify.notification import Notification

FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
NOT_AVAILABLE = "n/a"
ELLIPSIS = "…"
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")

Escape = Callable[[str], str]


@dataclass(frozen=True)
class ExpressionFacts:
    """What a rule's expression says about its alert: the metric compared and the threshold."""

    metric_name: str = ""
    threshold: str = ""


def expression_of(generator_url: str) -> str:
    """The PromQL expression in a Prometheus-style generator URL (``g0.expr``), or ``""``."""
    try:
        query = urlsplit(generator_url).query
    except ValueError:
        return ""
    values = parse_qs(query).get("g0.expr")
    return values[0] if values else ""


def expression_facts(expr: str) -> ExpressionFacts:
    """The metric and threshold of an alerting expression's top-level comparison.

    Set operators (``and``, ``or``, ``unless``) are looked through to their left side. A
    comparison with a number gives that number as the threshold and the first metric name of the
    other side (its printed form if it names none); a comparison of two vectors gives the right
    side, printed, as the threshold. Anything else (or an expression that does not parse) gives
    the first metric name and no threshold.
    """
    if not expr:
        return ExpressionFacts()
    try:
        node = parse_expr(expr)
    except Exception:  # noqa: BLE001 - any unparsable text just has no facts to offer
        return ExpressionFacts()
    node = _unparen(node)
    while isinstance(node, ast.BinaryExpr) and node.op in ast.SET_OPERATORS:
        node = _unparen(node.lhs)
    if not (isinstance(node, ast.BinaryExpr) and node.op in ast.COMPARISON_OPERATORS):
        return ExpressionFacts(metric_name=_first_metric(node) or "")
    lhs, rhs = _unparen(node.lhs), _unparen(node.rhs)
    right, left = _constant(rhs), _constant(lhs)
    if right is not None:
        side, threshold = lhs, format_number(right)
    elif left is not None:
        side, threshold = rhs, format_number(left)
    else:
        side, threshold = lhs, format_expr(rhs)
    return ExpressionFacts(metric_name=_first_metric(side) or format_expr(side), threshold=threshold)


def format_time(seconds: float) -> str:
    """Unix seconds as ``2024-01-15 10:30:00 UTC``."""
    try:
        return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return NOT_AVAILABLE


def alert_fields(alert: Alert, notification: Notification) -> dict[str, str]:
    """Every field a format may name, for one alert of a notification (see the module doc)."""
    labels = dict(alert.labels.items())
    annotations = dict(alert.annotations)
    fields = {**labels, **annotations}
    facts = ExpressionFacts()
    if not annotations.get("metric_name") or not annotations.get("threshold"):
        facts = expression_facts(expression_of(alert.generator_url))
    resolved = alert.resolved_at(notification.now)
    fields.update(
        status="resolved" if resolved else "firing",
        alert_name=labels.get("alertname", ""),
        severity=labels.get("severity", ""),
        fingerprint=alert.fingerprint,
        metric_name=annotations.get("metric_name") or facts.metric_name or NOT_AVAILABLE,
        threshold=annotations.get("threshold") or facts.threshold or NOT_AVAILABLE,
        current_value=annotations.get("current_value") or annotations.get("value") or NOT_AVAILABLE,
        timestamp=format_time(alert.ends_at if resolved else alert.starts_at),
        starts_at=format_time(alert.starts_at),
        ends_at=format_time(alert.ends_at) if resolved else "",
        dashboard_url=(
            annotations.get("dashboard_url")
            or annotations.get("dashboard")
            or alert.generator_url
            or notification.external_url
        ),
        generator_url=alert.generator_url,
        external_url=notification.external_url,
        receiver=notification.receiver,
    )
    return fields


def render(template: str, fields: Mapping[str, str], *, escape: Escape | None = None, limit: int | None = None) -> str:
    """``template`` with each ``{name}`` that is a field replaced by its (capped, escaped) value."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in fields:
            return match.group(0)
        value = truncate(str(fields[name]), limit) if limit is not None else str(fields[name])
        return escape(value) if escape is not None else value

    return FIELD.sub(substitute, template)


def render_alerts(
    notification: Notification,
    firing_format: str,
    resolved_format: str | None = None,
    *,
    escape: Escape | None = None,
    limit: int | None = None,
    separator: str = "\n\n",
) -> str:
    """One rendering per alert (firing first), joined; resolved alerts use ``resolved_format``."""
    parts = []
    for alert in notification.alerts:
        resolved = alert.resolved_at(notification.now)
        form = resolved_format if resolved and resolved_format is not None else firing_format
        parts.append(render(form, alert_fields(alert, notification), escape=escape, limit=limit))
    return separator.join(parts)


def first_fields(notification: Notification) -> dict[str, str]:
    """The fields of the notification's first alert (firing first), for one-line formats."""
    if not notification.alerts:
        return {"status": notification.status, "receiver": notification.receiver}
    fields = alert_fields(notification.alerts[0], notification)
    fields["status"] = notification.status
    fields["num_firing"] = str(len(notification.firing))
    fields["num_resolved"] = str(len(notification.resolved))
    fields["num_alerts"] = str(len(notification.alerts))
    return fields


def truncate(text: str, limit: int | None) -> str:
    """``text`` cut to ``limit`` characters, the last one an ellipsis when something was cut."""
    if limit is None or len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + ELLIPSIS


def slack_escape(value: str) -> str:
    """Slack's mrkdwn escaping: ``&``, ``<``, ``>`` (so ``<!channel>`` in a label stays text)."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def html_escape(value: str) -> str:
    return html.escape(value, quote=True)


def single_line(value: str) -> str:
    """Control characters (CR, LF, NUL, ...) replaced by a space: safe inside a header."""
    return _CONTROL.sub(" ", value)


def _unparen(node: ast.Expr) -> ast.Expr:
    while isinstance(node, ast.ParenExpr):
        node = node.expr
    return node


def _constant(node: ast.Expr) -> float | None:
    if isinstance(node, ast.NumberLiteral):
        return node.value
    if isinstance(node, ast.UnaryExpr) and isinstance(_unparen(node.expr), ast.NumberLiteral):
        value = _unparen(node.expr).value  # type: ignore[attr-defined]
        return -value if node.op == "-" else value
    return None


def _first_metric(node: ast.Expr) -> str | None:
    """The first metric name in ``node``, left to right, depth first."""
    if isinstance(node, ast.VectorSelector):
        return node.name
    if isinstance(node, ast.MatrixSelector):
        return node.selector.name
    children: tuple[ast.Expr | None, ...]
    if isinstance(node, ast.BinaryExpr):
        children = (node.lhs, node.rhs)
    elif isinstance(node, ast.AggregateExpr):
        children = (node.expr,)
    elif isinstance(node, ast.Call):
        children = node.args
    elif isinstance(node, (ast.ParenExpr, ast.UnaryExpr, ast.SubqueryExpr)):
        children = (node.expr,)
    else:
        children = ()
    for child in children:
        if child is not None:
            name = _first_metric(child)
            if name:
                return name
    return None
