"""The store: every series by label set, the postings index over them, appends, selection and gc."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from daemon.tsdb.labels import Labels
from daemon.tsdb.matcher import EQUAL, Matcher
from daemon.tsdb.postings import Postings, intersect, union
from daemon.tsdb.series import Series


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

        Equality matchers intersect their postings lists (smallest first); other matchers that
        cannot match the empty string narrow through the postings of the values they match,
        each regex tried once per distinct value; the rest filter those candidates.
        """
        equal: list[Matcher] = []
        rest: list[Matcher] = []
        for m in matchers:
            (equal if m.op == EQUAL and m.value else rest).append(m)
        decided: dict[Matcher, dict[str, bool]] = {}
        refs: Sequence[int] | None = None
        if equal:
            lists = []
            for m in equal:
                found = self._postings.get(m.name, m.value)
                if found is None:
                    return []
                lists.append(found)
            refs = intersect(lists)
        else:
            refs = self._narrow(rest, decided)
        if refs is None:
            candidates: Iterable[Series] = self._by_ref.values()
        else:
            by_ref = self._by_ref
            candidates = [by_ref[r] for r in refs]
        for m in rest:
            candidates = _filtered(candidates, m, decided.setdefault(m, {}))
        return list(candidates)

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

    def _narrow(self, matchers: Sequence[Matcher], decided: dict[Matcher, dict[str, bool]]) -> Sequence[int] | None:
        """Refs that may match, from the smallest postings union of a matcher that needs its label.

        None when every matcher also matches series without the label (all series are candidates).
        """
        best: list[Sequence[int]] | None = None
        best_size = 0
        for m in matchers:
            if m.matches(""):
                continue
            verdicts = decided.setdefault(m, {"": False})
            lists = []
            size = 0
            for value, refs in self._postings.values(m.name).items():
                ok = verdicts[value] = m.matches(value)
                if ok:
                    lists.append(refs)
                    size += len(refs)
            if best is None or size < best_size:
                best, best_size = lists, size
            if not size:
                return ()
        if best is None:
            return None
        return union(best)

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
        value = series.labels.get(name)
        ok = verdicts.get(value)
        if ok is None:
            ok = verdicts[value] = matches(value)
        if ok:
            kept.append(series)
    return kept
