"""The PromQL syntax tree: what the parser produces and the evaluator compiles.

Durations and offsets are float seconds; timestamps (``@``) are float Unix seconds, as in the
query language. Nodes are frozen, so identical subexpressions compare and hash equal: the
evaluator uses that to compute a subexpression shared by several rules once per timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from daemon.tsdb import Matcher


class ValueType(str, Enum):
    """The four PromQL value types."""

    SCALAR = "scalar"
    VECTOR = "vector"
    MATRIX = "matrix"
    STRING = "string"


# Binary operators whose kind matters outside the parser (set operators match many-to-many;
# comparisons filter unless `bool`).
SET_OPERATORS = ("and", "or", "unless")
COMPARISON_OPERATORS = ("==", "!=", ">", "<", ">=", "<=")


class Expr:
    """Base of all expression nodes."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class NumberLiteral(Expr):
    value: float


@dataclass(frozen=True, slots=True)
class StringLiteral(Expr):
    value: str


@dataclass(frozen=True, slots=True)
class VectorSelector(Expr):
    """``name{matchers} offset O @ T``.

    ``matchers`` include the ``__name__`` equality matcher when a name was written. ``at`` is a
    fixed evaluation timestamp, or None; ``at_edge`` is ``"start"`` or ``"end"`` for
    ``@ start()`` / ``@ end()`` (resolved per query), else None.
    """

    name: str | None
    matchers: tuple[Matcher, ...]
    offset: float = 0.0
    at: float | None = None
    at_edge: str | None = None


@dataclass(frozen=True, slots=True)
class MatrixSelector(Expr):
    """``selector[range]``: the samples of each series in ``(t - range, t]``."""

    selector: VectorSelector
    range: float


@dataclass(frozen=True, slots=True)
class SubqueryExpr(Expr):
    """``expr[range:step] offset O @ T``; ``step`` 0 means the default evaluation interval."""

    expr: Expr
    range: float
    step: float = 0.0
    offset: float = 0.0
    at: float | None = None
    at_edge: str | None = None


@dataclass(frozen=True, slots=True)
class UnaryExpr(Expr):
    """``-expr`` or ``+expr``."""

    op: str
    expr: Expr


@dataclass(frozen=True, slots=True)
class VectorMatching:
    """How the two sides of a binary operation between vectors are paired.

    ``card`` is one of "one-to-one", "many-to-one" (group_left), "one-to-many" (group_right) or
    "many-to-many" (set operators). ``on`` says whether ``labels`` is an ``on(...)`` list (True)
    or an ``ignoring(...)`` list (False); ``include`` are the extra labels of group_left/right.
    """

    card: str = "one-to-one"
    on: bool = False
    labels: tuple[str, ...] = ()
    include: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BinaryExpr(Expr):
    """``lhs op [bool] [on/ignoring(...)] [group_left/right(...)] rhs``.

    ``matching`` is set when both sides are vectors (set operators always get many-to-many).
    """

    op: str
    lhs: Expr
    rhs: Expr
    return_bool: bool = False
    matching: VectorMatching | None = None


@dataclass(frozen=True, slots=True)
class AggregateExpr(Expr):
    """``op [by|without (grouping)] ([param,] expr)``."""

    op: str
    expr: Expr
    param: Expr | None = None
    grouping: tuple[str, ...] = ()
    without: bool = False


@dataclass(frozen=True, slots=True)
class Call(Expr):
    """A function call, ``func(args...)``; the function's signature was checked by the parser."""

    func: str
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class ParenExpr(Expr):
    """``(expr)``, kept so that an expression prints back as it was written."""

    expr: Expr
