"""The store: every series by label set, the postings index over them, appends, selection and gc."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from daemon.tsdb.labels import Labels
from daemon.tsdb.matcher import EQUAL, Matcher
from daemon.tsdb.postings import Postings, intersect, union
from daemon.tsdb.series import Series

# Putting one ref through a set operation costs about this many times less than judging one
# candidate series in Python.
_SET_WORK_PER_CANDIDATE = 6


class Store:
    """All series held in memory, with ``retention`` seconds of samples each.

    ``series(labels)`` hands out one long-lived ``Series`` per label set (callers may cache it);
    ``append`` adds a sample to one; ``select`` finds series by matchers through the postings
    index; ``gc`` drops samples older than the retention and series left without samples. A
    series that ``gc`` dropped comes back, re-indexed, the next time a sample is appended to it.
    """

    def __init__(self, retention: float = 3600.0) -> None:
        self._retention_ms = 0
        self.retention = retention
        self._series: dict[Labels, Series] = {}
        self._by_ref: dict[int, Series] = {}
        self._postings = Postings()
        self._next_ref = 0

    @property
    def retention(self) -> float:
        """Seconds of samples kept: ring buffers grow to hold this much and gc drops what is older."""
        return self._retention_ms / 1000.0

    @retention.setter
    def retention(self, seconds: float) -> None:
        if not seconds > 0:
            raise ValueError(f"retention must be positive, got {seconds!r}")
        self._retention_ms = int(seconds * 1000)

    @property
    def num_series(self) -> int:
        return len(self._series)

    @property
    def num_samples(self) -> int:
        return sum(map(len, self._series.values()))

    def series(self, labels: Labels) -> tuple[Series, bool]:
        """The series for ``labels``, created (and indexed) if new; the bool says whether it was."""
        found = self._series.get(labels)
        if found is not None:
            return found, False
        return self._create(labels), True

    def append(self, series: Series, t_ms: int, value: float) -> int:
        """Add one sample; returns ``OK``, ``DUPLICATE`` or ``OUT_OF_ORDER`` (both rejected)."""
        if series._ref < 0:
            series = self._revive(series)
        return series._append(t_ms, value, self._retention_ms)

    def select(self, matchers: Sequence[Matcher]) -> list[Series]:
        """The series matching every matcher, in creation order.

        Equality matchers intersect their postings lists (smallest first). Each other matcher
        is decided once per distinct value of its label and then narrows the candidates with
        set operations on postings, or, when the candidates are already few, filters them one
        by one. Only a selector without any matcher that needs its label looks at every series.
        """
        equal: list[Matcher] = []
        rest: list[Matcher] = []
        for m in matchers:
            (equal if m.op == EQUAL and m.value else rest).append(m)
        refs: Sequence[int] | None = None  # None: every series
        if equal:
            lists = []
            for m in equal:
                found = self._postings.get(m.name, m.value)
                if found is None:
                    return []
                lists.append(found)
            refs = intersect(lists)
        # Matchers that need their label narrow the most; those that also pass absent labels last.
        rest.sort(key=lambda m: m.matches(""))
        one_by_one: list[tuple[Matcher, dict[str, bool]]] = []
        for m in rest:
            if refs is not None and not refs:
                return []
            verdicts: dict[str, bool] = {}
            narrowed = self._narrow(m, refs, verdicts)
            if narrowed is None:
                one_by_one.append((m, verdicts))
            else:
                refs = narrowed
        by_ref = self._by_ref
        candidates = list(by_ref.values()) if refs is None else [by_ref[r] for r in refs]
        for m, verdicts in one_by_one:
            candidates = _filtered(candidates, m, verdicts)
        return candidates

    def label_names(self, matchers: Sequence[Sequence[Matcher]] = ()) -> list[str]:
        """Sorted label names of all series, or of those any of the selectors ``matchers`` selects."""
        if not matchers:
            return sorted(self._postings.names())
        names: set[str] = set()
        for series in self._selected(matchers):
            names.update(series.labels.names())
        return sorted(names)

    def label_values(self, name: str, matchers: Sequence[Sequence[Matcher]] = ()) -> list[str]:
        """Sorted values of label ``name`` over all series, or over those the selectors select."""
        if not matchers:
            return sorted(self._postings.values(name))
        values = {series.labels.get(name) for series in self._selected(matchers)}
        values.discard("")
        return sorted(values)

    def gc(self, now_ms: int) -> int:
        """Drop samples with ``t <= now_ms - retention`` and series left empty; return series dropped."""
        cutoff = now_ms - self._retention_ms
        dropped_refs: set[int] = set()
        dropped_labels: list[Labels] = []
        for ref, series in self._by_ref.items():
            if not series._expire(cutoff):
                dropped_refs.add(ref)
                dropped_labels.append(series.labels)
        for ref in dropped_refs:
            series = self._by_ref.pop(ref)
            del self._series[series.labels]
            series._ref = -1
        if dropped_refs:
            self._postings.remove(dropped_refs, dropped_labels)
        return len(dropped_refs)

    # -- internals -----------------------------------------------------------------------------

    def _create(self, labels: Labels) -> Series:
        series = Series(labels, self._next_ref)
        self._index(series)
        return series

    def _index(self, series: Series) -> None:
        ref = self._next_ref
        self._next_ref = ref + 1
        series._ref = ref
        self._series[series.labels] = series
        self._by_ref[ref] = series
        self._postings.add(ref, series.labels)

    def _revive(self, series: Series) -> Series:
        """Bring back a series gc dropped; if its label set was re-created meanwhile, use that one."""
        current = self._series.get(series.labels)
        if current is not None:
            return current
        self._index(series)
        return series

    def _narrow(self, m: Matcher, refs: Sequence[int] | None, verdicts: dict[str, bool]) -> Sequence[int] | None:
        """``refs`` (None: all series) narrowed by ``m`` through the postings of its label.

        Returns None when filtering the candidates one by one is cheaper; ``verdicts`` then
        holds what is already known about the label's values.
        """
        values = self._postings.values(m.name)
        if refs is not None and len(values) > len(refs):
            return None  # more distinct values than candidates
        keeps_absent = verdicts[""] = m.matches("")
        lists = []
        size = 0
        for value, posting in values.items():
            ok = verdicts[value] = m.matches(value)
            if ok != keeps_absent:  # the postings that change the candidates
                lists.append(posting)
                size += len(posting)
        if not keeps_absent:
            if refs is None:
                return union(lists) if lists else ()
            if size > _SET_WORK_PER_CANDIDATE * len(refs):
                return None
            return sorted(set().union(*lists).intersection(refs))
        if not lists:
            return refs
        if refs is None:
            refs = list(self._by_ref)
        elif size > _SET_WORK_PER_CANDIDATE * len(refs):
            return None
        return sorted(set(refs).difference(*lists))

    def _selected(self, selectors: Sequence[Sequence[Matcher]]) -> Iterable[Series]:
        seen: set[int] = set()
        for matchers in selectors:
            for series in self.select(matchers):
                if id(series) not in seen:
                    seen.add(id(series))
                    yield series


def _filtered(candidates: Iterable[Series], matcher: Matcher, verdicts: dict[str, bool]) -> list[Series]:
    """The candidates whose label passes ``matcher``, deciding once per distinct value."""
    name = matcher.name
    matches: Callable[[str], bool] = matcher.matches
    kept = []
    for series in candidates:
        value = label_value(series.labels, name)
        ok = verdicts.get(value)
        if ok is None:
            ok = verdicts[value] = matches(value)
        if ok:
            kept.append(series)
    return kept


def label_value(labels: Labels, name: str) -> str:
    """``labels.get(name)``, searching in C: the name is the first occurrence at an even index."""
    start = 0
    try:
        while True:
            i = labels.index(name, start)
            if not i & 1:
                return labels[i + 1]  # type: ignore[no-any-return]
            start = i + 1
    except ValueError:
        return ""
