"""PromQL functions over floats: the range-vector functions and the per-sample ones.

Range functions take one series' window as two parallel sequences (timestamps in ms, values)
plus the window's bounds, and return a float or None (no output for that series). They read the
window arrays directly; only a few build a list, and none builds a per-sample object.
"""

from __future__ import annotations

import calendar
import math
import re
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import compress
from operator import lt, ne

from daemon.promql import arith
from daemon.promql.errors import QueryError

# (timestamps_ms, values, window_start_ms, window_end_ms, scalar parameters) -> value or None
RangeImpl = Callable[[Sequence[int], Sequence[float], int, int, tuple[float, ...]], "float | None"]


@dataclass(frozen=True, slots=True)
class RangeFunction:
    """A function of one range vector argument at position ``matrix_arg`` (others are scalars)."""

    impl: RangeImpl
    matrix_arg: int = 0
    keeps_name: bool = False
    # predict_linear measures from the evaluation time even under `@`/offset: the window end
    # argument is then the evaluation time.
    at_eval_time: bool = False


def _as_list(vals: Sequence[float]) -> list[float]:
    return vals.tolist() if isinstance(vals, array) else list(vals)


def _counter_correction(vals: Sequence[float]) -> float:
    """What counter resets took away: the value before each drop, summed (C-level loops only)."""
    lst = _as_list(vals)
    # Sorting an ascending list is one C-level pass; only a counter that went down (or holds a
    # NaN, which makes sorting meaningless) needs the pairwise look.
    if lst == sorted(lst):
        total = sum(lst)
        if total == total:
            return 0.0
    after = lst[1:]
    if not any(map(lt, after, lst)):
        return 0.0
    return math.fsum(compress(lst, map(lt, after, lst)))


def _extrapolated(ts: Sequence[int], vals: Sequence[float], start: int, end: int, counter: bool, rate: bool) -> float | None:
    n = len(vals)
    if n < 2:
        return None
    first = vals[0]
    result = vals[-1] - first
    if counter:
        result += _counter_correction(vals)
    t0 = ts[0]
    t1 = ts[-1]
    sampled = (t1 - t0) / 1000.0
    to_start = (t0 - start) / 1000.0
    to_end = (end - t1) / 1000.0
    average = sampled / (n - 1)
    # A gap longer than 1.1 average intervals to an edge means the series started or ended
    # inside the window: extrapolate only half an interval towards that edge.
    threshold = average * 1.1
    if to_start >= threshold:
        to_start = average / 2
    if counter and result > 0 and first >= 0:
        # A counter cannot have been below zero: do not extrapolate past the point it was 0.
        to_zero = sampled * (first / result)
        if to_zero < to_start:
            to_start = to_zero
    if to_end >= threshold:
        to_end = average / 2
    factor = (sampled + to_start + to_end) / sampled
    if rate:
        factor /= (end - start) / 1000.0
    return result * factor


def rate(ts: Sequence[int], vals: Sequence[float], start: int, end: int, _: tuple[float, ...]) -> float | None:
    return _extrapolated(ts, vals, start, end, True, True)


def increase(ts: Sequence[int], vals: Sequence[float], start: int, end: int, _: tuple[float, ...]) -> float | None:
    return _extrapolated(ts, vals, start, end, True, False)


def delta(ts: Sequence[int], vals: Sequence[float], start: int, end: int, _: tuple[float, ...]) -> float | None:
    return _extrapolated(ts, vals, start, end, False, False)


def irate(ts: Sequence[int], vals: Sequence[float], start: int, end: int, _: tuple[float, ...]) -> float | None:
    if len(vals) < 2:
        return None
    last, previous = vals[-1], vals[-2]
    result = last if last < previous else last - previous
    interval = ts[-1] - ts[-2]
    if interval == 0:
        return None
    return result / (interval / 1000.0)


def idelta(ts: Sequence[int], vals: Sequence[float], start: int, end: int, _: tuple[float, ...]) -> float | None:
    if len(vals) < 2:
        return None
    return vals[-1] - vals[-2]


def _linear_regression(ts: Sequence[int], vals: Sequence[float], intercept_t: int) -> tuple[float, float]:
    """Least-squares ``(slope, intercept)`` with x in seconds relative to ``intercept_t``."""
    first = vals[0]
    if all(v == first for v in vals):
        return (math.nan, math.nan) if math.isinf(first) else (0.0, first)
    n = float(len(vals))
    sx = cx = sy = cy = sxy = cxy = sx2 = cx2 = 0.0
    inc = arith.kahan_inc
    for t, v in zip(ts, vals):
        x = (t - intercept_t) / 1e3
        sx, cx = inc(x, sx, cx)
        sy, cy = inc(v, sy, cy)
        sxy, cxy = inc(x * v, sxy, cxy)
        sx2, cx2 = inc(x * x, sx2, cx2)
    sx += cx
    sy += cy
    sxy += cxy
    sx2 += cx2
    cov = sxy - sx * sy / n
    var = sx2 - sx * sx / n
    slope = arith.div(cov, var)
    return slope, sy / n - slope * sx / n


