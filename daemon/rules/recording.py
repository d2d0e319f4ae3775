"""Recording rules: a query's result stored again under a new metric name."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from daemon.promql.engine import Query
from daemon.promql.value import Value
from daemon.rules.alerting import pairs
from daemon.rules.rule import RuleError, RuleStatus, as_vector
from daemon.tsdb import Labels
from daemon.tsdb.labels import METRIC_NAME


class RecordingRule:
    """One ``record:`` rule: each result sample gets ``__name__`` = record and the rule's labels.

    ``labels`` are the group's labels overlaid by the rule's (no templates, as in Prometheus).
    """

    kind = "recording"

    def __init__(self, spec: Any, query: Query, *, group_labels: Iterable[tuple[str, str]] = ()) -> None:
        self.spec = spec
        self.name: str = spec.record
        self.expr: str = spec.expr
        self.query = query
        self.labels = dict([*group_labels, *pairs(spec.labels)])
        self.status = RuleStatus()

    def eval(self, result: Value, *, limit: int = 0) -> list[tuple[Labels, float]]:
        """The series to write for one evaluation; raises ``RuleError`` (nothing is written then)."""
        vector = as_vector(result)
        if limit > 0 and len(vector) > limit:
            raise RuleError(f"exceeded limit {limit} with {len(vector)} series")
        out: dict[Labels, float] = {}
        overrides = {**self.labels, METRIC_NAME: self.name}
        for sample in vector:
            labels = Labels.of({**sample.labels.to_dict(), **overrides})
            if labels in out:
                raise RuleError("vector contains metrics with the same labelset after applying rule labels")
            out[labels] = sample.value
        return list(out.items())
