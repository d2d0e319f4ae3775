"""PromQL values as the evaluator returns them: scalars, strings, instant vectors, range vectors.

An instant vector is a ``list[Sample]`` and a range vector (matrix) a ``list[SeriesPoints]``.
Results may be shared between queries evaluated together (see ``Engine.instant_many``), so
callers must treat every value as immutable.
"""

from __future__ import annotations

from dataclasses import dataclass

from daemon.tsdb import Labels


@dataclass(frozen=True, slots=True)
class Scalar:
    """A single number with no labels."""

    value: float


@dataclass(frozen=True, slots=True)
class String:
    """A string literal result (only instant queries can return one)."""

    value: str


class Sample:
    """One element of an instant vector: a label set and its value at the evaluation time.

    A plain slotted class rather than a frozen dataclass: the evaluator creates one per series
    per step, and frozen dataclasses pay for ``object.__setattr__`` on every field. Never mutate.
    """

    __slots__ = ("labels", "value")

    def __init__(self, labels: Labels, value: float) -> None:
        self.labels = labels
        self.value = value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sample):
            return NotImplemented
        same_value = self.value == other.value or (self.value != self.value and other.value != other.value)
        return self.labels == other.labels and same_value

    def __hash__(self) -> int:
        return hash((self.labels, self.value))

    def __repr__(self) -> str:
        return f"Sample({self.labels}, {self.value!r})"


@dataclass(frozen=True, slots=True)
class SeriesPoints:
    """One series of a range vector: a label set and its ``(timestamp_ms, value)`` points, oldest first."""

    labels: Labels
    points: list[tuple[int, float]]


Vector = list[Sample]
Matrix = list[SeriesPoints]
Value = Scalar | String | Vector | Matrix
