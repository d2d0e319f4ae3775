"""``route``, ``inhibit_rules`` and ``time_intervals``: the keys, defaults and checks of alertmanager.yml.

Each section validates itself (matcher syntax, label names, regexes, time ranges) with
Alertmanager's messages; ``reference_errors`` does the checks across sections that Alertmanager
does on the whole file (the root route, receivers and time intervals that exist, unique names).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Annotated, Any

from pydantic import AfterValidator, Field, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from daemon.config.duration import Duration
from daemon.config.section import FIELD_ERROR, LABEL_NAME, Section, field_error
from daemon.dispatch.matchers import Matcher, MatcherError, MatchType, compile_anchored, parse_matchers, sort_matchers
from daemon.dispatch.route import RouteOptions
from daemon.dispatch.timeinterval import (
    NamedTimeInterval,
    TimeInterval,
    load_location,
    parse_day_of_month_range,
    parse_month_range,
    parse_time_range,
    parse_weekday_range,
    parse_year_range,
)

GROUP_BY_ALL = "..."

KeyPath = tuple[str | int, ...]


def _matcher_line(line: str) -> str:
    try:
        parse_matchers(line)
    except MatcherError as exc:
        raise ValueError(str(exc)) from None
    return line


def _anchored_regex(pattern: str) -> str:
    try:
        compile_anchored(pattern)
    except MatcherError as exc:
        raise ValueError(str(exc)) from None
    return pattern


def _label_names(mapping: dict[str, Any]) -> dict[str, Any]:
    for name in mapping:
        if not LABEL_NAME.fullmatch(name):
            raise field_error(name, f'invalid label name "{name}"')
    return mapping


MatcherLine = Annotated[str, AfterValidator(_matcher_line)]
"""A ``matchers`` entry: one or more matchers in Alertmanager's syntax."""

EqualMap = Annotated[dict[str, str], AfterValidator(_label_names)]
RegexMap = Annotated[dict[str, Annotated[str, AfterValidator(_anchored_regex)]], AfterValidator(_label_names)]


def _conditions(equal: dict[str, str] | None, regex: dict[str, str] | None, lines: Sequence[str]) -> tuple[Matcher, ...]:
    """Matchers from the old ``match``/``match_re`` maps and the new ``matchers`` list, sorted.

    ``match_re`` values become ``^(?:value)$`` as in Alertmanager, which prints them that way.
    """
    found = [Matcher.of(name, MatchType.EQUAL, value) for name, value in (equal or {}).items()]
    found += [Matcher.of(name, MatchType.REGEXP, f"^(?:{value})$") for name, value in (regex or {}).items()]
    for line in lines:
        found.extend(parse_matchers(line))
    return sort_matchers(found)


class RouteConfig(Section):
    """``route`` and every entry of its ``routes``; unset options come from the parent route."""

    receiver: str = ""
    group_by: tuple[str, ...] | None = None
    match: EqualMap | None = None
    match_re: RegexMap | None = None
    matchers: tuple[MatcherLine, ...] = ()
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()
    continue_: bool = Field(default=False, alias="continue")
    routes: tuple[RouteConfig, ...] = ()
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    escalation: str | None = None
    """alertd's addition: the escalation policy of this route's groups (inherited; ``none`` turns it off)."""

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        seen: set[str] = set()
        for index, name in enumerate(names):
            if name == GROUP_BY_ALL:
                continue
            if not LABEL_NAME.fullmatch(name):
                raise field_error(str(index), f'invalid label name "{name}" in group_by list')
            if name in seen:
                raise field_error(str(index), f'duplicated label "{name}" in group_by')
            seen.add(name)
        if GROUP_BY_ALL in names and seen:
            raise ValueError("cannot have wildcard group_by (`...`) and other labels at the same time")
        return names

    @field_validator("group_interval", "repeat_interval")
    @classmethod
    def _not_zero(cls, value: float | None, info: Any) -> float | None:
        if value == 0:
            raise ValueError(f"{info.field_name} cannot be zero")
        return value

    def route_matchers(self) -> tuple[Matcher, ...]:
        """This route's matchers (``match``, ``match_re`` and ``matchers``) in Alertmanager's order."""
        return _conditions(self.match, self.match_re, self.matchers)

    def has_matchers(self) -> bool:
        return bool(self.match or self.match_re or self.matchers)

    def options(self, parent: RouteOptions) -> RouteOptions:
        """The options of this route given its parent's (Alertmanager's inheritance)."""
        group_by = parent.group_by
        names = [name for name in self.group_by or () if name != GROUP_BY_ALL]
        if names:
            group_by = frozenset(names)
        elif self.group_by and GROUP_BY_ALL in self.group_by:
            group_by = "all"
        return RouteOptions(
            receiver=self.receiver or parent.receiver,
            group_by=group_by,
            group_wait=parent.group_wait if self.group_wait is None else self.group_wait,
            group_interval=parent.group_interval if self.group_interval is None else self.group_interval,
            repeat_interval=parent.repeat_interval if self.repeat_interval is None else self.repeat_interval,
            escalation=parent.escalation if self.escalation is None else ("" if self.escalation == "none" else self.escalation),
            group_wait_set=parent.group_wait_set or self.group_wait is not None,
        )

    def walk(self, path: KeyPath = ()) -> Iterator[tuple[KeyPath, RouteConfig]]:
        """This route and those below it, depth first, each with its key path relative to this one."""
        yield path, self
        for index, child in enumerate(self.routes):
            yield from child.walk((*path, "routes", index))


