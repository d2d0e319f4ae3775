"""``heartbeat``: alertd's own dead-man's switch (an external URL pinged while the pipeline is
healthy) and the always-firing ``Watchdog`` alert."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from daemon.config.duration import Duration
from daemon.config.section import Section


class HeartbeatConfig(Section):
    """``heartbeat``: ``url`` is requested with ``method`` every ``interval`` while rules are
    evaluated and the dispatcher runs; ``watchdog`` adds the always-firing ``Watchdog`` alert
    (refreshed under the same condition), to route to a dead-man's-switch receiver."""

    url: str | None = None
    interval: Duration = 60.0
    method: Literal["GET", "POST", "HEAD"] = "GET"
    timeout: Duration = 10.0
    watchdog: bool = False

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return url

    @field_validator("interval")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be longer than 0s")
        return value
