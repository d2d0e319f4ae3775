"""What a rule's expression reads: how far back in time, and which metric names."""

from __future__ import annotations

from collections.abc import Iterator

from daemon.promql.ast import Expr, MatrixSelector, SubqueryExpr, VectorSelector
from daemon.tsdb.labels import METRIC_NAME
from daemon.tsdb.matcher import EQUAL


def window(expr: Expr) -> float:
    """Seconds before the evaluation time that the expression reads, lookback excluded.

    Ranges, offsets and subquery ranges add up along a path (``max_over_time(rate(x[5m])[1h:])
    offset 1d`` reads 1d + 1h + 5m back). Selectors pinned with ``@`` are not counted.
    """
    if isinstance(expr, VectorSelector):
        return 0.0 if expr.at is not None or expr.at_edge else max(0.0, expr.offset)
    if isinstance(expr, MatrixSelector):
        sel = expr.selector
        return 0.0 if sel.at is not None or sel.at_edge else max(0.0, sel.offset + expr.range)
    if isinstance(expr, SubqueryExpr):
        if expr.at is not None or expr.at_edge:
            return 0.0
        return max(0.0, expr.offset + expr.range + window(expr.expr))
    return max((window(child) for child in _children(expr)), default=0.0)


def metric_names(expr: Expr) -> frozenset[str] | None:
    """The metric names the expression selects, or None when a selector may match any name."""
    names: set[str] = set()
    for selector in _selectors(expr):
        name = selector.name or next(
            (m.value for m in selector.matchers if m.name == METRIC_NAME and m.op == EQUAL), None
        )
        if not name:
            return None
        names.add(name)
    return frozenset(names)


def _selectors(expr: Expr) -> Iterator[VectorSelector]:
    if isinstance(expr, VectorSelector):
        yield expr
        return
    for child in _children(expr):
        yield from _selectors(child)


def _children(expr: Expr) -> Iterator[Expr]:
    for name in getattr(expr, "__slots__", ()):
        value = getattr(expr, name, None)
        if isinstance(value, Expr):
            yield value
        elif isinstance(value, tuple):
            yield from (v for v in value if isinstance(v, Expr))
