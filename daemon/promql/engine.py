"""The PromQL evaluator: expressions compiled once into plans, evaluated at instants or over ranges.

``Engine.compile`` turns a syntax tree into a tree of plan nodes (selectors resolved to their
matchers, functions to their implementations, groupings to key functions), so evaluating a
rule again costs no tree walking or dispatch on names. Every evaluation call (one instant, one
range query, or one ``instant_many`` batch) selects each distinct selector through the postings
index once and, for instant evaluations, computes each distinct subexpression once: plan nodes
carry a key equal for equal subtrees, and results are remembered per ``(key, timestamp)`` for
the duration of the call.

Semantics follow Prometheus 3: ranges are ``(t - range, t]``, instant selectors look back 5
minutes (``lookback``), stale markers end a series, ``@`` and ``offset`` move the evaluation
time of a selector or subquery, subquery steps are aligned to absolute multiples of the step.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from daemon.promql import arith
from daemon.promql.aggregate import Grouping, aggregate
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
from daemon.promql.binary import scalar_op, vector_scalar, vector_vector
from daemon.promql.errors import QueryError
from daemon.promql.functions import (
    DATE_FUNCTIONS,
    RANGE_FUNCTIONS,
    VALUE_FUNCTIONS,
    RangeFunction,
    expand_template,
    natural_key,
    round_value,
    valid_label_name,
)
from daemon.promql.histogram import bucket_fraction, bucket_quantile, parse_le
from daemon.promql.labelset import drop_name, ensure_unique, label_value, without
from daemon.promql.value import Sample, Scalar, SeriesPoints, String, Value
from daemon.tsdb import Labels, Matcher, Series, Store, is_stale
from daemon.tsdb.labels import EMPTY, METRIC_NAME
from daemon.tsdb.matcher import EQUAL, SelectorError, compile_regex

__all__ = ["Engine", "Query", "QueryError"]

# Prometheus refuses range queries with more points per series than this.
MAX_POINTS_PER_SERIES = 11_000

SCALAR, VECTOR, MATRIX, STRING = "scalar", "vector", "matrix", "string"

# Label sets remembered without their name, across evaluations; beyond this many (series churn),
# the cache starts over.
_LABEL_CACHE_LIMIT = 1_000_000

# One series' samples in a range: labels, timestamps (ms), values; stale markers removed.
Window = tuple[Labels, Sequence[int], Sequence[float]]

_LE = frozenset(("le",))


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


class _Context:
    """What one evaluation call shares: time bounds, the selection cache and the result memo."""

    __slots__ = ("store", "lookback_ms", "start_ms", "end_ms", "step_ms", "memo", "selected", "subquery_step_ms", "unnamed")

    def __init__(
        self, store: Store, lookback_ms: int, start_ms: int, end_ms: int, subquery_step_ms: int, memo: bool, step_ms: int = 0
    ) -> None:
        self.store = store
        self.step_ms = step_ms
        self.lookback_ms = lookback_ms
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.subquery_step_ms = subquery_step_ms
        self.memo: dict[tuple[_Key, int], Any] | None = {} if memo else None
        self.selected: dict[tuple[Matcher, ...], list[Series]] = {}
        # Label sets without their name, by label set; the engine keeps it from call to call.
        self.unnamed: dict[Labels, Labels] = {}

    def select(self, matchers: tuple[Matcher, ...]) -> list[Series]:
        found = self.selected.get(matchers)
        if found is None:
            found = self.selected[matchers] = self.store.select(matchers)
        return found


class _Key:
    """A subexpression as a memo key: equal trees are equal keys, hashed once at compile time."""

    __slots__ = ("expr", "_hash")

    def __init__(self, expr: Expr) -> None:
        self.expr = expr
        self._hash = hash(expr)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, _Key) and self._hash == other._hash and self.expr == other.expr)


# -- plan nodes --------------------------------------------------------------------------------


class _Node:
    """A compiled expression: ``eval(ctx, t_ms)`` gives a float, str, vector or list of windows."""

    __slots__ = ("type",)

    def __init__(self, type_: str) -> None:
        self.type = type_

    def eval(self, ctx: _Context, t: int) -> Any:
        raise NotImplementedError


class _Constant(_Node):
    __slots__ = ("value",)

    def __init__(self, type_: str, value: float | str) -> None:
        super().__init__(type_)
        self.value = value

    def eval(self, ctx: _Context, t: int) -> Any:
        return self.value


class _Shared(_Node):
    """Remembers the inner node's result per timestamp for the rest of the evaluation call."""

    __slots__ = ("inner", "key")

    def __init__(self, inner: _Node, key: _Key) -> None:
        super().__init__(inner.type)
        self.inner = inner
        self.key = key

    def eval(self, ctx: _Context, t: int) -> Any:
        memo = ctx.memo
        if memo is None:
            return self.inner.eval(ctx, t)
        k = (self.key, t)
        found = memo.get(k, memo)
        if found is memo:
            found = memo[k] = self.inner.eval(ctx, t)
        return found


