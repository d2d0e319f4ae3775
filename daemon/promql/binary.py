"""Binary operators: arithmetic, comparisons and set operators, with vector matching."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Hashable

from daemon.promql import arith
from daemon.promql.ast import VectorMatching
from daemon.promql.errors import QueryError
from daemon.promql.labelset import drop_name, keep_only, label_value, without
from daemon.promql.value import Sample
from daemon.tsdb import Labels
from daemon.tsdb.labels import METRIC_NAME

ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": arith.div,
    "%": arith.mod,
    "^": arith.pow_,
    "atan2": math.atan2,
}
COMPARISON: dict[str, Callable[[float, float], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}


def scalar_op(op: str, a: float, b: float, return_bool: bool) -> float:
    """``a op b`` between two scalars; comparisons need ``bool`` and give 0 or 1."""
    compare = COMPARISON.get(op)
    if compare is not None:
        return 1.0 if compare(a, b) else 0.0
    return ARITHMETIC[op](a, b)


def vector_scalar(op: str, vector: list[Sample], scalar: float, scalar_left: bool, return_bool: bool) -> list[Sample]:
    """``vector op scalar`` (or ``scalar op vector`` when ``scalar_left``)."""
    out: list[Sample] = []
    compare = COMPARISON.get(op)
    if compare is None:
        fn = ARITHMETIC[op]
        if scalar_left:
            for s in vector:
                out.append(Sample(drop_name(s.labels), fn(scalar, s.value)))
        else:
            for s in vector:
                out.append(Sample(drop_name(s.labels), fn(s.value, scalar)))
        return out
    for s in vector:
        keep = compare(scalar, s.value) if scalar_left else compare(s.value, scalar)
        if return_bool:
            out.append(Sample(drop_name(s.labels), 1.0 if keep else 0.0))
        elif keep:
            # Filtering keeps the vector's own sample, on whichever side it stands.
            out.append(s)
    return out


Signature = Callable[[Labels], Hashable]


def signature(matching: VectorMatching) -> Signature:
    """The function that gives the match-group key of a label set under ``matching``."""
    if matching.on:
        names = tuple(matching.labels)
        if len(names) == 1:
            name = names[0]
            return lambda labels: label_value(labels, name)
        if not names:
            return lambda labels: ()
        return lambda labels: tuple([label_value(labels, n) for n in names])
    ignored = frozenset(matching.labels) | {METRIC_NAME}
    return lambda labels: without(labels, ignored)


def _group_string(labels: Labels, matching: VectorMatching) -> str:
    if matching.on:
        shown = keep_only(labels, sorted(set(matching.labels)))
    else:
        shown = without(labels, frozenset(matching.labels) | {METRIC_NAME})
    return "{" + ", ".join(f'{k}="{v}"' for k, v in shown.items()) + "}"


def _labels_string(labels: Labels) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def vector_vector(op: str, lhs: list[Sample], rhs: list[Sample], matching: VectorMatching, return_bool: bool) -> list[Sample]:
    """``lhs op rhs`` between two vectors, pairing samples as ``matching`` says."""
    sig = signature(matching)
    if op == "and":
        wanted = {sig(s.labels) for s in rhs}
        return [s for s in lhs if sig(s.labels) in wanted]
    if op == "unless":
        unwanted = {sig(s.labels) for s in rhs}
        return [s for s in lhs if sig(s.labels) not in unwanted]
    if op == "or":
        seen = {sig(s.labels) for s in lhs}
        return lhs + [s for s in rhs if sig(s.labels) not in seen]
    return _matched(op, lhs, rhs, matching, return_bool, sig)


def _matched(
    op: str, lhs: list[Sample], rhs: list[Sample], matching: VectorMatching, return_bool: bool, sig: Signature
) -> list[Sample]:
    card = matching.card
    swapped = card == "one-to-many"
    if swapped:
        lhs, rhs = rhs, lhs  # from here on, rhs is the "one" side
    one_side: dict[Hashable, Sample] = {}
    for s in rhs:
        key = sig(s.labels)
        previous = one_side.get(key)
        if previous is not None:
            side = "left" if swapped else "right"
            pair = sorted([previous.labels, s.labels])
            raise QueryError(
                f"found duplicate series for the match group {_group_string(s.labels, matching)} on the {side} "
                f"hand-side of the operation: [{_labels_string(pair[0])}, {_labels_string(pair[1])}]"
                ";many-to-many matching not allowed: matching labels must be unique on one side"
            )
        one_side[key] = s
    compare = COMPARISON.get(op)
    arithmetic = ARITHMETIC.get(op)
    drops_name = compare is None or return_bool
    include = matching.include
    one_to_one = card == "one-to-one"
    keep_names = tuple(sorted(set(matching.labels))) if matching.on else ()
    ignored = frozenset(matching.labels)
    matched: dict[Hashable, set[Labels] | None] = {}
    out: list[Sample] = []
    for ls in lhs:
        key = sig(ls.labels)
        rs = one_side.get(key)
        if rs is None:
            continue
        if one_to_one:
            # Checked before filtering: a comparison must not hide an ambiguous match.
            if key in matched:
                raise QueryError("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)")
            matched[key] = None
        left, right = (rs.value, ls.value) if swapped else (ls.value, rs.value)
        if compare is not None:
            keep = compare(left, right)
            if return_bool:
                value = 1.0 if keep else 0.0
            elif not keep:
                continue
            else:
                value = left
        else:
            assert arithmetic is not None
            value = arithmetic(left, right)
        labels = ls.labels
        if drops_name:
            labels = drop_name(labels)
        if one_to_one:
            labels = keep_only(labels, keep_names) if matching.on else without(labels, ignored)
        if include:
            merged = labels.to_dict()
            for name in include:
                v = label_value(rs.labels, name)
                if v:
                    merged[name] = v
                else:
                    merged.pop(name, None)
            labels = Labels.of(merged)
        if not one_to_one:
            inserted = matched.get(key)
            if inserted is None:
                inserted = matched[key] = set()
            elif labels in inserted:
                raise QueryError("multiple matches for labels: grouping labels must ensure unique results")
            inserted.add(labels)
        out.append(Sample(labels, value))
    return out
