"""The prober interface: what one check of one target reports, and a fake prober for tests."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class ProbeReport:
    """What one probe found, filled in by the prober as it goes.

    ``values`` maps series names (``probe_http_status_code``, ...) to values; ``failure`` is why
    the probe failed, empty while it has not. Because the prober writes as it learns, a probe cut
    off by its timeout still reports what it learnt before (a certificate's expiry, say).
    ``probe_success`` and ``probe_duration_seconds`` are the caller's to add.
    """

    values: dict[str, float] = field(default_factory=dict)
    failure: str = ""

    @property
    def succeeded(self) -> bool:
        return not self.failure

    def fail(self, reason: str) -> None:
        """Mark the probe failed; the first reason given is kept, as it is the cause of the rest."""
        if not self.failure:
            self.failure = reason


class Prober(Protocol):
    """Checks targets of one probe job, one target at a time per call.

    ``probe(target, report)`` checks ``target`` once and records into ``report``; a target that
    fails (refuses, times out at its own level, answers wrongly) is recorded with
    ``report.fail(reason)``, never raised. The caller enforces the job's timeout by cancelling
    the call. Calls for different targets may run at the same time. ``aclose()`` releases what
    the prober holds (connection pools); no ``probe`` call follows it.
    """

    async def probe(self, target: str, report: ProbeReport) -> None: ...

    async def aclose(self) -> None: ...


class FakeProber:
    """A prober whose answers a test sets per target, counting its calls.

    ``results[target]`` is ``(failure, values)``: failure ``""`` for success. A target listed in
    ``hang`` waits until the test sets ``release`` (or the caller's timeout cancels it); a target
    with no result set succeeds with no extra values.
    """

    def __init__(self, results: Mapping[str, tuple[str, Mapping[str, float]]] | None = None) -> None:
        self.results: dict[str, tuple[str, Mapping[str, float]]] = dict(results or {})
        self.hang: set[str] = set()
        self.release = asyncio.Event()
        self.calls: list[str] = []
        self.closed = False

    async def probe(self, target: str, report: ProbeReport) -> None:
        self.calls.append(target)
        if target in self.hang:
            await self.release.wait()
        failure, values = self.results.get(target, ("", {}))
        report.values.update(values)
        if failure:
            report.fail(failure)

    async def aclose(self) -> None:
        self.closed = True
