"""Data drift of live traffic against the live version's reference profile.

Signals: PSI of the message-length distribution and of the predicted label mix, the shift in
the out-of-vocabulary word rate, the drop in mean confidence, the rise in low-confidence
predictions, and (watch only) shifts in non-letter and non-ASCII characters. The overall
status is "drift" when the model shows it meets unfamiliar input (unknown words, lower
confidence, other characters: one past its drift line, two past their watch lines, or one
past watch together with a shift in lengths or category mix) or when message lengths change
a lot. A changed category or length mix alone is only "watch": within the domain, topics
come and go (an outage brings technical issues) without the model being out of its depth.
Below MIN_SAMPLES answered requests the status stays "ok" and says so, so a quiet hour never
raises a false alarm. The top new or surging terms (from redacted texts) show a person what
changed.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from classifier.model.profile import LENGTH_EDGES, tokens
from classifier.versions import registry
from dashboards.queries import Window, WindowSignals, recent_texts, window_signals
from feedback.db import session_scope
from feedback.errors import NotFoundError
from feedback.settings import Settings

OK, WATCH, DRIFT = "ok", "watch", "drift"
MIN_SAMPLES = 200
# Population stability index: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 large shift
# (the usual credit-scoring rule of thumb).
PSI_WATCH, PSI_DRIFT = 0.1, 0.25
OOV_WATCH, OOV_DRIFT = 0.05, 0.15
CONFIDENCE_DROP_WATCH, CONFIDENCE_DROP_DRIFT = 0.05, 0.10
LOW_CONFIDENCE_RISE_WATCH, LOW_CONFIDENCE_RISE_DRIFT = 0.10, 0.20
CHARSET_SHIFT_WATCH = 0.10
# Signals that say the model is out of its depth, as opposed to a change of topic mix.
UNFAMILIARITY = ("oov_shift", "confidence_drop", "low_confidence_rise", "nonletter_shift",
                 "ascii_drop")
PSI_FLOOR = 1e-4  # smoothing for empty buckets, so PSI stays finite
TERM_SAMPLE = 2000
TOP_TERMS = 10


@dataclass(frozen=True)
class DriftReport:
    status: str
    version: int | None
    n: int
    reasons: list[str]
    judged: bool = True  # False when there was too little traffic to say anything
    metrics: dict[str, float] = field(default_factory=dict)
    top_terms: list[tuple[str, int, str]] = field(default_factory=list)


def psi(expected: list[float], actual: list[float]) -> float:
    """Population stability index of two distributions over the same buckets."""
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, PSI_FLOOR), max(a, PSI_FLOOR)
        total += (a - e) * math.log(a / e)
    return total


def _level(value: float, watch: float, drift: float) -> str:
    return DRIFT if value >= drift else WATCH if value >= watch else OK


def _shares(counts: dict[Any, int], keys: list[Any]) -> list[float]:
    total = sum(counts.values()) or 1
    return [counts.get(k, 0) / total for k in keys]


def surging_terms(texts: list[str], vocabulary: dict[str, int], vocabulary_total: int, *,
                  min_messages: int) -> list[tuple[str, int, str]]:
    """(term, messages containing it, "new" or "×ratio") for terms far more frequent than in
    training. Only terms found in at least `min_messages` different messages are shown, so
    one customer's name or account number never appears, however often they wrote."""
    per_message = [tokens(t) for t in texts]
    counts = Counter(w for words in per_message for w in words)
    messages = Counter(w for words in per_message for w in set(words))
    total = sum(counts.values()) or 1
    scored = []
    for term, n in counts.items():
        if messages[term] < min_messages:
            continue
        reference = vocabulary.get(term, 0) / max(vocabulary_total, 1)
        ratio = (n / total) / max(reference, 1 / max(vocabulary_total, 1))
        if term not in vocabulary or ratio >= 3:
            scored.append((ratio, term, messages[term],
                           "new" if term not in vocabulary else f"×{ratio:.1f}"))
    scored.sort(reverse=True)
    return [(term, n, note) for _, term, n, note in scored[:TOP_TERMS]]


