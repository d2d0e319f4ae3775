"""The PromQL parser: query text to the syntax tree of ``daemon.promql.ast``, type-checked.

A recursive-descent parser with precedence climbing for binary operators. It accepts the
language of Prometheus 3 and reports errors with Prometheus' texts and positions
(``1:15: parse error: ...``). As in Prometheus, syntax errors are found first; the type check
(argument types, operand types, empty selectors) runs only on a syntactically valid query.
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass, field, replace

from daemon.promql.ast import (
    COMPARISON_OPERATORS,
    SET_OPERATORS,
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
    ValueType,
    VectorMatching,
    VectorSelector,
)
from daemon.promql.functions_signatures import FUNCTIONS, Signature
from daemon.promql.lexer import (
    AGGREGATOR_KEYWORDS,
    DURATION,
    EOF,
    IDENTIFIER,
    METRIC_IDENTIFIER,
    NUMBER,
    STRING,
    Lexer,
    ParseError,
    Token,
    go_quote,
    unquote,
)
from daemon.tsdb.labels import METRIC_NAME
from daemon.tsdb.matcher import EQUAL, Matcher, SelectorError

__all__ = [
    "FUNCTIONS",
    "ParseError",
    "Signature",
    "documented_type",
    "parse_duration",
    "parse_expr",
    "value_type",
]

# Binary operators: precedence (higher binds tighter); `^` is the one right-associative operator.
_PRECEDENCE = {
    "or": 1,
    "and": 2, "unless": 2,
    "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3,
    "+": 4, "-": 4,
    "*": 5, "/": 5, "%": 5, "atan2": 5,
    "^": 6,
}  # fmt: skip
_POW_PRECEDENCE = 6
_MATCH_OPERATORS = frozenset({"=", "!=", "=~", "!~"})

# Keywords that may still name a metric (`sum`, `by`, `offset`, ... as selectors).
_METRIC_KEYWORDS = AGGREGATOR_KEYWORDS | {
    "by", "without", "and", "or", "unless", "offset", "start", "end", "step", "range",
    "anchored", "smoothed",
}  # fmt: skip
# Keywords that may name a label in by/without/on/ignoring/group_x lists.
_LABEL_KEYWORDS = AGGREGATOR_KEYWORDS | {
    "bool", "by", "group_left", "group_right", "ignoring", "and", "or", "unless", "offset",
    "on", "start", "end", "atan2", "step", "range", "anchored", "smoothed",
}  # fmt: skip
_PARAMETERISED = frozenset({"topk", "bottomk", "count_values", "quantile", "limitk", "limit_ratio"})
_SCALAR_PARAMETER = frozenset({"topk", "bottomk", "quantile", "limitk", "limit_ratio"})

# The largest duration Go's time.Duration can hold, in seconds.
_MAX_DURATION_SECONDS = (1 << 63) / 1e9

_DURATION_UNITS = {"y": (1, 365 * 86400_000), "w": (2, 7 * 86400_000), "d": (3, 86400_000),
                   "h": (4, 3600_000), "m": (5, 60_000), "s": (6, 1000), "ms": (7, 1)}  # fmt: skip
_DOCUMENTED = {
    ValueType.SCALAR: "scalar",
    ValueType.VECTOR: "instant vector",
    ValueType.MATRIX: "range vector",
    ValueType.STRING: "string",
}


def documented_type(t: ValueType) -> str:
    """A value type as Prometheus names it in messages ("instant vector", "range vector")."""
    return _DOCUMENTED[t]


def parse_expr(text: str) -> Expr:
    """Parse and type-check one PromQL expression; raise ``ParseError`` if it is not valid."""
    try:
        return _Parser(text).parse()
    except RecursionError:
        # Prometheus has no nesting limit, but a query nested this deeply (hundreds of
        # levels) is not a real rule; refuse it rather than crash the caller.
        raise ParseError(text, 0, "expression nested too deeply") from None


def parse_duration(text: str) -> float:
    """A Prometheus duration (``1h30m``, ``5m``, ``1d``, ``250ms``, ``0``) in seconds.

    Raises ``ValueError`` with Prometheus' message for anything else.
    """
    if text == "0":
        return 0.0
    if text == "":
        raise ValueError("empty duration string")
    rest = text
    total_ms = 0
    last_rank = 0
    while rest:
        digits = re.match(r"[0-9]*", rest).group()  # type: ignore[union-attr]
        if not digits:
            raise ValueError(f"not a valid duration string: {go_quote(text)}")
        rest = rest[len(digits) :]
        unit = re.match(r"[^0-9]*", rest).group()  # type: ignore[union-attr]
        if not unit:
            raise ValueError(f"not a valid duration string: {go_quote(text)}")
        rest = rest[len(unit) :]
        if unit not in _DURATION_UNITS:
            raise ValueError(f"unknown unit {go_quote(unit)} in duration {go_quote(text)}")
        rank, unit_ms = _DURATION_UNITS[unit]
        if rank <= last_rank:  # units go from the biggest to the smallest, each at most once
            raise ValueError(f"not a valid duration string: {go_quote(text)}")
        last_rank = rank
        value = int(digits)
        if value > (1 << 63) // (unit_ms * 1_000_000):
            raise ValueError("duration out of range")
        total_ms += value * unit_ms
        if total_ms * 1_000_000 > (1 << 63) - 1:
            raise ValueError("duration out of range")
    return total_ms / 1000.0


def value_type(expr: Expr) -> ValueType:
    """The static type of an expression, as Prometheus' ``Expr.Type()``."""
    if isinstance(expr, NumberLiteral):
        return ValueType.SCALAR
    if isinstance(expr, StringLiteral):
        return ValueType.STRING
    if isinstance(expr, VectorSelector | AggregateExpr):
        return ValueType.VECTOR
    if isinstance(expr, MatrixSelector | SubqueryExpr):
        return ValueType.MATRIX
    if isinstance(expr, UnaryExpr | ParenExpr):
        return value_type(expr.expr)
    if isinstance(expr, BinaryExpr):
        if value_type(expr.lhs) == ValueType.SCALAR and value_type(expr.rhs) == ValueType.SCALAR:
            return ValueType.SCALAR
        return ValueType.VECTOR
    if isinstance(expr, Call):
        return FUNCTIONS[expr.func].return_type
    raise TypeError(f"not a PromQL expression: {expr!r}")