class _Timed:
    """The evaluation time of a selector or subquery: ``@`` replaces it, ``offset`` moves it back."""

    __slots__ = ("at_ms", "edge", "offset_ms")

    def __init__(self, at: float | None, edge: str | None, offset: float) -> None:
        self.at_ms = None if at is None else _ms(at)
        self.edge = edge
        self.offset_ms = _ms(offset)

    def ref(self, ctx: _Context, t: int) -> int:
        if self.at_ms is not None:
            t = self.at_ms
        elif self.edge == "start":
            t = ctx.start_ms
        elif self.edge == "end":
            t = ctx.end_ms
        return t - self.offset_ms


class _VectorSelector(_Node):
    __slots__ = ("matchers", "time")

    def __init__(self, expr: VectorSelector) -> None:
        super().__init__(VECTOR)
        self.matchers = expr.matchers
        self.time = _Timed(expr.at, expr.at_edge, expr.offset)

    def eval(self, ctx: _Context, t: int) -> list[Sample]:
        ref = self.time.ref(ctx, t)
        lookback = ctx.lookback_ms
        out: list[Sample] = []
        append = out.append
        for series in ctx.select(self.matchers):
            value = series.latest_at(ref, lookback)
            if value is not None:
                append(Sample(series.labels, value))
        return out

    def timestamps(self, ctx: _Context, t: int) -> list[Sample]:
        """``timestamp(selector)``: each series' latest sample time, in seconds."""
        ref = self.time.ref(ctx, t)
        lookback = ctx.lookback_ms
        out: list[Sample] = []
        for series in ctx.select(self.matchers):
            found = series.latest_sample_at(ref, lookback)
            if found is not None:
                out.append(Sample(drop_name(series.labels), found[0] / 1000.0))
        return out


