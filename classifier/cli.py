"""`python -m classifier`: train, list and promote model versions.

Errors print one line to stderr and exit with status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from classifier import registry
from classifier.dataset import DEFAULT_LABEL_COLUMN, load_dataset, load_taxonomy
from classifier.registry import ModelVersionInfo
from classifier.training import TrainingResult, train_version
from feedback.db import session_scope
from feedback.errors import SupportTriageError
from feedback.settings import describe_settings, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m classifier",
                                     description="Train and manage Support Triage models.")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a new model version from a CSV")
    train.add_argument("--data", required=True, help="UTF-8 CSV with a text and a label column")
    train.add_argument("--text-column", default="text")
    train.add_argument("--label-column", default=DEFAULT_LABEL_COLUMN)
    train.add_argument("--test-data", help="CSV to evaluate on (default: 20%% stratified holdout)")
    train.add_argument("--taxonomy", help="JSON file mapping labels onto categories")
    train.add_argument("--promote", action="store_true", help="make the new version live")
    models = sub.add_parser("models", help="list model versions")
    models.add_argument("--json", action="store_true", help="print a JSON list")
    promote = sub.add_parser("promote", help="make a version live")
    promote.add_argument("version", type=int)
    promote.add_argument("--reason", default="")
    sub.add_parser("settings", help="print the settings and where they come from")
    return parser


def _print_report(result: TrainingResult) -> None:
    v = result.version
    r = v.report
    print(f"Model version {v.version} ({v.status}), {len(v.labels)} labels, "
          f"{v.n_train} training / {v.n_test} test messages, trained in {v.training_seconds}s")
    print(f"  accuracy {r['accuracy']:.4f}   macro-F1 {r['macro_f1']:.4f}   "
          f"ECE {r['ece']:.4f}   latency p50 {r['latency']['p50_ms']} ms, "
          f"p95 {r['latency']['p95_ms']} ms")
    width = max(len(label) for label in r["per_class"])
    print(f"  {'label'.ljust(width)}  precision  recall     f1  support")
    for label, m in r["per_class"].items():
        print(f"  {label.ljust(width)}  {m['precision']:9.3f}  {m['recall']:6.3f}  "
              f"{m['f1']:5.3f}  {m['support']:7d}")


def _print_versions(versions: list[ModelVersionInfo]) -> None:
    if not versions:
        print("No model versions yet. Train one: python -m classifier train --data FILE.csv")
        return
    print(f"{'version':>7}  {'status':9}  {'created (UTC)':19}  {'accuracy':>8}  "
          f"{'macro-F1':>8}  labels  taxonomy")
    for v in versions:
        print(f"{v.version:>7}  {v.status:9}  {v.created_at:%Y-%m-%d %H:%M:%S}  "
              f"{v.accuracy:8.4f}  {v.macro_f1:8.4f}  {len(v.labels):6d}  {v.taxonomy or '-'}")


def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = load_settings()
    if args.command == "train":
        result = train_version(
            data=load_dataset(args.data, text_column=args.text_column,
                              label_column=args.label_column),
            test=load_dataset(args.test_data, text_column=args.text_column,
                              label_column=args.label_column) if args.test_data else None,
            taxonomy=load_taxonomy(args.taxonomy) if args.taxonomy else None,
            settings=settings, promote=args.promote, actor="cli",
            progress=lambda msg: print(msg, file=sys.stderr),
        )
        _print_report(result)
        print(json.dumps(result.summary()))
    elif args.command == "models":
        with session_scope(settings) as session:
            versions = registry.list_versions(session=session)
        if args.json:
            print(json.dumps([v.summary() for v in versions]))
        else:
            _print_versions(versions)
    elif args.command == "promote":
        with session_scope(settings) as session:
            info = registry.promote(session=session, version=args.version, actor="cli",
                                    reason=args.reason)
        print(f"Model version {info.version} is live.")
    elif args.command == "settings":
        for env, value, help_text in describe_settings(settings):
            print(f"{env:20} {value:40} {help_text}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(argv)
    except (SupportTriageError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
