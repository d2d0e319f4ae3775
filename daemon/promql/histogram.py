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


def _coalesced(buckets: list[tuple[float, float]]) -> list[list[float]]:
    buckets.sort(key=lambda b: b[0])
    merged: list[list[float]] = []
    for bound, count in buckets:
        if merged and merged[-1][0] == bound:
            merged[-1][1] += count
        else:
            merged.append([bound, count])
    return merged


def bucket_fraction(lower: float, upper: float, buckets: list[tuple[float, float]]) -> float:
    """The estimated share of observations between ``lower`` and ``upper`` (``histogram_fraction``).

    Linear interpolation inside a bucket; the lowest bucket starts at 0 when its bound is
    positive, else at -Inf, as ``histogram_quantile`` assumes.
    """
    if not buckets:
        return math.nan
    merged = _coalesced(buckets)
    if merged[-1][0] != math.inf:
        return math.nan
    count = merged[-1][1]
    if count == 0 or lower != lower or upper != upper:
        return math.nan
    if lower >= upper:
        return 0.0
    rank = lower_rank = upper_rank = 0.0
    lower_set = upper_set = False
    for i, (bound, cumulative) in enumerate(merged):
        if i > 0:
            low = merged[i - 1][0]
        else:
            low = 0.0 if bound > 0 else -math.inf

        def interpolate(v: float, is_lower: bool) -> float:
            if math.isinf(low):
                # A bucket of infinite width contributes nothing to the fraction.
                return cumulative if is_lower else rank
            return rank + (cumulative - rank) * (v - low) / (bound - low)

        if not lower_set and low >= lower:
            lower_rank, lower_set = rank, True
        if not upper_set and low >= upper:
            upper_rank, upper_set = rank, True
        if lower_set and upper_set:
            break
        if not lower_set and low < lower < bound:
            lower_rank, lower_set = interpolate(lower, True), True
        if not upper_set and low < upper < bound:
            upper_rank, upper_set = interpolate(upper, False), True
        if lower_set and upper_set:
            break
        rank = cumulative
    if not lower_set or lower_rank > count:
        lower_rank = count
    if not upper_set or upper_rank > count:
        upper_rank = count
    return (upper_rank - lower_rank) / count
