"""One owner for the app's background work.

Every periodic job (model polling, key and sign-in refresh, the storage probe, rollups and
alerts, auto-promote, retention, Gradio session expiry) is a `Loop` registered here, started
and stopped with the app. A loop's exceptions, whatever they are, are logged in one line and
counted, and the loop carries on after a backoff; its last success is reported in readiness
and /metrics. A loop with a lease runs in one process of the deployment at a time: each
round it claims or renews the lease (feedback.leases) and skips the round if another
process holds it, taking over once that holder stops renewing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from feedback.db import session_scope
from feedback.errors import StorageError
from feedback.leases import claim_lease, release_lease
from feedback.settings import Settings
from feedback.tables import utc_now

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 60.0
# A lease outlives a few missed renewals, and is never shorter than this.
MIN_LEASE_S = 30.0
LEASE_ROUNDS = 3


def process_holder() -> str:
    """This process's name in lease rows: readable, and unique across restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class Loop:
    name: str
    interval_s: float
    run: Callable[[], object]
    lease: str | None = None  # run in one process of the deployment at a time
    runs: int = 0
    failures: int = 0
    failing: int = 0  # failures in a row, for the backoff
    last_success: datetime | None = None
    last_error: str | None = None
    leader: bool = field(default=False)  # holds its lease (always True without one)

    @property
    def lease_ttl(self) -> timedelta:
        return timedelta(seconds=max(MIN_LEASE_S, LEASE_ROUNDS * self.interval_s))


class BackgroundWork:
    """Starts, supervises and stops the registered loops; thread-safe to read."""

    def __init__(self, settings: Settings, holder: str | None = None) -> None:
        self._settings = settings
        self.holder = holder or process_holder()
        self._loops: list[Loop] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def add(self, name: str, interval_s: float, run: Callable[[], object], *,
            lease: str | None = None) -> Loop:
        loop = Loop(name, interval_s, run, lease, leader=lease is None)
        self._loops.append(loop)
        return loop

    @property
    def loops(self) -> list[Loop]:
        return list(self._loops)

    def start(self) -> None:
        for loop in self._loops:
            thread = threading.Thread(target=self._supervise, args=(loop,), daemon=True,
                                      name=f"loop-{loop.name}")
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every loop (a round in progress finishes) and give up held leases."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for loop in self._loops:
            if loop.lease and loop.leader:
                try:
                    with session_scope(self._settings) as session:
                        release_lease(session=session, name=loop.lease, holder=self.holder)
                except StorageError as exc:
                    log.warning("could not release lease %s: %s", loop.lease, exc)

    def _supervise(self, loop: Loop) -> None:
        wait = 0.0
        while not self._stop.wait(wait):
            try:
                if loop.lease is not None:
                    loop.leader = self._claim(loop)
                if loop.leader:
                    loop.run()
                    loop.runs += 1
                    loop.last_success = utc_now()
                loop.last_error, loop.failing = None, 0
                wait = loop.interval_s
            except Exception as exc:  # a loop never dies; it says why and tries again
                loop.failures += 1
                loop.failing += 1
                loop.last_error = f"{type(exc).__name__}: {exc}"[:300]
                wait = min(MAX_BACKOFF_S, loop.interval_s * 2 ** min(loop.failing, 6))
                log.error("background loop %s failed (%d so far), next try in %.0f s: %s",
                          loop.name, loop.failures, wait, loop.last_error)

    def _claim(self, loop: Loop) -> bool:
        assert loop.lease is not None
        try:
            with session_scope(self._settings) as session:
                return claim_lease(session=session, name=loop.lease, holder=self.holder,
                                   ttl=loop.lease_ttl)
        except StorageError:
            return False
