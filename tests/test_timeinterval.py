"""Time intervals: parsing with Alertmanager's messages, and which instants they contain."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from daemon.dispatch.timeinterval import (
    InclusiveRange,
    NamedTimeInterval,
    TimeInterval,
    TimeRange,
    any_contains,
    load_location,
    parse_day_of_month_range,
    parse_month_range,
    parse_time_range,
    parse_weekday_range,
    parse_year_range,
)


def at(text: str, zone: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


def test_parsing_ranges() -> None:
    assert parse_time_range("09:00", "17:30") == TimeRange(540, 1050)
    assert parse_time_range("00:00", "24:00") == TimeRange(0, 1440)
    assert parse_weekday_range("Monday:FRIDAY") == InclusiveRange(1, 5)
    assert parse_weekday_range("sunday") == InclusiveRange(0, 0)
    assert parse_day_of_month_range("-3:-1") == InclusiveRange(-3, -1)
    assert parse_day_of_month_range("1:-1") == InclusiveRange(1, -1)
    assert parse_month_range("january:March") == InclusiveRange(1, 3)
    assert parse_month_range("10:12") == InclusiveRange(10, 12)
    assert parse_year_range("2024:2026") == InclusiveRange(2024, 2026)


@pytest.mark.parametrize(
    ("parse", "args", "message"),
    [
        (parse_time_range, ("09:00", ""), "both start and end times must be provided"),
        (parse_time_range, ("9:00", "10:00"), "couldn't parse timestamp 9:00, invalid format"),
        (parse_time_range, ("10:00", "24:01"), "couldn't parse timestamp 24:01, invalid format"),
        (parse_time_range, ("10:00", "10:00"), "start time cannot be equal or greater than end time"),
        (parse_weekday_range, ("friday:monday",), "start day cannot be before end day"),
        (parse_weekday_range, ("funday",), "funday is not a valid weekday"),
        (parse_weekday_range, ("monday:tuesday:friday",), "couldn't parse range monday:tuesday:friday, invalid format"),
        (parse_day_of_month_range, ("0",), "0 is not a valid day of the month: out of range"),
        (parse_day_of_month_range, ("1:32",), "32 is not a valid day of the month: out of range"),
        (parse_day_of_month_range, ("-1:5",), "end day must be negative if start day is negative"),
        (parse_day_of_month_range, ("20:-10",), "end day -10 is always before start day 20"),
        (parse_day_of_month_range, ("x",), 'strconv.Atoi: parsing "x": invalid syntax'),
        (parse_month_range, ("march:january",), "end month january is before start month march"),
        (parse_month_range, ("smarch",), "smarch is not a valid month"),
        (parse_month_range, ("13",), "13 is not a valid month: out of range"),
        (parse_year_range, ("2026:2024",), "end year 2024 is before start year 2026"),
    ],
)
def test_parse_errors(parse, args, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError) as caught:
        parse(*args)
    assert str(caught.value) == message


def test_unknown_location() -> None:
    with pytest.raises(ValueError, match="unknown time zone Nowhere/Atlantis"):
        load_location("Nowhere/Atlantis")


def test_business_hours_end_is_excluded() -> None:
    hours = TimeInterval(times=(parse_time_range("09:00", "17:00"),), weekdays=(parse_weekday_range("monday:friday"),))
    assert hours.contains(at("2024-06-03T09:00:00"))  # a Monday
    assert hours.contains(at("2024-06-07T16:59:59"))  # a Friday
    assert not hours.contains(at("2024-06-07T17:00:00"))
    assert not hours.contains(at("2024-06-08T10:00:00"))  # a Saturday
    assert not hours.contains(at("2024-06-03T08:59:59"))


def test_location_reads_the_instant_in_that_zone() -> None:
    paris = TimeInterval(times=(parse_time_range("09:00", "17:00"),), location="Europe/Paris")
    assert paris.contains(at("2024-06-03T09:30:00", "Europe/Paris"))
    assert paris.contains(at("2024-06-03T07:30:00", "UTC"))  # 09:30 in Paris (summer time)
    assert not paris.contains(at("2024-06-03T15:30:00", "UTC"))  # 17:30 in Paris
    utc = TimeInterval(times=(parse_time_range("09:00", "17:00"),))
    assert not utc.contains(at("2024-06-03T07:30:00", "UTC"))


def test_negative_days_count_from_the_end_of_the_month() -> None:
    last_three = TimeInterval(days_of_month=(parse_day_of_month_range("-3:-1"),))
    assert last_three.contains(at("2024-02-27T12:00:00"))  # 2024 is a leap year: 27..29
    assert not last_three.contains(at("2024-02-26T12:00:00"))
    assert last_three.contains(at("2023-02-26T12:00:00"))  # 26..28
    assert last_three.contains(at("2024-01-31T23:59:00"))


def test_day_ranges_are_clamped_to_the_month() -> None:
    whole = TimeInterval(days_of_month=(parse_day_of_month_range("1:31"),))
    assert whole.contains(at("2023-02-28T00:00:00"))
    late = TimeInterval(days_of_month=(parse_day_of_month_range("30:31"),))
    assert not late.contains(at("2023-02-28T00:00:00"))
    assert late.contains(at("2023-03-31T00:00:00"))


def test_months_and_years() -> None:
    winter = TimeInterval(months=(parse_month_range("december"), parse_month_range("january:february")))
    assert winter.contains(at("2024-12-24T00:00:00"))
    assert winter.contains(at("2025-02-01T00:00:00"))
    assert not winter.contains(at("2025-03-01T00:00:00"))
    years = TimeInterval(years=(parse_year_range("2024:2025"),))
    assert years.contains(at("2025-12-31T23:59:59"))
    assert not years.contains(at("2026-01-01T00:00:00"))


def test_unset_fields_match_anything_and_empty_ones_nothing() -> None:
    assert TimeInterval().contains(0.0)
    assert not TimeInterval(weekdays=()).contains(0.0)


def test_named_intervals() -> None:
    weekend = NamedTimeInterval("weekend", (TimeInterval(weekdays=(parse_weekday_range("saturday"), parse_weekday_range("sunday"))),))
    night = NamedTimeInterval("night", (TimeInterval(times=(parse_time_range("00:00", "06:00"),)),))
    intervals = {"weekend": weekend, "night": night}
    saturday_noon = datetime(2024, 6, 8, 12, tzinfo=timezone.utc).timestamp()
    assert weekend.contains(saturday_noon)
    assert any_contains(["night", "weekend"], intervals, saturday_noon)
    assert not any_contains(["night"], intervals, saturday_noon)
    assert not any_contains(["unknown"], intervals, saturday_noon)
