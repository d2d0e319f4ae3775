"""Go values as alert templates see them: typed maps, structs, times and durations.

Go's text/template behaves by type: a missing key in a ``map[string]string`` is ``""`` but in a
``map[string]interface{}`` it is "no value"; ``eq 1 1.0`` is an error; errors name the Go type.
Python ``str``, ``bool``, ``int`` and ``float`` stand for Go's string, bool, int and float64,
``None`` for a nil interface; the classes here stand for the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class GoError(Exception):
    """An error value returned by a Go function; the executor wraps it as ``error calling NAME: ...``."""


class StringMap(dict[str, str]):
    """``map[string]string``: label sets. A missing key reads as ``""``."""

    go_type = "map[string]string"
    zero: Any = ""


class AnyMap(dict[str, Any]):
    """``map[string]interface {}``, as ``args`` returns. A missing key reads as no value."""

    go_type = "map[string]interface {}"
    zero: Any = None


class GoList(list[Any]):
    """``[]interface {}``, a slice of values."""

    go_type = "[]interface {}"


class QueryResult(GoList):
    """Prometheus' ``queryResult``: the samples ``query`` returned, in order."""

    go_type = "template.queryResult"


@dataclass(frozen=True, slots=True)
class Method:
    """A method callable from a template (``.Format "2006"``); ``params`` are Go type names."""

    fn: Callable[..., Any]
    params: tuple[str, ...] = ()


class GoStruct:
    """A Go struct value (or pointer to one, when ``pointer``): exported fields and methods."""

    go_type = "struct {}"
    pointer = False
    __slots__ = ("fields",)

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    def methods(self) -> dict[str, Method]:
        """Methods by name; plain structs have none."""
        return {}


class AlertData(GoStruct):
    """The data Prometheus passes to alert templates (``.Labels``, ``.Value``, ...)."""

    go_type = (
        "struct { Labels map[string]string; ExternalLabels map[string]string; "
        "ExternalURL string; Value interface {} }"
    )
    __slots__ = ()


class Sample(GoStruct):
    """``*template.sample``: one element of a query result, with ``Labels`` and ``Value``."""

    go_type = "*template.sample"
    pointer = True
    __slots__ = ()

    @classmethod
    def of(cls, labels: dict[str, str], value: float) -> Sample:
        """A sample with a copy of ``labels``."""
        return cls({"Labels": StringMap(labels), "Value": float(value)})


def _nanos_to_datetime(nanos: int) -> datetime:
    # datetime holds microseconds only; the nanoseconds travel beside it.
    return _EPOCH + timedelta(microseconds=nanos // 1000)


@dataclass(frozen=True, slots=True)
class GoTime:
    """``time.Time`` in UTC at nanosecond precision (what ``toTime`` returns)."""

    nanos: int

    go_type = "*time.Time"

    def datetime(self) -> datetime:
        """The instant as an aware ``datetime`` (microsecond precision)."""
        return _nanos_to_datetime(self.nanos)

    def __str__(self) -> str:
        from daemon.rules.template_fmt import format_go_time

        return format_go_time(self, "2006-01-02 15:04:05.999999999 -0700 MST")

    def methods(self) -> dict[str, Method]:
        """The subset of ``time.Time``'s methods that templates use."""
        from daemon.rules.template_fmt import format_go_time

        dt = self.datetime()
        return {
            "Format": Method(lambda layout: format_go_time(self, layout), ("string",)),
            "String": Method(lambda: str(self)),
            "Unix": Method(lambda: self.nanos // 1_000_000_000),
            "UnixMilli": Method(lambda: self.nanos // 1_000_000),
            "UnixNano": Method(lambda: self.nanos),
            "UTC": Method(lambda: self),
            "Year": Method(lambda: dt.year),
            "YearDay": Method(lambda: dt.timetuple().tm_yday),
            "Day": Method(lambda: dt.day),
            "Hour": Method(lambda: dt.hour),
            "Minute": Method(lambda: dt.minute),
            "Second": Method(lambda: dt.second),
            "Nanosecond": Method(lambda: self.nanos % 1_000_000_000),
        }


@dataclass(frozen=True, slots=True)
class GoDuration:
    """``time.Duration``: integer nanoseconds (what ``toDuration`` returns)."""

    nanos: int

    go_type = "*time.Duration"

    def __str__(self) -> str:
        return format_go_duration(self.nanos)

    def methods(self) -> dict[str, Method]:
        """The float-returning accessors of ``time.Duration`` and ``String``."""
        return {
            "String": Method(lambda: str(self)),
            "Seconds": Method(lambda: self.nanos / 1e9),
            "Minutes": Method(lambda: self.nanos / 6e10),
            "Hours": Method(lambda: self.nanos / 3.6e12),
            "Milliseconds": Method(lambda: self.nanos // 1_000_000),
        }


def format_go_duration(nanos: int) -> str:
    """``time.Duration.String``: ``1h2m3.5s``, ``1.5ms``, ``0s``."""
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    u = abs(nanos)
    if u < 1_000_000_000:
        for unit, size in (("ns", 1), ("µs", 1_000), ("ms", 1_000_000)):
            if u < size * 1000:
                return sign + _fraction(u, size) + unit
    secs, frac = divmod(u, 1_000_000_000)
    text = _fraction(secs % 60 * 1_000_000_000 + frac, 1_000_000_000) + "s"
    minutes = secs // 60
    if minutes:
        text = f"{minutes % 60}m" + text
        if minutes // 60:
            text = f"{minutes // 60}h" + text
    return sign + text


def _fraction(value: int, size: int) -> str:
    whole, rest = divmod(value, size)
    if not rest:
        return str(whole)
    digits = str(rest).rjust(len(str(size)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


@dataclass(frozen=True, slots=True)
class Html:
    """``html/template.HTML`` as ``safeHtml`` returns it; prints as its text."""

    text: str

    go_type = "template.HTML"

    def __str__(self) -> str:
        return self.text


def go_type(value: Any) -> str:
    """The Go type name of a template value, as Go's error messages print it."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    name = getattr(value, "go_type", None)
    return name if isinstance(name, str) else type(value).__name__


def truth(value: Any) -> bool:
    """Go's template truth: false, 0, nil, and empty strings, slices and maps are false."""
    if value is None:
        return False
    if isinstance(value, (bool, int, float)):
        # NaN != 0, so NaN is true as in Go.
        return value != 0
    if isinstance(value, (str, list, dict)):
        return len(value) > 0
    if isinstance(value, Html):
        return len(value.text) > 0
    return True

