"""Group commit for the prediction log: a request is answered only after its row is
committed, and requests that arrive together share one transaction.

Callers hand their rows to `write()`, which returns once they are committed. One writer
thread takes everything queued whenever it is free, inserts it with one INSERT in one
transaction, and wakes the callers. There is no fixed linger: an idle service commits each
row at once, a busy one commits all the rows that arrived while the previous commit ran.
So an answered request's row survives a crash (kill -9 included), at about the cost of one
commit per burst of requests rather than one per request.

- A caller waits at most `wait_seconds`, then gets StorageError (the API answers 503): a
  stalled database never hangs a request. Rows the writer has not taken yet are withdrawn;
  rows already inside a transaction may still commit (the client was told to retry, and a
  retry is a new request id).
- A failed transaction fails every caller in it and tells the StorageMonitor, after which
  requests are refused at once until the database answers again.
- A row the database refuses (a constraint) is isolated by writing that batch caller by
  caller, so it fails only its own request.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from feedback.db import session_scope
from feedback.errors import StorageError
from feedback.settings import Settings
from feedback.storage_health import StorageMonitor
from feedback.store import SOURCES, STATUSES, PredictionRecord, log_predictions

log = logging.getLogger(__name__)

MAX_BATCH_ROWS = 1000  # per transaction: large enough to amortise a commit, small to retry
WAIT_SECONDS = 2.0  # how long a request waits for its commit before answering 503
STOP_SECONDS = 5.0


@dataclass(eq=False)
class _Ticket:
    """One caller's rows, and what happened to them."""

    records: list[PredictionRecord]
    done: threading.Event
    error: str | None = None
    taken: bool = False  # inside a transaction: can no longer be withdrawn


class PredictionLogWriter:
    """Thread-safe; one per process and database."""

    def __init__(self, settings: Settings, *, monitor: StorageMonitor | None = None,
                 max_batch_rows: int = MAX_BATCH_ROWS,
                 wait_seconds: float = WAIT_SECONDS) -> None:
        self._settings = settings
        self._monitor = monitor
        self._max_batch_rows = max_batch_rows
        self._wait_seconds = wait_seconds
        self._queue: deque[_Ticket] = deque()
        self._cond = threading.Condition()
        self._in_flight = 0  # rows inside the transaction being written
        self._closed = False
        self.lost = 0  # rows refused by the database (constraints), never written
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer",
                                        daemon=True)
        self._thread.start()
        atexit.register(self.close)

    @property
    def pending(self) -> int:
        """Rows handed in and not committed yet."""
        with self._cond:
            return sum(len(t.records) for t in self._queue) + self._in_flight

    def write(self, records: Sequence[PredictionRecord]) -> None:
        """Return once every row is committed; raise StorageError if they could not be (the
        database is down, refuses them, or does not commit within `wait_seconds`)."""
        for record in records:
            if record.source not in SOURCES or record.status not in STATUSES:
                raise ValueError(f"bad source/status {record.source!r}/{record.status!r}")
        if not records:
            return
        if self._monitor is not None and not self._monitor.up:
            raise self._monitor.refuse()
        ticket = _Ticket(list(records), threading.Event())
        with self._cond:
            if self._closed:
                raise StorageError("The prediction log is closed: the app is shutting down.")
            self._queue.append(ticket)
            self._cond.notify()
        if not ticket.done.wait(self._wait_seconds):
            with self._cond:
                withdrawn = not ticket.taken
                if withdrawn:
                    self._queue.remove(ticket)
            if withdrawn or not ticket.done.is_set():
                reason = (f"the database did not commit within {self._wait_seconds:g} s")
                if self._monitor is not None:
                    self._monitor.failed(reason)
                    raise self._monitor.refuse()
                raise StorageError(f"The prediction log cannot be written: {reason}.")
        if ticket.error is not None:
            raise StorageError(ticket.error)

    def close(self, timeout: float = 30.0) -> int:
        """Commit what is queued (waiting at most `timeout`), stop the thread, and return the
        number of rows that could not be written."""
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._closed:
                return self.lost
            self._closed = True
            self._cond.notify_all()
            while (self._queue or self._in_flight) and time.monotonic() < deadline:
                self._cond.wait(max(0.0, deadline - time.monotonic()))
            unwritten = [t for t in self._queue if not t.taken]
            self._queue.clear()
        for ticket in unwritten:
            self._release([ticket], "the app shut down before the row was written")
            self.lost += len(ticket.records)
        if unwritten:
            log.error("prediction log: %d rows could not be written before shutdown",
                      sum(len(t.records) for t in unwritten))
        self._thread.join(timeout=STOP_SECONDS)
        atexit.unregister(self.close)
        return self.lost

    def _take(self) -> list[_Ticket] | None:
        """Everything queued, up to a batch; waits while nothing is. None means stop."""
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None
            batch: list[_Ticket] = []
            rows = 0
            while self._queue and (not batch or rows + len(self._queue[0].records)
                                   <= self._max_batch_rows):
                ticket = self._queue.popleft()
                ticket.taken = True
                batch.append(ticket)
                rows += len(ticket.records)
            self._in_flight = rows
            return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            try:
                self._commit(batch)
            except Exception as exc:  # the writer thread must never die
                log.exception("prediction log writer failed")
                self._release(batch, f"The prediction log refused the rows "
                                     f"({type(exc).__name__}).")
            with self._cond:
                self._in_flight = 0
                self._cond.notify_all()

    def _commit(self, batch: list[_Ticket]) -> None:
        try:
            self._insert([r for t in batch for r in t.records])
        except StorageError as exc:
            if isinstance(exc.__cause__, IntegrityError) and len(batch) > 1:
                for ticket in batch:  # find the caller whose row is refused
                    self._commit([ticket])
                return
            reason = str(exc)
            if isinstance(exc.__cause__, IntegrityError):
                self.lost += len(batch[0].records)
                reason = (f"The prediction log refused the row of request "
                          f"{batch[0].records[0].request_id} (a duplicate request id or a "
                          "broken reference).")
                log.error("prediction log: %s", reason)
            elif self._monitor is not None:
                self._monitor.failed(reason)
            self._release(batch, reason)
            return
        if self._monitor is not None:
            self._monitor.succeeded()
        self._release(batch, None)

    def _insert(self, records: list[PredictionRecord]) -> None:
        with session_scope(self._settings) as session:
            log_predictions(session=session, records=records)

    @staticmethod
    def _release(tickets: list[_Ticket], error: str | None) -> None:
        for ticket in tickets:
            ticket.error = error
            ticket.done.set()
