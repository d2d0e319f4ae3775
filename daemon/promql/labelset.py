"""Label-set operations the evaluator repeats per sample: dropping the name, keys, uniqueness."""

from __future__ import annotations

from collections.abc import Sequence

from daemon.promql.errors import QueryError
from daemon.promql.value import Sample
from daemon.tsdb import Labels
from daemon.tsdb.labels import METRIC_NAME
from daemon.tsdb.store import label_value

__all__ = ["drop_name", "ensure_unique", "label_value", "keep_only", "without"]


def drop_name(labels: Labels) -> Labels:
    """``labels`` without ``__name__`` (the same object when it has none)."""
    try:
        i = labels.index(METRIC_NAME)
    except ValueError:
        return labels
    if i & 1:  # a label value that happens to read "__name__"
        return labels.without_name()
    return Labels(labels[:i] + labels[i + 2 :])


def without(labels: Labels, names: frozenset[str]) -> Labels:
    """``labels`` minus the labels in ``names`` (order kept, so still sorted)."""
    it = iter(labels)
    flat: list[str] = []
    for name, value in zip(it, it):
        if name not in names:
            flat.append(name)
            flat.append(value)
    return Labels(flat)


def keep_only(labels: Labels, names: Sequence[str]) -> Labels:
    """Only the labels in ``names``, which must be sorted and unique."""
    flat: list[str] = []
    for name in names:
        value = label_value(labels, name)
        if value:
            flat.append(name)
            flat.append(value)
    return Labels(flat)


def ensure_unique(samples: list[Sample]) -> None:
    """Refuse a vector in which two samples have the same label set (after dropping names)."""
    if len({s.labels for s in samples}) != len(samples):
        raise QueryError("vector cannot contain metrics with the same labelset")