class _MatrixNode(_Node):
    """A range vector: ``windows`` gives every series' samples in the range and the range bounds."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(MATRIX)

    def windows(self, ctx: _Context, t: int) -> tuple[list[Window], int, int]:
        raise NotImplementedError

    def eval(self, ctx: _Context, t: int) -> list[Window]:
        return self.windows(ctx, t)[0]


class _MatrixSelector(_MatrixNode):
    __slots__ = ("matchers", "time", "range_ms", "one_name")

    def __init__(self, expr: MatrixSelector) -> None:
        super().__init__()
        selector = expr.selector
        self.matchers = selector.matchers
        self.time = _Timed(selector.at, selector.at_edge, selector.offset)
        self.range_ms = _ms(expr.range)
        # All series share one name: dropping it cannot make two label sets equal.
        self.one_name = any(m.name == METRIC_NAME and m.op == EQUAL for m in self.matchers)

    def windows(self, ctx: _Context, t: int) -> tuple[list[Window], int, int]:
        end = self.time.ref(ctx, t)
        start = end - self.range_ms
        out: list[Window] = []
        for series in ctx.select(self.matchers):
            ts, vals = series.window_fast(start, end)
            if not ts:
                continue
            total = sum(vals)
            if total != total:  # some NaN: maybe stale markers, which ranges leave out
                kept = [i for i, v in enumerate(vals) if not is_stale(v)]
                if len(kept) != len(vals):
                    if not kept:
                        continue
                    ts = [ts[i] for i in kept]  # type: ignore[assignment]
                    vals = [vals[i] for i in kept]  # type: ignore[assignment]
            out.append((series.labels, ts, vals))
        return out, start, end


    def apply(
        self,
        ctx: _Context,
        t: int,
        impl: Callable[[Sequence[int], Sequence[float], int, int, tuple[float, ...]], float | None],
        params: tuple[float, ...],
        keeps_name: bool,
    ) -> list[Sample]:
        """``impl`` over every series' window: ``windows`` and the function's loop in one pass.

        This is the hot path of rule evaluation (rate, increase, *_over_time of a selector),
        so it builds no intermediate list of windows.
        """
        end = self.time.ref(ctx, t)
        start = end - self.range_ms
        unnamed = ctx.unnamed
        out: list[Sample] = []
        append = out.append
        for series in ctx.select(self.matchers):
            ts, vals = series.window_fast(start, end)
            if not ts:
                continue
            total = sum(vals)
            if total != total:
                kept = [i for i, v in enumerate(vals) if not is_stale(v)]
                if len(kept) != len(vals):
                    if not kept:
                        continue
                    ts = [ts[i] for i in kept]  # type: ignore[assignment]
                    vals = [vals[i] for i in kept]  # type: ignore[assignment]
            value = impl(ts, vals, start, end, params)
            if value is None:
                continue
            labels = series.labels
            if not keeps_name:
                # The same series gives the same label set object every evaluation, so the
                # stages after this one (grouping) can find it by identity in their caches.
                dropped = unnamed.get(labels)
                if dropped is None:
                    dropped = unnamed[labels] = drop_name(labels)
                labels = dropped
            append(Sample(labels, value))
        return out


class _Subquery(_MatrixNode):
    __slots__ = ("inner", "time", "range_ms", "step_ms")

    def __init__(self, expr: SubqueryExpr, inner: _Node) -> None:
        super().__init__()
        self.inner = inner
        self.time = _Timed(expr.at, expr.at_edge, expr.offset)
        self.range_ms = _ms(expr.range)
        self.step_ms = _ms(expr.step)

    def windows(self, ctx: _Context, t: int) -> tuple[list[Window], int, int]:
        end = self.time.ref(ctx, t)
        start = end - self.range_ms
        step = self.step_ms or ctx.subquery_step_ms
        # The first multiple of the step inside (start, end].
        first = (start // step) * step
        if first <= start:
            first += step
        inner = self.inner
        series: dict[Labels, tuple[list[int], list[float]]] = {}
        scalar = inner.type == SCALAR
        for ts in range(first, end + 1, step):
            value = inner.eval(ctx, ts)
            if scalar:
                points = series.get(EMPTY)
                if points is None:
                    points = series[EMPTY] = ([], [])
                points[0].append(ts)
                points[1].append(value)
                continue
            for s in value:
                points = series.get(s.labels)
                if points is None:
                    points = series[s.labels] = ([], [])
                points[0].append(ts)
                points[1].append(s.value)
        return [(labels, p[0], p[1]) for labels, p in series.items()], start, end


class _RangeCall(_Node):
    """A function of a range vector (rate, *_over_time, ...), computed on each series' window."""

    __slots__ = ("function", "matrix", "params", "check_unique")

    def __init__(self, function: RangeFunction, matrix: _MatrixNode, params: list[_Node]) -> None:
        super().__init__(VECTOR)
        self.function = function
        self.matrix = matrix
        self.params = params
        self.check_unique = not function.keeps_name and not (isinstance(matrix, _MatrixSelector) and matrix.one_name)

    def eval(self, ctx: _Context, t: int) -> list[Sample]:
        params = tuple([p.eval(ctx, t) for p in self.params])
        matrix = self.matrix
        if isinstance(matrix, _MatrixSelector) and not self.function.at_eval_time:
            out = matrix.apply(ctx, t, self.function.impl, params, self.function.keeps_name)
            if self.check_unique:
                ensure_unique(out)
            return out
        windows, start, end = matrix.windows(ctx, t)
        impl = self.function.impl
        keep = self.function.keeps_name
        if self.function.at_eval_time:
            end = t
        out: list[Sample] = []
        append = out.append
        unnamed = ctx.unnamed
        for labels, ts, vals in windows:
            value = impl(ts, vals, start, end, params)
            if value is not None:
                if not keep:
                    # The same series gives the same (identical) label set every evaluation,
                    # so later stages (grouping) can look it up by identity.
                    dropped = unnamed.get(labels)
                    if dropped is None:
                        dropped = unnamed[labels] = drop_name(labels)
                    labels = dropped
                append(Sample(labels, value))
        if self.check_unique:
            ensure_unique(out)
        return out


class _Apply(_Node):
    """Any other function or operator: evaluate the arguments, then call ``impl(ctx, t, args)``."""

    __slots__ = ("impl", "args")

    def __init__(self, type_: str, impl: Callable[[_Context, int, list[Any]], Any], args: Sequence[_Node]) -> None:
        super().__init__(type_)
        self.impl = impl
        self.args = list(args)

    def eval(self, ctx: _Context, t: int) -> Any:
        return self.impl(ctx, t, [a.eval(ctx, t) for a in self.args])


# -- the compiler ------------------------------------------------------------------------------


def _unwrap(expr: Expr) -> Expr:
    while isinstance(expr, ParenExpr):
        expr = expr.expr
    return expr


