"""The postings index: for each label name and value, the sorted refs of the series that have it."""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence

from daemon.tsdb.labels import Labels

# 4-byte refs: room for 4 billion series created over the process' life.
REF_TYPECODE = "I"


class Postings:
    """``name -> value -> array of series refs``, each array sorted because refs only increase."""

    __slots__ = ("_by_name",)

    def __init__(self) -> None:
        self._by_name: dict[str, dict[str, array[int]]] = {}

    def add(self, ref: int, labels: Labels) -> None:
        """Index a series; ``ref`` must be larger than every ref added before."""
        by_name = self._by_name
        for name, value in labels.items():
            values = by_name.get(name)
            if values is None:
                values = by_name[name] = {}
            refs = values.get(value)
            if refs is None:
                values[value] = array(REF_TYPECODE, (ref,))
            else:
                refs.append(ref)

    def remove(self, refs: set[int], labels: Iterable[Labels]) -> None:
        """Forget the series ``refs`` (whose label sets are ``labels``), compacting the touched lists."""
        touched = {pair for one in labels for pair in one.items()}
        by_name = self._by_name
        for name, value in touched:
            values = by_name.get(name)
            if values is None:
                continue
            old = values.get(value)
            if old is None:
                continue
            kept = [r for r in old if r not in refs]
            if kept:
                values[value] = array(REF_TYPECODE, kept)
            else:
                del values[value]
                if not values:
                    del by_name[name]

    def get(self, name: str, value: str) -> array[int] | None:
        values = self._by_name.get(name)
        return None if values is None else values.get(value)

    def names(self) -> Iterator[str]:
        return iter(self._by_name)

    def values(self, name: str) -> dict[str, array[int]]:
        """``value -> refs`` for one label name (empty if no series has it); do not modify."""
        return self._by_name.get(name) or {}


def intersect(lists: Sequence[Sequence[int]]) -> Sequence[int]:
    """The refs present in every sorted list, smallest list first so the work follows it."""
    ordered = sorted(lists, key=len)
    result: Sequence[int] = ordered[0]
    for other in ordered[1:]:
        if not result:
            break
        if len(other) <= 16 * len(result):
            # Comparable sizes: one pass over ``other`` in C beats a binary search per ref.
            result = sorted(set(result).intersection(other))
            continue
        kept = array(REF_TYPECODE)
        lo, n = 0, len(other)
        for ref in result:
            lo = bisect_left(other, ref, lo)
            if lo == n:
                break
            if other[lo] == ref:
                kept.append(ref)
        result = kept
    return result


def union(lists: Sequence[Sequence[int]]) -> Sequence[int]:
    """The refs present in any of the sorted lists, sorted."""
    if len(lists) == 1:
        return lists[0]
    merged: set[int] = set()
    for refs in lists:
        merged.update(refs)
    return sorted(merged)
