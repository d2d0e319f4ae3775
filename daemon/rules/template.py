"""Alert label and annotation templates, expanded as Prometheus expands them.

``AlertTemplate.parse`` once per rule (it raises ``TemplateError`` for ``alertd check rules``),
then ``expand`` on every evaluation for every alert. ``expand`` never raises: a template that
fails yields ``<error expanding template: ...>`` with Prometheus' message, and ``render`` also
returns that message on its own for logging.

As in Prometheus, the text is prefixed with
``{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}``
before parsing, so error columns on the first line count that prefix too, exactly as
Prometheus reports them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from daemon.rules.gotemplate import ParseError, Tree, parse
from daemon.rules.template_exec import BUILTINS, ExecError, Executor
from daemon.rules.template_funcs import (
    CONTEXT_FUNCTION_NAMES,
    STATIC_FUNCTIONS,
    QueryFunc,
    QuerySample,
    context_functions,
)
from daemon.rules.template_values import AlertData, StringMap

PRELUDE = (
    "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}"
    "{{$externalURL := .ExternalURL}}{{$value := .Value}}"
)
"""The variable definitions Prometheus puts before every alert template."""

FUNCTION_NAMES = frozenset(BUILTINS) | frozenset(STATIC_FUNCTIONS) | frozenset(CONTEXT_FUNCTION_NAMES)
"""Every function an alert template may call."""

_STATIC = {**BUILTINS, **STATIC_FUNCTIONS}

__all__ = [
    "AlertTemplate",
    "Expansion",
    "FUNCTION_NAMES",
    "PRELUDE",
    "QueryFunc",
    "QuerySample",
    "TemplateError",
]


class TemplateError(ValueError):
    """A template that does not parse, with Go's message: ``template: NAME:1: function "nope" not defined``."""


@dataclass(frozen=True, slots=True)
class Expansion:
    """The outcome of expanding a template: the text to use, and the error when it failed.

    On failure ``text`` is ``<error expanding template: {error}>``, as Prometheus puts in the
    label or annotation.
    """

    text: str
    error: str | None = None


class AlertTemplate:
    """One label or annotation value of an alerting rule, parsed once and expanded many times.

    ``name`` is the Go template name that error messages carry; Prometheus uses
    ``__alert_<alertname>`` for alerting rules and ``__record_<name>`` for recording rules.
    """

    MAX_STEPS = 100_000
    """Evaluation steps (actions, commands, range iterations) before expansion fails."""
    MAX_OUTPUT = 256 * 1024
    """Characters of output before expansion fails."""

    __slots__ = ("text", "name", "_trees", "_max_steps", "_max_output")

    def __init__(
        self, text: str, name: str, trees: Mapping[str, Tree] | None, max_steps: int, max_output: int
    ) -> None:
        self.text = text
        self.name = name
        self._trees = trees
        self._max_steps = max_steps
        self._max_output = max_output

    @classmethod
    def parse(
        cls, text: str, name: str, *, max_steps: int | None = None, max_output: int | None = None
    ) -> AlertTemplate:
        """Parse ``text``; raises ``TemplateError`` (with Go's message and line) if it does not parse.

        Text without ``{{`` is kept as is and expands to itself.
        """
        steps = cls.MAX_STEPS if max_steps is None else max_steps
        output = cls.MAX_OUTPUT if max_output is None else max_output
        if "{{" not in text:
            return cls(text, name, None, steps, output)
        try:
            trees = parse(PRELUDE + text, name, FUNCTION_NAMES)
        except ParseError as exc:
            raise TemplateError(str(exc)) from None
        except RecursionError:
            raise TemplateError(f"template: {name}:1: template nested too deeply") from None
        return cls(text, name, trees, steps, output)

    @property
    def is_static(self) -> bool:
        """Whether the text has no actions (expansion returns it unchanged)."""
        return self._trees is None

    def expand(
        self,
        labels: Mapping[str, str],
        value: float,
        *,
        external_labels: Mapping[str, str],
        external_url: str,
        query: QueryFunc | None = None,
        timestamp: float | None = None,
    ) -> str:
        """The expanded text, or ``<error expanding template: ...>``; never raises.

        ``query`` runs ``query "..."`` calls at the evaluation time; ``timestamp`` (Unix seconds)
        is what ``now`` returns.
        """
        return self.render(
            labels, value, external_labels=external_labels, external_url=external_url, query=query, timestamp=timestamp
        ).text

    def render(
        self,
        labels: Mapping[str, str],
        value: float,
        *,
        external_labels: Mapping[str, str],
        external_url: str,
        query: QueryFunc | None = None,
        timestamp: float | None = None,
    ) -> Expansion:
        """Like ``expand``, also returning the error message (``error executing template ...``)."""
        if self._trees is None:
            return Expansion(self.text)
        try:
            data = AlertData(
                {
                    "Labels": StringMap(labels),
                    "ExternalLabels": StringMap(external_labels),
                    "ExternalURL": str(external_url),
                    "Value": float(value),
                }
            )
            functions = {**_STATIC, **context_functions(query, str(external_url), timestamp)}
            executor = Executor(self._trees, functions, max_steps=self._max_steps, max_output=self._max_output)
            return Expansion(executor.execute(self.name, data))
        except ExecError as exc:
            error = f"error executing template {self.name}: {exc}"
        except RecursionError:
            error = f"error executing template {self.name}: template: {self.name}: nested too deeply"
        except Exception as exc:  # a defect here must not take the rule down; report it like Go's recover
            error = f"panic expanding template {self.name}: {exc!r}"
        return Expansion(f"<error expanding template: {error}>", error)

    def __repr__(self) -> str:
        return f"AlertTemplate({self.text!r}, name={self.name!r})"
