"""The upper half of the Monitoring tab: open alerts, drift, per-version comparison, and the
messages worth a human look. Returns display-ready rows (times as datetimes in UTC, for the
page to show in its reader's zone); figures live in monitoring.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from dashboards import queries
from dashboards.alerts import list_open_alerts
from dashboards.drift import DriftReport, measure_drift
from dashboards.figures import percent_text as _pct
from dashboards.figures import percentile_from_histogram
from feedback.alert_store import AlertRecord
from feedback.db import session_scope
from feedback.settings import Settings

FLAGGED_LIMIT = 20
VERSION_COLUMNS = ["version", "requests", "rejected / failed", "thumbs-up rate",
                   "latency p95 (ms)", "mean confidence"]
FLAGGED_COLUMNS = ["when", "version", "predicted", "confidence", "rating",
                   "correct category", "message (redacted)"]
TERM_COLUMNS = ["term", "messages", "vs training"]
NOT_JUDGED = "not judged"  # drift_status when there was too little traffic to say


@dataclass(frozen=True)
class HealthView:
    alerts: str
    open_alerts: int
    drift: str
    drift_status: str
    terms: list[list[object]]
    versions: list[list[object]]
    flagged: list[tuple[datetime, *tuple[object, ...]]]  # when, then the other columns


def utc_text(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def alerts_markdown(alerts: list[AlertRecord],
                    time_text: Callable[[datetime], str] = utc_text) -> str:
    """The open alerts; `time_text` writes their start (the page passes one that shows it in
    the reader's zone)."""
    if not alerts:
        return "**No open alerts.**"
    lines = [f"**{len(alerts)} open alert(s)**"]
    lines += [f"- **{a.rule}** since {time_text(a.opened_at)}: {a.message}  \n"
              f"  *Check first:* {a.advice}" for a in alerts]
    return "\n".join(lines)


def alert_badge_markdown(alerts: list[AlertRecord]) -> str:
    """One line naming the open alerts, for the badge above the tabs; empty when none."""
    if not alerts:
        return ""
    rules = ", ".join(sorted({a.rule for a in alerts}))
    return f"**{len(alerts)} open alert(s):** {rules} · details on the Monitoring tab"


def drift_markdown(report: DriftReport, last_n: int) -> str:
    if not report.judged:  # "Drift: ok" here would claim a check that never ran
        return "\n".join(["**Drift: not enough data**",
                          *(f"- {reason}" for reason in report.reasons)])
    head = (f"**Drift: {report.status}** — newest {report.n} answered requests of "
            f"version {report.version} (up to {last_n}) against its training profile")
    return "\n".join([head, *(f"- {reason}" for reason in report.reasons)])


def load_health(settings: Settings, window: queries.Window, *,
                with_alerts: bool = True) -> HealthView:
    """Everything above the charts, for the chosen window. `with_alerts=False` leaves the
    open alerts out (empty text, 0): for a caller that shows them with the charts."""
    report = measure_drift(settings, window, last_n=settings.drift_window_requests)
    alerts = list_open_alerts(settings) if with_alerts else []
    with session_scope(settings) as session:
        totals = queries.version_totals(session=session, window=window)
        ratings = {v: (up, down) for v, up, down in
                   queries.feedback_by_version(session=session, window=window)}
        flagged = queries.flagged_messages(session=session, window=window,
                                           low_confidence=settings.low_confidence,
                                           limit=FLAGGED_LIMIT)
    version_rows = []
    for v in sorted(totals, reverse=True):
        t = totals[v]
        requests, answered = sum(t.status_counts.values()), t.status_counts.get("ok", 0)
        rejected, failed = t.status_counts.get("rejected", 0), t.status_counts.get("error", 0)
        up, down = ratings.get(v, (0, 0))
        version_rows.append([
            v, requests, f"{_pct(rejected, requests)} / {_pct(failed, requests)}",
            f"{_pct(up, up + down)} of {up + down}" if up + down else "no ratings",
            round(percentile_from_histogram(t.latency_bins, 95), 2) if t.latency_bins else "–",
            round(t.sum_confidence / answered, 3) if answered else "–"])
    return HealthView(
        alerts=alerts_markdown(alerts) if with_alerts else "",
        open_alerts=len(alerts),
        drift=drift_markdown(report, settings.drift_window_requests),
        drift_status=report.status if report.judged else NOT_JUDGED,
        terms=[[term, n, note] for term, n, note in report.top_terms],
        versions=version_rows,
        flagged=[(m.created_at, m.model_version, m.label,
                  round(m.confidence, 3) if m.confidence is not None else "–",
                  {"up": "thumbs up", "down": "thumbs down"}.get(m.verdict or "", ""),
                  m.correct_label or "",
                  m.text or "") for m in flagged],
    )
