"""Where targets come from: static lists in the config, and file_sd files that may change at any time."""

from __future__ import annotations

import glob
import os
from collections.abc import Awaitable, Callable

import structlog

from daemon.clock import Clock
from daemon.scrape.target import FileSDError, TargetGroup, parse_file_sd

# How often files are looked at for changes. Prometheus is told by inotify; a stat() every few
# seconds is as prompt for people editing files and costs nothing.
WATCH_PERIOD = 5.0


class FileDiscovery:
    """Watches the files matched by a job's file_sd globs and reports their target groups.

    A file that becomes invalid keeps contributing its last good groups (and is logged); a file
    that is deleted stops contributing.
    """

    def __init__(self, patterns: list[str], refresh_interval: float, clock: Clock, job: str) -> None:
        self._patterns = patterns
        self._period = min(refresh_interval, WATCH_PERIOD) if refresh_interval > 0 else WATCH_PERIOD
        self._clock = clock
        self._log = structlog.get_logger().bind(component="file_sd", job=job)
        self._seen: dict[str, tuple[int, int]] = {}
        self._groups: dict[str, list[TargetGroup]] = {}

    def groups(self) -> list[TargetGroup]:
        return [group for path in sorted(self._groups) for group in self._groups[path]]

    def refresh(self) -> bool:
        """Look at the files once; True when the groups changed."""
        paths = sorted({path for pattern in self._patterns for path in glob.glob(pattern)})
        changed = False
        for gone in set(self._seen) - set(paths):
            del self._seen[gone]
            changed |= self._groups.pop(gone, None) is not None
        for path in paths:
            try:
                st = os.stat(path)
            except OSError:
                continue
            signature = (st.st_mtime_ns, st.st_size)
            if self._seen.get(path) == signature:
                continue
            self._seen[path] = signature
            try:
                groups = parse_file_sd(path)
            except FileSDError as exc:
                self._log.error("file_sd file invalid, keeping its last good targets", error=str(exc))
                continue
            if self._groups.get(path) != groups:
                self._groups[path] = groups
                changed = True
        return changed

    async def watch(self, on_change: Callable[[], Awaitable[None]]) -> None:
        """Run until cancelled, awaiting ``on_change`` after each change."""
        while True:
            await self._clock.sleep(self._period)
            try:
                changed = self.refresh()
            except Exception:  # a watcher that dies would freeze the job's targets without a word
                self._log.exception("file_sd refresh failed")
                continue
            if changed:
                await on_change()