def deriv(ts: Sequence[int], vals: Sequence[float], start: int, end: int, _: tuple[float, ...]) -> float | None:
    if len(vals) < 2:
        return None
    return _linear_regression(ts, vals, ts[0])[0]


def predict_linear(ts: Sequence[int], vals: Sequence[float], start: int, end: int, params: tuple[float, ...]) -> float | None:
    if len(vals) < 2:
        return None
    slope, intercept = _linear_regression(ts, vals, end)
    return slope * params[0] + intercept


def resets(ts: Sequence[int], vals: Sequence[float], start: int, end: int, _: tuple[float, ...]) -> float | None:
    lst = _as_list(vals)
    return float(sum(map(lt, lst[1:], lst)))


def changes(ts: Sequence[int], vals: Sequence[float], start: int, end: int, _: tuple[float, ...]) -> float | None:
    lst = _as_list(vals)
    count = sum(map(ne, lst[1:], lst))
    if count and any(v != v for v in lst):
        # NaN != NaN, but a NaN following a NaN is no change.
        count = sum(1 for a, b in zip(lst, lst[1:]) if a != b and not (a != a and b != b))
    return float(count)


def sum_over_time(ts: Sequence[int], vals: Sequence[float], start: int, end: int, _: tuple[float, ...]) -> float | None:
    return arith.kahan_sum(vals)


def avg_over_time(ts: Sequence[int], vals: Sequence[float], start: int, end: int, _: tuple[float, ...]) -> float | None:
    return arith.mean(vals)


def count_over_time(ts: Sequence[int], vals: Sequence[float], start: int, end: int, _: tuple[float, ...]) -> float | None:
    return float(len(vals))


def min_over_time(ts: Sequence[int], vals: Sequence[float], start: int, end: int, _: tuple[float, ...]) -> float | None:
    result = vals[0]
    for v in vals:
        if v < result or result != result:
            result = v
    return result


def max_over_time(ts: Sequence[int], vals: Sequence[float], start: int, end: int, _: tuple[float, ...]) -> float | None:
    result = vals[0]
    for v in vals:
        if v > result or result != result:
            result = v
    return result


def last_over_time(ts: Sequence[int], vals: Sequence[float], start: int, end: int, _: tuple[float, ...]) -> float | None:
    return vals[-1]


def first_over_time(ts: Sequence[int], vals: Sequence[float], start: int, end: int, _: tuple[float, ...]) -> float | None:
    return vals[0]


def present_over_time(ts: Sequence[int], vals: Sequence[float], start: int, end: int, _: tuple[float, ...]) -> float | None:
    return 1.0


def stddev_over_time(ts: Sequence[int], vals: Sequence[float], start: int, end: int, _: tuple[float, ...]) -> float | None:
    return math.sqrt(arith.variance(vals))


def stdvar_over_time(ts: Sequence[int], vals: Sequence[float], start: int, end: int, _: tuple[float, ...]) -> float | None:
    return arith.variance(vals)


def quantile_over_time(ts: Sequence[int], vals: Sequence[float], start: int, end: int, params: tuple[float, ...]) -> float | None:
    return arith.quantile(params[0], _as_list(vals))


def mad_over_time(ts: Sequence[int], vals: Sequence[float], start: int, end: int, _: tuple[float, ...]) -> float | None:
    lst = _as_list(vals)
    if any(v != v for v in lst):
        return math.nan
    median = arith.quantile(0.5, lst)
    return arith.quantile(0.5, [abs(v - median) for v in lst])


def _ts_of(pick: Callable[[Sequence[float]], int]) -> RangeImpl:
    def ts_of(ts: Sequence[int], vals: Sequence[float], start: int, end: int, _: tuple[float, ...]) -> float | None:
        return ts[pick(vals)] / 1000.0

    return ts_of


def _index_of_extreme(better: Callable[[float, float], bool]) -> Callable[[Sequence[float]], int]:
    def index(vals: Sequence[float]) -> int:
        best = 0
        for i in range(1, len(vals)):
            # The latest of equal extremes; a number beats NaN.
            v, b = vals[i], vals[best]
            if better(v, b) or v == b or (b != b):
                if v == v or b != b:
                    best = i
        return best

    return index


def double_exponential_smoothing(ts: Sequence[int], vals: Sequence[float], start: int, end: int, params: tuple[float, ...]) -> float | None:
    sf, tf = params
    if not 0 < sf < 1:
        raise QueryError(f"invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:f}")
    if not 0 < tf < 1:
        raise QueryError(f"invalid trend factor. Expected: 0 < tf < 1, got: {tf:f}")
    n = len(vals)
    if n < 2:
        return None
    s0 = 0.0
    s1 = vals[0]
    b = vals[1] - vals[0]
    for i in range(1, n):
        x = sf * vals[i]
        if i > 1:
            b = tf * (s1 - s0) + (1 - tf) * b
        y = (1 - sf) * (s1 + b)
        s0, s1 = s1, x + y
    return s1


