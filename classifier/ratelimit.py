"""Per-key rate limit: a token bucket for each API key id, safe to share between threads.

A key may send RATE_LIMIT_BURST requests at once; tokens then come back at
RATE_LIMIT_PER_MINUTE / 60 per second. A refused request learns how long to wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucketLimiter:
    """`acquire(key_id)` takes one token; returns 0.0 if allowed, else seconds to wait."""

    def __init__(self, per_minute: int, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = max(per_minute, 0) / 60.0
        self.burst = float(max(burst, 1))  # a bucket smaller than one request admits nobody
        self._clock = clock
        self._lock = threading.Lock()
        # key id -> (tokens, time of the last update); key ids are bounded by the configured
        # keys, since unknown keys are refused before the limiter is asked.
        self._buckets: dict[str, tuple[float, float]] = {}

    @property
    def enabled(self) -> bool:
        return self.per_second > 0

    def acquire(self, key_id: str) -> float:
        if not self.enabled:
            return 0.0
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(key_id, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.per_second)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / self.per_second
