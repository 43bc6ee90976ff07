"""Rate limits: a token bucket per caller (a REST API key id, a web client's address or a
signed-in person), safe to share between threads.

A caller may send `burst` requests at once; tokens then come back at `per_minute` / 60 per
second. A refused request learns how long to wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MAX_KEYS = 10_000


class TokenBucketLimiter:
    """`acquire(key_id)` takes one token; returns 0.0 if allowed, else seconds to wait."""

    def __init__(self, per_minute: int, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = max(per_minute, 0) / 60.0
        self.burst = float(max(burst, 1))  # a bucket smaller than one request admits nobody
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (tokens, time of the last update). Web clients' addresses are not bounded
        # in number, so full buckets (idle long enough to have refilled) are dropped when
        # the table grows past MAX_KEYS: forgetting them changes nothing.
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
            if key_id not in self._buckets and len(self._buckets) >= MAX_KEYS:
                self._prune(now)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / self.per_second

    def _prune(self, now: float) -> None:
        refill_seconds = self.burst / self.per_second
        self._buckets = {k: (tokens, last) for k, (tokens, last) in self._buckets.items()
                         if now - last < refill_seconds}
