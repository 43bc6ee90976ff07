"""The readiness gate: a checklist a candidate must pass before it may take any traffic.

Checks, each with a plain-words detail:
- artifact: the stored bytes load in a fresh Python process and match the registered sha256;
- labels: the label set equals the live version's (or the change is explicitly allowed);
- quality: macro-F1 on the candidate's holdout is above a floor and not worse than the live
  version's on the same messages by more than a margin;
- class recall: every class reaches a recall floor and none drops by more than a margin
  against the live version, so a small class (cancellation) cannot silently collapse;
- latency: single-message p95 under a limit;
- bad input: the service's input checks refuse junk, and odd-but-valid text gets a valid
  probability distribution over the model's labels.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from classifier.model.artifacts import ArtifactError, load_model
from classifier.model.features import using_data_dir
from classifier.serving.validation import RejectedInputError, validate_text
from classifier.training.evaluation import evaluate, measure_latency
from classifier.versions import registry
from feedback.db import session_scope
from feedback.settings import Settings
from feedback.tables import utc_now

ROOT = Path(__file__).resolve().parents[2]
FRESH_PROCESS_TIMEOUT_S = 180
# Inputs the service must refuse before any model sees them.
JUNK_INPUTS: tuple[object, ...] = ("", "   \n\t ", "\x00\x01\x02\x03binary", None, 12, b"bytes")
# Odd but valid messages: the model must still return a proper distribution.
ODD_INPUTS = (
    "a", "?? ok", "😀😀 refund please 😀", "Перевод не прошёл, помогите", "我的卡被拒绝了 card",
    "[EMAIL] [CARD] [PHONE] [IBAN]", "12345 abc 67890", "\t\nnew\nlines\n", "word " * 900,
    "CAPITALS ONLY MESSAGE ABOUT MY CARD", "naïve café résumé",
)


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class GateReport:
    version: int
    passed: bool
    against_live_version: int | None
    checks: list[Check]

    def checklist(self, settings: Settings) -> dict[str, Any]:
        """The JSON stored with the version and shown in the Models tab."""
        return {
            "passed": self.passed, "checked_at": utc_now().isoformat(),
            "against_live_version": self.against_live_version,
            "thresholds": {
                "max_quality_drop": settings.gate_max_quality_drop,
                "min_macro_f1": settings.gate_min_macro_f1,
                "min_class_recall": settings.gate_min_class_recall,
                "max_class_recall_drop": settings.gate_max_class_recall_drop,
                "max_p95_ms": settings.gate_max_p95_ms,
            },
            "checks": [asdict(c) for c in self.checks],
        }


def format_checklist(checklist: dict[str, Any], marks: tuple[str, str] = ("✅", "❌")) -> str:
    """Markdown lines: one mark (passed, failed) per check with its detail; the web page
    passes its own marks, drawn without an emoji font."""
    against = checklist.get("against_live_version")
    # Written when the gate ran: "nothing live" stays true of that moment once this serves.
    lines = [f"**Readiness gate: {'passed' if checklist['passed'] else 'FAILED'}**"
             + (f" (compared with live version {against})" if against
                else " (when it ran, no version was live to compare with)")]
    lines += [f"- {marks[0] if c['passed'] else marks[1]} **{c['name']}**: {c['detail']}"
              for c in checklist["checks"]]
    return "\n".join(lines)


def verify_in_fresh_process(settings: Settings, version: int) -> Check:
    """Load the artifact from the database in a new interpreter (no state shared with us)."""
    env = {**os.environ, "DATABASE_URL": settings.effective_database_url,
           "DATA_DIR": str(settings.data_dir)}
    try:
        out = subprocess.run(
            [sys.executable, "-m", "classifier", "verify-artifact", str(version)],
            capture_output=True, text=True, cwd=ROOT, env=env, timeout=FRESH_PROCESS_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return Check("artifact", False, f"loading took over {FRESH_PROCESS_TIMEOUT_S}s")
    if out.returncode != 0:
        reason = (out.stderr.strip().splitlines() or ["unknown error"])[-1]
        return Check("artifact", False, f"does not load in a fresh process: {reason}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return Check("artifact", True,
                 f"loads in a fresh process; sha256 {result['sha256'][:12]}… matches")


def _distribution_ok(pipeline: Pipeline, text: str) -> bool:
    proba = pipeline.predict_proba([text])[0]
    return bool(np.all(np.isfinite(proba)) and math.isclose(float(proba.sum()), 1.0,
                                                            rel_tol=1e-6))


def check_bad_inputs(pipeline: Pipeline, settings: Settings) -> Check:
    leaked = []
    for junk in (*JUNK_INPUTS, "x" * (settings.max_text_chars + 1)):
        try:
            validate_text(junk, max_chars=settings.max_text_chars)
            leaked.append(repr(junk)[:20])
        except RejectedInputError:
            pass
    broken = [t[:20] for t in ODD_INPUTS if not _distribution_ok(pipeline, t)]
    if leaked or broken:
        return Check("bad input", False, f"accepted junk {leaked}; bad output for {broken}")
    return Check("bad input", True, f"{len(JUNK_INPUTS) + 1} junk inputs refused; "
                                    f"{len(ODD_INPUTS)} odd messages answered properly")


def _quality_checks(settings: Settings, cand: dict[str, Any],
                    live: dict[str, Any] | None) -> list[Check]:
    f1 = cand["macro_f1"]
    detail = f"macro-F1 {f1:.3f} (floor {settings.gate_min_macro_f1:.2f})"
    ok = f1 >= settings.gate_min_macro_f1
    if live is not None:
        drop = live["macro_f1"] - f1
        detail += (f"; live {live['macro_f1']:.3f} on the same messages, drop {drop:+.3f} "
                   f"(limit {settings.gate_max_quality_drop:.3f})")
        ok = ok and drop <= settings.gate_max_quality_drop
    checks = [Check("quality", ok, detail)]
    low = {c: m["recall"] for c, m in cand["per_class"].items()
           if m["support"] and m["recall"] < settings.gate_min_class_recall}
    drops = {}
    if live is not None:
        for c, m in cand["per_class"].items():
            before = live["per_class"].get(c)
            if m["support"] and before and before["recall"] - m["recall"] > \
                    settings.gate_max_class_recall_drop:
                drops[c] = (before["recall"], m["recall"])
    worst = min((m["recall"], c) for c, m in cand["per_class"].items() if m["support"])
    if low or drops:
        parts = [f"{c} recall {r:.2f} < {settings.gate_min_class_recall:.2f}"
                 for c, r in sorted(low.items())]
        parts += [f"{c} recall fell {a:.2f} → {b:.2f}" for c, (a, b) in sorted(drops.items())]
        checks.append(Check("class recall", False, "; ".join(parts)))
    else:
        checks.append(Check("class recall", True, f"lowest: {worst[1]} {worst[0]:.2f} "
                            f"(floor {settings.gate_min_class_recall:.2f})"))
    return checks


def run_gate(*, settings: Settings, version: int, allow_label_change: bool = False,
             actor: str = "gate") -> GateReport:
    """Run every check on `version`, store the checklist with it and return the report.

    Raises NotFoundError for an unknown version and StorageError if the database fails.
    """
    with session_scope(settings) as session:
        info = registry.get_version(session=session, version=version)
        texts, labels = registry.read_holdout(session=session, version=version)
        data, sha = registry.read_artifact(session=session, version=version)
        live = registry.live_version(session=session)
        live = None if live == version else live
        live_info = registry.get_version(session=session, version=live) if live else None
        live_bytes = registry.read_artifact(session=session, version=live) if live else None
    checks = [verify_in_fresh_process(settings, version)]
    try:
        pipeline = load_model(data, expected_sha256=sha, name=f"version {version}")
    except ArtifactError as exc:
        checks.append(Check("artifact", False, str(exc)))
        return _finish(settings, version, live, checks, actor)
    if live_info is None:
        checks.append(Check("labels", True, f"{len(info.labels)} labels; nothing was live to "
                            "compare them with"))
    elif set(info.labels) == set(live_info.labels):
        checks.append(Check("labels", True, f"same {len(info.labels)} labels as live"))
    else:
        added = sorted(set(info.labels) - set(live_info.labels))
        removed = sorted(set(live_info.labels) - set(info.labels))
        checks.append(Check("labels", allow_label_change,
                            f"label set differs from live (added {added[:5]}, removed "
                            f"{removed[:5]})" + ("; change allowed explicitly"
                                                 if allow_label_change else "")))
    with using_data_dir(settings.data_dir):
        cand_eval = evaluate(pipeline, texts, labels)
        live_eval = None
        if live_bytes is not None and live_info and set(info.labels) == set(live_info.labels):
            live_pipeline = load_model(live_bytes[0], expected_sha256=live_bytes[1],
                                       name=f"live version {live}")
            live_eval = evaluate(live_pipeline, texts, labels)
    checks += _quality_checks(settings, cand_eval, live_eval)
    p95 = measure_latency(pipeline, texts)["p95_ms"]
    checks.append(Check("latency", p95 <= settings.gate_max_p95_ms,
                        f"p95 {p95:.2f} ms (limit {settings.gate_max_p95_ms:.0f} ms)"))
    checks.append(check_bad_inputs(pipeline, settings))
    return _finish(settings, version, live, checks, actor)


def _finish(settings: Settings, version: int, live: int | None, checks: list[Check],
            actor: str) -> GateReport:
    report = GateReport(version, all(c.passed for c in checks), live, checks)
    with session_scope(settings) as session:
        registry.record_gate(session=session, version=version, passed=report.passed,
                             checklist=report.checklist(settings), actor=actor)
    return report
