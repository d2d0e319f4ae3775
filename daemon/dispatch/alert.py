"""One alert as the notification side holds it: Alertmanager's ``types.Alert``.

An alert is identified by its label set (the fingerprint). It is firing until ``ends_at``;
a firing alert sent without an end time gets one of ``now + resolve_timeout`` and ``timeout``
set, so that it resolves by itself unless it is refreshed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from daemon.tsdb.labels import Labels

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK = (1 << 64) - 1
_SEPARATOR = 0xFF


class FrozenMap(Mapping[str, str]):
    """An immutable, hashable str -> str mapping (an alert's annotations)."""

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[str, str] | None = None) -> None:
        self._data: dict[str, str] = dict(data or {})
        self._hash: int | None = None

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._data) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


EMPTY_MAP = FrozenMap()


def fingerprint(labels: Labels | Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set: FNV-1a 64 over sorted ``name 0xff value 0xff``,
    as 16 lower-case hex digits (``model.LabelSet.Fingerprint().String()``)."""
    pairs = labels.items() if isinstance(labels, (Labels, Mapping)) else labels
    h = _FNV_OFFSET
    for name, value in sorted(pairs):
        for chunk in (name.encode(), value.encode()):
            for byte in chunk:
                h = ((h ^ byte) * _FNV_PRIME) & _MASK
            h = ((h ^ _SEPARATOR) * _FNV_PRIME) & _MASK
    return f"{h:016x}"


@dataclass(frozen=True)
class Alert:
    """An alert: label set (its identity), annotations and activity range, in Unix seconds.

    ``ends_at`` is when the alert resolved or, for a firing alert, when it will count as
    resolved unless refreshed. ``updated_at`` is when this version was received; it decides
    which of two versions of an alert is authoritative in ``merge``. ``timeout`` says that
    ``ends_at`` was not given by the sender but set from ``resolve_timeout``.
    """

    labels: Labels
    annotations: Mapping[str, str] = EMPTY_MAP
    starts_at: float = 0.0
    ends_at: float = 0.0
    generator_url: str = ""
    updated_at: float = 0.0
    timeout: bool = False
    _fingerprint: str = field(default="", init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.annotations, FrozenMap):
            object.__setattr__(self, "annotations", FrozenMap(self.annotations))
        if not isinstance(self.labels, Labels):
            object.__setattr__(self, "labels", Labels.of(self.labels))

    @property
    def fingerprint(self) -> str:
        """16 hex digits identifying the label set, the same as Alertmanager's."""
        if not self._fingerprint:
            object.__setattr__(self, "_fingerprint", fingerprint(self.labels))
        return self._fingerprint

    @property
    def name(self) -> str:
        """The ``alertname`` label."""
        return self.labels.get("alertname")

    def resolved_at(self, now: float) -> bool:
        """Whether the alert is resolved at ``now`` (``ends_at`` set and not after ``now``)."""
        return 0 < self.ends_at <= now

    def status(self, now: float) -> str:
        """``"firing"`` or ``"resolved"`` at ``now``."""
        return "resolved" if self.resolved_at(now) else "firing"

    def merge(self, other: Alert, now: float) -> Alert:
        """The two versions of the same alert combined, as Alertmanager's ``Alert.Merge``.

        The younger version (later ``updated_at``) gives annotations and URL; the earliest start
        wins; the later end wins when both are resolved, or when the older's end is an explicit
        (non-timeout) one later than the younger's.
        """
        if other.updated_at < self.updated_at:
            return other.merge(self, now)
        starts_at = min(self.starts_at, other.starts_at)
        ends_at = other.ends_at
        timeout = other.timeout
        if other.resolved_at(now):
            if self.resolved_at(now) and self.ends_at > other.ends_at:
                ends_at, timeout = self.ends_at, self.timeout
        elif self.ends_at > other.ends_at and not self.timeout:
            ends_at, timeout = self.ends_at, self.timeout
        return replace(other, starts_at=starts_at, ends_at=ends_at, timeout=timeout)

    # -- JSON ---------------------------------------------------------------------------------

    def to_document(self) -> dict[str, Any]:
        """A JSON-serialisable form, read back by ``from_document``."""
        return {
            "labels": self.labels.to_dict(),
            "annotations": dict(self.annotations),
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "generator_url": self.generator_url,
            "updated_at": self.updated_at,
            "timeout": self.timeout,
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Alert:
        """The alert a ``to_document`` result describes (KeyError/TypeError/ValueError if malformed)."""
        return cls(
            labels=Labels.of({str(k): str(v) for k, v in dict(doc["labels"]).items()}),
            annotations={str(k): str(v) for k, v in dict(doc.get("annotations") or {}).items()},
            starts_at=float(doc["starts_at"]),
            ends_at=float(doc["ends_at"]),
            generator_url=str(doc.get("generator_url", "")),
            updated_at=float(doc.get("updated_at", 0.0)),
            timeout=bool(doc.get("timeout", False)),
        )


def received(
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    starts_at: float,
    ends_at: float,
    generator_url: str,
    *,
    now: float,
    resolve_timeout: float,
) -> Alert:
    """An alert as received from a sender, completed as Alertmanager's API does.

    A missing (0) start is the end, or ``now``; a missing end is ``now + resolve_timeout`` with
    ``timeout`` set. ``updated_at`` is ``now``.
    """
    timeout = False
    if starts_at <= 0:
        starts_at = ends_at if ends_at > 0 else now
    if ends_at <= 0:
        ends_at = now + resolve_timeout
        timeout = True
    return Alert(
        labels=Labels.of(labels),
        annotations=FrozenMap(annotations),
        starts_at=starts_at,
        ends_at=ends_at,
        generator_url=generator_url,
        updated_at=now,
        timeout=timeout,
    )


def validate(alert: Alert) -> str | None:
    """Why Alertmanager would refuse the alert (``types.Alert.Validate``), or None."""
    if alert.starts_at <= 0:
        return "start time missing"
    if alert.ends_at > 0 and alert.ends_at < alert.starts_at:
        return "start time must be before end time"
    if not alert.labels:
        return "at least one label pair required"
    return None


def rfc3339(t: float) -> str:
    """Unix seconds as RFC 3339 in UTC with milliseconds, Go's zero time for 0 (the API's format)."""
    if t <= 0 or not math.isfinite(t):
        return "0001-01-01T00:00:00.000Z"
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(text: str) -> float:
    """Unix seconds of an RFC 3339 time (any offset, fractional seconds of any length);
    ``ValueError`` if it is not one. Go's zero time gives 0."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"invalid time {text!r}")
    value = text.strip()
    if value.startswith("0001-01-01T00:00:00"):
        return 0.0
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"
    # Go sends nanoseconds; datetime keeps microseconds.
    head, dot, rest = value.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        frac, tail = rest[:digits], rest[digits:]
        value = f"{head}.{(frac + '000000')[:6]}{tail}"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"time {text!r} has no time zone")
    return parsed.timestamp()
