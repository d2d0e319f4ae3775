"""What alerting and recording rules share: their evaluation health and the shape of a result."""

from __future__ import annotations

from dataclasses import dataclass

from daemon.promql.value import Sample, Scalar, Value
from daemon.tsdb.labels import EMPTY

HEALTH_UNKNOWN, HEALTH_OK, HEALTH_ERR = "unknown", "ok", "err"


class RuleError(Exception):
    """A rule failed for one evaluation (its query result cannot be used); the message is Prometheus'."""


@dataclass
class RuleStatus:
    """How the last evaluation of a rule went, as /api/v1/rules shows it."""

    health: str = HEALTH_UNKNOWN
    last_error: str = ""
    last_evaluation: float = 0.0
    evaluation_time: float = 0.0

    def succeeded(self, at: float, took: float) -> None:
        self.health, self.last_error = HEALTH_OK, ""
        self.last_evaluation, self.evaluation_time = at, took

    def failed(self, error: str, at: float, took: float) -> None:
        self.health, self.last_error = HEALTH_ERR, error
        self.last_evaluation, self.evaluation_time = at, took


def as_vector(result: Value) -> list[Sample]:
    """The result of a rule's query as samples: a scalar is one sample without labels, as in Prometheus."""
    if isinstance(result, list) and (not result or isinstance(result[0], Sample)):
        return result  # type: ignore[return-value]
    if isinstance(result, Scalar):
        return [Sample(EMPTY, result.value)]
    raise RuleError("rule result is not a vector or scalar")
