"""The route tree: which receivers an alert goes to, and with which grouping and timers.

Built from the config's ``route`` as Alertmanager builds it (``dispatch/route.go``): a child takes
its receiver, ``group_by`` and timers from its parent unless it sets them; matchers, ``continue``
and the time intervals belong to each route alone. ``match`` walks the tree depth first, left to
right: a route matches when its matchers do, and then stands for the alert only if none of its
children matches; the first matching child ends the search among its siblings unless it has
``continue: true``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from daemon.dispatch.matchers import LabelSource, Matcher, format_matchers, matches_all
from daemon.dispatch.timeinterval import NamedTimeInterval, any_contains

if TYPE_CHECKING:
    from daemon.config.alerting import RouteConfig

DEFAULT_GROUP_WAIT = 30.0
DEFAULT_GROUP_INTERVAL = 300.0
DEFAULT_REPEAT_INTERVAL = 4 * 3600.0

GroupBy = frozenset[str] | Literal["all"]
"""The label names alerts are grouped by, or ``"all"`` for ``group_by: ['...']``."""


@dataclass(frozen=True)
class RouteOptions:
    """What a route passes down to its children unless they override it."""

    receiver: str = ""
    group_by: GroupBy = frozenset()
    group_wait: float = DEFAULT_GROUP_WAIT
    group_interval: float = DEFAULT_GROUP_INTERVAL
    repeat_interval: float = DEFAULT_REPEAT_INTERVAL
    escalation: str = ""
    """The escalation policy of the route's groups ("" for none)."""
    group_wait_set: bool = False
    """Whether ``group_wait`` was set in the config, on this route or a parent (else the
    dispatcher may flush a new group as soon as it has settled, see ``Settle``)."""


@dataclass(frozen=True, eq=False)
class Route:
    """One node of the tree, with its inherited options resolved.

    ``matchers`` are in Alertmanager's order (sorted by name, value, operator), which is also how
    ``key()`` prints them. Routes compare by identity: two routes with equal settings in
    different places of the tree are different routes.
    """

    options: RouteOptions
    matchers: tuple[Matcher, ...]
    continue_: bool
    mute_time_intervals: tuple[str, ...]
    active_time_intervals: tuple[str, ...]
    routes: tuple[Route, ...]
    _key: str
    _id: str

    @classmethod
    def build(cls, config: RouteConfig) -> Route:
        """The tree for the config's root ``route``."""
        return cls._node(config, RouteOptions(), parent_key=None, position=None)

    @classmethod
    def _node(cls, config: RouteConfig, inherited: RouteOptions, parent_key: str | None, position: int | None) -> Route:
        options = config.options(inherited)
        matchers = config.route_matchers()
        key = format_matchers(matchers) if parent_key is None else f"{parent_key}/{format_matchers(matchers)}"
        children = tuple(cls._node(child, options, key, index) for index, child in enumerate(config.routes))
        return cls(
            options=options,
            matchers=matchers,
            continue_=config.continue_,
            mute_time_intervals=config.mute_time_intervals,
            active_time_intervals=config.active_time_intervals,
            routes=children,
            _key=key,
            _id=key if position is None else f"{key}/{position}",
        )

    @property
    def receiver(self) -> str:
        return self.options.receiver

    @property
    def group_by(self) -> GroupBy:
        return self.options.group_by

    @property
    def group_wait(self) -> float:
        return self.options.group_wait

    @property
    def group_wait_set(self) -> bool:
        return self.options.group_wait_set

    @property
    def group_interval(self) -> float:
        return self.options.group_interval

    @property
    def repeat_interval(self) -> float:
        return self.options.repeat_interval

    @property
    def escalation(self) -> str:
        return self.options.escalation

    def key(self) -> str:
        """Alertmanager's route key: the matchers of every route from the root, joined by ``/``.

        Used in group keys; not unique when two siblings have the same matchers (see ``id``).
        """
        return self._key

    def id(self) -> str:
        """The key plus this route's position among its siblings: unique in the tree."""
        return self._id

    def matches(self, labels: LabelSource | Mapping[str, str]) -> bool:
        """Whether this route's own matchers match (its parents' are not consulted)."""
        return matches_all(self.matchers, labels)

    def match(self, labels: LabelSource | Mapping[str, str]) -> list[Route]:
        """The routes an alert with ``labels`` is handled by, in Alertmanager's order.

        Empty only when this route's own matchers do not match (never for a root route).
        """
        if not self.matches(labels):
            return []
        found: list[Route] = []
        for child in self.routes:
            matched = child.match(labels)
            found.extend(matched)
            if matched and not child.continue_:
                break
        return found or [self]

    def walk(self) -> Iterator[Route]:
        """This route and every route below it, depth first."""
        yield self
        for child in self.routes:
            yield from child.walk()

    def group_labels(self, labels: LabelSource | Mapping[str, str]) -> dict[str, str]:
        """The labels that identify an alert's group under this route (``group_by`` of ``labels``)."""
        pairs = labels.items()
        if self.group_by == "all":
            return {name: value for name, value in pairs if value != ""}
        return {name: value for name, value in pairs if name in self.group_by and value != ""}

    def muted_at(self, t: float, intervals: Mapping[str, NamedTimeInterval]) -> bool:
        """Whether notifications of this route are held back at ``t``.

        True inside one of its ``mute_time_intervals``, or outside all of its
        ``active_time_intervals`` when it has any.
        """
        if any_contains(self.mute_time_intervals, intervals, t):
            return True
        return bool(self.active_time_intervals) and not any_contains(self.active_time_intervals, intervals, t)


_TREE_MID, _TREE_END, _TREE_LINK, _TREE_GAP = "├──", "└──", "│\u00a0\u00a0 ", "    "


def _slug(route: Route, *, receiver: bool) -> str:
    text = format_matchers(route.matchers) if route.matchers else "default-route"
    return f"{text}  receiver: {route.receiver}" if receiver else text


def matching_tree(root: Route, labels: LabelSource | Mapping[str, str]) -> str:
    """The routes an alert walks through, drawn as ``amtool config routes test --tree`` draws them.

    Every route entered is a branch; the routes that handle the alert also show their receiver.
    The text ends with a newline.
    """
    lines = ["."]

    def visit(route: Route, prefix: str, last: bool) -> None:
        index = len(lines)
        lines.append("")
        children = [child for child in route.routes if child.matches(labels)]
        # Like Route.match: after a matching child without `continue` the siblings are not tried.
        entered: list[Route] = []
        for child in children:
            entered.append(child)
            if not child.continue_:
                break
        inner = prefix + (_TREE_GAP if last else _TREE_LINK)
        for position, child in enumerate(entered):
            visit(child, inner, position == len(entered) - 1)
        lines[index] = f"{prefix}{_TREE_END if last else _TREE_MID} {_slug(route, receiver=not entered)}"

    visit(root, "", True)
    return "\n".join(lines) + "\n"
