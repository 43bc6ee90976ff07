"""Leases: at most one holder at a time for a named job, across every process and replica.

A holder claims or renews a lease with one conditional UPDATE (the row is free, expired, or
already theirs); the database serialises the racing UPDATEs, so exactly one wins. The first
claim of a name inserts its row; of two inserts racing, the loser gets ConflictError from
session_scope, which callers read as "not acquired". Functions take the session as a
keyword argument.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from feedback.db import rows_matched, session_scope
from feedback.errors import StorageError
from feedback.settings import Settings
from feedback.tables import Lease, utc_now

log = logging.getLogger(__name__)


def claim_lease(*, session: Session, name: str, holder: str, ttl: timedelta,
                now: datetime | None = None) -> bool:
    """Take or renew `name` for `holder` until now + ttl; False while someone else holds it."""
    now = now or utc_now()
    taken = session.execute(
        update(Lease).where(Lease.name == name,
                            or_(Lease.holder == holder, Lease.expires_at <= now))
        .values(holder=holder, acquired_at=now, expires_at=now + ttl)
        .execution_options(synchronize_session=False))
    if rows_matched(taken):
        return True
    if session.get(Lease, name) is not None:
        return False
    session.add(Lease(name=name, holder=holder, acquired_at=now, expires_at=now + ttl))
    session.flush()  # a racing insert fails here (or at commit) as ConflictError
    return True


def rename_holder(*, session: Session, name: str, holder: str, new_holder: str) -> bool:
    """Hand a held lease to another holder name (a queued job's id, say)."""
    moved = session.execute(update(Lease).where(Lease.name == name, Lease.holder == holder)
                            .values(holder=new_holder)
                            .execution_options(synchronize_session=False))
    return bool(rows_matched(moved))


def release_lease(*, session: Session, name: str, holder: str) -> None:
    """Give the lease up at once (if still held by `holder`), so the next claim need not
    wait for it to expire."""
    session.execute(update(Lease).where(Lease.name == name, Lease.holder == holder)
                    .values(expires_at=utc_now())
                    .execution_options(synchronize_session=False))


@contextlib.contextmanager
def kept(settings: Settings, *, name: str, holder: str, ttl: timedelta) -> Iterator[None]:
    """Keep a lease already claimed by `holder` while the block runs (renewed by a thread
    three times per ttl), and release it at the end: a crashed holder stops renewing, and
    another process may take over once ttl has passed."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(ttl.total_seconds() / 3):
            try:
                with session_scope(settings) as session:
                    claim_lease(session=session, name=name, holder=holder, ttl=ttl)
            except StorageError as exc:  # the next renewal may get through
                log.error("lease %s not renewed: %s", name, exc)

    thread = threading.Thread(target=renew, name=f"lease-{name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        with contextlib.suppress(StorageError), session_scope(settings) as session:
            release_lease(session=session, name=name, holder=holder)
