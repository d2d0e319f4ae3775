"""One series: its label set and a ring buffer of its samples, sized by the retention."""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_right

from daemon.tsdb.labels import Labels
from daemon.tsdb.staleness import is_stale

# What appending a sample can come to (Prometheus' head appender, same decisions).
OK, DUPLICATE, OUT_OF_ORDER = 0, 1, 2

DEFAULT_LOOKBACK_MS = 300_000

# First allocation; the second one is sized from the observed sample interval.
_INITIAL_CAPACITY = 4
# Room beyond the predicted need, for scrape jitter.
_SLACK = 2

_pack_double = struct.Struct("<d").pack


class Series:
    """The samples of one label set, oldest first, in a ring that keeps what the retention needs.

    Timestamps (integer milliseconds) and values live in two parallel fixed-size arrays; the ring
    grows only while its oldest sample is still inside the retention and otherwise overwrites
    that oldest sample, so a steady series settles at about ``retention / interval`` samples.
    Samples are added through ``Store.append`` (which also revives a series that ``gc`` dropped).
    """

    __slots__ = ("labels", "_ref", "_ts", "_vals", "_head", "_count")

    def __init__(self, labels: Labels, ref: int) -> None:
        self.labels = labels
        # Position in the store's postings; negative once gc has dropped the series.
        self._ref = ref
        self._ts = array("q")
        self._vals = array("d")
        self._head = 0  # physical index of the oldest sample
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __repr__(self) -> str:
        return f"Series({self.labels}, {self._count} samples)"

    def last(self) -> tuple[int, float] | None:
        """The newest sample as ``(timestamp_ms, value)``, stale marker included."""
        if not self._count:
            return None
        i = self._physical(self._count - 1)
        return self._ts[i], self._vals[i]

    def window(self, mint_ms: int, maxt_ms: int) -> tuple[array[int], array[float]]:
        """Copies of the samples with ``mint_ms < t <= maxt_ms``, oldest first, stale markers included."""
        ts, vals = self._ts, self._vals
        spans = self._spans(mint_ms, maxt_ms)
        if not spans:
            return array("q"), array("d")
        if len(spans) == 1:
            lo, hi = spans[0]
            return ts[lo:hi], vals[lo:hi]
        (lo1, hi1), (lo2, hi2) = spans
        return ts[lo1:hi1] + ts[lo2:hi2], vals[lo1:hi1] + vals[lo2:hi2]

    def window_fast(self, mint_ms: int, maxt_ms: int) -> tuple[array[int], array[float]]:
        """``window`` with the common case (the samples not wrapped around the ring) inlined.

        The evaluator calls this once per series per range selector, so the two method calls
        and list of spans of the general path are worth saving.
        """
        n = self._count
        head = self._head
        ts = self._ts
        end = head + n
        if end > len(ts):
            return self.window(mint_ms, maxt_ms)
        a = bisect_right(ts, mint_ms, head, end)
        b = bisect_right(ts, maxt_ms, a, end)
        return ts[a:b], self._vals[a:b]

    def latest_at(self, t_ms: int, lookback_ms: int = DEFAULT_LOOKBACK_MS) -> float | None:
        """The PromQL instant value at ``t_ms``: the newest sample in ``(t - lookback, t]``.

        None when there is no such sample or when it is a stale marker (the series has ended).
        """
        n = self._count
        if not n:
            return None
        ts = self._ts
        i = self._physical(n - 1)
        if ts[i] > t_ms:
            i = self._newest_not_after(t_ms)
            if i < 0:
                return None
        if ts[i] <= t_ms - lookback_ms:
            return None
        value = self._vals[i]
        return None if is_stale(value) else value

    def latest_sample_at(self, t_ms: int, lookback_ms: int = DEFAULT_LOOKBACK_MS) -> tuple[int, float] | None:
        """Like ``latest_at`` but with the sample's own timestamp: ``(timestamp_ms, value)`` or None."""
        n = self._count
        if not n:
            return None
        ts = self._ts
        i = self._physical(n - 1)
        if ts[i] > t_ms:
            i = self._newest_not_after(t_ms)
            if i < 0:
                return None
        t = ts[i]
        if t <= t_ms - lookback_ms:
            return None
        value = self._vals[i]
        return None if is_stale(value) else (t, value)

    # -- used by Store -------------------------------------------------------------------------

    def _append(self, t_ms: int, value: float, retention_ms: int) -> int:
        n = self._count
        ts = self._ts
        cap = len(ts)
        head = self._head
        if n:
            newest = head + n - 1
            if newest >= cap:
                newest -= cap
            newest_t = ts[newest]
            if t_ms <= newest_t:
                if t_ms < newest_t:
                    return OUT_OF_ORDER
                # Same timestamp: a repeat of the same sample is harmless, a new value is not.
                if _pack_double(self._vals[newest]) == _pack_double(value):
                    return OK
                return DUPLICATE
        if n == cap:
            if n and ts[head] <= t_ms - retention_ms:
                # The oldest sample fell out of the retention: reuse its slot.
                ts[head] = t_ms
                self._vals[head] = value
                head += 1
                self._head = 0 if head == cap else head
                return OK
            self._resize(self._grown_capacity(t_ms, retention_ms))
            ts = self._ts
            cap = len(ts)
            head = 0
        i = head + n
        if i >= cap:
            i -= cap
        ts[i] = t_ms
        self._vals[i] = value
        self._count = n + 1
        return OK

    def _expire(self, cutoff_ms: int) -> int:
        """Drop the samples with ``t <= cutoff_ms``; return how many are left."""
        n = self._count
        if not n:
            return 0
        ts = self._ts
        if ts[self._head] > cutoff_ms:
            return n
        dropped = 0
        for lo, hi in self._segments():
            k = bisect_right(ts, cutoff_ms, lo, hi) - lo
            dropped += k
            if k < hi - lo:
                break
        n -= dropped
        self._count = n
        if not n:
            self._ts = array("q")
            self._vals = array("d")
            self._head = 0
            return 0
        head = self._head + dropped
        cap = len(ts)
        self._head = head - cap if head >= cap else head
        # A ring far larger than what it holds (retention lowered, target gone) gives memory back.
        if cap > 2 * n + 8:
            self._resize(n + n // 4 + _SLACK)
        return n

    # -- ring arithmetic -----------------------------------------------------------------------

    def _physical(self, logical: int) -> int:
        i = self._head + logical
        cap = len(self._ts)
        return i - cap if i >= cap else i

    def _segments(self) -> tuple[tuple[int, int], ...]:
        """The physical index ranges holding the samples, oldest range first."""
        head, end = self._head, self._head + self._count
        cap = len(self._ts)
        if end <= cap:
            return ((head, end),)
        return ((head, cap), (0, end - cap))

    def _spans(self, mint_ms: int, maxt_ms: int) -> list[tuple[int, int]]:
        ts = self._ts
        spans = []
        for lo, hi in self._segments():
            a = bisect_right(ts, mint_ms, lo, hi)
            b = bisect_right(ts, maxt_ms, a, hi)
            if a < b:
                spans.append((a, b))
        return spans

    def _newest_not_after(self, t_ms: int) -> int:
        """Physical index of the newest sample with ``t <= t_ms``, or -1."""
        ts = self._ts
        for lo, hi in reversed(self._segments()):
            i = bisect_right(ts, t_ms, lo, hi) - 1
            if i >= lo:
                return i
        return -1

    def _grown_capacity(self, t_ms: int, retention_ms: int) -> int:
        cap = len(self._ts)
        if cap == 0:
            return _INITIAL_CAPACITY
        oldest_t = self._ts[self._head]
        span = t_ms - oldest_t  # covers cap intervals, counting the sample being appended
        if span > 0:
            needed = retention_ms * cap // span + _SLACK
        else:
            needed = 2 * cap
        # At least a quarter more (no regrowth every append), at most 8x (one burst of samples
        # with tiny spacing must not reserve a huge ring).
        return min(max(needed, cap + cap // 4 + 1), 8 * cap)

    def _resize(self, capacity: int) -> None:
        """Reallocate to exactly ``capacity`` slots with the samples moved to the front."""
        n = self._count
        ts = array("q", [0]) * capacity
        vals = array("d", [0.0]) * capacity
        pos = 0
        for lo, hi in self._segments():
            ts[pos : pos + hi - lo] = self._ts[lo:hi]
            vals[pos : pos + hi - lo] = self._vals[lo:hi]
            pos += hi - lo
        assert pos == n
        self._ts, self._vals, self._head = ts, vals, 0
