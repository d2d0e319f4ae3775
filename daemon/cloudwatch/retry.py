"""How the CloudWatch source backs off: a small immutable policy, bounded by each poll's deadline."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter (AWS' recommendation for throttled clients).

    The n-th retry (0-based) waits a random time in ``[0, min(cap, base * 2**n)]``. There is no
    attempt limit: the poll's deadline decides when to give up, so a poll never runs into the
    next one.
    """

    base: float = 0.5
    cap: float = 8.0

    def delay(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry``."""
        return rng.uniform(0.0, min(self.cap, self.base * (2**retry)))
