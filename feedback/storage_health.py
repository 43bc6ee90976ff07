"""Whether this process can reach the database, kept in memory.

A database cannot record its own outage, so the process does: writes and a periodic probe
report here. While the database is down, requests are refused at once (503 with
Retry-After) instead of each waiting for a timeout, and counted; when a probe or a write
succeeds again, the outage (when, how long, how many requests were refused) is handed to
`on_recovered`, which the app uses to record it as an alert and notify.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from feedback.db import session_scope
from feedback.errors import StorageError
from feedback.settings import Settings
from feedback.tables import utc_now

log = logging.getLogger(__name__)
# What a client refused during an outage is told to wait before trying again (seconds).
RETRY_AFTER_S = 2


@dataclass(frozen=True)
class Outage:
    started_at: datetime
    ended_at: datetime
    refused: int  # requests answered 503 while it lasted
    reason: str

    @property
    def seconds(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()


class StorageUnavailableError(StorageError):
    """The database is down as far as this process knows: refused without trying."""

    retry_after = RETRY_AFTER_S


class StorageMonitor:
    """Thread-safe; one per process."""

    def __init__(self, settings: Settings, *,
                 on_recovered: Callable[[Outage], None] | None = None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self._settings = settings
        self._on_recovered = on_recovered
        self._clock = clock
        self._lock = threading.Lock()
        self._down_since: datetime | None = None
        self._reason = ""
        self._refused = 0
        self.outages = 0  # since the process started

    @property
    def up(self) -> bool:
        return self._down_since is None

    def failed(self, reason: str) -> None:
        """A write or the probe could not reach the database."""
        with self._lock:
            if self._down_since is None:
                self._down_since, self._reason, self._refused = self._clock(), reason, 0
                self.outages += 1
                log.error("storage down: %s", reason)

    def refuse(self) -> StorageUnavailableError:
        """Count one request refused because storage is down; the error to raise."""
        with self._lock:
            self._refused += 1
        return StorageUnavailableError(self.refuse_reason())

    def refuse_reason(self) -> str:
        since = self._down_since
        when = f" since {since:%H:%M:%S} UTC" if since else ""
        return (f"The database is unavailable{when} ({self._reason}); try again in "
                f"{RETRY_AFTER_S} s.")

    def succeeded(self) -> None:
        """A write or the probe worked: if storage was down, the outage is over."""
        if self._down_since is None:
            return
        with self._lock:
            if self._down_since is None:
                return
            outage = Outage(self._down_since, self._clock(), self._refused, self._reason)
            self._down_since = None
        log.warning("storage back after %.1f s; %d requests were refused", outage.seconds,
                    outage.refused)
        if self._on_recovered is not None:
            self._on_recovered(outage)

    def probe(self) -> None:
        """One cheap query, bounded by the engine's timeouts; reports the outcome."""
        try:
            with session_scope(self._settings) as session:
                session.execute(text("SELECT 1"))
        except StorageError as exc:
            self.failed(str(exc))
            return
        self.succeeded()

    def describe(self) -> dict[str, object]:
        if self._down_since is None:
            return {"status": "ok"}
        return {"status": "down", "since": self._down_since.isoformat(),
                "reason": self._reason, "refused": self._refused}
