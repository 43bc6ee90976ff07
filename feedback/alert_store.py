"""Alert episodes: open, update, resolve, list. One open alert per rule at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from feedback.db import is_unique_violation
from feedback.tables import Alert, utc_now

OPEN, RESOLVED = "open", "resolved"


@dataclass(frozen=True)
class AlertRecord:
    id: int
    rule: str
    state: str
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    value: float | None
    message: str
    advice: str


def _record(row: Alert) -> AlertRecord:
    return AlertRecord(row.id, row.rule, row.state, row.opened_at, row.updated_at,
                       row.resolved_at, row.value, row.message, row.advice)


def open_alert_for(*, session: Session, rule: str) -> AlertRecord | None:
    row = session.scalar(select(Alert).where(Alert.rule == rule, Alert.state == OPEN)
                         .order_by(Alert.id.desc()).limit(1))
    return _record(row) if row else None


def open_alert(*, session: Session, rule: str, value: float | None, message: str,
               advice: str) -> AlertRecord | None:
    """The new open alert, or None when another process opened one for the rule first."""
    now = utc_now()
    row = Alert(rule=rule, state=OPEN, opened_at=now, updated_at=now, resolved_at=None,
                value=value, message=message, advice=advice)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:
        if is_unique_violation(exc):
            return None
        raise
    return _record(row)


def touch_alert(*, session: Session, alert_id: int, value: float | None, message: str) -> None:
    """Refresh an open alert's latest value and message (no new episode, no notification)."""
    row = session.get(Alert, alert_id)
    if row is not None:
        row.value, row.message, row.updated_at = value, message, utc_now()


def resolve_alert(*, session: Session, alert_id: int, message: str) -> AlertRecord | None:
    row = session.get(Alert, alert_id)
    if row is None or row.state != OPEN:
        return None
    now = utc_now()
    row.state, row.resolved_at, row.updated_at, row.message = RESOLVED, now, now, message
    session.flush()
    return _record(row)


def record_episode(*, session: Session, rule: str, opened_at: datetime, resolved_at: datetime,
                   value: float | None, message: str, advice: str) -> AlertRecord:
    """Add an alert that already opened and resolved (an episode seen while the database
    itself was away, written once it is back)."""
    row = Alert(rule=rule, state=RESOLVED, opened_at=opened_at, updated_at=resolved_at,
                resolved_at=resolved_at, value=value, message=message, advice=advice)
    session.add(row)
    session.flush()
    return _record(row)


def list_alerts(*, session: Session, limit: int = 50, only_open: bool = False) -> list[AlertRecord]:
    """Newest first."""
    query = select(Alert).order_by(Alert.id.desc()).limit(limit)
    if only_open:
        query = query.where(Alert.state == OPEN)
    return [_record(row) for row in session.scalars(query)]
