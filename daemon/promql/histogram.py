"""``histogram_quantile`` over classic histograms: buckets as series with an ``le`` label."""

from __future__ import annotations

import math
import sys

# Buckets whose cumulative counts differ by less than this (relative) are taken as equal:
# float error from rate() over many series must not look like a non-monotonic histogram.
_SMALL_DELTA_TOLERANCE = 1e-12
_MIN_NORMAL = sys.float_info.min


def parse_le(text: str) -> float | None:
    """The upper bound an ``le`` label spells, as Go's ``strconv.ParseFloat`` reads it; None if invalid."""
    try:
        return float(text.replace("_", "x") if "_" in text else text)
    except ValueError:
        return None


def _almost_equal(a: float, b: float, epsilon: float) -> bool:
    if a == b:
        return True
    total = abs(a) + abs(b)
    diff = abs(a - b)
    if a == 0 or b == 0 or total < _MIN_NORMAL:
        return diff < epsilon * _MIN_NORMAL
    return diff / min(total, sys.float_info.max) < epsilon


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> tuple[float, bool]:
    """The q-quantile of cumulative ``(upper_bound, count)`` buckets, as Prometheus computes it.

    Returns ``(value, forced_monotonic)``; the flag says that counts had to be raised to make
    the histogram monotonic (Prometheus reports that as an info annotation).
    """
    if q != q:
        return math.nan, False
    if q < 0:
        return -math.inf, False
    if q > 1:
        return math.inf, False
    buckets.sort(key=lambda b: b[0])
    if not buckets or buckets[-1][0] != math.inf:
        return math.nan, False
    # Buckets with the same bound (le="1" and le="1.0") are one bucket.
    merged: list[list[float]] = []
    for bound, count in buckets:
        if merged and merged[-1][0] == bound:
            merged[-1][1] += count
        else:
            merged.append([bound, count])
    forced = False
    previous = merged[0][1]
    for b in merged[1:]:
        current = b[1]
        if current == previous:
            continue
        if _almost_equal(previous, current, _SMALL_DELTA_TOLERANCE):
            b[1] = previous
            continue
        if current < previous:
            b[1] = previous
            forced = True
            continue
        previous = current
    if len(merged) < 2:
        return math.nan, forced
    observations = merged[-1][1]
    if observations == 0:
        return math.nan, forced
    rank = q * observations
    # The first bucket holding the rank, searching all but the +Inf bucket.
    b = len(merged) - 1
    for i in range(len(merged) - 1):
        if merged[i][1] >= rank:
            b = i
            break
    if b == len(merged) - 1:
        return merged[-2][0], forced
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0], forced
    start = 0.0
    end = merged[b][0]
    count = merged[b][1]
    if b > 0:
        start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    return start + (end - start) * (rank / count), forced
