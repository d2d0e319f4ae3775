"""Label sets: immutable, sorted by name, cheap to hash and to keep by the hundred thousand."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping

METRIC_NAME = "__name__"


class Labels(tuple):  # type: ignore[type-arg]
    """A label set as one flat tuple ``(name1, value1, name2, value2, ...)`` sorted by name.

    One tuple per series (no pair objects) keeps memory low; names and values are interned so
    that the many series sharing ``job="api"`` share the strings. Labels with an empty value do
    not exist, as in Prometheus.
    """

    __slots__ = ()

    @classmethod
    def of(cls, pairs: Mapping[str, str] | Iterable[tuple[str, str]]) -> Labels:
        items = pairs.items() if isinstance(pairs, Mapping) else pairs
        flat: list[str] = []
        for name, value in sorted(dict(items).items()):
            if value != "":
                flat.append(sys.intern(name))
                flat.append(sys.intern(value))
        return cls(flat)

    @property
    def metric_name(self) -> str:
        return self.get(METRIC_NAME)

    def get(self, name: str, default: str = "") -> str:
        for i in range(0, len(self), 2):
            if self[i] == name:
                return self[i + 1]  # type: ignore[no-any-return]
        return default

    def items(self) -> Iterator[tuple[str, str]]:
        it = iter(self)
        return zip(it, it)

    def names(self) -> tuple[str, ...]:
        return self[0::2]  # type: ignore[return-value]

    def to_dict(self) -> dict[str, str]:
        return dict(self.items())

    def with_(self, **overrides: str) -> Labels:
        """A copy with some labels set (an empty value removes the label)."""
        merged = self.to_dict()
        merged.update(overrides)
        return Labels.of(merged)

    def without_name(self) -> Labels:
        return Labels.of((k, v) for k, v in self.items() if k != METRIC_NAME)

    def __str__(self) -> str:
        name = self.metric_name
        rest = ",".join(f'{k}="{_escape(v)}"' for k, v in self.items() if k != METRIC_NAME)
        if not rest:
            return name or "{}"
        return f"{name}{{{rest}}}"

    def __repr__(self) -> str:
        return f"Labels({self})"


EMPTY = Labels()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
