"""The route tree: inheritance, match order with continue, keys, grouping, muting, amtool's tree."""

from __future__ import annotations

from datetime import datetime, timezone

from daemon.config import parse_config
from daemon.config.alerting import time_interval_map
from daemon.dispatch.route import Route, matching_tree
from daemon.tsdb.labels import Labels

TREE = """
route:
  receiver: default
  group_by: [alertname, cluster]
  routes:
    - matchers: ['severity=~"P0|critical"', team="db"]
      receiver: pager
      continue: true
      group_wait: 5s
      routes:
        - match: {env: prod}
          receiver: prod-pager
          repeat_interval: 1h
        - matchers: [env=dev]
    - match_re: {severity: 'P[01]'}
      match: {team: web}
      receiver: web
      group_by: ['...']
      routes:
        - matchers: [env=dev]
          group_by: []
    - matchers: ['severity!=info']
      receiver: slack
      group_by: [service]
      mute_time_intervals: [weekend]
      active_time_intervals: [office]
time_intervals:
  - name: weekend
    time_intervals: [{weekdays: [saturday, sunday]}]
  - name: office
    time_intervals: [{times: [{start_time: "08:00", end_time: "18:00"}]}]
receivers:
  - name: default
  - name: pager
  - name: prod-pager
  - name: web
  - name: slack
"""


def tree() -> Route:
    config = parse_config(TREE)
    assert config.route is not None
    return Route.build(config.route)


def receivers(labels: dict[str, str]) -> list[str]:
    return [route.receiver for route in tree().match(labels)]


def test_match_order_and_continue() -> None:
    assert receivers({"severity": "P0", "team": "db"}) == ["pager", "slack"]
    assert receivers({"severity": "P0", "team": "db", "env": "prod"}) == ["prod-pager", "slack"]
    assert receivers({"severity": "P1", "team": "web"}) == ["web"]
    assert receivers({"severity": "info"}) == ["default"]
    assert receivers({}) == ["slack"]  # severity is "" and "" != "info"


def test_match_accepts_labels() -> None:
    assert [r.receiver for r in tree().match(Labels.of({"severity": "info"}))] == ["default"]


def test_children_inherit_receiver_grouping_and_timers() -> None:
    root = tree()
    pager, web, slack = root.routes
    prod, dev = pager.routes
    assert root.group_by == frozenset({"alertname", "cluster"})
    assert (root.group_wait, root.group_interval, root.repeat_interval) == (30.0, 300.0, 14400.0)
    assert (pager.group_wait, pager.repeat_interval) == (5.0, 14400.0)
    assert (prod.receiver, prod.group_wait, prod.repeat_interval) == ("prod-pager", 5.0, 3600.0)
    assert (dev.receiver, dev.group_by) == ("pager", frozenset({"alertname", "cluster"}))
    assert web.group_by == "all"
    # An empty group_by list is "not set", as in Alertmanager: the parent's grouping stays.
    assert web.routes[0].group_by == "all"
    assert slack.group_by == frozenset({"service"})


def test_time_intervals_are_not_inherited() -> None:
    root = tree()
    slack = root.routes[2]
    assert slack.mute_time_intervals == ("weekend",)
    assert slack.active_time_intervals == ("office",)
    assert root.routes[0].routes[0].mute_time_intervals == ()


def test_keys_and_ids() -> None:
    root = tree()
    pager = root.routes[0]
    web = root.routes[1]
    assert root.key() == root.id() == "{}"
    assert pager.key() == '{}/{severity=~"P0|critical",team="db"}'
    assert pager.id() == '{}/{severity=~"P0|critical",team="db"}/0'
    # match_re values are anchored, as Alertmanager stores them.
    assert web.key() == '{}/{severity=~"^(?:P[01])$",team="web"}'
    assert pager.routes[0].id() == '{}/{severity=~"P0|critical",team="db"}/{env="prod"}/0'
    assert [r.id() for r in root.walk()][:3] == ["{}", pager.id(), pager.routes[0].id()]


def test_group_labels() -> None:
    root = tree()
    labels = Labels.of({"alertname": "Down", "cluster": "eu", "instance": "a"})
    assert root.group_labels(labels) == {"alertname": "Down", "cluster": "eu"}
    assert root.routes[1].group_labels(labels) == labels.to_dict()
    assert root.routes[2].group_labels({"service": "", "x": "y"}) == {}


def test_muted_at() -> None:
    config = parse_config(TREE)
    assert config.route is not None
    slack = Route.build(config.route).routes[2]
    intervals = time_interval_map(config.time_intervals, config.mute_time_intervals)
    monday_noon = datetime(2024, 6, 3, 12, tzinfo=timezone.utc).timestamp()
    monday_night = datetime(2024, 6, 3, 22, tzinfo=timezone.utc).timestamp()
    saturday_noon = datetime(2024, 6, 8, 12, tzinfo=timezone.utc).timestamp()
    assert not slack.muted_at(monday_noon, intervals)
    assert slack.muted_at(monday_night, intervals)  # outside its active interval
    assert slack.muted_at(saturday_noon, intervals)  # inside its mute interval
    assert not tree().muted_at(saturday_noon, intervals)


def test_matching_tree_as_amtool_draws_it() -> None:
    drawn = matching_tree(tree(), {"severity": "P0", "team": "db", "env": "prod"})
    assert drawn == (
        ".\n"
        "└── default-route\n"
        '    ├── {severity=~"P0|critical",team="db"}\n'
        '    │\u00a0\u00a0 └── {env="prod"}  receiver: prod-pager\n'
        '    └── {severity!="info"}  receiver: slack\n'
    )
    assert matching_tree(tree(), {"severity": "info"}) == ".\n└── default-route  receiver: default\n"