@dataclass(slots=True)
class _Info:
    """Where a node was written, and what the type check needs that the tree does not keep."""

    node: Expr
    start: int
    end: int
    kind: ValueType = ValueType.SCALAR
    # Binary expressions: the modifiers as written.
    return_bool: bool = False
    on: bool = False
    labels: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    card: str = "one-to-one"
    # Selectors given to info() as its label selector may match the empty string.
    bypass_empty_check: bool = False
    children: list[Expr] = field(default_factory=list)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.lexer = Lexer(text)
        self.lookahead: deque[Token] = deque()
        self.prev_end = 0
        self.info: dict[int, _Info] = {}

    # -- tokens -------------------------------------------------------------------------------

    @property
    def token(self) -> Token:
        if not self.lookahead:
            self.lookahead.append(self.lexer.next_token())
        return self.lookahead[0]

    def peek2(self) -> Token:
        """The token after the current one."""
        first = self.token
        if len(self.lookahead) < 2:
            self.lookahead.append(first if first.kind == EOF else self.lexer.next_token())
        return self.lookahead[1]

    def advance(self) -> Token:
        token = self.token
        if token.kind != EOF:
            self.lookahead.popleft()
        self.prev_end = token.end
        return token

    def error(self, pos: int, message: str) -> ParseError:
        return ParseError(self.text, pos, message)

    def unexpected(self, context: str = "", expected: str = "") -> ParseError:
        token = self.token
        message = f"unexpected {token.describe()}"
        if context:
            message += f" in {context}"
        if expected:
            message += f", expected {expected}"
        return self.error(token.pos, message)

    def expect(self, kind: str, context: str = "", expected: str = "") -> Token:
        if self.token.kind != kind:
            raise self.unexpected(context, expected)
        return self.advance()

    def node(self, node: Expr, start: int, end: int | None = None, **extra: object) -> Expr:
        info = _Info(node, start, self.prev_end if end is None else end, self.static_type(node))
        for key, value in extra.items():
            setattr(info, key, value)
        self.info[id(node)] = info
        return node

    def static_type(self, node: Expr) -> ValueType:
        """``value_type(node)``, from the children's recorded types rather than a walk of the tree."""
        if isinstance(node, BinaryExpr):
            both_scalar = self.type_of(node.lhs) == self.type_of(node.rhs) == ValueType.SCALAR
            return ValueType.SCALAR if both_scalar else ValueType.VECTOR
        if isinstance(node, UnaryExpr | ParenExpr):
            return self.type_of(node.expr)
        return value_type(node)

    def type_of(self, node: Expr) -> ValueType:
        return self.info[id(node)].kind

    def start_of(self, node: Expr) -> int:
        return self.info[id(node)].start

    def end_of(self, node: Expr) -> int:
        return self.info[id(node)].end

    # -- expressions --------------------------------------------------------------------------

    def parse(self) -> Expr:
        if self.token.kind == EOF:
            raise self.error(0, "no expression found in input")
        expr = self.expr(0)
        if self.token.kind != EOF:
            raise self.unexpected()
        _Checker(self).check(expr)
        return expr

    def expr(self, min_precedence: int) -> Expr:
        lhs = self.unary()
        while True:
            op = self.token.kind
            precedence = _PRECEDENCE.get(op)
            if precedence is None or precedence < min_precedence:
                return lhs
            self.advance()
            modifiers = self.binary_modifiers()
            rhs = self.expr(precedence if op == "^" else precedence + 1)
            lhs = self.binary(op, lhs, rhs, modifiers)

    def unary(self) -> Expr:
        if self.token.kind not in ("+", "-"):
            return self.primary()
        sign = self.advance()
        # Unary operators bind like `*`: `-a ^ b` is `-(a ^ b)`, `-a * b` is `(-a) * b`.
        operand = self.expr(_POW_PRECEDENCE)
        if isinstance(operand, NumberLiteral):
            value = -operand.value if sign.kind == "-" else operand.value
            return self.node(NumberLiteral(value), sign.pos)
        return self.node(UnaryExpr(sign.kind, operand), sign.pos)

    def binary_modifiers(self) -> _Info:
        modifiers = _Info(NumberLiteral(0.0), 0, 0)
        if self.token.kind == "bool":
            self.advance()
            modifiers.return_bool = True
        if self.token.kind in ("on", "ignoring"):
            modifiers.on = self.advance().kind == "on"
            modifiers.labels = self.grouping_labels()
            modifiers.card = "one-to-one"
            if self.token.kind in ("group_left", "group_right"):
                side = self.advance().kind
                modifiers.card = "many-to-one" if side == "group_left" else "one-to-many"
                if self.token.kind == "(":
                    modifiers.include = self.grouping_labels()
        return modifiers

    def binary(self, op: str, lhs: Expr, rhs: Expr, modifiers: _Info) -> Expr:
        card = modifiers.card
        if op in SET_OPERATORS and card == "one-to-one":
            card = "many-to-many"
        matching = None
        if self.type_of(lhs) == ValueType.VECTOR and self.type_of(rhs) == ValueType.VECTOR:
            matching = VectorMatching(card, modifiers.on, modifiers.labels, modifiers.include)
        node = BinaryExpr(op, lhs, rhs, modifiers.return_bool, matching)
        return self.node(
            node,
            self.start_of(lhs),
            self.end_of(rhs),
            return_bool=modifiers.return_bool,
            on=modifiers.on,
            labels=modifiers.labels,
            include=modifiers.include,
            card=card,
        )

    def primary(self) -> Expr:
        token = self.token
        kind = token.kind
        if kind == NUMBER:
            self.advance()
            expr: Expr = self.node(NumberLiteral(self.number(token)), token.pos)
        elif kind == DURATION:
            self.advance()
            expr = self.node(NumberLiteral(self.duration(token)), token.pos)
        elif kind == STRING:
            self.advance()
            expr = self.node(StringLiteral(unquote(token.text)), token.pos)
        elif kind == "(":
            self.advance()
            inner = self.expr(0)
            if self.token.kind != ")":
                raise self.unexpected()
            self.advance()
            expr = self.node(ParenExpr(inner), token.pos)
        elif kind == "{":
            expr = self.vector_selector(None)
        elif kind == IDENTIFIER:
            expr = self.call() if self.peek2().kind == "(" else self.vector_selector(self.advance())
        elif kind == METRIC_IDENTIFIER:
            expr = self.vector_selector(self.advance())
        elif kind in AGGREGATOR_KEYWORDS and self.peek2().kind in ("(", "by", "without"):
            expr = self.aggregation()
        elif kind in ("start", "end", "step", "range") and self.peek2().kind == "(":
            expr = self.call()
        elif kind in _METRIC_KEYWORDS:
            expr = self.vector_selector(self.advance())
        else:
            raise self.unexpected()
        return self.postfix(expr)

    def postfix(self, expr: Expr) -> Expr:
        """Range and subquery brackets, ``offset`` and ``@``, which bind tighter than anything."""
        while True:
            kind = self.token.kind
            if kind == "[":
                expr = self.range_or_subquery(expr)
            elif kind == "offset":
                expr = self.offset(expr)
            elif kind == "@":
                expr = self.at(expr)
            else:
                return expr

    # -- selectors ----------------------------------------------------------------------------

    def vector_selector(self, name_token: Token | None) -> Expr:
        start = name_token.pos if name_token is not None else self.token.pos
        matchers: list[Matcher] = []
        name = name_token.text if name_token is not None else None
        if name is not None:
            matchers.append(Matcher(METRIC_NAME, EQUAL, name))
        if self.token.kind == "{":
            self.label_matchers(matchers)
        return self.node(VectorSelector(name, tuple(matchers)), start)

    def label_matchers(self, matchers: list[Matcher]) -> None:
        self.advance()  # "{"
        if self.token.kind == "}":
            self.advance()
            return
        while True:
            matchers.append(self.label_matcher())
            if self.token.kind == ",":
                self.advance()
                if self.token.kind == "}":
                    self.advance()
                    return
            elif self.token.kind == "}":
                self.advance()
                return
            else:
                raise self.unexpected("label matching", '"," or "}"')

    def label_matcher(self) -> Matcher:
        label = self.token
        if label.kind not in (IDENTIFIER, STRING):
            raise self.unexpected("label matching", 'identifier or "}"')
        self.advance()
        name = label.text if label.kind == IDENTIFIER else unquote(label.text)
        if self.token.kind not in _MATCH_OPERATORS:
            if label.kind == STRING:
                # Prometheus 3: a lone quoted string in braces is the metric name.
                return self.matcher(label, METRIC_NAME, EQUAL, name)
            raise self.unexpected("label matching", "label matching operator")
        op = self.advance().kind
        value = self.token
        if value.kind != STRING:
            raise self.unexpected("label matching", "string")
        self.advance()
        return self.matcher(label, name, op, unquote(value.text))

    def matcher(self, at: Token, name: str, op: str, value: str) -> Matcher:
        try:
            return Matcher(name, op, value)
        except (SelectorError, ValueError) as exc:
            raise self.error(at.pos, str(exc)) from None

    def range_or_subquery(self, expr: Expr) -> Expr:
        bracket = self.advance()
        if not self.starts_duration():
            raise self.unexpected("subquery or range selector", "number, duration, step(), or range()")
        range_ = self.positive_duration()
        if self.token.kind == "]":
            close = self.advance()
            message = ""
            if not isinstance(expr, VectorSelector):
                message = "ranges only allowed for vector selectors"
            elif expr.offset != 0:
                message = "no offset modifiers allowed before range"
            elif expr.at is not None:
                message = "no @ modifiers allowed before range"
            if message:
                raise self.error(bracket.pos, message)
            assert isinstance(expr, VectorSelector)
            return self.node(MatrixSelector(expr, range_), self.start_of(expr), close.end)
        if self.token.kind != ":":
            raise self.unexpected("subquery or range", '":" or "]"')
        self.advance()
        step = 0.0
        if self.token.kind != "]":
            if not self.starts_duration():
                raise self.unexpected("subquery selector", 'number, duration, step(), range(), or "]"')
            step = self.positive_duration()
            if self.token.kind != "]":
                raise self.unexpected("subquery selector", '"]"')
        close = self.advance()
        return self.node(SubqueryExpr(expr, range_, step), self.start_of(expr), close.end)

    def offset(self, expr: Expr) -> Expr:
        self.advance()  # "offset"
        start = self.token.pos
        if self.token.kind in ("+", "-"):
            sign = -1.0 if self.advance().kind == "-" else 1.0
            if self.token.kind in (NUMBER, DURATION):
                seconds = sign * self.duration_literal()
            elif self.token.kind == "(" or self.starts_duration_call():
                seconds = sign * self.duration_atom()
            else:
                raise self.unexpected("offset", "number, duration, step(), or range()")
        elif self.token.kind in (NUMBER, DURATION):
            # Arithmetic after a plain literal belongs to the enclosing expression:
            # `foo offset 1m + 1m` is `(foo offset 1m) + 1m`.
            seconds = self.duration_literal()
        elif self.token.kind == "(" or self.starts_duration_call():
            seconds = self.duration_sum(0)
        else:
            raise self.unexpected("offset", "number, duration, step(), or range()")
        if abs(seconds) > _MAX_DURATION_SECONDS:
            raise self.error(start, "duration out of range")
        seconds = _go_round(seconds * 1e9) / 1e9
        start_of = self.start_of(expr)
        if isinstance(expr, MatrixSelector):
            target: Expr = expr.selector
        elif isinstance(expr, VectorSelector | SubqueryExpr):
            target = expr
        else:
            raise self.error(
                start_of,
                "offset modifier must be preceded by an instant vector selector or range vector "
                "selector or a subquery",
            )
        assert isinstance(target, VectorSelector | SubqueryExpr)
        if target.offset != 0:
            raise self.error(start_of, "offset may not be set multiple times")
        updated = replace(target, offset=seconds)
        if isinstance(expr, MatrixSelector):
            assert isinstance(updated, VectorSelector)
            self.node(updated, start_of)
            return self.node(replace(expr, selector=updated), start_of)
        return self.node(updated, start_of)

    def at(self, expr: Expr) -> Expr:
        self.advance()  # "@"
        token = self.token
        edge: str | None = None
        timestamp: float | None = None
        if token.kind in ("+", "-"):
            sign = -1.0 if self.advance().kind == "-" else 1.0
            if self.token.kind not in (NUMBER, DURATION):
                raise self.unexpected("@", "timestamp")
            timestamp = sign * self.number_or_duration(self.advance())
        elif token.kind in (NUMBER, DURATION):
            timestamp = self.number_or_duration(self.advance())
        elif token.kind in ("start", "end"):
            self.advance()
            if self.token.kind != "(":
                raise self.unexpected("@", "timestamp")
            self.advance()
            if self.token.kind != ")":
                raise self.unexpected("@", "timestamp")
            self.advance()
            edge = token.kind
        else:
            raise self.unexpected("@", "timestamp")
        start_of = self.start_of(expr)
        if timestamp is not None:
            if math.isinf(timestamp) or math.isnan(timestamp) or abs(timestamp) >= 2**63:
                raise self.error(start_of, f"timestamp out of bounds for @ modifier: {_go_float(timestamp)}")
            timestamp = _go_round(timestamp * 1000) / 1000
        target = expr.selector if isinstance(expr, MatrixSelector) else expr
        if not isinstance(target, VectorSelector | SubqueryExpr):
            raise self.error(
                start_of,
                "@ modifier must be preceded by an instant vector selector or range vector selector "
                "or a subquery",
            )
        if target.at is not None or target.at_edge is not None:
            raise self.error(start_of, "@ <timestamp> may not be set multiple times")
        updated = replace(target, at=timestamp, at_edge=edge)
        if isinstance(expr, MatrixSelector):
            assert isinstance(updated, VectorSelector)
            self.node(updated, start_of)
            return self.node(replace(expr, selector=updated), start_of)
        return self.node(updated, start_of)

    # -- durations ----------------------------------------------------------------------------

    def starts_duration(self) -> bool:
        return self.token.kind in (NUMBER, DURATION, "(", "+", "-") or self.starts_duration_call()

    def starts_duration_call(self) -> bool:
        return self.token.kind in ("step", "range", "min", "max")

    def positive_duration(self) -> float:
        start = self.token.pos
        seconds = self.duration_sum(0)
        if seconds <= 0:
            raise self.error(start, "duration must be greater than 0")
        if seconds > _MAX_DURATION_SECONDS:
            raise self.error(start, "duration out of range")
        return _go_round(seconds * 1e9) / 1e9

    def duration_sum(self, min_precedence: int) -> float:
        """A constant duration expression (``1h + 5m``, ``2 * 30s``) folded to seconds."""
        value = self.duration_unary()
        while True:
            op = self.token.kind
            precedence = {"+": 4, "-": 4, "*": 5, "/": 5, "%": 5, "^": 6}.get(op)
            if precedence is None or precedence < min_precedence:
                return value
            op_token = self.advance()
            if not self.starts_duration():
                raise self.unexpected()
            rhs_start = self.token
            rhs = self.duration_sum(precedence if op == "^" else precedence + 1)
            if op in ("/", "%") and rhs == 0 and rhs_start.kind in (NUMBER, DURATION):
                raise self.error(op_token.pos, "division by zero" if op == "/" else "modulo by zero")
            value = _fold(op, value, rhs)

    def duration_unary(self) -> float:
        if self.token.kind in ("+", "-"):
            negative = self.advance().kind == "-"
            value = self.duration_sum(_POW_PRECEDENCE)
            return -value if negative else value
        return self.duration_atom()

    def duration_atom(self) -> float:
        token = self.token
        if token.kind in (NUMBER, DURATION):
            return self.duration_literal()
        if token.kind == "(":
            self.advance()
            value = self.duration_sum(0)
            self.expect(")")
            return value
        if token.kind in ("step", "range"):
            raise self.error(token.pos, f"{token.kind}() in a duration expression is not supported")
        if token.kind in ("min", "max"):
            self.advance()
            self.expect("(")
            lhs = self.duration_sum(0)
            self.expect(",")
            rhs = self.duration_sum(0)
            self.expect(")")
            return min(lhs, rhs) if token.kind == "min" else max(lhs, rhs)
        raise self.unexpected()

    def duration_literal(self) -> float:
        token = self.advance()
        seconds = self.number_or_duration(token)
        if abs(seconds) > _MAX_DURATION_SECONDS:
            raise self.error(token.pos, "duration out of range")
        return seconds

    def number_or_duration(self, token: Token) -> float:
        return self.number(token) if token.kind == NUMBER else self.duration(token)

    def duration(self, token: Token) -> float:
        try:
            return parse_duration(token.text)
        except ValueError as exc:
            raise self.error(token.pos, str(exc)) from None

    def number(self, token: Token) -> float:
        value = _parse_go_number(token.text)
        if value is None:
            raise self.error(
                token.pos,
                f"error parsing number: strconv.ParseFloat: parsing {go_quote(token.text)}: invalid syntax",
            )
        return value

    # -- calls and aggregations ---------------------------------------------------------------

    def call_arguments(self) -> list[Expr]:
        self.expect("(")
        args: list[Expr] = []
        if self.token.kind == ")":
            self.advance()
            return args
        while True:
            args.append(self.expr(0))
            if self.token.kind == ",":
                comma = self.advance()
                if self.token.kind == ")":
                    raise self.error(comma.pos, "trailing commas not allowed in function call args")
                continue
            if self.token.kind == ")":
                self.advance()
                return args
            raise self.unexpected()

    def call(self) -> Expr:
        name = self.advance()
        args = self.call_arguments()
        if name.text not in FUNCTIONS:
            raise self.error(name.pos, f"unknown function with name {go_quote(name.text)}")
        return self.node(Call(name.text, tuple(args)), name.pos)

    def aggregation(self) -> Expr:
        op = self.advance()
        name = op.kind
        grouping: tuple[str, ...] | None = None
        without = False
        if self.token.kind in ("by", "without"):
            without = self.advance().kind == "without"
            grouping = self.grouping_labels()
        if self.token.kind != "(":
            raise self.unexpected("aggregation")
        args = self.call_arguments()
        if grouping is None and self.token.kind in ("by", "without"):
            without = self.advance().kind == "without"
            grouping = self.grouping_labels()
        if not args:
            raise self.error(op.pos, "no arguments for aggregate expression provided")
        wanted = 2 if name in _PARAMETERISED else 1
        if len(args) != wanted:
            raise self.error(
                op.pos,
                f"wrong number of arguments for aggregate expression provided, expected {wanted}, got {len(args)}",
            )
        param = args[0] if wanted == 2 else None
        node = AggregateExpr(name, args[-1], param, grouping or (), without)
        return self.node(node, op.pos)

    def grouping_labels(self) -> tuple[str, ...]:
        if self.token.kind != "(":
            raise self.unexpected("grouping opts", '"("')
        self.advance()
        labels: list[str] = []
        if self.token.kind == ")":
            self.advance()
            return ()
        while True:
            token = self.token
            if token.kind in (IDENTIFIER, METRIC_IDENTIFIER) or token.kind in _LABEL_KEYWORDS:
                label = token.text
            elif token.kind == STRING:
                label = unquote(token.text)
                if not _valid_utf8_label(label):
                    raise self.error(token.pos, f"invalid label name for grouping: {go_quote(label)}")
            else:
                raise self.unexpected("grouping opts", "label")
            self.advance()
            labels.append(label)
            if self.token.kind == ",":
                self.advance()
                if self.token.kind == ")":
                    self.advance()
                    return tuple(labels)
            elif self.token.kind == ")":
                self.advance()
                return tuple(labels)
            else:
                raise self.unexpected("grouping opts", '"," or ")"')


