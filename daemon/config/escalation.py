"""``escalation_policies``: who is notified, and when, while an alert group stays unacknowledged.

An alertd addition (Alertmanager has no escalation). A policy is a list of levels; a level's
``after`` counts from the group's first notification and names the receivers notified then
(any configured receivers). ``repeat: N`` runs the levels N more times, each cycle starting
``repeat_interval`` after the last level of the previous one (by default the gap between the
last two levels, or the only level's ``after``). A route refers to a policy with
``escalation: NAME``; child routes inherit it unless they set their own (``escalation: none``
turns it off below a route).

``escalation_errors`` does the checks across sections (receivers that exist, routes that name
a policy that exists, unique names), located at the offending key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from daemon.config.duration import Duration, format_duration
from daemon.config.secret import Secret
from daemon.config.section import FIELD_ERROR, Section, field_error

NO_ESCALATION = "none"
"""What ``escalation:`` on a route says to stop inheriting its parent's policy."""


class EscalationLevelConfig(Section):
    """One level: ``after`` (from the group's first notification) and the ``receivers`` notified then."""

    after: Duration = 0.0
    receivers: tuple[str, ...] = ()

    @field_validator("receivers")
    @classmethod
    def _some_receivers(cls, receivers: tuple[str, ...]) -> tuple[str, ...]:
        if not receivers:
            raise ValueError("a level needs at least one receiver")
        return receivers


class EscalationPolicyConfig(Section):
    """An ``escalation_policies`` entry."""

    name: str = ""
    levels: tuple[EscalationLevelConfig, ...] = ()
    repeat: Annotated[int, Field(ge=0)] = 0
    repeat_interval: Duration | None = None

    @model_validator(mode="before")
    @classmethod
    def _name_required(cls, data: object) -> object:
        if isinstance(data, dict):
            name = data.get("name")
            if not name:
                raise field_error("name", "missing name in escalation policy")
            if name == NO_ESCALATION:
                raise field_error("name", f'"{NO_ESCALATION}" is reserved: routes use it to turn escalation off')
        return data

    @model_validator(mode="after")
    def _increasing(self) -> EscalationPolicyConfig:
        if not self.levels:
            raise field_error("levels", "an escalation policy needs at least one level")
        for index in range(1, len(self.levels)):
            before, level = self.levels[index - 1], self.levels[index]
            if level.after <= before.after:
                raise field_error(
                    f"levels.{index}.after",
                    f"delays must increase: {format_duration(level.after)} is not after the previous level's "
                    f"{format_duration(before.after)}",
                )
        if self.repeat and self.policy().cycle <= self.levels[-1].after:
            raise field_error("repeat_interval", "repeat needs a repeat_interval longer than 0s")
        return self

    @field_validator("repeat_interval")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("repeat_interval must be longer than 0s")
        return value

    def policy(self) -> EscalationPolicy:
        """The policy as the escalation engine uses it."""
        afters = [level.after for level in self.levels]
        if self.repeat_interval is not None:
            gap = self.repeat_interval
        elif len(afters) > 1:
            gap = afters[-1] - afters[-2]
        else:
            gap = afters[-1]
        levels = tuple(EscalationLevel(level.after, level.receivers) for level in self.levels)
        return EscalationPolicy(self.name, levels, self.repeat, afters[-1] + gap)


@dataclass(frozen=True)
class EscalationLevel:
    """A level: seconds after the first notification, and its receivers."""

    after: float
    receivers: tuple[str, ...]


@dataclass(frozen=True)
class EscalationPolicy:
    """Levels in order; the whole list runs ``1 + repeat`` times, cycle ``c`` shifted by ``c * cycle``."""

    name: str
    levels: tuple[EscalationLevel, ...]
    repeat: int = 0
    cycle: float = 0.0

    def steps(self) -> list[tuple[int, int, float]]:
        """Every notification the policy makes, in time order: (cycle, level index, offset in seconds)."""
        return [
            (cycle, index, cycle * self.cycle + level.after)
            for cycle in range(self.repeat + 1)
            for index, level in enumerate(self.levels)
        ]


def _error(loc: tuple[str | int, ...], message: str) -> InitErrorDetails:
    return InitErrorDetails(
        type=PydanticCustomError(FIELD_ERROR, "{message}", {"message": message, "field": None}), loc=loc, input=None
    )


def escalation_errors(
    policies: Sequence[EscalationPolicyConfig], receiver_names: Sequence[str], route: object | None
) -> list[InitErrorDetails]:
    """Unknown receivers in levels, duplicate policy names, and routes naming a policy that does not exist.

    ``route`` is the root ``RouteConfig`` (anything with ``walk`` and ``escalation``), or None.
    """
    errors: list[InitErrorDetails] = []
    known = set(receiver_names)
    names: set[str] = set()
    for p, policy in enumerate(policies):
        if policy.name in names:
            errors.append(_error(("escalation_policies", p, "name"), f'escalation policy "{policy.name}" is not unique'))
        names.add(policy.name)
        for l, level in enumerate(policy.levels):
            for r, receiver in enumerate(level.receivers):
                if receiver not in known:
                    errors.append(
                        _error(
                            ("escalation_policies", p, "levels", l, "receivers", r),
                            f'undefined receiver "{receiver}" used in escalation policy "{policy.name}"',
                        )
                    )
    if route is not None:
        for path, node in route.walk(("route",)):  # type: ignore[attr-defined]
            name = getattr(node, "escalation", None)
            if name and name != NO_ESCALATION and name not in names:
                errors.append(_error((*path, "escalation"), f'undefined escalation policy "{name}" used in route'))
    return errors


class AcknowledgementsConfig(Section):
    """``acknowledgements``: the secrets that let Slack buttons and PagerDuty acknowledge alerts.

    ``slack_signing_secret`` verifies ``POST /slack/interactions`` (the Slack app's signing
    secret); ``pagerduty_webhook_secret`` verifies ``POST /pagerduty/webhook`` (the secret of a
    PagerDuty v3 webhook subscription). An endpoint whose secret is unset answers 404.
    """

    slack_signing_secret: Secret | None = None
    pagerduty_webhook_secret: Secret | None = None
