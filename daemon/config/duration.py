"""Prometheus durations (``1h30m``, ``15s``, ``500ms``, ``1d``): parsing, formatting, a pydantic type."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator
from pydantic_core import PydanticCustomError

_UNITS: tuple[tuple[str, int], ...] = (
    ("y", 365 * 24 * 3600 * 1000),
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
)
_PATTERN = re.compile("".join(rf"(?:(\d+){unit})?" for unit, _ in _UNITS))
# Prometheus stores durations as Go time.Duration (int64 nanoseconds).
_MAX_MS = (2**63 - 1) // 1_000_000


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration string; units must appear largest first, each at most once.

    Raises ``ValueError`` with Prometheus' wording for anything else (including negatives).
    """
    if text == "0":
        return 0.0
    if text == "":
        raise ValueError("empty duration string")
    match = _PATTERN.fullmatch(text)
    if match is None:
        raise ValueError(f'not a valid duration string: "{text}"')
    total_ms = 0
    for (_, unit_ms), count in zip(_UNITS, match.groups()):
        if count is not None:
            total_ms += int(count) * unit_ms
    if total_ms > _MAX_MS:
        raise ValueError(f'duration out of range: "{text}"')
    return total_ms / 1000


def format_duration(seconds: float) -> str:
    """Render as Prometheus does: ``90m`` -> ``1h30m``; years and weeks only when exact; ``0s`` for zero."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    parts: list[str] = []
    for unit, unit_ms in _UNITS:
        # 90d reads better than 12w6d, so years and weeks are used only when nothing remains.
        if unit in ("y", "w") and ms % unit_ms != 0:
            continue
        count, ms = divmod(ms, unit_ms)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)


def _validate(value: Any) -> float:
    if isinstance(value, bool):
        raise PydanticCustomError("duration_type", "must be a duration such as 15s, 1m or 1h30m")
    if isinstance(value, (int, float)):
        if value < 0:
            raise PydanticCustomError("duration_negative", "duration must not be negative")
        return float(value)
    if not isinstance(value, str):
        raise PydanticCustomError("duration_type", "must be a duration such as 15s, 1m or 1h30m")
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise PydanticCustomError("duration_parsing", "{reason}", {"reason": str(exc)}) from None


Duration = Annotated[float, PlainValidator(_validate), PlainSerializer(format_duration, return_type=str)]
"""Seconds as a float, written in config files in Prometheus duration syntax."""