class InhibitRuleConfig(Section):
    """An ``inhibit_rules`` entry: alerts matching the target are muted while one matching the source fires.

    ``equal`` names labels that must have the same value in both (absent in both counts as equal).
    """

    source_match: EqualMap | None = None
    source_match_re: RegexMap | None = None
    source_matchers: tuple[MatcherLine, ...] = ()
    target_match: EqualMap | None = None
    target_match_re: RegexMap | None = None
    target_matchers: tuple[MatcherLine, ...] = ()
    equal: tuple[str, ...] = ()

    @field_validator("equal")
    @classmethod
    def _equal_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for index, name in enumerate(names):
            if not LABEL_NAME.fullmatch(name):
                raise field_error(str(index), f'invalid label name "{name}" in equal list')
        return names

    def source(self) -> tuple[Matcher, ...]:
        """What an inhibiting (source) alert must match."""
        return _conditions(self.source_match, self.source_match_re, self.source_matchers)

    def target(self) -> tuple[Matcher, ...]:
        """What an inhibited (target) alert must match."""
        return _conditions(self.target_match, self.target_match_re, self.target_matchers)


def _weekday(text: str) -> str:
    parse_weekday_range(text)
    return text


def _day_of_month(text: str) -> str:
    parse_day_of_month_range(text)
    return text


def _month(text: str) -> str:
    parse_month_range(text)
    return text


def _year(text: str) -> str:
    parse_year_range(text)
    return text


def _location(name: str) -> str:
    load_location(name)
    return name


class TimeRangeConfig(Section):
    """A ``times`` entry: ``start_time`` and ``end_time`` as ``HH:MM`` (the end is excluded)."""

    start_time: str = ""
    end_time: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> TimeRangeConfig:
        try:
            parse_time_range(self.start_time, self.end_time)
        except ValueError as exc:
            raise field_error(None, str(exc)) from None
        return self


class TimePeriodConfig(Section):
    """One entry of a named interval's ``time_intervals``; an unset field matches any time."""

    times: tuple[TimeRangeConfig, ...] | None = None
    weekdays: tuple[Annotated[str, AfterValidator(_weekday)], ...] | None = None
    days_of_month: tuple[Annotated[str, AfterValidator(_day_of_month)], ...] | None = None
    months: tuple[Annotated[str, AfterValidator(_month)], ...] | None = None
    years: tuple[Annotated[str, AfterValidator(_year)], ...] | None = None
    location: Annotated[str, AfterValidator(_location)] | None = None

    def build(self) -> TimeInterval:
        """The period as a value that answers ``contains(t)``."""

        def each(texts: tuple[str, ...] | None, parse: Any) -> Any:
            return None if texts is None else tuple(parse(text) for text in texts)

        times = None if self.times is None else tuple(parse_time_range(t.start_time, t.end_time) for t in self.times)
        return TimeInterval(
            times=times,
            weekdays=each(self.weekdays, parse_weekday_range),
            days_of_month=each(self.days_of_month, parse_day_of_month_range),
            months=each(self.months, parse_month_range),
            years=each(self.years, parse_year_range),
            location=self.location,
        )


