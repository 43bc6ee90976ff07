"""The feedback-loop commands of `python -m classifier`: review, retrain, datasets.

    python -m classifier review --export queue.csv [--reason all] [--label L] [--limit N]
    python -m classifier review --import queue.csv --reviewer NAME
    python -m classifier retrain [--data CSV] [--test-data CSV]   # JSON summary line last
    python -m classifier datasets [--freeze]  # feedback dataset versions
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from classifier.review import queue as review
from classifier.training.dataset import DEFAULT_TEST, DEFAULT_TRAIN
from feedback.errors import InvalidInputError
from feedback.review_store import QUEUE_REASONS
from feedback.settings import Settings

if TYPE_CHECKING:  # the retrain (scikit-learn) is imported by the command that runs it
    from classifier.review.retrain import RetrainResult

COMMANDS = frozenset({"review", "retrain", "datasets"})


def add_commands(sub: Any) -> None:
    """Add the subcommands to `python -m classifier`'s subparsers."""
    rev = sub.add_parser("review", help="export the review queue as CSV, or import decisions")
    action = rev.add_mutually_exclusive_group(required=True)
    action.add_argument("--export", metavar="CSV", help="write the queue to this CSV file")
    action.add_argument("--import", dest="import_", metavar="CSV",
                        help="apply the decision/label columns of a filled-in export")
    rev.add_argument("--reason", default="all", choices=QUEUE_REASONS,
                     help="all = thumbs-down or low confidence (default); thumbs_up = "
                          "confirmed answers")
    rev.add_argument("--label", help="only messages predicted or suggested as this category")
    rev.add_argument("--model-version", type=int, help="only answers of this version")
    rev.add_argument("--limit", type=int, default=review.MAX_QUEUE,
                     help=f"most rows to export (default {review.MAX_QUEUE})")
    rev.add_argument("--reviewer", default="cli", help="recorded with every imported review")
    retrain = sub.add_parser("retrain", help="train a challenger on the base data plus "
                             "reviewed feedback; gate it and start its canary")
    retrain.add_argument("--data",
                         help="base training CSV (text, category), mapped with the live "
                              "version's taxonomy (default: RETRAIN_DATA, else Banking77 "
                              f"train: {DEFAULT_TRAIN.name})")
    retrain.add_argument("--test-data",
                         help="frozen holdout CSV both versions are scored on (default: "
                              f"RETRAIN_TEST_DATA, else Banking77 test: {DEFAULT_TEST.name})")
    retrain.add_argument("--job", type=int, help=argparse.SUPPRESS)  # the UI's background run
    datasets = sub.add_parser("datasets", help="list the feedback dataset versions")
    datasets.add_argument("--freeze", action="store_true",
                          help="first snapshot the reviewed examples (a new version only if "
                               "they changed; retrain does this too)")


def _review(args: argparse.Namespace, settings: Settings) -> int:
    if args.export:
        try:
            with open(args.export, "w", newline="", encoding="utf-8") as out:
                rows = review.export_queue_csv(settings, out, reason=args.reason,
                                               label=args.label,
                                               model_version=args.model_version,
                                               limit=args.limit)
        except OSError as exc:
            raise InvalidInputError(f"Cannot write {args.export}: {exc.strerror}") from None
        print(f"Wrote {rows} message(s) to review to {args.export}. Fill in `decision` "
              "(accept, correct or discard) and, for corrections, `label`; then run "
              f"`python -m classifier review --import {args.export} --reviewer NAME`.")
        return 0
    result = review.import_reviews_csv(settings, args.import_, reviewer=args.reviewer)
    for error in result.errors:
        print(f"line {error.line} ({error.request_id or 'no request id'}): {error.message}",
              file=sys.stderr)
    print(result.describe())
    return 1 if result.errors else 0


def _print_retrain(result: RetrainResult) -> None:
    r = result.report
    print(f"Challenger version {result.version} (live: version {result.live_version}), "
          f"feedback dataset {result.feedback_dataset}: {r['data']['feedback_train']} "
          f"feedback rows trained on, {r['data']['feedback_holdout']} held back")
    print(f"  {'evaluation set':18} {'n':>6} {'live acc':>9} {'challenger':>11} "
          f"{'live F1':>8} {'chall. F1':>9}")
    for name in ("frozen_holdout", "feedback_holdout"):
        pair = r[name]
        if not pair["n"]:
            print(f"  {name:18} {0:>6}  (nothing held back)")
            continue
        print(f"  {name:18} {pair['n']:>6} {pair['live']['accuracy']:9.4f} "
              f"{pair['challenger']['accuracy']:11.4f} {pair['live']['macro_f1']:8.4f} "
              f"{pair['challenger']['macro_f1']:9.4f}")
    changed = r["what_changed"]
    print(f"  now right: {changed['now_right_total']} message(s); now wrong: "
          f"{changed['now_wrong_total']}")
    print(result.note)


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run review, retrain or datasets; returns the exit status."""
    if args.command == "review":
        return _review(args, settings)
    if args.command == "retrain":
        from classifier.review.retrain import lower_priority, run_retrain

        lower_priority()  # the app may be serving on this machine
        result = run_retrain(settings, actor="cli", job_id=args.job,
                             base_data=Path(args.data) if args.data else None,
                             holdout_data=Path(args.test_data) if args.test_data else None,
                             progress=lambda msg: print(msg, file=sys.stderr, flush=True))
        _print_retrain(result)
        print(json.dumps(result.summary()))
        return 0 if result.canary_started else 1
    if args.freeze:
        build = review.build_feedback_dataset(settings)
        if build is None:
            print("Nothing to freeze: no accepted or corrected review yet.")
        else:
            print(f"Feedback dataset version {build.info.version} ({build.info.rows} rows) "
                  + ("created." if build.created else "unchanged: reviews are the same."))
    datasets = review.list_feedback_datasets(settings)
    if not datasets:
        print("No feedback dataset yet: review messages, then retrain (or run retrain once).")
        return 0
    print(f"{'version':>7}  {'created (UTC)':19}  {'rows':>6}  sha256        labels")
    for d in datasets:
        labels = ", ".join(f"{k} {v}" for k, v in d.label_counts.items())
        print(f"{d.version:>7}  {d.created_at:%Y-%m-%d %H:%M:%S}  {d.rows:>6}  "
              f"{d.sha256[:12]}  {labels}")
    return 0