class _Checker:
    """The type check Prometheus runs on a parsed query (``checkAST``), stopping at the first error."""

    def __init__(self, parser: _Parser) -> None:
        self.parser = parser

    def fail(self, pos: int, message: str) -> ParseError:
        return self.parser.error(pos, message)

    def start(self, node: Expr) -> int:
        return self.parser.start_of(node)

    def operator_pos(self, node: BinaryExpr) -> int:
        text = self.parser.text
        pos = self.parser.end_of(node.lhs)
        while pos < len(text) and text[pos] in " \t\n\r":
            pos += 1
        return pos

    def expect_type(self, node: Expr, want: ValueType, context: str) -> None:
        got = self.check(node)
        if got != want:
            raise self.fail(
                self.start(node), f"expected type {documented_type(want)} in {context}, got {documented_type(got)}"
            )

    def check(self, node: Expr) -> ValueType:
        kind = self.parser.type_of(node)
        if isinstance(node, AggregateExpr):
            self.expect_type(node.expr, ValueType.VECTOR, "aggregation expression")
            if node.op in _SCALAR_PARAMETER:
                assert node.param is not None
                self.expect_type(node.param, ValueType.SCALAR, "aggregation parameter")
            elif node.op == "count_values":
                assert node.param is not None
                self.expect_type(node.param, ValueType.STRING, "aggregation parameter")
        elif isinstance(node, BinaryExpr):
            self.check_binary(node)
        elif isinstance(node, Call):
            self.check_call(node)
        elif isinstance(node, ParenExpr):
            self.check(node.expr)
        elif isinstance(node, UnaryExpr):
            got = self.check(node.expr)
            if got not in (ValueType.SCALAR, ValueType.VECTOR):
                raise self.fail(
                    self.start(node),
                    "unary expression only allowed on expressions of type scalar or instant vector, "
                    f"got {go_quote(documented_type(got))}",
                )
        elif isinstance(node, SubqueryExpr):
            got = self.check(node.expr)
            if got != ValueType.VECTOR:
                raise self.fail(
                    self.start(node), f"subquery is only allowed on instant vector, got {got.value} instead"
                )
        elif isinstance(node, MatrixSelector):
            self.check_selector(node.selector, self.start(node))
        elif isinstance(node, VectorSelector):
            self.check_selector(node, self.start(node))
        return kind

    def check_selector(self, node: VectorSelector, start: int) -> None:
        if node.name is not None:
            for matcher in node.matchers[1:]:
                if matcher.name == METRIC_NAME:
                    raise self.fail(
                        start,
                        f"metric name must not be set twice: {go_quote(node.name)} or {go_quote(matcher.value)}",
                    )
            return
        info = self.parser.info.get(id(node))
        if info is not None and info.bypass_empty_check:
            return
        if all(m.matches("") for m in node.matchers):
            raise self.fail(start, "vector selector must contain at least one non-empty matcher")

    def check_binary(self, node: BinaryExpr) -> None:
        lt = self.check(node.lhs)
        rt = self.check(node.rhs)
        info = self.parser.info[id(node)]
        op = node.op
        if info.return_bool and op not in COMPARISON_OPERATORS:
            raise self.fail(self.operator_pos(node), "bool modifier can only be used on comparison operators")
        if op in COMPARISON_OPERATORS and not info.return_bool and lt == rt == ValueType.SCALAR:
            raise self.fail(self.operator_pos(node), "comparisons between scalars must use BOOL modifier")
        if info.on:
            for label in info.labels:
                if label in info.include:
                    raise self.fail(
                        self.operator_pos(node), f"label {go_quote(label)} must not occur in ON and GROUP clause at once"
                    )
        allowed = (ValueType.SCALAR, ValueType.VECTOR)
        if lt not in allowed:
            raise self.fail(self.start(node.lhs), "binary expression must contain only scalar and instant vector types")
        if rt not in allowed:
            raise self.fail(self.start(node.rhs), "binary expression must contain only scalar and instant vector types")
        start = self.start(node)
        if lt != ValueType.VECTOR or rt != ValueType.VECTOR:
            if info.labels:
                raise self.fail(start, "vector matching only allowed between instant vectors")
        elif op in SET_OPERATORS:
            if info.card in ("one-to-many", "many-to-one"):
                raise self.fail(start, f"no grouping allowed for {go_quote(op)} operation")
        if (lt == ValueType.SCALAR or rt == ValueType.SCALAR) and op in SET_OPERATORS:
            raise self.fail(start, f"set operator {go_quote(op)} not allowed in binary scalar expression")

    def check_call(self, node: Call) -> None:
        signature = FUNCTIONS[node.func]
        start = self.start(node)
        wanted = len(signature.arg_types)
        got = len(node.args)
        name = go_quote(node.func)
        if signature.variadic == 0:
            if wanted != got:
                raise self.fail(start, f"expected {wanted} argument(s) in call to {name}, got {got}")
        else:
            minimum = wanted - 1
            if minimum > got:
                raise self.fail(start, f"expected at least {minimum} argument(s) in call to {name}, got {got}")
            maximum = minimum + signature.variadic
            if signature.variadic > 0 and maximum < got:
                raise self.fail(start, f"expected at most {maximum} argument(s) in call to {name}, got {got}")
        if node.func == "info" and got > 1:
            selector = node.args[1]
            selector_type = value_type(selector)
            if selector_type != ValueType.VECTOR:
                raise self.fail(
                    start,
                    f"expected type instant vector in call to function {name}, got {documented_type(selector_type)}",
                )
            if isinstance(selector, VectorSelector) and selector.name is not None:
                raise self.fail(self.start(selector), "expected label selectors only, got vector selector instead")
            if isinstance(selector, VectorSelector):
                self.parser.info[id(selector)].bypass_empty_check = True
            else:
                raise self.fail(self.start(selector), "expected label selectors only")
        for i, arg in enumerate(node.args):
            if i >= wanted:
                if signature.variadic == 0:
                    break
                i = wanted - 1
            arg_type = self.check(arg)
            if arg_type != signature.arg_types[i]:
                raise self.fail(
                    self.start(arg),
                    f"expected type {documented_type(signature.arg_types[i])} in call to function {name}, "
                    f"got {documented_type(arg_type)}",
                )