def assess(profile: dict[str, Any], signals: WindowSignals,
           low_confidence: float) -> tuple[str, list[str], dict[str, float]]:
    """(status, reasons in plain words, metric values) of window signals against a profile."""
    keys = list(range(len(profile["length_shares"])))
    labels = list(profile["label_shares"])
    metrics = {
        "psi_length": psi(profile["length_shares"], _shares(signals.length_counts, keys)),
        "psi_labels": psi([profile["label_shares"][k] for k in labels],
                          _shares(signals.label_counts, labels)),
        "oov_shift": signals.mean_oov - profile["oov_share"],
        "confidence_drop": profile["mean_confidence"] - signals.mean_confidence,
        "low_confidence_rise": signals.low_confidence / signals.n - profile[
            "low_confidence_share"],
        "nonletter_shift": signals.mean_nonletter - profile["nonletter_share"],
        "ascii_drop": profile["ascii_share"] - signals.mean_ascii,
    }
    checks = [
        ("psi_length", PSI_WATCH, PSI_DRIFT, "message lengths changed (PSI {v:.2f})"),
        ("psi_labels", PSI_WATCH, PSI_DRIFT, "the predicted category mix changed (PSI {v:.2f})"),
        ("oov_shift", OOV_WATCH, OOV_DRIFT,
         "more unknown words: {pct:.0f} points above training"),
        ("confidence_drop", CONFIDENCE_DROP_WATCH, CONFIDENCE_DROP_DRIFT,
         "mean confidence fell by {pct:.0f} points"),
        ("low_confidence_rise", LOW_CONFIDENCE_RISE_WATCH, LOW_CONFIDENCE_RISE_DRIFT,
         f"more predictions below {low_confidence:.0%} confidence: " + "{pct:.0f} points up"),
        ("nonletter_shift", CHARSET_SHIFT_WATCH, math.inf,
         "more digits and symbols than in training ({pct:.0f} points)"),
        ("ascii_drop", CHARSET_SHIFT_WATCH, math.inf,
         "more non-Latin text than in training ({pct:.0f} points)"),
    ]
    levels, reasons = {}, []
    for name, watch, drift, words in checks:
        levels[name] = _level(metrics[name], watch, drift)
        if levels[name] != OK:
            size = "large" if levels[name] == DRIFT else "moderate"
            reasons.append(f"{size}: " + words.format(v=metrics[name], pct=100 * metrics[name]))
    unfamiliar = [level for name, level in levels.items() if name in UNFAMILIARITY]
    mix_shift = levels["psi_length"] != OK or levels["psi_labels"] != OK
    if (DRIFT in unfamiliar or unfamiliar.count(WATCH) >= 2 or levels["psi_length"] == DRIFT
            or (WATCH in unfamiliar and mix_shift)):
        status = DRIFT
    elif WATCH in unfamiliar or mix_shift:
        status = WATCH
    else:
        status = OK
    return status, reasons, {k: round(v, 4) for k, v in metrics.items()}


def measure_drift(settings: Settings, window: Window, last_n: int | None = None) -> DriftReport:
    """Drift of the live version's answered traffic in `window` (its newest `last_n`)."""
    with session_scope(settings) as session:
        version = registry.live_version(session=session)
        if version is None:
            return DriftReport(OK, None, 0, ["no live version yet"], judged=False)
        try:
            profile = registry.read_profile(session=session, version=version)
        except NotFoundError:
            return DriftReport(OK, version, 0, [f"version {version} has no reference profile "
                                                "(trained before profiles existed)"],
                               judged=False)
        signals = window_signals(session=session, version=version, window=window,
                                 low_confidence=settings.low_confidence,
                                 length_edges=tuple(profile.get("length_edges", LENGTH_EDGES)),
                                 last_n=last_n)
        texts = (recent_texts(session=session, version=version, window=window,
                              limit=min(TERM_SAMPLE, last_n or TERM_SAMPLE), last_n=last_n)
                 if signals.n >= MIN_SAMPLES else [])
    if signals.n < MIN_SAMPLES:
        return DriftReport(OK, version, signals.n, [
            f"not enough traffic to judge: {signals.n} answered requests, "
            f"{MIN_SAMPLES} needed"], judged=False)
    status, reasons, metrics = assess(profile, signals, settings.low_confidence)
    return DriftReport(status, version, signals.n, reasons or ["traffic looks like training"],
                       True, metrics, surging_terms(
                           texts, profile["vocabulary"], profile["vocabulary_total"],
                           min_messages=settings.drift_term_min_messages))
