"""Live versus canary, side by side, for the Models tab."""

from __future__ import annotations

from datetime import timedelta

from classifier.versions import registry
from dashboards.figures import percent_text as _pct
from dashboards.figures import percentile_from_histogram
from dashboards.queries import version_figures
from feedback.db import session_scope
from feedback.settings import Settings
from feedback.tables import utc_now

# Without a canary, compare over the last day of traffic.
DEFAULT_LOOKBACK = timedelta(hours=24)
COLUMNS = ["version", "role", "requests", "thumbs-up rate", "rejected / failed",
           "latency p95 (ms)", "mean confidence", "label mix"]


def compare_live_and_canary(settings: Settings) -> tuple[str, list[list[object]]]:
    """(heading, table rows) of live figures for the live version and the canary."""
    with session_scope(settings) as session:
        state = registry.deployment_state(session=session)
        roles = {v: r for v, r in ((state.live_version, "live"),
                                   (state.canary_version, "canary")) if v is not None}
        if not roles:
            return "No version is live yet.", []
        started = (registry.canary_started(session=session, version=state.canary_version)
                   if state.canary_version else None)
        since = started[0] if started else utc_now() - DEFAULT_LOOKBACK
        figures = version_figures(session=session, versions=list(roles), since=since)
    heading = (f"Since the canary started ({since:%Y-%m-%d %H:%M} UTC), "
               f"{state.canary_percent} % of requests go to version {state.canary_version}."
               if state.canary_version else "Last 24 hours; no canary running.")
    rows = []
    for version, role in roles.items():
        f = figures[version]
        rated = f.thumbs_up + f.thumbs_down
        answered = sum(f.label_counts.values())
        mix = ", ".join(f"{label} {_pct(n, answered)}" for label, n in
                        sorted(f.label_counts.items(), key=lambda kv: -kv[1])[:5])
        rows.append([
            version, role, f.requests,
            f"{_pct(f.thumbs_up, rated)} of {rated}" if rated else "no ratings",
            f"{_pct(f.rejected, f.requests)} / {_pct(f.errors, f.requests)}",
            round(percentile_from_histogram(f.latency_bins, 95), 2) if f.latency_bins else "–",
            round(f.mean_confidence, 3) if f.mean_confidence is not None else "–",
            mix or "–",
        ])
    return heading, rows
