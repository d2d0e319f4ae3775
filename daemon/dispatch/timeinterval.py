"""Alertmanager's time intervals: when a route is muted (``mute_time_intervals``) or active.

A ``TimeInterval`` is one entry of a named interval's ``time_intervals`` list: times of day,
weekdays, days of the month (negative counts from the end), months, years, and a location (IANA
time zone; UTC when unset). Every field that is set must match; within a field, any range may.
The parsers raise ``ValueError`` with Alertmanager's messages, for the config models to report.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

LOCAL = "Local"
"""The location name for the time zone of the machine alertd runs on (as in Go)."""

_WEEKDAYS = {"sunday": 0, "monday": 1, "tuesday": 2, "wednesday": 3, "thursday": 4, "friday": 5, "saturday": 6}
_MONTHS = {
    name: number
    for number, name in enumerate(
        (
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ),
        start=1,
    )
}
_MONTH_NAMES = {number: name for name, number in _MONTHS.items()}
_CLOCK = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00")
_INTEGER = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class TimeRange:
    """Minutes of the day, ``start_minute`` included, ``end_minute`` excluded (at most 1440)."""

    start_minute: int
    end_minute: int


@dataclass(frozen=True)
class InclusiveRange:
    """A range of weekdays (0 = Sunday), days of the month, months (1 = January) or years."""

    begin: int
    end: int


@dataclass(frozen=True)
class TimeInterval:
    """One period; ``None`` for a field means any value, an empty tuple means none."""

    times: tuple[TimeRange, ...] | None = None
    weekdays: tuple[InclusiveRange, ...] | None = None
    days_of_month: tuple[InclusiveRange, ...] | None = None
    months: tuple[InclusiveRange, ...] | None = None
    years: tuple[InclusiveRange, ...] | None = None
    location: str | None = None

    def contains(self, t: float) -> bool:
        """Whether the instant ``t`` (Unix seconds) falls in this period, read in its location."""
        moment = _local(t, self.location)
        if self.times is not None:
            minute = moment.hour * 60 + moment.minute
            if not any(r.start_minute <= minute < r.end_minute for r in self.times):
                return False
        if self.days_of_month is not None and not _in_days_of_month(moment, self.days_of_month):
            return False
        if self.months is not None and not any(r.begin <= moment.month <= r.end for r in self.months):
            return False
        if self.weekdays is not None:
            weekday = (moment.weekday() + 1) % 7  # Go counts from Sunday
            if not any(r.begin <= weekday <= r.end for r in self.weekdays):
                return False
        if self.years is not None and not any(r.begin <= moment.year <= r.end for r in self.years):
            return False
        return True


@dataclass(frozen=True)
class NamedTimeInterval:
    """An entry of the config's ``time_intervals``: a name and the periods it covers."""

    name: str
    intervals: tuple[TimeInterval, ...]

    def contains(self, t: float) -> bool:
        """Whether any of its periods contains ``t``."""
        return any(interval.contains(t) for interval in self.intervals)


def any_contains(names: Iterable[str], intervals: Mapping[str, NamedTimeInterval], t: float) -> bool:
    """Whether one of the named intervals contains ``t`` (unknown names never do)."""
    return any(name in intervals and intervals[name].contains(t) for name in names)


def _local(t: float, location: str | None) -> datetime:
    if location == LOCAL:
        return datetime.fromtimestamp(t).astimezone()
    return datetime.fromtimestamp(t, load_location(location))


def _in_days_of_month(moment: datetime, ranges: tuple[InclusiveRange, ...]) -> bool:
    days = calendar.monthrange(moment.year, moment.month)[1]
    for r in ranges:
        begin = days + r.begin + 1 if r.begin < 0 else r.begin
        end = days + r.end + 1 if r.end < 0 else r.end
        if begin > days:
            continue
        # Clamped so that "1:31" in February stops at the 28th or 29th.
        begin, end = max(-days, min(begin, days)), max(-days, min(end, days))
        if begin <= moment.day <= end:
            return True
    return False


