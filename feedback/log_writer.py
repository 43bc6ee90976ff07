"""A background writer for the prediction log: rows are queued and inserted in batches.

Writing one row per request in its own transaction costs more than the model itself on a
small machine; a writer thread that takes whatever has queued up and inserts it with one
INSERT keeps that cost off the request path. Nothing is dropped silently:

- the queue is bounded (MAX_QUEUE rows): when the database falls that far behind, `submit`
  waits, then raises StorageError, so callers answer "storage unavailable" instead of
  piling up memory;
- a batch that fails is retried (after RETRY_SECONDS) until it is written; meanwhile
  `submit` raises StorageError so new requests learn that the log is down;
- `submit(record, wait=True)` returns only once the row is committed and raises
  StorageError if it could not be: the synchronous behaviour, for callers that need it;
- `flush()` waits until everything submitted so far is written; `close()` flushes and stops,
  and is called at app shutdown (and at interpreter exit), reporting any row it could not
  write.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import queue
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError

from feedback.db import session_scope
from feedback.errors import StorageError
from feedback.settings import Settings
from feedback.store import SOURCES, STATUSES, PredictionRecord, log_predictions

log = logging.getLogger(__name__)

MAX_QUEUE = 10_000  # rows; about 10 MB at the longest messages
MAX_BATCH = 500  # rows per INSERT: large batches amortise the commit
# How long the writer lets rows gather before an INSERT (unless someone waits or flushes):
# one transaction per tenth of a second instead of one per request, so the writer rarely
# competes with request threads for the interpreter.
LINGER_SECONDS = 0.1
RETRY_SECONDS = 1.0
SUBMIT_WAIT_SECONDS = 5.0  # how long a full queue may hold up a request (DB_BUSY_TIMEOUT-like)


_FLUSH = object()


def _transient(exc: Exception) -> bool:
    """A database that is away or locked (retry), not a row it refuses (drop that row)."""
    return isinstance(exc, StorageError) and not isinstance(exc.__cause__, IntegrityError)


@dataclass
class _Item:
    record: PredictionRecord
    done: threading.Event | None = None  # set when written (or failed) for a waiting caller
    error: str | None = field(default=None)


class PredictionLogWriter:
    """Thread-safe; one per process and database."""

    def __init__(self, settings: Settings, *, max_queue: int = MAX_QUEUE,
                 max_batch: int = MAX_BATCH, retry_seconds: float = RETRY_SECONDS,
                 linger_seconds: float = LINGER_SECONDS) -> None:
        self._settings = settings
        # Items, or markers: None stops the thread, _FLUSH ends the current linger.
        self._queue: queue.Queue[_Item | object | None] = queue.Queue(maxsize=max_queue)
        self._max_batch = max_batch
        self._linger = linger_seconds
        self._retry_seconds = retry_seconds
        self._pending = 0  # submitted and not yet written (or given up)
        self._cond = threading.Condition()
        self._closed = False
        self._error: str | None = None  # set while the database refuses writes
        self.lost = 0  # rows given up: constraint violations, or unwritten at close
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer",
                                        daemon=True)
        self._thread.start()
        atexit.register(self.close)

    @property
    def pending(self) -> int:
        return self._pending

    def submit(self, record: PredictionRecord, *, wait: bool = False) -> None:
        """Queue one row; with `wait`, return once it is committed.

        Raises StorageError while the database refuses writes, when the queue stays full,
        after close(), or (with `wait`) when this row could not be written.
        """
        if record.source not in SOURCES or record.status not in STATUSES:
            raise ValueError(f"bad source/status {record.source!r}/{record.status!r}")
        if self._closed:
            raise StorageError("The prediction log is closed: the app is shutting down.")
        if self._error is not None:
            raise StorageError(f"The prediction log cannot be written: {self._error}")
        item = _Item(record, threading.Event() if wait else None)
        with self._cond:
            self._pending += 1
        try:
            self._queue.put(item, timeout=SUBMIT_WAIT_SECONDS)
        except queue.Full:
            self._finish(1)
            raise StorageError("The prediction log is falling behind (the database is too "
                               "slow); try again in a moment.") from None
        if item.done is not None:
            item.done.wait()
            if item.error is not None:
                raise StorageError(item.error)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every row submitted so far is written; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._pending:
            with contextlib.suppress(queue.Full):  # a full queue makes a full batch anyway
                self._queue.put_nowait(_FLUSH)
        with self._cond:
            while self._pending:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout: float = 30.0) -> int:
        """Flush, stop the thread and return the number of rows that could not be written."""
        if self._closed:
            return self.lost
        self._closed = True
        if not self.flush(timeout):
            log.error("prediction log: %d rows could not be written before shutdown: %s",
                      self._pending, self._error)
            self.lost += self._pending
        self._stopping.set()
        self._queue.put(None)
        self._thread.join(timeout=5)
        atexit.unregister(self.close)
        return self.lost

    def _finish(self, n: int) -> None:
        with self._cond:
            self._pending -= n
            self._cond.notify_all()

    def _take_batch(self) -> list[_Item] | None:
        """Wait for a row, then gather more for up to the linger time (none when a caller
        waits for its row or flushes). None means stop."""
        first = self._queue.get()
        while first is _FLUSH:
            first = self._queue.get()
        if first is None:
            return None
        assert isinstance(first, _Item)
        batch = [first]
        deadline = time.monotonic() + self._linger
        urgent = first.done is not None
        while len(batch) < self._max_batch:
            remaining = 0.0 if urgent else deadline - time.monotonic()
            try:
                item = (self._queue.get(timeout=remaining) if remaining > 0
                        else self._queue.get_nowait())
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # stop after this batch
                break
            if item is _FLUSH:
                urgent = True
                continue
            assert isinstance(item, _Item)
            batch.append(item)
            urgent = urgent or item.done is not None
        return batch

    def _write(self, items: list[_Item]) -> None:
        with session_scope(self._settings) as session:
            log_predictions(session=session, records=[i.record for i in items])

    def _run(self) -> None:
        while (batch := self._take_batch()) is not None:
            while batch:
                if self._stopping.is_set():  # close() gave up waiting for the database
                    self._release(batch, "the app shut down before the row was written")
                    break
                try:
                    self._write(batch)
                except Exception as exc:  # the writer thread must never die
                    batch = self._after_failure(batch, exc)
                    continue
                self._error = None
                self._release(batch, None)
                batch = []

    def _after_failure(self, batch: list[_Item], exc: Exception) -> list[_Item]:
        """Tell waiting callers, drop rows the database refuses, and keep the rest to retry."""
        waiting = [i for i in batch if i.done is not None]
        self._release(waiting, str(exc) if isinstance(exc, StorageError) else
                      f"The prediction log refused the row ({type(exc).__name__}).")
        batch = [i for i in batch if i.done is None]
        if not _transient(exc):
            return self._write_one_by_one(batch)
        if batch:
            if self._error is None:
                log.error("prediction log: cannot write %d rows, retrying: %s", len(batch), exc)
            self._error = str(exc)
            self._stopping.wait(self._retry_seconds)
        return batch

    def _write_one_by_one(self, batch: list[_Item]) -> list[_Item]:
        """A row broke the batch (a constraint, a value the driver refuses): write the good
        rows, give up the refused ones."""
        retry = []
        for item in batch:
            try:
                self._write([item])
            except Exception as exc:  # any failure: retried or dropped below, never raised
                if _transient(exc):
                    retry.append(item)  # the database itself failed: try again later
                    continue
                log.error("prediction log: row of request %s refused, not written: %s",
                          item.record.request_id, exc)
                self.lost += 1
            self._finish(1)
        return retry

    def _release(self, items: list[_Item], error: str | None) -> None:
        for item in items:
            item.error = error
            if item.done is not None:
                item.done.set()
        if items:
            self._finish(len(items))
