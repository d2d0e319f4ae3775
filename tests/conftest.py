"""Shared test setup."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    # A test that configures logging (through the CLI) must not leave later tests writing to its
    # captured, since closed, stdout.
    yield
    structlog.reset_defaults()
