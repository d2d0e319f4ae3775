"""promtool's text for rule unit test failures: alerts and samples as Go prints them.

``alertd test rules`` is meant to be read next to ``promtool test rules``, so the blocks match
promtool 2.42's byte for byte: labels as Go's ``labels.Labels.String()``, values as
``strconv.FormatFloat(v, 'E', -1, 64)``, times as Prometheus durations (``eval_time``) or Go
durations (evaluation errors).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from daemon.promql.lexer import go_quote
from daemon.rules.unittest_format import LabelPairs

__all__ = ["AlertView", "alerts_text", "go_duration", "go_float", "indent", "labels_text", "samples_text"]

_INDENT = " " * 12


@dataclass(frozen=True, order=True)
class AlertView:
    """An alert as promtool compares and prints it; ordered by labels, then annotations."""

    labels: LabelPairs
    annotations: LabelPairs

    def __str__(self) -> str:
        return f"Labels:{labels_text(self.labels)}\nAnnotations:{labels_text(self.annotations)}"


def alerts_text(alerts: Sequence[AlertView]) -> str:
    """A list of alerts as promtool prints one: ``[]``, or numbered entries in brackets."""
    if not alerts:
        return "[]"
    items = ",\n".join(f"{i}:" + "\n  ".join(["", *str(alert).split("\n")]) for i, alert in enumerate(alerts))
    return f"[\n{items}\n]"


def indent(text: str) -> str:
    """``text`` with every line but the first indented to sit under ``exp:`` / ``got:``."""
    return ("\n" + _INDENT).join(text.split("\n"))


def samples_text(samples: Sequence[tuple[LabelPairs, float]]) -> str:
    """Samples as promtool prints them: ``{__name__="up"} 1E+00, ...``, or ``nil``."""
    if not samples:
        return "nil"
    return ", ".join(f"{labels_text(labels)} {go_float(value)}" for labels, value in samples)


def labels_text(labels: LabelPairs) -> str:
    """Go's ``labels.Labels.String()``: ``{a="1", b="2"}``."""
    return "{" + ", ".join(f"{name}={go_quote(value)}" for name, value in labels) + "}"


def go_float(value: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'E', -1, 64)``: shortest digits, ``3E+00``, ``1.5E-03``, ``+Inf``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return f"{sign}0E+00"
    digits_tuple = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(str(d) for d in digits_tuple.digits)
    exponent = int(digits_tuple.exponent) + len(digits) - 1
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}E{'+' if exponent >= 0 else '-'}{abs(exponent):02d}"


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()``: ``0s``, ``1m0s``, ``1h2m3.5s``, ``500ms``."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return sign + _decimal(ns, size) + unit
    hours, rest = divmod(ns, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    text = _decimal(rest, 10**9) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return sign + text


def _decimal(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    width = len(str(unit)) - 1
    return f"{whole}." + f"{frac:0{width}d}".rstrip("0")