def _fold(op: str, lhs: float, rhs: float) -> float:
    if op == "+":
        return lhs + rhs
    if op == "-":
        return lhs - rhs
    if op == "*":
        return lhs * rhs
    if op == "/":
        return lhs / rhs if rhs else math.copysign(math.inf, lhs) if lhs else math.nan
    if op == "%":
        return math.fmod(lhs, rhs) if rhs else math.nan
    try:
        return math.pow(lhs, rhs)
    except (OverflowError, ValueError):
        return math.inf


_OCTAL = re.compile(r"0[0-7_]+")
_DECIMAL = re.compile(r"[0-9][0-9_]*")


def _parse_go_number(text: str) -> float | None:
    """A number token's value as Prometheus reads it: Go's ``ParseInt(s, 0, 64)``, else ``ParseFloat``.

    So ``0x1F`` is hexadecimal and, as in Go, a leading zero makes an integer octal (``010``
    is 8). Returns None where Go reports invalid syntax.
    """
    integer: int | None = None
    try:
        if text[:2] in ("0x", "0X"):
            integer = int(text[2:].replace("_", ""), 16)
        elif _OCTAL.fullmatch(text):
            integer = int(text[1:].replace("_", ""), 8)
        elif _DECIMAL.fullmatch(text):
            integer = int(text.replace("_", ""), 10)
    except ValueError:
        integer = None
    if integer is not None and integer < 2**63:
        return float(integer)
    if text[:2] in ("0x", "0X"):
        return None  # Go's ParseFloat wants a 'p' exponent in hexadecimal, which the lexer never lets through
    try:
        return float(text)
    except ValueError:
        return None


def _go_round(value: float) -> float:
    """Round half away from zero, as Go's ``math.Round`` (Python's ``round`` rounds half to even)."""
    return math.copysign(math.floor(abs(value) + 0.5), value)


def _valid_utf8_label(label: str) -> bool:
    return bool(label) and not any(0xDC80 <= ord(c) <= 0xDCFF for c in label)


def _go_float(value: float) -> str:
    """A float as Go's ``%f`` prints it."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:f}"
