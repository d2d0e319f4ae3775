"""The route, inhibit_rules and time_intervals sections: keys, defaults, errors naming file:line:key."""

from __future__ import annotations

import pytest

from daemon.config import ConfigError, parse_config
from daemon.config.alerting import time_interval_map
from daemon.dispatch.matchers import MatchType
from daemon.dispatch.timeinterval import InclusiveRange, TimeRange

RECEIVERS = """
receivers:
  - name: default
  - name: team-a
"""


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text + RECEIVERS, "am.yml")
    return [str(issue) for issue in caught.value.issues]


def test_a_config_without_alerting_sections_still_loads() -> None:
    config = parse_config("scrape_configs: []\n")
    assert config.route is None and config.receivers == () and config.inhibit_rules == ()


def test_route_keys_and_defaults() -> None:
    config = parse_config(
        """
route:
  receiver: default
  routes:
    - matchers: [team=a]
      receiver: team-a
      continue: true
      group_by: ['...']
      group_wait: 1m
      group_interval: 2m
      repeat_interval: 12h
      mute_time_intervals: [night]
      active_time_intervals: [day]
time_intervals:
  - name: day
    time_intervals: [{times: [{start_time: "08:00", end_time: "20:00"}]}]
mute_time_intervals:
  - name: night
    time_intervals: [{times: [{start_time: "20:00", end_time: "24:00"}]}]
"""
        + RECEIVERS
    )
    assert config.route is not None
    assert config.route.group_wait is None and config.route.continue_ is False
    child = config.route.routes[0]
    assert child.continue_ is True
    assert (child.group_wait, child.group_interval, child.repeat_interval) == (60.0, 120.0, 43200.0)
    assert child.group_by == ("...",)
    assert [str(m) for m in child.route_matchers()] == ['team="a"']
    intervals = time_interval_map(config.time_intervals, config.mute_time_intervals)
    assert set(intervals) == {"day", "night"}
    assert intervals["night"].intervals[0].times == (TimeRange(1200, 1440),)


def test_inhibit_rules_in_both_syntaxes() -> None:
    config = parse_config(
        """
route: {receiver: default}
inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: ['severity=~"warning|info"']
    equal: [alertname, cluster]
  - source_match: {alertname: NodeDown}
    source_match_re: {severity: 'crit.*'}
    target_match_re: {alertname: 'Node.+'}
    target_match: {team: frontend}
"""
        + RECEIVERS
    )
    new, old = config.inhibit_rules
    assert [str(m) for m in new.source()] == ['severity="critical"']
    assert [str(m) for m in new.target()] == ['severity=~"warning|info"']
    assert new.equal == ("alertname", "cluster")
    assert [str(m) for m in old.source()] == ['alertname="NodeDown"', 'severity=~"^(?:crit.*)$"']
    assert [m.type for m in old.target()] == [MatchType.REGEXP, MatchType.EQUAL]
    assert old.target()[0].matches({"alertname": "NodeFilesystem"})
    assert not old.target()[0].matches({"alertname": "Node"})