RANGE_FUNCTIONS: dict[str, RangeFunction] = {
    "rate": RangeFunction(rate),
    "increase": RangeFunction(increase),
    "delta": RangeFunction(delta),
    "irate": RangeFunction(irate),
    "idelta": RangeFunction(idelta),
    "deriv": RangeFunction(deriv),
    "predict_linear": RangeFunction(predict_linear, at_eval_time=True),
    "resets": RangeFunction(resets),
    "changes": RangeFunction(changes),
    "sum_over_time": RangeFunction(sum_over_time),
    "avg_over_time": RangeFunction(avg_over_time),
    "count_over_time": RangeFunction(count_over_time),
    "min_over_time": RangeFunction(min_over_time),
    "max_over_time": RangeFunction(max_over_time),
    "last_over_time": RangeFunction(last_over_time, keeps_name=True),
    "first_over_time": RangeFunction(first_over_time, keeps_name=True),
    "present_over_time": RangeFunction(present_over_time),
    "stddev_over_time": RangeFunction(stddev_over_time),
    "stdvar_over_time": RangeFunction(stdvar_over_time),
    "quantile_over_time": RangeFunction(quantile_over_time, matrix_arg=1),
    "mad_over_time": RangeFunction(mad_over_time),
    "double_exponential_smoothing": RangeFunction(double_exponential_smoothing),
    "ts_of_min_over_time": RangeFunction(_ts_of(_index_of_extreme(lt))),
    "ts_of_max_over_time": RangeFunction(_ts_of(_index_of_extreme(lambda a, b: a > b))),
    "ts_of_last_over_time": RangeFunction(_ts_of(lambda vals: len(vals) - 1)),
    "ts_of_first_over_time": RangeFunction(_ts_of(lambda vals: 0)),
}


def _round_to(x: float, to_nearest: float) -> float:
    inverse = 1.0 / to_nearest if to_nearest else math.inf
    return arith.div(arith.floor(x * inverse + 0.5), inverse)


# Functions of one sample value; all of them drop the metric name.
VALUE_FUNCTIONS: dict[str, Callable[[float], float]] = {
    "abs": abs,
    "ceil": arith.ceil,
    "floor": arith.floor,
    "sqrt": arith.sqrt,
    "exp": arith.exp,
    "ln": arith.ln,
    "log2": arith.log2,
    "log10": arith.log10,
    "sgn": arith.sgn,
    **arith.TRIG,
}


def _date_of(seconds: float) -> datetime | None:
    if not math.isfinite(seconds):
        return None
    return datetime.fromtimestamp(int(seconds), tz=timezone.utc)


def _date_part(part: Callable[[datetime], int]) -> Callable[[float], float]:
    def of(seconds: float) -> float:
        moment = _date_of(seconds)
        return math.nan if moment is None else float(part(moment))

    return of


DATE_FUNCTIONS: dict[str, Callable[[float], float]] = {
    "day_of_month": _date_part(lambda d: d.day),
    "day_of_week": _date_part(lambda d: (d.weekday() + 1) % 7),
    "day_of_year": _date_part(lambda d: d.timetuple().tm_yday),
    "days_in_month": _date_part(lambda d: calendar.monthrange(d.year, d.month)[1]),
    "hour": _date_part(lambda d: d.hour),
    "minute": _date_part(lambda d: d.minute),
    "month": _date_part(lambda d: d.month),
    "year": _date_part(lambda d: d.year),
}


def round_value(x: float, to_nearest: float) -> float:
    """``round(v, to_nearest)``: half up to the nearest multiple, as Prometheus does."""
    return _round_to(x, to_nearest)


_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_EXPAND = re.compile(r"\$(?:\$|\{([^}]*)\}|([A-Za-z0-9_]+))")


_NATURAL_CHUNK = re.compile(r"(\d+)")


def natural_key(text: str) -> list[tuple[int, int, str]]:
    """A sort key ordering digit runs by number: "cpu2" before "cpu10", "1.2.3" before "1.11.3"."""
    key = []
    for i, chunk in enumerate(_NATURAL_CHUNK.split(text)):
        if not chunk:
            continue
        key.append((0, int(chunk), chunk) if i % 2 else (1, 0, chunk))
    return key


def valid_label_name(name: str) -> bool:
    """Whether ``name`` can be a label name (the classic rule, as label_replace checks it)."""
    return _LABEL_NAME.fullmatch(name) is not None


def expand_template(template: str, match: re.Match[str]) -> str:
    """Go's ``Regexp.ExpandString``: ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``.

    As in Go, ``$name`` takes the longest run of letters, digits and underscores, so ``$1x``
    means the (usually missing, hence empty) group ``1x``.
    """

    def replace(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) if m.group(1) is not None else m.group(2)
        if name is None:
            return ""
        if name.isdigit():
            index = int(name)
            if index > (match.re.groups or 0):
                return ""
            return match.group(index) or ""
        try:
            return match.group(name) or ""
        except IndexError:
            return ""

    return _EXPAND.sub(replace, template)
