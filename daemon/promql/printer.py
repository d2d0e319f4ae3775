"""Printing a syntax tree back to PromQL text, the way Prometheus' ``Expr.String()`` does.

The output is canonical: one space around binary operators, ``by (...)`` before the
arguments, label matchers sorted, durations in their shortest unit form (``90m`` is ``1h30m``),
numbers without exponents. Rule files and the HTTP API show expressions in this form.
"""

from __future__ import annotations

from daemon.promql.ast import (
    AggregateExpr,
    BinaryExpr,
    Call,
    Expr,
    MatrixSelector,
    NumberLiteral,
    ParenExpr,
    StringLiteral,
    SubqueryExpr,
    UnaryExpr,
    VectorMatching,
    VectorSelector,
)
from daemon.promql.arith import format_float as format_number
from daemon.promql.lexer import go_quote
from daemon.tsdb import Matcher
from daemon.tsdb.labels import METRIC_NAME

__all__ = ["format_duration", "format_expr", "format_number"]

_UNITS = (
    ("y", 365 * 86400_000, True),
    ("w", 7 * 86400_000, True),
    ("d", 86400_000, False),
    ("h", 3600_000, False),
    ("m", 60_000, False),
    ("s", 1000, False),
    ("ms", 1, False),
)


def format_expr(expr: Expr) -> str:
    """PromQL text for ``expr``, identical to what Prometheus prints for the same query."""
    if isinstance(expr, NumberLiteral):
        return format_number(expr.value)
    if isinstance(expr, StringLiteral):
        return go_quote(expr.value)
    if isinstance(expr, VectorSelector):
        return _selector(expr) + _at(expr.at, expr.at_edge) + _offset(expr.offset)
    if isinstance(expr, MatrixSelector):
        inner = expr.selector
        return (
            f"{_selector(inner)}[{format_duration(expr.range)}]"
            f"{_at(inner.at, inner.at_edge)}{_offset(inner.offset)}"
        )
    if isinstance(expr, SubqueryExpr):
        step = format_duration(expr.step) if expr.step else ""
        return (
            f"{format_expr(expr.expr)}[{format_duration(expr.range)}:{step}]"
            f"{_at(expr.at, expr.at_edge)}{_offset(expr.offset)}"
        )
    if isinstance(expr, UnaryExpr):
        return expr.op + format_expr(expr.expr)
    if isinstance(expr, ParenExpr):
        return f"({format_expr(expr.expr)})"
    if isinstance(expr, BinaryExpr):
        modifier = " bool" if expr.return_bool else ""
        return f"{format_expr(expr.lhs)} {expr.op}{modifier}{_matching(expr.matching)} {format_expr(expr.rhs)}"
    if isinstance(expr, Call):
        return f"{expr.func}({', '.join(format_expr(arg) for arg in expr.args)})"
    if isinstance(expr, AggregateExpr):
        head = expr.op
        if expr.without:
            head += f" without ({_labels(expr.grouping)}) "
        elif expr.grouping:
            head += f" by ({_labels(expr.grouping)}) "
        param = f"{format_expr(expr.param)}, " if expr.param is not None else ""
        return f"{head}({param}{format_expr(expr.expr)})"
    raise TypeError(f"not a PromQL expression: {expr!r}")


def format_duration(seconds: float) -> str:
    """A duration as Prometheus prints one (``1h30m``, ``2w``, ``90d``, ``500ms``, ``0s``).

    Years and weeks are used only when they divide the duration exactly.
    """
    ms = int(round(seconds * 1000))
    if ms == 0:
        return "0s"
    parts = []
    for unit, size, exact in _UNITS:
        if exact and ms % size:
            continue
        count = ms // size
        if count > 0:
            parts.append(f"{count}{unit}")
            ms -= count * size
    return "".join(parts)


def _selector(node: VectorSelector) -> str:
    shown = []
    skipped_name = False
    for matcher in node.matchers:
        if (
            not skipped_name
            and matcher.name == METRIC_NAME
            and matcher.op == "="
            and matcher.value == node.name
            and matcher.value != ""
        ):
            skipped_name = True
            continue
        shown.append(_matcher(matcher))
    text = node.name or ""
    if shown:
        text += "{" + ",".join(sorted(shown)) + "}"
    return text


def _matcher(matcher: Matcher) -> str:
    return f"{_label(matcher.name)}{matcher.op}{go_quote(matcher.value)}"


def _label(name: str) -> str:
    """A label name, quoted unless it is a valid name in the legacy character set."""
    legacy = bool(name) and all(
        c == "_" or "a" <= c <= "z" or "A" <= c <= "Z" or (i > 0 and "0" <= c <= "9") for i, c in enumerate(name)
    )
    return name if legacy else go_quote(name)


def _labels(names: tuple[str, ...]) -> str:
    return ", ".join(_label(name) for name in names)


def _at(at: float | None, edge: str | None) -> str:
    if at is not None:
        return f" @ {round(at * 1000) / 1000:.3f}"
    if edge is not None:
        return f" @ {edge}()"
    return ""


def _offset(offset: float) -> str:
    if offset > 0:
        return f" offset {format_duration(offset)}"
    if offset < 0:
        return f" offset -{format_duration(-offset)}"
    return ""


def _matching(matching: VectorMatching | None) -> str:
    if matching is None:
        return ""
    grouped = matching.card in ("many-to-one", "one-to-many")
    text = ""
    if matching.labels or matching.on or grouped:
        text = f" {'on' if matching.on else 'ignoring'} ({_labels(matching.labels)})"
    if grouped:
        side = "left" if matching.card == "many-to-one" else "right"
        text += f" group_{side} ({_labels(matching.include)})"
    return text
