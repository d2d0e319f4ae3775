"""Aggregation operators: ``sum``, ``avg``, ... ``count_values`` with ``by``/``without`` grouping."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable

from daemon.promql import arith
from daemon.promql.errors import QueryError
from daemon.promql.lexer import go_quote
from daemon.promql.labelset import label_value, without
from daemon.promql.value import Sample
from daemon.tsdb import Labels
from daemon.tsdb.labels import EMPTY, METRIC_NAME

_KEY_CACHE_LIMIT = 500_000
_LABEL_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789")


class Grouping:
    """How samples fall into groups: the key of a label set and the labels of a group's result."""

    __slots__ = ("key", "labels_of", "keys")

    def __init__(self, names: tuple[str, ...], without_: bool) -> None:
        # Group key by label set, kept from one evaluation to the next: the same series bring
        # the same label set objects every time.
        self.keys: dict[Labels, Hashable] = {}
        self.key: Callable[[Labels], Hashable]
        self.labels_of: Callable[[Hashable], Labels]
        if without_:
            dropped = frozenset(names) | {METRIC_NAME}
            self.key = lambda labels: without(labels, dropped)
            self.labels_of = lambda key: key  # type: ignore[assignment,return-value]
            return
        kept = tuple(sorted(set(names)))
        if not kept:
            self.key = lambda labels: ()
            self.labels_of = lambda key: EMPTY
        elif len(kept) == 1:
            name = kept[0]
            self.key = lambda labels: label_value(labels, name)
            self.labels_of = lambda key: Labels((name, key)) if key else EMPTY  # type: ignore[arg-type]
        else:
            self.key = lambda labels: tuple([label_value(labels, n) for n in kept])
            self.labels_of = lambda key: Labels(_pairs(kept, key))  # type: ignore[arg-type]


def _pairs(names: tuple[str, ...], values: tuple[str, ...]) -> list[str]:
    flat: list[str] = []
    for name, value in zip(names, values):
        if value:
            flat.append(name)
            flat.append(value)
    return flat


def _groups(samples: list[Sample], grouping: Grouping) -> dict[Hashable, list[float]]:
    key = grouping.key
    keys = grouping.keys
    if len(keys) > _KEY_CACHE_LIMIT:
        keys.clear()
    groups: dict[Hashable, list[float]] = {}
    for s in samples:
        labels = s.labels
        k = keys.get(labels)
        if k is None:
            k = keys[labels] = key(labels)
        values = groups.get(k)
        if values is None:
            groups[k] = [s.value]
        else:
            values.append(s.value)
    return groups


def _min(values: list[float]) -> float:
    result = values[0]
    for v in values:
        if v < result or result != result:
            result = v
    return result


def _max(values: list[float]) -> float:
    result = values[0]
    for v in values:
        if v > result or result != result:
            result = v
    return result


def _variance(values: list[float]) -> float:
    # Starting from zero (not from the first value) lets a lone NaN or Inf give NaN.
    count = m = aux = 0.0
    for v in values:
        count += 1
        delta = v - m
        m += delta / count
        aux += delta * (v - m)
    return aux / count


SIMPLE: dict[str, Callable[[list[float]], float]] = {
    "sum": arith.kahan_sum,
    "avg": arith.mean,
    "count": lambda values: float(len(values)),
    "group": lambda values: 1.0,
    "min": _min,
    "max": _max,
    "stdvar": _variance,
    "stddev": lambda values: math.sqrt(_variance(values)),
}


def aggregate(op: str, samples: list[Sample], grouping: Grouping, param: float | str | None) -> list[Sample]:
    """Apply aggregation ``op`` (with its parameter, if it takes one) to ``samples``."""
    simple = SIMPLE.get(op)
    if simple is not None:
        labels_of = grouping.labels_of
        return [Sample(labels_of(k), simple(values)) for k, values in _groups(samples, grouping).items()]
    if op == "quantile":
        assert isinstance(param, float)
        labels_of = grouping.labels_of
        return [Sample(labels_of(k), arith.quantile(param, values)) for k, values in _groups(samples, grouping).items()]
    if op in ("topk", "bottomk", "limitk"):
        assert isinstance(param, float)
        return _k_of(op, samples, grouping, _to_int(param))
    if op == "limit_ratio":
        assert isinstance(param, float)
        return _limit_ratio(samples, param)
    if op == "count_values":
        assert isinstance(param, str)
        return _count_values(samples, grouping, param)
    raise QueryError(f"aggregation {op!r} not supported")


def _to_int(param: float) -> int:
    if param != param:
        raise QueryError("Parameter value is NaN")
    if not math.isfinite(param) or not -(2.0**63) <= param < 2.0**63:
        raise QueryError(f"Scalar value {arith.format_float(param)} overflows int64")
    return int(param)


def _k_of(op: str, samples: list[Sample], grouping: Grouping, k: int) -> list[Sample]:
    if k < 1:
        return []
    key = grouping.key
    groups: dict[Hashable, list[Sample]] = {}
    for s in samples:
        groups.setdefault(key(s.labels), []).append(s)
    out: list[Sample] = []
    for members in groups.values():
        if op == "limitk":
            out.extend(members[:k])
        elif op == "topk":
            # NaN ranks below every number, in either direction.
            out.extend(sorted(members, key=lambda s: (s.value == s.value, s.value), reverse=True)[:k])
        else:
            out.extend(sorted(members, key=lambda s: (s.value != s.value, s.value))[:k])
    return out


def _limit_ratio(samples: list[Sample], ratio: float) -> list[Sample]:
    if ratio != ratio:
        raise QueryError("Ratio value is NaN")
    if not -1 <= ratio <= 1:
        ratio = max(-1.0, min(1.0, ratio))
    out = []
    for s in samples:
        share = (hash(s.labels) & 0xFFFFFFFFFFFF) / float(1 << 48)
        if (ratio >= 0 and share < ratio) or (ratio < 0 and share >= 1 + ratio):
            out.append(s)
    return out


def _count_values(samples: list[Sample], grouping: Grouping, label: str) -> list[Sample]:
    if not label or label[0].isdigit() or not set(label) <= _LABEL_NAME_CHARS:
        raise QueryError(f"invalid label name {go_quote(label)}")
    key = grouping.key
    counts: dict[tuple[Hashable, str], int] = {}
    for s in samples:
        k = (key(s.labels), arith.format_float(s.value))
        counts[k] = counts.get(k, 0) + 1
    out: list[Sample] = []
    for (k, text), n in counts.items():
        merged = grouping.labels_of(k).to_dict()
        merged[label] = text
        out.append(Sample(Labels.of(merged), float(n)))
    return out