def _value_map(fn: Callable[[float], float]) -> Callable[[_Context, int, list[Any]], list[Sample]]:
    def apply(ctx: _Context, t: int, args: list[Any]) -> list[Sample]:
        out = [Sample(drop_name(s.labels), fn(s.value)) for s in args[0]]
        ensure_unique(out)
        return out

    return apply


def _absent_labels(expr: Expr) -> Labels:
    """The labels ``absent`` gives its 1: the selector's equality matchers (names used once)."""
    expr = _unwrap(expr)
    if isinstance(expr, MatrixSelector):
        expr = expr.selector
    if not isinstance(expr, VectorSelector):
        return EMPTY
    pairs: dict[str, str] = {}
    repeated: set[str] = set()
    for m in expr.matchers:
        if m.name == METRIC_NAME:
            continue
        if m.name in pairs or m.name in repeated:
            repeated.add(m.name)
            pairs.pop(m.name, None)
            continue
        if m.op == EQUAL:
            pairs[m.name] = m.value
        else:
            repeated.add(m.name)
    return Labels.of(pairs)


def _sort_key_value(s: Sample) -> tuple[bool, float]:
    return (s.value == s.value, s.value)


class _Compiler:
    """Turns a syntax tree into plan nodes."""

    def compile(self, expr: Expr) -> _Node:
        node = self._compile(expr)
        return node

    def _shared(self, expr: Expr, node: _Node) -> _Node:
        return _Shared(node, _Key(expr))

    def _compile(self, expr: Expr) -> _Node:
        if isinstance(expr, ParenExpr):
            return self._compile(expr.expr)
        if isinstance(expr, NumberLiteral):
            return _Constant(SCALAR, float(expr.value))
        if isinstance(expr, StringLiteral):
            return _Constant(STRING, expr.value)
        if isinstance(expr, VectorSelector):
            return self._shared(expr, _VectorSelector(expr))
        if isinstance(expr, MatrixSelector):
            return _MatrixSelector(expr)
        if isinstance(expr, SubqueryExpr):
            return _Subquery(expr, self._compile(expr.expr))
        if isinstance(expr, UnaryExpr):
            return self._unary(expr)
        if isinstance(expr, BinaryExpr):
            return self._shared(expr, self._binary(expr))
        if isinstance(expr, AggregateExpr):
            return self._shared(expr, self._aggregate(expr))
        if isinstance(expr, Call):
            return self._shared(expr, self._call(expr))
        raise QueryError(f"unsupported expression {type(expr).__name__}")

    def _unary(self, expr: UnaryExpr) -> _Node:
        inner = self._compile(expr.expr)
        if expr.op != "-":
            return inner
        if inner.type == SCALAR:
            return _Apply(SCALAR, lambda ctx, t, args: -args[0], [inner])

        def negate(ctx: _Context, t: int, args: list[Any]) -> list[Sample]:
            out = [Sample(drop_name(s.labels), -s.value) for s in args[0]]
            ensure_unique(out)
            return out

        return self._shared(expr, _Apply(VECTOR, negate, [inner]))

    def _binary(self, expr: BinaryExpr) -> _Node:
        lhs = self._compile(expr.lhs)
        rhs = self._compile(expr.rhs)
        op = expr.op
        return_bool = expr.return_bool
        if lhs.type == SCALAR and rhs.type == SCALAR:
            return _Apply(SCALAR, lambda ctx, t, a: scalar_op(op, a[0], a[1], return_bool), [lhs, rhs])
        if lhs.type == VECTOR and rhs.type == VECTOR:
            matching = expr.matching or VectorMatching(card="many-to-many" if op in ("and", "or", "unless") else "one-to-one")
            return _Apply(VECTOR, lambda ctx, t, a: vector_vector(op, a[0], a[1], matching, return_bool), [lhs, rhs])
        scalar_left = lhs.type == SCALAR
        checks = op not in ("==", "!=", ">", "<", ">=", "<=") or return_bool

        def apply(ctx: _Context, t: int, a: list[Any]) -> list[Sample]:
            if scalar_left:
                out = vector_scalar(op, a[1], a[0], True, return_bool)
            else:
                out = vector_scalar(op, a[0], a[1], False, return_bool)
            if checks:
                ensure_unique(out)
            return out

        return _Apply(VECTOR, apply, [lhs, rhs])

    def _aggregate(self, expr: AggregateExpr) -> _Node:
        inner = self._compile(expr.expr)
        grouping = Grouping(expr.grouping, expr.without)
        op = expr.op
        args = [inner]
        if expr.param is not None:
            args.append(self._compile(expr.param))

        def apply(ctx: _Context, t: int, a: list[Any]) -> list[Sample]:
            return aggregate(op, a[0], grouping, a[1] if len(a) > 1 else None)

        return _Apply(VECTOR, apply, args)

    def _call(self, expr: Call) -> _Node:
        name = expr.func
        range_function = RANGE_FUNCTIONS.get(name)
        if range_function is not None:
            i = range_function.matrix_arg
            matrix = self._compile(expr.args[i])
            assert isinstance(matrix, _MatrixNode)
            params = [self._compile(a) for j, a in enumerate(expr.args) if j != i]
            return _RangeCall(range_function, matrix, params)
        args = [self._compile(a) for a in expr.args]
        value_function = VALUE_FUNCTIONS.get(name)
        if value_function is not None:
            return _Apply(VECTOR, _value_map(value_function), args)
        date_function = DATE_FUNCTIONS.get(name)
        if date_function is not None:
            return self._date(date_function, args)
        method = getattr(self, "_fn_" + name, None)
        if method is None:
            raise QueryError(f"function {name!r} is not supported")
        return method(expr, args)  # type: ignore[no-any-return]

    def _date(self, fn: Callable[[float], float], args: list[_Node]) -> _Node:
        if not args:
            return _Apply(VECTOR, lambda ctx, t, a: [Sample(EMPTY, fn(t / 1000.0))], [])
        return _Apply(VECTOR, _value_map(fn), args)

    # Functions with their own argument handling, by name.

    def _fn_time(self, expr: Call, args: list[_Node]) -> _Node:
        return _Apply(SCALAR, lambda ctx, t, a: t / 1000.0, [])

    def _fn_step(self, expr: Call, args: list[_Node]) -> _Node:
        return _Apply(SCALAR, lambda ctx, t, a: ctx.step_ms / 1000.0, [])

    def _fn_range(self, expr: Call, args: list[_Node]) -> _Node:
        return _Apply(SCALAR, lambda ctx, t, a: (ctx.end_ms - ctx.start_ms) / 1000.0, [])

    def _fn_start(self, expr: Call, args: list[_Node]) -> _Node:
        return _Apply(SCALAR, lambda ctx, t, a: ctx.start_ms / 1000.0, [])

    def _fn_end(self, expr: Call, args: list[_Node]) -> _Node:
        return _Apply(SCALAR, lambda ctx, t, a: ctx.end_ms / 1000.0, [])

    def _fn_min_of(self, expr: Call, args: list[_Node]) -> _Node:
        return _Apply(SCALAR, lambda ctx, t, a: arith.go_min(a[0], a[1]), args)

    def _fn_max_of(self, expr: Call, args: list[_Node]) -> _Node:
        return _Apply(SCALAR, lambda ctx, t, a: arith.go_max(a[0], a[1]), args)

    def _fn_pi(self, expr: Call, args: list[_Node]) -> _Node:
        return _Constant(SCALAR, 3.141592653589793)

    def _fn_vector(self, expr: Call, args: list[_Node]) -> _Node:
        return _Apply(VECTOR, lambda ctx, t, a: [Sample(EMPTY, a[0])], args)

    def _fn_scalar(self, expr: Call, args: list[_Node]) -> _Node:
        return _Apply(SCALAR, lambda ctx, t, a: a[0][0].value if len(a[0]) == 1 else arith.NAN, args)

    def _fn_absent(self, expr: Call, args: list[_Node]) -> _Node:
        labels = _absent_labels(expr.args[0])
        return _Apply(VECTOR, lambda ctx, t, a: [] if a[0] else [Sample(labels, 1.0)], args)

    def _fn_absent_over_time(self, expr: Call, args: list[_Node]) -> _Node:
        labels = _absent_labels(expr.args[0])
        return _Apply(VECTOR, lambda ctx, t, a: [] if a[0] else [Sample(labels, 1.0)], args)

    def _fn_timestamp(self, expr: Call, args: list[_Node]) -> _Node:
        inner = args[0]
        if isinstance(inner, _Shared) and isinstance(inner.inner, _VectorSelector):
            selector = inner.inner
            return _Apply(VECTOR, lambda ctx, t, a: selector.timestamps(ctx, t), [])

        def stamp(ctx: _Context, t: int, a: list[Any]) -> list[Sample]:
            out = [Sample(drop_name(s.labels), t / 1000.0) for s in a[0]]
            ensure_unique(out)
            return out

        return _Apply(VECTOR, stamp, args)

    def _fn_round(self, expr: Call, args: list[_Node]) -> _Node:
        def apply(ctx: _Context, t: int, a: list[Any]) -> list[Sample]:
            to_nearest = a[1] if len(a) > 1 else 1.0
            out = [Sample(drop_name(s.labels), round_value(s.value, to_nearest)) for s in a[0]]
            ensure_unique(out)
            return out

        return _Apply(VECTOR, apply, args)

    def _fn_clamp(self, expr: Call, args: list[_Node]) -> _Node:
        def apply(ctx: _Context, t: int, a: list[Any]) -> list[Sample]:
            low, high = a[1], a[2]
            if high < low:
                return []
            out = [Sample(drop_name(s.labels), arith.go_max(low, arith.go_min(high, s.value))) for s in a[0]]
            ensure_unique(out)
            return out

        return _Apply(VECTOR, apply, args)

    def _fn_clamp_min(self, expr: Call, args: list[_Node]) -> _Node:
        def apply(ctx: _Context, t: int, a: list[Any]) -> list[Sample]:
            out = [Sample(drop_name(s.labels), arith.go_max(a[1], s.value)) for s in a[0]]
            ensure_unique(out)
            return out

        return _Apply(VECTOR, apply, args)

    def _fn_clamp_max(self, expr: Call, args: list[_Node]) -> _Node:
        def apply(ctx: _Context, t: int, a: list[Any]) -> list[Sample]:
            out = [Sample(drop_name(s.labels), arith.go_min(a[1], s.value)) for s in a[0]]
            ensure_unique(out)
            return out

        return _Apply(VECTOR, apply, args)

    def _fn_sort(self, expr: Call, args: list[_Node]) -> _Node:
        # NaN sorts last either way.
        return _Apply(VECTOR, lambda ctx, t, a: sorted(a[0], key=lambda s: (s.value != s.value, s.value)), args)

    def _fn_sort_desc(self, expr: Call, args: list[_Node]) -> _Node:
        return _Apply(VECTOR, lambda ctx, t, a: sorted(a[0], key=_sort_key_value, reverse=True), args)

    def _fn_sort_by_label(self, expr: Call, args: list[_Node]) -> _Node:
        return self._sort_by_label(args, reverse=False)

    def _fn_sort_by_label_desc(self, expr: Call, args: list[_Node]) -> _Node:
        return self._sort_by_label(args, reverse=True)

    def _sort_by_label(self, args: list[_Node], reverse: bool) -> _Node:
        def apply(ctx: _Context, t: int, a: list[Any]) -> list[Sample]:
            names = a[1:]
            # Ties fall back to the whole label set, as Prometheus does.
            return sorted(
                a[0], key=lambda s: ([natural_key(label_value(s.labels, n)) for n in names], s.labels), reverse=reverse
            )

        return _Apply(VECTOR, apply, args)

    def _fn_label_replace(self, expr: Call, args: list[_Node]) -> _Node:
        compiled: dict[str, re.Pattern[str]] = {}

        def apply(ctx: _Context, t: int, a: list[Any]) -> list[Sample]:
            vector, dst, replacement, src, pattern = a
            regex = compiled.get(pattern)
            if regex is None:
                try:
                    regex = compiled[pattern] = compile_regex(pattern)
                except SelectorError:
                    raise QueryError(f"invalid regular expression in label_replace(): {pattern}") from None
            if not valid_label_name(dst):
                raise QueryError(f"invalid destination label name in label_replace(): {dst}")
            out = []
            for s in vector:
                match = regex.fullmatch(label_value(s.labels, src))
                if match is None:
                    out.append(s)
                    continue
                labels = s.labels.with_(**{dst: expand_template(replacement, match)})
                out.append(Sample(labels, s.value))
            ensure_unique(out)
            return out

        return _Apply(VECTOR, apply, args)

    def _fn_label_join(self, expr: Call, args: list[_Node]) -> _Node:
        def apply(ctx: _Context, t: int, a: list[Any]) -> list[Sample]:
            vector, dst, separator = a[0], a[1], a[2]
            sources = a[3:]
            if not valid_label_name(dst):
                raise QueryError(f"invalid destination label name in label_join(): {dst}")
            for src in sources:
                if not valid_label_name(src):
                    raise QueryError(f"invalid source label name in label_join(): {src}")
            out = []
            for s in vector:
                joined = separator.join(label_value(s.labels, n) for n in sources)
                out.append(Sample(s.labels.with_(**{dst: joined}), s.value))
            ensure_unique(out)
            return out

        return _Apply(VECTOR, apply, args)

    def _fn_histogram_quantile(self, expr: Call, args: list[_Node]) -> _Node:
        def apply(ctx: _Context, t: int, a: list[Any]) -> list[Sample]:
            q, vector = a
            return [Sample(labels, bucket_quantile(q, buckets)[0]) for labels, buckets in _bucket_groups(vector).items()]

        return _Apply(VECTOR, apply, args)

    def _fn_histogram_quantiles(self, expr: Call, args: list[_Node]) -> _Node:
        def apply(ctx: _Context, t: int, a: list[Any]) -> list[Sample]:
            vector, label = a[0], a[1]
            quantiles = a[2:]
            if not valid_label_name(label):
                raise QueryError(f"invalid quantile label name {label!r}")
            out = []
            for labels, buckets in _bucket_groups(vector).items():
                if label_value(labels, label):
                    raise QueryError(f"label {label!r} already exists on the input series")
                for q in quantiles:
                    out.append(Sample(labels.with_(**{label: _quantile_text(q)}), bucket_quantile(q, list(buckets))[0]))
            return out

        return _Apply(VECTOR, apply, args)

    def _fn_histogram_fraction(self, expr: Call, args: list[_Node]) -> _Node:
        def apply(ctx: _Context, t: int, a: list[Any]) -> list[Sample]:
            lower, upper, vector = a
            return [Sample(labels, bucket_fraction(lower, upper, buckets)) for labels, buckets in _bucket_groups(vector).items()]

        return _Apply(VECTOR, apply, args)


