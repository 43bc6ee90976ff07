"""AUTO_PROMOTE: promote a retrain's canary by itself once its live figures are not worse.

Off by default. When on, the app checks every AUTO_PROMOTE_CHECK_SECONDS and promotes the
canary only if all hold, over the requests made since the canary started:
- the canary was started by a retrain (a person's canary is a person's decision);
- it has at least AUTO_PROMOTE_MIN_RATINGS rated requests, and live has ratings to compare;
- its thumbs-up rate is at least live's minus AUTO_PROMOTE_MARGIN;
- its error rate is not above live's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from classifier.review.retrain import is_retrain_actor
from classifier.versions import registry
from dashboards.queries import VersionFigures, version_figures
from feedback.db import session_scope
from feedback.settings import Settings

log = logging.getLogger(__name__)
AUTO_PROMOTE_ACTOR = "auto-promote"
# Ratings arrive over minutes to hours; checking once a minute is plenty and costs two
# small aggregate queries.
AUTO_PROMOTE_CHECK_SECONDS = 60.0


@dataclass(frozen=True)
class AutoPromoteDecision:
    promoted: bool
    version: int | None
    reason: str


def _rates(f: VersionFigures) -> tuple[int, float, float]:
    rated = f.thumbs_up + f.thumbs_down
    up_rate = f.thumbs_up / rated if rated else 0.0
    error_rate = f.errors / f.requests if f.requests else 0.0
    return rated, up_rate, error_rate


def check_auto_promote(settings: Settings) -> AutoPromoteDecision:
    """Promote the canary when AUTO_PROMOTE's conditions hold; says why not otherwise.

    Raises StorageError if the database fails.
    """
    if not settings.auto_promote:
        return AutoPromoteDecision(False, None, "AUTO_PROMOTE is off.")
    with session_scope(settings) as session:
        state = registry.deployment_state(session=session)
        canary, live = state.canary_version, state.live_version
        if canary is None or live is None:
            return AutoPromoteDecision(False, None, "No canary is running.")
        started = registry.canary_started(session=session, version=canary)
        if started is None or not is_retrain_actor(started[1]):
            return AutoPromoteDecision(False, canary, f"Version {canary}'s canary was not "
                                       "started by a retrain; promote it by hand.")
        since = started[0]
        figures = version_figures(session=session, versions=[live, canary], since=since)
        c_rated, c_up, c_err = _rates(figures[canary])
        l_rated, l_up, l_err = _rates(figures[live])
        minimum = settings.auto_promote_min_ratings
        if c_rated < minimum:
            return AutoPromoteDecision(False, canary, f"Version {canary} has {c_rated} of the "
                                       f"{minimum} rated requests AUTO_PROMOTE waits for.")
        if not l_rated:
            return AutoPromoteDecision(False, canary, f"Live version {live} has no ratings "
                                       "since the canary started to compare with.")
        if c_up < l_up - settings.auto_promote_margin:
            return AutoPromoteDecision(False, canary, f"Version {canary}'s thumbs-up rate "
                                       f"{c_up:.1%} is below live's {l_up:.1%} by more than "
                                       f"{settings.auto_promote_margin:.1%}.")
        if c_err > l_err:
            return AutoPromoteDecision(False, canary, f"Version {canary}'s error rate "
                                       f"{c_err:.2%} is above live's {l_err:.2%}.")
        reason = (f"auto-promoted: thumbs-up {c_up:.1%} of {c_rated} vs live {l_up:.1%} of "
                  f"{l_rated}; errors {c_err:.2%} vs {l_err:.2%} since {since:%Y-%m-%d %H:%M}")
        registry.promote(session=session, version=canary, actor=AUTO_PROMOTE_ACTOR,
                         reason=reason)
    return AutoPromoteDecision(True, canary, reason)


def auto_promote_round(settings: Settings) -> None:
    """One round of the app's AUTO_PROMOTE loop (one process of the deployment at a time)."""
    decision = check_auto_promote(settings)
    if decision.promoted:
        log.warning("version %s promoted: %s", decision.version, decision.reason)
