"""`python -m classifier`: train, gate and list model versions, and change what serves.

Errors print one line to stderr and exit with status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from classifier.cli import database as db_cli
from classifier.cli import feedback_loop as review_cli
from classifier.cli import users as users_cli
from classifier.model.names import DEFAULT_MODEL, MODELS, model_name
from classifier.training.dataset import DEFAULT_LABEL_COLUMN, load_dataset, load_taxonomy
from classifier.versions import lifecycle, registry
from classifier.versions.registry import ModelVersionInfo
from feedback import api_keys
from feedback.db import session_scope
from feedback.errors import InvalidInputError, SupportTriageError
from feedback.export import parse_time, write_export_csv
from feedback.settings import Settings, describe_settings, load_settings
from feedback.settings_doc import settings_markdown

if TYPE_CHECKING:
    from classifier.training.train import TrainingResult

# Training, the gate and model files need scikit-learn (seconds to import on a small
# machine): the commands that use them import them, so `users`, `keys`, `db`, `models`,
# `settings` and the rest start without it.


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m classifier",
                                     description="Train and manage Support Triage models.")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a new model version from a CSV")
    train.add_argument("--data", required=True, help="UTF-8 CSV with a text and a label column")
    train.add_argument("--text-column", default="text")
    train.add_argument("--label-column", default=DEFAULT_LABEL_COLUMN)
    train.add_argument("--test-data", help="CSV to evaluate on (default: 20%% stratified holdout)")
    train.add_argument("--taxonomy", help="JSON file mapping labels onto categories (the "
                       "model then learns the labels and answers in the categories)")
    train.add_argument("--model", choices=list(MODELS), default=DEFAULT_MODEL,
                       help=f"features before the regression (default {DEFAULT_MODEL}; "
                       "tfidf: no sentence encoder, trains faster, about 2 points less "
                       "accurate)")
    train.add_argument("--promote", action="store_true",
                       help="make the new version live if it passes the readiness gate")
    train.add_argument("--allow-label-change", action="store_true",
                       help="let the gate accept a label set that differs from the live one")
    models = sub.add_parser("models", help="list model versions")
    models.add_argument("--json", action="store_true", help="print a JSON list")
    gate = sub.add_parser("gate", help="run the readiness gate on a version")
    gate.add_argument("version", type=int)
    gate.add_argument("--allow-label-change", action="store_true")
    promote = sub.add_parser("promote", help="make a version live")
    promote.add_argument("version", type=int)
    rollback = sub.add_parser("rollback", help="return to the previously live version")
    canary = sub.add_parser("canary", help="`canary VERSION --percent P` or `canary stop`")
    canary.add_argument("target", help="a version number, or 'stop'")
    canary.add_argument("--percent", type=int, help="traffic share 1-50 (default CANARY_PERCENT)")
    reject = sub.add_parser("reject", help="mark a version as never to serve")
    reject.add_argument("version", type=int)
    for action in (promote, rollback, canary, reject):
        action.add_argument("--reason", default="", help="recorded in the audit trail")
    for action in (promote, canary):
        action.add_argument("--force", action="store_true",
                            help="override a failed or missing readiness gate (give --reason)")
    events = sub.add_parser("events", help="print the audit trail of registry changes")
    events.add_argument("--limit", type=int, default=30)
    verify = sub.add_parser("verify-artifact", help=argparse.SUPPRESS)
    verify.add_argument("version", type=int)
    settings = sub.add_parser("settings", help="print the settings and where they come from")
    settings.add_argument("--markdown", action="store_true",
                          help="print the reference table of docs/SETTINGS.md instead")
    keys = sub.add_parser("keys", help="REST API keys kept (hashed) in the database")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    keys_create = keys_sub.add_parser("create", help="create a key; its secret is printed once")
    keys_create.add_argument("name", help="who uses the key, e.g. the calling system")
    keys_sub.add_parser("list", help="list keys (ids and names, never secrets)")
    keys_revoke = keys_sub.add_parser("revoke", help="revoke a key by id")
    keys_revoke.add_argument("key_id")
    export = sub.add_parser("export", help="write the prediction log with feedback as CSV")
    export.add_argument("--out", required=True, help="CSV file to write")
    export.add_argument("--since", help="ISO date/time, inclusive (default: the beginning)")
    export.add_argument("--until", help="ISO date/time, exclusive (default: now)")
    review_cli.add_commands(sub)
    users_cli.add_commands(sub)
    db_cli.add_commands(sub)
    return parser


def _print_report(result: TrainingResult) -> None:
    v = result.version
    r = v.report
    print(f"Model version {v.version} ({v.status}), model {model_name(v.params)}, "
          f"{len(v.labels)} labels, {v.n_train} training / {v.n_test} test messages, "
          f"trained in {v.training_seconds}s")
    print(f"  accuracy {r['accuracy']:.4f}   macro-F1 {r['macro_f1']:.4f}   "
          f"ECE {r['ece']:.4f}   latency p50 {r['latency']['p50_ms']} ms, "
          f"p95 {r['latency']['p95_ms']} ms")
    if "intents" in r:
        i = r["intents"]
        print(f"  on the {i['labels']} fine labels: accuracy {i['accuracy']:.4f}   "
              f"macro-F1 {i['macro_f1']:.4f}   ECE {i['ece']:.4f}")
    calibration = r.get("calibration", {})
    if calibration.get("temperature", 1.0) != 1.0:
        print(f"  temperature {calibration['temperature']} (ECE was "
              f"{calibration['ece_before']:.4f} before scaling; fitted in "
              f"{calibration['seconds']}s)")
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
          f"{'macro-F1':>8}  gate    labels  {'model':12}  taxonomy")
    gate = {True: "passed", False: "FAILED", None: "-"}
    for v in versions:
        print(f"{v.version:>7}  {v.status:9}  {v.created_at:%Y-%m-%d %H:%M:%S}  "
              f"{v.accuracy:8.4f}  {v.macro_f1:8.4f}  {gate[v.gate_passed]:6}  "
              f"{len(v.labels):6d}  {model_name(v.params):12}  {v.taxonomy or '-'}")


def _train(args: argparse.Namespace, settings: Settings) -> int:
    from classifier.training.train import train_version
    from classifier.versions.gate import format_checklist

    result = train_version(
            data=load_dataset(args.data, text_column=args.text_column,
                              label_column=args.label_column),
            test=load_dataset(args.test_data, text_column=args.text_column,
                              label_column=args.label_column) if args.test_data else None,
            taxonomy=load_taxonomy(args.taxonomy) if args.taxonomy else None,
            params={"model": args.model}, settings=settings, promote=args.promote,
            allow_label_change=args.allow_label_change,
            actor="cli", progress=lambda msg: print(msg, file=sys.stderr),
        )
    _print_report(result)
    print(format_checklist(result.version.gate or {}).replace("**", ""))
    if args.promote and not result.promoted:
        print(f"Not promoted: version {result.version.version} failed the readiness gate.",
              file=sys.stderr)
    print(json.dumps(result.summary()))
    return 1 if args.promote and not result.promoted else 0


def _lifecycle(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "promote":
        info = lifecycle.promote(settings, args.version, actor="cli", reason=args.reason,
                                 force=args.force)
        print(f"Model version {info.version} is live.")
    elif args.command == "rollback":
        info = lifecycle.rollback(settings, actor="cli", reason=args.reason)
        print(f"Rolled back: model version {info.version} is live again.")
    elif args.command == "canary" and args.target == "stop":
        version = lifecycle.stop_canary(settings, actor="cli", reason=args.reason)
        print(f"Canary of model version {version} stopped; all traffic goes to the live version.")
    elif args.command == "canary":
        if not args.target.isdigit():
            raise InvalidInputError(f"canary takes a version number or 'stop', not {args.target!r}")
        info = lifecycle.start_canary(settings, int(args.target), args.percent, actor="cli",
                                      reason=args.reason, force=args.force)
        with session_scope(settings) as session:
            share = registry.deployment_state(session=session).canary_percent
        print(f"Model version {info.version} is the canary for {share} % of requests.")
    elif args.command == "reject":
        info = lifecycle.reject(settings, args.version, actor="cli", reason=args.reason)
        print(f"Model version {info.version} is rejected.")
    return 0


def _keys(args: argparse.Namespace, settings: Settings) -> int:
    with session_scope(settings) as session:
        if args.keys_command == "create":
            info, secret = api_keys.create_api_key(session=session, name=args.name)
        elif args.keys_command == "revoke":
            info = api_keys.revoke_api_key(session=session, key_id=args.key_id)
        else:
            keys = api_keys.list_api_keys(session=session)
    if args.keys_command == "create":
        print(f"API key {info.id} ({info.name}) created. Its secret is shown only now; store "
              "it, then send it as `Authorization: Bearer <secret>`:", file=sys.stderr)
        print(secret)
    elif args.keys_command == "revoke":
        print(f"API key {info.id} ({info.name}) revoked at {info.revoked_at:%Y-%m-%d %H:%M:%S} "
              "UTC; running apps refuse it within a few seconds.")
    elif not keys:
        print("No API keys in the database. Create one: python -m classifier keys create NAME")
    else:
        print(f"{'id':8}  {'created (UTC)':19}  {'revoked (UTC)':19}  name")
        for k in keys:
            revoked = f"{k.revoked_at:%Y-%m-%d %H:%M:%S}" if k.revoked_at else "-"
            print(f"{k.id:8}  {k.created_at:%Y-%m-%d %H:%M:%S}  {revoked:19}  {k.name}")
    return 0


def _export(args: argparse.Namespace, settings: Settings) -> int:
    since, until = parse_time(args.since, "--since"), parse_time(args.until, "--until")
    try:
        with open(args.out, "w", newline="", encoding="utf-8") as out:
            rows = write_export_csv(settings, out, since=since, until=until)
    except OSError as exc:
        raise InvalidInputError(f"Cannot write {args.out}: {exc.strerror}") from None
    print(f"Wrote {rows:,} predictions (with their feedback) to {args.out}.")
    return 0


def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "settings" and args.markdown:  # the declarations, not this environment
        print(settings_markdown(), end="")
        return 0
    settings = load_settings()
    if args.command == "train":
        return _train(args, settings)
    if args.command in {"promote", "rollback", "canary", "reject"}:
        return _lifecycle(args, settings)
    if args.command in review_cli.COMMANDS:
        return review_cli.run_command(args, settings)
    if args.command in users_cli.COMMANDS:
        return users_cli.run_command(args, settings)
    if args.command in db_cli.COMMANDS:
        return db_cli.run_command(args, settings)
    if args.command == "keys":
        return _keys(args, settings)
    if args.command == "export":
        return _export(args, settings)
    if args.command == "gate":
        from classifier.versions.gate import format_checklist, run_gate

        report = run_gate(settings=settings, version=args.version,
                          allow_label_change=args.allow_label_change, actor="cli")
        with session_scope(settings) as session:
            checklist = registry.get_version(session=session, version=args.version).gate or {}
        print(format_checklist(checklist).replace("**", ""))
        return 0 if report.passed else 1
    if args.command == "verify-artifact":
        from classifier.model.artifacts import load_model

        with session_scope(settings) as session:
            data, sha = registry.read_artifact(session=session, version=args.version)
        model = load_model(data, expected_sha256=sha, name=f"version {args.version}")
        print(json.dumps({"version": args.version, "sha256": sha,
                          "labels": [str(c) for c in model.classes_]}))
        return 0
    if args.command == "events":
        with session_scope(settings) as session:
            events = registry.list_events(session=session, limit=args.limit)
        for e in events:
            print(f"{e['at']:%Y-%m-%d %H:%M:%S}  {e['action']:12} v{e['version']}  "
                  f"{e['from'] or '-'} -> {e['to'] or '-'}  by {e['actor']}  {e['reason']}")
        return 0
    if args.command == "models":
        with session_scope(settings) as session:
            versions = registry.list_versions(session=session)
        if args.json:
            print(json.dumps([v.summary() for v in versions]))
        else:
            _print_versions(versions)
        return 0
    for env, value, help_text in describe_settings(settings):
        print(f"{env:28} {value:40} {help_text}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(argv)
    except (SupportTriageError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