def _quantile_text(q: float) -> str:
    if q != q:
        return "NaN"
    if q in (arith.INF, -arith.INF):
        return "+Inf" if q > 0 else "-Inf"
    return repr(float(q))


def _bucket_groups(vector: list[Sample]) -> dict[Labels, list[tuple[float, float]]]:
    """Classic histogram buckets grouped by histogram, keyed by the result's labels.

    Buckets group by their labels without ``le`` (names included: two histograms with
    different names are two groups), and the result drops the name; two histograms that then
    have the same labels are an error, as in Prometheus.
    """
    by_histogram = _buckets_by_histogram(vector)
    groups = {drop_name(labels): buckets for labels, buckets in by_histogram.items()}
    if len(groups) != len(by_histogram):
        raise QueryError("vector cannot contain metrics with the same labelset")
    return groups


def _buckets_by_histogram(vector: list[Sample]) -> dict[Labels, list[tuple[float, float]]]:
    groups: dict[Labels, list[tuple[float, float]]] = {}
    for s in vector:
        le = label_value(s.labels, "le")
        if not le:
            continue
        bound = parse_le(le)
        if bound is None:
            continue
        key = without(s.labels, _LE)
        buckets = groups.get(key)
        if buckets is None:
            groups[key] = [(bound, s.value)]
        else:
            buckets.append((bound, s.value))
    return groups


