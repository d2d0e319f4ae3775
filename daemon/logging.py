"""Structured logs: JSON off a terminal (or on request), readable lines on one; secrets never printed."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "<secret>"

# Field names whose values are credentials whatever their type; the config's Secret type covers
# the rest by rendering itself as REDACTED.
_SECRET_KEYS = ("password", "secret", "token", "credentials", "authorization", "api_key", "routing_key")


def redact_secrets(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor that blanks every field whose name says it holds a credential."""
    for key in event:
        lowered = key.lower()
        if any(word in lowered for word in _SECRET_KEYS):
            event[key] = REDACTED
    return event


def configure(fmt: str | None = None, level: str = "info", stream: TextIO | None = None) -> None:
    """Set up structlog for the process.

    ``fmt`` is ``"json"`` or ``"console"``; ``None`` picks JSON unless the stream is a terminal.
    """
    out = stream or sys.stdout
    if fmt is None:
        fmt = "console" if out.isatty() else "json"
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_level_number(level)),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def _level_number(level: str) -> int:
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r} (debug, info, warning, error)")
    return number


def get_logger(**context: Any) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger().bind(**context)  # type: ignore[no-any-return]
