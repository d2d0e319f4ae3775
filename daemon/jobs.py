"""Jobs of polling loops (scrape jobs, probe jobs) kept in step with the config across reloads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Literal, Protocol, TypeVar

_Config = TypeVar("_Config")
_Config_co = TypeVar("_Config_co", covariant=True)


class Job(Protocol[_Config_co]):
    """A running job: what it was started from."""

    @property
    def config(self) -> _Config_co: ...


_Job = TypeVar("_Job", bound=Job[object])


async def reconcile(
    jobs: dict[str, _Job],
    wanted: Mapping[str, _Config],
    start: Callable[[_Config, _Job | None], _Job],
    retire: Callable[[_Job, _Job | None], Awaitable[None]],
) -> None:
    """Make ``jobs`` match ``wanted`` (configs by job name), leaving jobs whose config is unchanged alone.

    ``start(config, old)`` starts a job (``old`` is the job it replaces, if any, whose series it
    may continue); ``retire(old, new)`` stops a job that went away (``new`` is ``None``) or was
    replaced. The replacement is in ``jobs`` before the old job is stopped, so that ``jobs`` never
    lacks a job the config has.
    """
    for name in [name for name in jobs if name not in wanted]:
        await retire(jobs.pop(name), None)
    for name, config in wanted.items():
        old = jobs.get(name)
        if old is not None and old.config == config:
            continue
        new = start(config, old)
        jobs[name] = new
        if old is not None:
            await retire(old, new)


class FailureChanges:
    """The last error of each loop, so that a log says when a target breaks, breaks differently or recovers.

    One line per change rather than one per failed attempt keeps a long outage from flooding the log.
    """

    def __init__(self) -> None:
        self._errors: dict[Hashable, str] = {}

    def record(self, loop: Hashable, error: str | None) -> Literal["failed", "recovered"] | None:
        """Note ``loop``'s latest outcome (``error`` is ``None`` on success) and say what changed, if anything."""
        previous = self._errors.get(loop, "")
        self._errors[loop] = error or ""
        if error is not None and error != previous:
            return "failed"
        if error is None and previous:
            return "recovered"
        return None

    def forget(self, loop: Hashable) -> None:
        """Drop a stopped loop."""
        self._errors.pop(loop, None)