# -- the public face ---------------------------------------------------------------------------


def _parse(text: str) -> Expr:
    # Imported here: the parser depends on the function table, which imports nothing from here,
    # but keeping the import local lets the evaluator be used (and tested) on built trees alone.
    from daemon.promql.parser import parse_expr

    return parse_expr(text)


class Query:
    """A compiled expression: evaluate it with ``instant(t)`` or ``range(start, end, step)``.

    Times are float Unix seconds; results are ``Scalar``, ``String``, ``list[Sample]`` or
    ``list[SeriesPoints]``. A query is immutable and can be evaluated any number of times.
    """

    __slots__ = ("engine", "expr", "root", "has_subquery")

    def __init__(self, engine: Engine, expr: Expr, root: _Node, has_subquery: bool) -> None:
        self.engine = engine
        self.expr = expr
        self.root = root
        self.has_subquery = has_subquery

    @property
    def type(self) -> str:
        """The result type: "scalar", "vector", "matrix" or "string"."""
        return self.root.type

    def instant(self, t: float) -> Value:
        """The value of the expression at time ``t``."""
        return self.engine.instant_many([self], t, raise_errors=True)[0]  # type: ignore[return-value]

    def range(self, start: float, end: float, step: float) -> list[SeriesPoints]:
        """The expression evaluated at ``start, start + step, ... <= end``, as series of points."""
        return self.engine._range(self, start, end, step)