class TimeIntervalConfig(Section):
    """A ``time_intervals`` (or legacy ``mute_time_intervals``) entry: a name routes refer to."""

    name: str = ""
    time_intervals: tuple[TimePeriodConfig, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _name_required(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("name"):
            raise field_error("name", "missing name in time interval")
        return data

    def build(self) -> NamedTimeInterval:
        return NamedTimeInterval(self.name, tuple(period.build() for period in self.time_intervals))


def time_interval_map(*sections: Iterable[TimeIntervalConfig]) -> dict[str, NamedTimeInterval]:
    """Named intervals by name, from ``time_intervals`` and ``mute_time_intervals``."""
    return {entry.name: entry.build() for section in sections for entry in section}


def _error(loc: KeyPath, message: str) -> InitErrorDetails:
    return InitErrorDetails(
        type=PydanticCustomError(FIELD_ERROR, "{message}", {"message": message, "field": None}), loc=loc, input=None
    )


def reference_errors(
    route: RouteConfig | None,
    receiver_names: Sequence[str],
    time_intervals: Sequence[TimeIntervalConfig] = (),
    mute_time_intervals: Sequence[TimeIntervalConfig] = (),
) -> list[InitErrorDetails]:
    """What Alertmanager checks across sections, as errors located at the offending key.

    Key paths start at the config file's top level (``route.routes.0.receiver``).
    """
    errors: list[InitErrorDetails] = []
    seen: set[str] = set()
    for index, name in enumerate(receiver_names):
        if name in seen:
            errors.append(_error(("receivers", index, "name"), f'notification config name "{name}" is not unique'))
        seen.add(name)
    interval_names: set[str] = set()
    for key, entries, what in (
        ("mute_time_intervals", mute_time_intervals, "mute time interval"),
        ("time_intervals", time_intervals, "time interval"),
    ):
        for index, entry in enumerate(entries):
            if entry.name in interval_names:
                errors.append(_error((key, index, "name"), f'{what} "{entry.name}" is not unique'))
            interval_names.add(entry.name)
    if route is None:
        if receiver_names:
            errors.append(_error(("receivers",), "no route provided in config"))
        return errors
    errors.extend(_root_errors(route))
    for path, node in route.walk(("route",)):
        if node.receiver and node.receiver not in seen:
            errors.append(_error((*path, "receiver"), f'undefined receiver "{node.receiver}" used in route'))
        for key in ("active_time_intervals", "mute_time_intervals"):
            for index, name in enumerate(getattr(node, key)):
                if name not in interval_names:
                    errors.append(_error((*path, key, index), f'undefined time interval "{name}" used in route'))
    return errors


def fallback_errors(receivers: Sequence[Any]) -> list[InitErrorDetails]:
    """``fallback_receivers`` that name no receiver, or the receiver itself."""
    names = {receiver.name for receiver in receivers}
    errors: list[InitErrorDetails] = []
    for index, receiver in enumerate(receivers):
        for position, name in enumerate(getattr(receiver, "fallback_receivers", ())):
            loc = ("receivers", index, "fallback_receivers", position)
            if name not in names:
                errors.append(_error(loc, f'undefined receiver "{name}" used in fallback_receivers'))
            elif name == receiver.name:
                errors.append(_error(loc, "a receiver cannot be its own fallback"))
    return errors


def _root_errors(route: RouteConfig) -> list[InitErrorDetails]:
    errors: list[InitErrorDetails] = []
    if not route.receiver:
        errors.append(_error(("route",), "root route must specify a default receiver"))
    for key in ("match", "match_re", "matchers"):
        if getattr(route, key):
            errors.append(_error(("route", key), "root route must not have any matchers"))
    if route.mute_time_intervals:
        errors.append(_error(("route", "mute_time_intervals"), "root route must not have any mute time intervals"))
    if route.active_time_intervals:
        errors.append(_error(("route", "active_time_intervals"), "root route must not have any active time intervals"))
    if route.continue_:
        errors.append(_error(("route", "continue"), "cannot have continue in root route"))
    return errors