def load_location(name: str | None) -> tzinfo:
    """The time zone called ``name`` (``None``, ``""`` and ``UTC`` are UTC); ``ValueError`` if unknown.

    ``Local`` is the machine's zone at the time of the call.
    """
    if name is None or name in ("", "UTC"):
        return timezone.utc
    if name == LOCAL:
        zone = datetime.now().astimezone().tzinfo
        assert zone is not None
        return zone
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name}") from None


def parse_clock(text: str) -> int:
    """Minutes since midnight in ``HH:MM`` (``24:00`` allowed as an end)."""
    if not _CLOCK.fullmatch(text):
        raise ValueError(f"couldn't parse timestamp {text}, invalid format")
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def parse_time_range(start: str, end: str) -> TimeRange:
    """``start_time``/``end_time`` of a ``times`` entry."""
    if not start or not end:
        raise ValueError("both start and end times must be provided")
    start_minute, end_minute = parse_clock(start), parse_clock(end)
    if start_minute >= end_minute:
        raise ValueError("start time cannot be equal or greater than end time")
    return TimeRange(start_minute, end_minute)


def _split_range(text: str) -> tuple[str, str]:
    lowered = text.lower()
    if ":" not in lowered:
        return lowered, lowered
    parts = lowered.split(":")
    if len(parts) != 2:
        raise ValueError(f"couldn't parse range {lowered}, invalid format")
    return parts[0], parts[1]


def _integer(text: str) -> int:
    if not _INTEGER.fullmatch(text):
        raise ValueError(f'strconv.Atoi: parsing "{text}": invalid syntax')
    return int(text)


def parse_weekday_range(text: str) -> InclusiveRange:
    """``monday``, ``monday:friday`` (case-insensitive)."""

    def weekday(name: str) -> int:
        if name not in _WEEKDAYS:
            raise ValueError(f"{name} is not a valid weekday")
        return _WEEKDAYS[name]

    first, last = _split_range(text)
    begin, end = weekday(first), weekday(last)
    if begin > end:
        raise ValueError("start day cannot be before end day")
    return InclusiveRange(begin, end)


def parse_day_of_month_range(text: str) -> InclusiveRange:
    """``1``, ``1:15``, ``-1`` (the last day), ``-7:-1``; days are 1..31 or -31..-1."""
    first, last = _split_range(text)
    begin, end = _integer(first), _integer(last)
    for day in (begin, end):
        if day == 0 or not -31 <= day <= 31:
            raise ValueError(f"{day} is not a valid day of the month: out of range")
    if begin < 0 < end:
        raise ValueError("end day must be negative if start day is negative")
    # Months have at least 28 days: a range empty even then is a mistake.
    if (28 + begin if begin < 0 else begin) > (28 + end if end < 0 else end):
        raise ValueError(f"end day {end} is always before start day {begin}")
    return InclusiveRange(begin, end)


def parse_month_range(text: str) -> InclusiveRange:
    """``january``, ``1``, ``january:march``, ``10:12``."""

    def month(name: str) -> int:
        if name in _MONTHS:
            return _MONTHS[name]
        if not _INTEGER.fullmatch(name):
            raise ValueError(f"{name} is not a valid month")
        number = int(name)
        if not 1 <= number <= 12:
            raise ValueError(f"{name} is not a valid month: out of range")
        return number

    first, last = _split_range(text)
    begin, end = month(first), month(last)
    if begin > end:
        raise ValueError(f"end month {_MONTH_NAMES[end]} is before start month {_MONTH_NAMES[begin]}")
    return InclusiveRange(begin, end)


def parse_year_range(text: str) -> InclusiveRange:
    """``2024``, ``2024:2026``."""
    first, last = _split_range(text)
    begin, end = _integer(first), _integer(last)
    if begin > end:
        raise ValueError(f"end year {end} is before start year {begin}")
    return InclusiveRange(begin, end)