class Engine:
    """Evaluates PromQL over a ``Store``.

    ``lookback`` is how far back an instant selector looks for a sample (Prometheus'
    ``--query.lookback-delta``); ``subquery_step`` is the step of subqueries written without
    one (``x[10m:]``), Prometheus' default evaluation interval.
    """

    def __init__(self, store: Store, *, lookback: float = 300.0, subquery_step: float = 60.0) -> None:
        self.store = store
        self.lookback = lookback
        self.subquery_step = subquery_step
        self._unnamed: dict[Labels, Labels] = {}

    def _context(self, start_ms: int, end_ms: int, *, memo: bool, step_ms: int = 0) -> _Context:
        ctx = _Context(self.store, _ms(self.lookback), start_ms, end_ms, _ms(self.subquery_step), memo=memo, step_ms=step_ms)
        if len(self._unnamed) > _LABEL_CACHE_LIMIT:
            self._unnamed.clear()
        ctx.unnamed = self._unnamed
        return ctx

    def compile(self, expr: Expr | str) -> Query:
        """Parse (if text) and compile an expression once, for any number of evaluations."""
        tree = _parse(expr) if isinstance(expr, str) else expr
        root = _Compiler().compile(tree)
        return Query(self, tree, root, _has_subquery(tree))

    def instant(self, expr: Expr | str, t: float) -> Value:
        """Evaluate ``expr`` at time ``t`` (Unix seconds)."""
        return self.compile(expr).instant(t)

    def range(self, expr: Expr | str, start: float, end: float, step: float) -> list[SeriesPoints]:
        """Evaluate ``expr`` at ``start, start + step, ... <= end``; scalars become one label-less series."""
        return self.compile(expr).range(start, end, step)

    def instant_many(self, queries: Iterable[Query], t: float, *, raise_errors: bool = False) -> list[Value | QueryError]:
        """Evaluate many compiled queries at the same instant, computing shared parts once.

        A subexpression that is equal across the queries (same selector, range, function,
        grouping, ... as syntax trees compare) is evaluated once, and each distinct selector
        goes through the postings index once, for the whole call. The result list is in the
        order of ``queries``; a query that fails gives its ``QueryError`` in its place (or
        raises it, with ``raise_errors``), without affecting the others. Results may share
        objects with one another: treat them as immutable.
        """
        t_ms = _ms(t)
        ctx = self._context(t_ms, t_ms, memo=True)
        results: list[Value | QueryError] = []
        for query in queries:
            try:
                results.append(_result(query.root, query.root.eval(ctx, t_ms)))
            except QueryError as exc:
                if raise_errors:
                    raise
                results.append(exc)
        return results

    def _range(self, query: Query, start: float, end: float, step: float) -> list[SeriesPoints]:
        root = query.root
        if root.type not in (SCALAR, VECTOR):
            kind = "range vector" if root.type == MATRIX else root.type
            raise QueryError(f'invalid expression type "{kind}" for range query, must be Scalar or instant Vector')
        if step <= 0:
            raise QueryError("zero or negative query resolution step widths are not accepted. Try a positive integer")
        if end < start:
            raise QueryError("end timestamp must not be before start time")
        if (end - start) / step > MAX_POINTS_PER_SERIES:
            raise QueryError(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
            )
        start_ms, end_ms, step_ms = _ms(start), _ms(end), _ms(step)
        # Subquery steps repeat from one outer step to the next: remember them then.
        ctx = self._context(start_ms, end_ms, memo=query.has_subquery, step_ms=step_ms)
        series: dict[Labels, list[tuple[int, float]]] = {}
        for t in range(start_ms, end_ms + 1, step_ms):
            value = root.eval(ctx, t)
            if root.type == SCALAR:
                series.setdefault(EMPTY, []).append((t, value))
                continue
            for s in value:
                points = series.get(s.labels)
                if points is None:
                    series[s.labels] = [(t, s.value)]
                else:
                    points.append((t, s.value))
        return [SeriesPoints(labels, points) for labels, points in sorted(series.items())]


def _result(root: _Node, value: Any) -> Value:
    if root.type == SCALAR:
        return Scalar(value)
    if root.type == STRING:
        return String(value)
    if root.type == MATRIX:
        return [SeriesPoints(labels, list(zip(ts, vals))) for labels, ts, vals in value]
    return value  # type: ignore[no-any-return]


def _has_subquery(expr: Expr) -> bool:
    if isinstance(expr, SubqueryExpr):
        return True
    for field in getattr(expr, "__slots__", ()):
        child = getattr(expr, field, None)
        if isinstance(child, Expr) and _has_subquery(child):
            return True
        if isinstance(child, tuple) and any(isinstance(c, Expr) and _has_subquery(c) for c in child):
            return True
    return False
