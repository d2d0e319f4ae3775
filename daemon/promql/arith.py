"""Float arithmetic with Go's semantics, which PromQL inherits: no exceptions, only NaN and ±Inf.

Python raises where Go returns a value (``1/0``, ``math.pow(0, -1)``, ``math.fmod(1, 0)``,
``math.log(0)``); these wrappers return what Go's ``math`` package returns instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from decimal import Decimal

INF = math.inf
NAN = math.nan


def div(a: float, b: float) -> float:
    """``a / b`` as IEEE 754 division: ``x/0`` is ±Inf, ``0/0`` is NaN."""
    try:
        return a / b
    except ZeroDivisionError:
        if a != a or a == 0:
            return NAN
        return math.copysign(INF, a) * math.copysign(1.0, b)


def mod(a: float, b: float) -> float:
    """Go's ``math.Mod``: the result takes the sign of ``a``; NaN for ``x % 0`` and ``Inf % y``."""
    try:
        return math.fmod(a, b)
    except ValueError:
        return NAN


def pow_(a: float, b: float) -> float:
    """Go's ``math.Pow``."""
    try:
        return math.pow(a, b)
    except OverflowError:
        # |a| > 1 with a large exponent: Inf, negative only for an odd integer power of a negative.
        if a < 0 and _is_odd_integer(b):
            return -INF
        return INF
    except ValueError:
        if a == 0 and b < 0:
            if _is_odd_integer(b):
                return math.copysign(INF, a)
            return INF
        return NAN


def _is_odd_integer(x: float) -> bool:
    return math.isfinite(x) and x == math.floor(x) and math.fmod(x, 2.0) != 0


def floor(x: float) -> float:
    return float(math.floor(x)) if math.isfinite(x) else x


def ceil(x: float) -> float:
    return float(math.ceil(x)) if math.isfinite(x) else x


def sqrt(x: float) -> float:
    if x != x:
        return x
    return NAN if x < 0 else math.sqrt(x)


def exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return INF


def _log_with(f: Callable[[float], float]) -> Callable[[float], float]:
    def log(x: float) -> float:
        if x > 0:
            return f(x) if x != INF else INF
        if x == 0:
            return -INF
        return NAN

    return log


ln = _log_with(math.log)
log2 = _log_with(math.log2)
log10 = _log_with(math.log10)


def sgn(x: float) -> float:
    if x > 0:
        return 1.0
    if x < 0:
        return -1.0
    return x  # 0, -0 and NaN stay as they are


def go_min(a: float, b: float) -> float:
    """Go's ``math.Min``: NaN wins."""
    if a != a or b != b:
        return NAN
    return a if a < b else b


def go_max(a: float, b: float) -> float:
    """Go's ``math.Max``: NaN wins."""
    if a != a or b != b:
        return NAN
    return a if a > b else b


def _guarded(f: Callable[[float], float], on_domain_error: Callable[[float], float] | None = None) -> Callable[[float], float]:
    def call(x: float) -> float:
        try:
            return f(x)
        except OverflowError:
            return INF if x > 0 or f in (math.cosh,) else -INF
        except ValueError:
            return on_domain_error(x) if on_domain_error is not None else NAN

    return call


def _atanh_edge(x: float) -> float:
    if x == 1:
        return INF
    if x == -1:
        return -INF
    return NAN


TRIG: dict[str, Callable[[float], float]] = {
    "acos": _guarded(math.acos),
    "acosh": _guarded(math.acosh),
    "asin": _guarded(math.asin),
    "asinh": _guarded(math.asinh),
    "atan": _guarded(math.atan),
    "atanh": _guarded(math.atanh, _atanh_edge),
    "cos": _guarded(math.cos),
    "cosh": _guarded(math.cosh),
    "sin": _guarded(math.sin),
    "sinh": _guarded(math.sinh),
    "tan": _guarded(math.tan),
    "tanh": _guarded(math.tanh),
    "deg": lambda x: x * 180 / math.pi,
    "rad": lambda x: x * math.pi / 180,
}


def kahan_inc(inc: float, total: float, c: float) -> tuple[float, float]:
    """One step of Prometheus' Kahan-Neumaier summation: ``(new_total, new_compensation)``."""
    t = total + inc
    if math.isinf(t):
        c = 0.0
    elif abs(total) >= abs(inc):
        c += (total - t) + inc
    else:
        c += (inc - t) + total
    return t, c


def kahan_sum(values: Sequence[float]) -> float:
    """The sum as Prometheus computes it: Kahan-Neumaier compensated, left to right.

    When the terms cannot cancel (one sign) or the plain sum already equals the exactly rounded
    one, the compensated sum is that exactly rounded sum (to the last bit at worst), computed
    in C; only sums with cancellation take the compensated loop, whose result may then differ
    from the exact one just as Prometheus' does.
    """
    try:
        exact = math.fsum(values)
        # Without cancellation (all terms of one sign) the compensated sum is exactly rounded.
        if exact == sum(values) or min(values) >= 0 or max(values) <= 0:
            return exact
    except (OverflowError, ValueError):
        pass
    total = c = 0.0
    for v in values:
        total, c = kahan_inc(v, total, c)
    return total + c


def mean(values: Sequence[float]) -> float:
    """Prometheus 3's mean: a compensated sum while it stays finite, an incremental mean after."""
    n = len(values)
    total = kahan_sum(values)
    if math.isfinite(total) or total != total:
        if total != total or n == 1:
            return total
        return total / n
    total, c = values[0], 0.0
    m = 0.0
    incremental = False
    for i in range(1, n):
        f = values[i]
        count = float(i + 1)
        if not incremental:
            new_total, new_c = kahan_inc(f, total, c)
            if not math.isinf(new_total):
                total, c = new_total, new_c
                continue
            incremental = True
            m = total / (count - 1)
            c /= count - 1
        if math.isinf(m):
            if math.isinf(f) and (m > 0) == (f > 0):
                continue
            if not math.isinf(f) and f == f:
                continue
        current = m + c
        m, c = kahan_inc(f / count - current / count, m, c)
    if incremental:
        return m + c
    return total / n + c / n


def variance(values: Sequence[float]) -> float:
    """Population variance as Prometheus computes it (Welford with compensation)."""
    count = 0.0
    m = cm = aux = caux = 0.0
    for f in values:
        count += 1
        delta = f - (m + cm)
        m, cm = kahan_inc(delta / count, m, cm)
        aux, caux = kahan_inc(delta * (f - (m + cm)), aux, caux)
    return (aux + caux) / count


def quantile(q: float, values: list[float]) -> float:
    """The q-quantile of ``values`` with linear interpolation (sorts ``values`` in place)."""
    if not values or q != q:
        return NAN
    if q < 0:
        return -INF
    if q > 1:
        return INF
    values.sort(key=_nan_first)
    n = len(values)
    rank = q * (n - 1)
    lower = max(0, int(math.floor(rank)))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return values[lower] * (1 - weight) + values[upper] * weight


def _nan_first(v: float) -> tuple[int, float]:
    # Go's sort.Float64s orders NaN before every number.
    return (0, 0.0) if v != v else (1, v)


def format_float(v: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'f', -1, 64)``: shortest digits, never an exponent."""
    if v != v:
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    text = repr(v)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    if text.endswith(".0"):
        text = text[:-2]
    if text == "-0":
        return "-0"
    return text
