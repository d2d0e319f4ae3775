"""One alert of an alerting rule: its identity, state and times, and how it is saved and sent."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from daemon.tsdb import Labels

RESOLVED_RETENTION = 15 * 60.0
"""Seconds a resolved alert stays in the rule's list (and is re-sent as resolved), as in Prometheus."""


class AlertState(str, Enum):
    """Where an alert is in Prometheus' state machine; ``inactive`` means resolved."""

    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


@dataclass(eq=False)
class Alert:
    """An alert as an alerting rule holds it between evaluations.

    ``labels`` is the final label set (the sample's labels without ``__name__``, the rule's
    expanded labels over them, and ``alertname``): it is the alert's identity. Times are Unix
    seconds. ``keep_firing_since`` is set while a firing alert is held by ``keep_firing_for``
    with its result absent; ``value`` is then the last value seen. ``restored`` marks an alert
    read back from the state store that has not been seen in a result since (see
    ``AlertingRule.eval`` for how it is held while the data refills).
    """

    labels: Labels
    annotations: dict[str, str]
    state: AlertState
    value: float
    active_at: float
    fired_at: float | None = None
    resolved_at: float | None = None
    keep_firing_since: float | None = None
    last_sent_at: float | None = None
    valid_until: float | None = None
    restored: bool = False
    _saved: tuple[Any, ...] | None = field(default=None, repr=False)

    @property
    def is_active(self) -> bool:
        """Pending or firing (what /api/v1/alerts lists)."""
        return self.state is not AlertState.INACTIVE

    def key(self) -> str:
        """A stable identity of the label set, the same in every process (Python's hash() is not)."""
        return label_digest(self.labels)

    # -- persistence -------------------------------------------------------------------------

    def snapshot(self) -> tuple[Any, ...]:
        """What must be written again when it changes; the value alone does not count."""
        return (self.state.value, self.active_at, self.fired_at, self.resolved_at, self.keep_firing_since, self.labels)

    def to_document(self) -> dict[str, Any]:
        """The JSON document saved in the state store."""
        return {
            "labels": list(self.labels),
            "annotations": self.annotations,
            "state": self.state.value,
            "value": _json_float(self.value),
            "active_at": self.active_at,
            "fired_at": self.fired_at,
            "resolved_at": self.resolved_at,
            "keep_firing_since": self.keep_firing_since,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Alert:
        """The alert a ``to_document`` result describes (raises KeyError/ValueError/TypeError if malformed)."""
        labels = Labels(str(x) for x in doc["labels"])
        if len(labels) % 2:
            raise ValueError("odd label list")
        alert = cls(
            labels=labels,
            annotations={str(k): str(v) for k, v in dict(doc.get("annotations") or {}).items()},
            state=AlertState(doc["state"]),
            value=float(doc.get("value", math.nan)),
            active_at=float(doc["active_at"]),
            fired_at=_opt_float(doc.get("fired_at")),
            resolved_at=_opt_float(doc.get("resolved_at")),
            keep_firing_since=_opt_float(doc.get("keep_firing_since")),
            restored=True,
        )
        alert._saved = alert.snapshot()
        return alert


def label_digest(labels: Labels) -> str:
    """16 hex digits identifying a label set across processes."""
    return hashlib.blake2b("\xff".join(labels).encode(), digest_size=8).hexdigest()


def _json_float(value: float) -> float | str:
    # JSON has no NaN or infinities; keep them as Go's spelling.
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return value


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
