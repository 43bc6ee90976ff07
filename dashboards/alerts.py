"""Alert rules, evaluated on a schedule in the app and by `python -m dashboards check`.

Each rule looks at recent data and says firing / not firing / cannot tell (too little data).
An alert opens when its rule starts firing and resolves when it stops; while open it is only
refreshed, so nothing repeats. Openings and resolutions are posted to ALERT_WEBHOOK_URL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from dashboards import queries, rollups
from dashboards.drift import DRIFT, measure_drift
from dashboards.figures import percentile_from_histogram
from dashboards.notify import post_in_background
from feedback import alert_store
from feedback.db import session_scope
from feedback.settings import Settings
from feedback.storage_health import Outage
from feedback.tables import utc_now

log = logging.getLogger(__name__)
FEEDBACK_LOOKBACK = timedelta(hours=24)
TRAFFIC_BASELINE = timedelta(days=7)
TRAFFIC_RECENT = timedelta(hours=1)


@dataclass(frozen=True)
class RuleResult:
    rule: str
    firing: bool | None  # None: not enough data to tell; leaves the alert as it is
    value: float | None
    message: str
    advice: str


@dataclass(frozen=True)
class AlertChange:
    rule: str
    change: str  # opened | resolved
    alert: alert_store.AlertRecord


Probe = Callable[[], tuple[bool, str]]


def _window(minutes: float, now: datetime) -> queries.Window:
    return queries.Window(start=now - timedelta(minutes=minutes), end=now, bucket_seconds=60)


def _status_counts(settings: Settings, window: queries.Window) -> dict[str, int]:
    with session_scope(settings) as session:
        rows = queries.requests_by_status(session=session, window=window)
    totals: dict[str, int] = {}
    for _, status, n in rows:
        totals[status] = totals.get(status, 0) + n
    return totals


def _rate_rule(settings: Settings, now: datetime, rule: str, status: str, limit: float,
               noun: str, advice: str) -> RuleResult:
    totals = _status_counts(settings, _window(settings.alert_window_minutes, now))
    n = sum(totals.values())
    if n < settings.alert_min_requests:
        return RuleResult(rule, None, None, f"{n} requests in the last "
                          f"{settings.alert_window_minutes} min: too few to judge", advice)
    rate = totals.get(status, 0) / n
    return RuleResult(rule, rate >= limit, rate,
                      f"{rate:.0%} of {n} requests {noun} in the last "
                      f"{settings.alert_window_minutes} min (limit {limit:.0%})", advice)


def error_rate(settings: Settings, now: datetime) -> RuleResult:
    return _rate_rule(settings, now, "error_rate", "error", settings.alert_error_rate, "failed",
                      "Check the app log for 'prediction failed' and the Models tab for a "
                      "version that fails to load; roll back if a new version just went live.")


def rejection_rate(settings: Settings, now: datetime) -> RuleResult:
    return _rate_rule(settings, now, "rejection_rate", "rejected",
                      settings.alert_rejection_rate, "were rejected",
                      "Look at the reasons of recent rejected requests (CSV export): a client "
                      "sending empty or binary bodies, or messages over MAX_TEXT_CHARS.")


def latency_p95(settings: Settings, now: datetime) -> RuleResult:
    advice = ("Check the machine's CPU and the database (a locked SQLite file, a slow "
              "PostgreSQL); compare latency per version in the Models tab.")
    window = _window(settings.alert_window_minutes, now)
    with session_scope(settings) as session:
        rows = queries.latency_histogram(session=session, window=window)
    counts: dict[int, int] = {}
    for _, idx, n in rows:
        counts[idx] = counts.get(idx, 0) + n
    n = sum(counts.values())
    if n < settings.alert_min_requests:
        return RuleResult("latency_p95", None, None, f"{n} answered requests: too few", advice)
    p95 = percentile_from_histogram(counts, 95)
    return RuleResult("latency_p95", p95 > settings.alert_p95_ms, p95,
                      f"p95 latency {p95:.0f} ms over {n} requests (limit "
                      f"{settings.alert_p95_ms:.0f} ms)", advice)


def negative_feedback(settings: Settings, now: datetime) -> RuleResult:
    advice = ("Read the recent thumbs-down messages on the Monitoring tab: a new kind of "
              "request, or a recently promoted version that does worse (roll back).")
    window = queries.Window(start=now - FEEDBACK_LOOKBACK, end=now, bucket_seconds=3600)
    with session_scope(settings) as session:
        rows = queries.feedback_by_version(session=session, window=window)
    up, down = sum(r[1] for r in rows), sum(r[2] for r in rows)
    if up + down < settings.alert_min_ratings:
        return RuleResult("negative_feedback", None, None,
                          f"{up + down} ratings in the last day: too few", advice)
    rate = down / (up + down)
    return RuleResult("negative_feedback", rate >= settings.alert_negative_feedback_rate, rate,
                      f"{rate:.0%} of {up + down} ratings in the last day are thumbs-down "
                      f"(limit {settings.alert_negative_feedback_rate:.0%})", advice)


def drift(settings: Settings, now: datetime) -> RuleResult:
    report = measure_drift(settings, queries.Window(now - timedelta(hours=24), now, 3600),
                           last_n=settings.drift_window_requests)
    advice = ("Open the drift panel: the reasons and the surging terms say what changed. New "
              "topics need labelled examples and a retrain; a broken client needs fixing.")
    if not report.judged:
        return RuleResult("drift", None, None, "; ".join(report.reasons), advice)
    return RuleResult("drift", report.status == DRIFT, None,
                      f"drift status {report.status} over the newest {report.n} requests: "
                      + "; ".join(report.reasons), advice)


def traffic_drop(settings: Settings, now: datetime) -> RuleResult:
    advice = ("Check that clients can reach the app (health endpoint, DNS, API keys) and "
              "that the UI loads; a quiet holiday also looks like this.")
    recent = sum(_status_counts(settings, queries.Window(now - TRAFFIC_RECENT, now,
                                                         3600)).values())
    baseline_total = sum(_status_counts(settings, queries.Window(
        now - TRAFFIC_BASELINE, now - TRAFFIC_RECENT, 3600)).values())
    hours = (TRAFFIC_BASELINE - TRAFFIC_RECENT) / timedelta(hours=1)
    baseline = baseline_total / hours
    if baseline < settings.alert_min_requests:
        return RuleResult("traffic_drop", None, None,
                          f"baseline {baseline:.1f} requests/hour: too little to judge", advice)
    share = recent / baseline
    return RuleResult("traffic_drop", share < settings.alert_traffic_drop, share,
                      f"{recent} requests in the last hour, {share:.0%} of the 7-day hourly "
                      f"mean {baseline:.0f} (limit {settings.alert_traffic_drop:.0%})", advice)


def chart_thresholds(settings: Settings) -> dict[str, list[tuple[str, float]]]:
    """The alert limits as lines for the Monitoring chart that shows the same measure, keyed
    by figure name (shares in percent, as those charts show them)."""
    up_floor = 1 - settings.alert_negative_feedback_rate
    return {
        "failures": [(f"error alert {settings.alert_error_rate:.0%}",
                      100 * settings.alert_error_rate),
                     (f"rejection alert {settings.alert_rejection_rate:.0%}",
                      100 * settings.alert_rejection_rate)],
        "latency": [(f"p95 alert {settings.alert_p95_ms:.0f} ms", settings.alert_p95_ms)],
        "thumbs": [(f"alert below {up_floor:.0%} up", 100 * up_floor)],
    }


RULES = (error_rate, rejection_rate, latency_p95, negative_feedback, drift, traffic_drop)


def service_down(probe: Probe) -> RuleResult:
    ok, detail = probe()
    return RuleResult("service_down", not ok, None, detail,
                      "Open the app; check its log for start-up or model loading errors and "
                      "the database connection (DATABASE_URL, disk space).")


def evaluate_alerts(settings: Settings, *, probe: Probe | None = None,
                    now: datetime | None = None,
                    notify: Callable[[str, dict[str, object]], object] = post_in_background,
                    ) -> list[AlertChange]:
    """Run every rule, open and resolve alerts, and notify; returns what changed."""
    now = now or utc_now()
    results = [rule(settings, now) for rule in RULES]
    if probe is not None:
        results.append(service_down(probe))
    changes = []
    with session_scope(settings) as session:
        for result in results:
            current = alert_store.open_alert_for(session=session, rule=result.rule)
            if result.firing and current is None:
                record = alert_store.open_alert(session=session, rule=result.rule,
                                                value=result.value, message=result.message,
                                                advice=result.advice)
                if record:  # else another process opened it (and notifies)
                    changes.append(AlertChange(result.rule, "opened", record))
            elif result.firing and current is not None:
                alert_store.touch_alert(session=session, alert_id=current.id,
                                        value=result.value, message=result.message)
            elif result.firing is False and current is not None:
                record = alert_store.resolve_alert(session=session, alert_id=current.id,
                                                   message=result.message)
                if record:
                    changes.append(AlertChange(result.rule, "resolved", record))
    if settings.alert_webhook_url:
        for change in changes:
            notify(settings.alert_webhook_url, {
                "rule": change.rule, "change": change.change, "state": change.alert.state,
                "message": change.alert.message, "advice": change.alert.advice,
                "value": change.alert.value, "opened_at": change.alert.opened_at.isoformat(),
                "resolved_at": change.alert.resolved_at.isoformat()
                if change.alert.resolved_at else None,
                "source": "support-triage"})
    return changes


def list_open_alerts(settings: Settings) -> list[alert_store.AlertRecord]:
    with session_scope(settings) as session:
        return alert_store.list_alerts(session=session, only_open=True)


def check_alerts(settings: Settings, probe: Probe) -> None:
    """One round of the app's alert loop (one process of the deployment at a time): fold new
    log rows into the Monitoring rollups, so no page render has a backlog to fold, and
    evaluate the rules."""
    rollups.catch_up(settings)
    for change in evaluate_alerts(settings, probe=probe):
        log.warning("alert %s %s: %s", change.rule, change.change, change.alert.message)


def record_outage(settings: Settings, outage: Outage,
                  notify: Callable[[str, dict[str, object]], object] = post_in_background,
                  ) -> None:
    """Write a storage outage this process saw, once the database is back, as a resolved
    "storage_down" alert, and send it to the webhook: refused requests leave no rows, so
    this is how the outage reaches the alert history."""
    message = (f"The database could not be reached for {outage.seconds:.0f} s "
               f"({outage.reason}); {outage.refused} request(s) were refused with 503.")
    advice = ("Check the database server and the network to it (DATABASE_URL), its disk "
              "and connection limits; the app recovered by itself.")
    with session_scope(settings) as session:
        record = alert_store.record_episode(
            session=session, rule="storage_down", opened_at=outage.started_at,
            resolved_at=outage.ended_at, value=float(outage.refused), message=message,
            advice=advice)
    if settings.alert_webhook_url:
        notify(settings.alert_webhook_url, {
            "rule": record.rule, "change": "resolved", "state": record.state,
            "message": record.message, "advice": record.advice, "value": record.value,
            "opened_at": record.opened_at.isoformat(),
            "resolved_at": record.resolved_at.isoformat() if record.resolved_at else None,
            "source": "support-triage"})