def test_time_interval_fields() -> None:
    config = parse_config(
        """
route: {receiver: default}
time_intervals:
  - name: holidays
    time_intervals:
      - weekdays: ['Monday:Friday']
        days_of_month: ['-3:-1', '1']
        months: [december, '1:2']
        years: ['2024:2030']
        location: Europe/Paris
"""
        + RECEIVERS
    )
    (period,) = config.time_intervals[0].build().intervals
    assert period.weekdays == (InclusiveRange(1, 5),)
    assert period.days_of_month == (InclusiveRange(-3, -1), InclusiveRange(1, 1))
    assert period.months == (InclusiveRange(12, 12), InclusiveRange(1, 2))
    assert period.years == (InclusiveRange(2024, 2030),)
    assert period.location == "Europe/Paris" and period.times is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "route:\n  receiver: default\n  routes:\n    - receiver: nobody\n",
            'am.yml:4: route.routes.0.receiver: undefined receiver "nobody" used in route',
        ),
        (
            "route:\n  receiver: default\n  routes:\n    - matchers: [a=b]\n      mute_time_intervals: [lunch]\n",
            'am.yml:5: route.routes.0.mute_time_intervals.0: undefined time interval "lunch" used in route',
        ),
        (
            "route:\n  receiver: default\n  routes:\n    - active_time_intervals: [x]\n",
            'am.yml:4: route.routes.0.active_time_intervals.0: undefined time interval "x" used in route',
        ),
        (
            "route:\n  receiver: default\n  routes:\n    - matchers: ['a=\"b']\n",
            'am.yml:4: route.routes.0.matchers.0: matcher value contains unescaped double quote: "b',
        ),
        (
            "route:\n  receiver: default\n  routes:\n    - matchers: ['a=~\"(\"']\n",
            "am.yml:4: route.routes.0.matchers.0: error parsing regexp: missing closing ): `^(?:()$`",
        ),
        (
            "route:\n  receiver: default\n  routes:\n    - match: {1a: b}\n",
            'am.yml:4: route.routes.0.match.1a: invalid label name "1a"',
        ),
        (
            "route:\n  receiver: default\n  routes:\n    - match_re:\n        a: '(x'\n",
            "am.yml:5: route.routes.0.match_re.a: error parsing regexp: missing closing ): `^(?:(x)$`",
        ),
        ("route:\n  receiver: default\n  matchers: [a=b]\n", "am.yml:3: route.matchers: root route must not have any matchers"),
        ("route:\n  group_wait: 1s\n", "am.yml:1: route: root route must specify a default receiver"),
        ("route:\n  receiver: default\n  continue: true\n", "am.yml:3: route.continue: cannot have continue in root route"),
        (
            "route:\n  receiver: default\n  group_by: [a, '...']\n",
            "am.yml:3: route.group_by: cannot have wildcard group_by (`...`) and other labels at the same time",
        ),
        (
            "route:\n  receiver: default\n  group_by: [a, a]\n",
            'am.yml:3: route.group_by.1: duplicated label "a" in group_by',
        ),
        (
            "route:\n  receiver: default\n  group_by: [a-b]\n",
            'am.yml:3: route.group_by.0: invalid label name "a-b" in group_by list',
        ),
        ("route:\n  receiver: default\n  group_interval: 0s\n", "am.yml:3: route.group_interval: group_interval cannot be zero"),
        ("route:\n  receiver: default\n  recevier: x\n", "am.yml:3: route.recevier: unknown key (did you mean receiver?)"),
        (
            "route: {receiver: default}\ninhibit_rules:\n  - equal: [a-b]\n",
            'am.yml:3: inhibit_rules.0.equal.0: invalid label name "a-b" in equal list',
        ),
        (
            "route: {receiver: default}\ntime_intervals:\n  - time_intervals: []\n",
            "am.yml:3: time_intervals.0.name: missing name in time interval",
        ),
        (
            "route: {receiver: default}\ntime_intervals:\n  - name: a\n    time_intervals:\n      - weekdays: [funday]\n",
            "am.yml:5: time_intervals.0.time_intervals.0.weekdays.0: funday is not a valid weekday",
        ),
        (
            "route: {receiver: default}\ntime_intervals:\n  - name: a\n    time_intervals:\n      - location: Mars/Olympus\n",
            "am.yml:5: time_intervals.0.time_intervals.0.location: unknown time zone Mars/Olympus",
        ),
        (
            "route: {receiver: default}\ntime_intervals:\n  - name: a\n    time_intervals:\n"
            "      - times: [{start_time: '10:00'}]\n",
            "am.yml:5: time_intervals.0.time_intervals.0.times.0: both start and end times must be provided",
        ),
        (
            "route: {receiver: default}\ntime_intervals:\n  - name: a\nmute_time_intervals:\n  - name: a\n",
            'am.yml:3: time_intervals.0.name: time interval "a" is not unique',
        ),
    ],
)
def test_errors_name_the_line_and_key(text: str, expected: str) -> None:
    assert expected in errors(text)


def test_duplicate_receiver_names() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("route: {receiver: a}\nreceivers:\n  - name: a\n  - name: a\n", "am.yml")
    assert [str(i) for i in caught.value.issues] == ['am.yml:4: receivers.1.name: notification config name "a" is not unique']


def test_receivers_without_a_route() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("receivers:\n  - name: a\n", "am.yml")
    assert [str(i) for i in caught.value.issues] == ["am.yml:1: receivers: no route provided in config"]


def test_every_reference_error_is_reported() -> None:
    found = errors("route:\n  receiver: nobody\n  routes:\n    - receiver: nobody-either\n      mute_time_intervals: [x]\n")
    assert found == [
        'am.yml:2: route.receiver: undefined receiver "nobody" used in route',
        'am.yml:4: route.routes.0.receiver: undefined receiver "nobody-either" used in route',
        'am.yml:5: route.routes.0.mute_time_intervals.0: undefined time interval "x" used in route',
    ]
