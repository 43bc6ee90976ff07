"""How long the Monitoring tab takes on a large prediction log.

Fills a fresh database with `--rows` prediction rows spread over the last 30 days (95 % ok
with labels, confidences and latencies, 3 % rejected, 2 % error; about 5 % of the ok rows
rated), then times, for every window of dashboards.queries.WINDOWS:

* load     dashboards.monitoring.load_monitoring(settings, window): the SQL aggregates plus
           building every Plotly figure (what the tab's callback does);
* query    the SQL part of it alone (MonitoringView.query_ms);
* to_json  fig.to_json() of every figure, a proxy for what Gradio serialises to the page;
* health   dashboards.health.load_health: open alerts, drift, per-version table, flagged
           messages (the panels above the charts).

Each is the median of `--runs` runs. Usage (from the repository root):

    python benchmarks/bench_monitoring.py                 # 100,000 rows on SQLite
    python benchmarks/bench_monitoring.py --rows 10000    # quick run
    python benchmarks/bench_monitoring.py --postgres      # same on the local PostgreSQL

Inserting the rows is setup: its time is printed but not part of the results. So is folding
them into the 15-minute rollups (dashboards.rollups.catch_up), which the app's background
loop does every minute as rows arrive; it is timed and printed on its own. The last line
printed is one JSON object with every number, for scripts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, insert, select, text  # noqa: E402

from classifier.training.dataset import DEFAULT_TEST, load_dataset  # noqa: E402
from dashboards import rollups  # noqa: E402
from dashboards.health import load_health  # noqa: E402
from dashboards.monitoring import FIGURE_NAMES, load_monitoring  # noqa: E402
from dashboards.queries import WINDOWS, make_window  # noqa: E402
from feedback.db import dispose_engines, get_engine  # noqa: E402
from feedback.settings import Settings, load_settings  # noqa: E402
from feedback.tables import Feedback, ModelVersion, Prediction  # noqa: E402

POSTGRES_URL = os.environ.get("POSTGRES_BENCH_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
LABELS = ("account", "billing", "cancellation", "general question", "technical issue")
LABEL_WEIGHTS = (0.22, 0.30, 0.08, 0.25, 0.15)
SPAN = timedelta(days=30)
CHUNK = 5000


@contextmanager
def database(use_postgres: bool, tmp: Path, keep_schema: str | None) -> Iterator[Settings]:
    """Settings for a fresh SQLite file, or a PostgreSQL schema: a fresh one dropped
    afterwards, or `keep_schema`, created if missing and kept for the next run."""
    base = load_settings()
    if not use_postgres:
        yield dataclasses.replace(base, data_dir=tmp / "data", database_url="")
        dispose_engines()
        return
    schema = keep_schema or f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
    separator = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    try:
        yield dataclasses.replace(base, data_dir=tmp / "data", database_url=url)
    finally:
        dispose_engines()
        if not keep_schema:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def stored_rows(settings: Settings) -> int:
    """Prediction rows already in the database (a kept schema is filled only once)."""
    with get_engine(settings).connect() as conn:
        return conn.scalar(select(func.count()).select_from(Prediction)) or 0


def model_version_rows(now: datetime) -> list[dict[str, Any]]:
    """Two registered versions so the feedback-by-version chart has two bars."""
    rows = []
    for version in (1, 2):
        rows.append({
            "version": version, "created_at": now - SPAN - timedelta(days=2 - version),
            "sha256": f"{version:064x}", "size_bytes": 1, "labels": list(LABELS),
            "taxonomy": "support", "accuracy": 0.95, "macro_f1": 0.95, "n_train": 10000,
            "n_test": 3000, "report": {}, "data_fingerprint": {}, "params": {},
            "library_versions": {}, "git_commit": None, "training_seconds": 5.0,
        })
    return rows


def prediction_rows(first_id: int, count: int, n: int, now: datetime, rng: random.Random,
                    texts: list[str], versions: tuple[int, int] = (1, 2),
                    ) -> Iterator[dict[str, Any]]:
    """Rows `first_id`..`first_id + count - 1` of `n` realistic prediction rows, oldest
    first: row i lands in the i-th of n equal slices of the span, so ids grow with time
    and any chunk can be made without the others (10 M rows do not fit in memory).
    `versions`: (older, newer) model version; the newer answers the last ten days."""
    switch = now - timedelta(days=10)  # the newer version went live ten days ago
    span = SPAN.total_seconds()
    for i in range(first_id, first_id + count):
        offset = span * (1 - (i - 1 + rng.random()) / n)
        created = now - timedelta(seconds=offset) - timedelta(seconds=1)
        text_ = rng.choice(texts)
        draw = rng.random()
        row: dict[str, Any] = {
            "id": i, "request_id": uuid.UUID(int=rng.getrandbits(128)).hex,
            "created_at": created, "source": rng.choices(("ui", "api", "batch"), (6, 3, 1))[0],
            "text_chars": len(text_), "text": text_, "reason": None, "label": None,
            "confidence": None, "scores": None, "model_version": None,
            "latency_ms": round(rng.lognormvariate(1.2, 0.5), 3),
        }
        if draw < 0.95:
            label = rng.choices(LABELS, LABEL_WEIGHTS)[0]
            confidence = min(1.0, max(0.2, rng.betavariate(6, 1.3)))
            rest = (1 - confidence) / (len(LABELS) - 1)
            row.update(status="ok", label=label, confidence=round(confidence, 6),
                       scores={lab: round(confidence if lab == label else rest, 6)
                               for lab in LABELS},
                       model_version=versions[1] if created >= switch else versions[0])
        elif draw < 0.98:
            row.update(status="rejected", text=None, text_chars=rng.choice((0, 3, 6000)),
                       reason="empty: The message is empty: paste the customer's message.",
                       latency_ms=round(rng.uniform(0.01, 0.05), 3))
        else:
            row.update(status="error", reason="model failed: ValueError",
                       latency_ms=round(rng.lognormvariate(1.5, 0.6), 3))
        yield row


def feedback_rows(predictions: list[dict[str, Any]], rng: random.Random,
                  share: float) -> list[dict[str, Any]]:
    rows = []
    for p in predictions:
        if p["status"] != "ok" or rng.random() >= share:
            continue
        up = rng.random() < 0.7
        when = p["created_at"] + timedelta(seconds=rng.uniform(5, 600))
        rows.append({
            "prediction_id": p["id"], "verdict": "up" if up else "down",
            "correct_label": None if up else rng.choice([x for x in LABELS if x != p["label"]]),
            "comment": None, "created_at": when, "updated_at": when,
            "prediction_created_at": p["created_at"], "model_version": p["model_version"],
        })
    return rows


def fill(settings: Settings, n_rows: int, feedback_share: float, seed: int,
         versions: tuple[int, int] | None = None) -> dict[str, Any]:
    """Insert the data set CHUNK rows at a time (made as they are inserted, so memory stays
    flat at any size); returns counts and timings of the setup. `versions`: (older, newer)
    model versions already registered in the database; None registers two fake ones."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    texts = load_dataset(DEFAULT_TEST).texts
    engine = get_engine(settings)  # creates the tables
    generate_s = insert_s = 0.0
    if versions is None:
        versions = (1, 2)
        with engine.begin() as conn:
            conn.execute(insert(ModelVersion), model_version_rows(now))
    for first_id in range(1, n_rows + 1, CHUNK):
        start = time.perf_counter()
        predictions = list(prediction_rows(first_id, min(CHUNK, n_rows - first_id + 1),
                                           n_rows, now, rng, texts, versions))
        ratings = feedback_rows(predictions, rng, feedback_share)
        generate_s += time.perf_counter() - start
        start = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(insert(Prediction), predictions)
            if ratings:
                conn.execute(insert(Feedback), ratings)
        insert_s += time.perf_counter() - start
    start = time.perf_counter()
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    insert_s += time.perf_counter() - start
    with engine.connect() as conn:
        stored = conn.scalar(select(func.count()).select_from(Prediction))
        rated = conn.scalar(select(func.count()).select_from(Feedback))
    assert stored == n_rows, (stored, n_rows)
    return {"rows": stored, "feedback": rated, "generate_s": round(generate_s, 2),
            "insert_s": round(insert_s, 2),
            "rows_per_s": round(n_rows / insert_s) if insert_s else None}


def rows_in_window(settings: Settings, name: str) -> int:
    window = make_window(name)
    with get_engine(settings).connect() as conn:
        return conn.scalar(select(func.count()).select_from(Prediction).where(
            Prediction.created_at >= window.start, Prediction.created_at < window.end)) or 0


def measure(settings: Settings, name: str, runs: int) -> dict[str, Any]:
    load_ms, query_ms, json_ms, health_ms = [], [], [], []
    json_bytes = points = 0
    summary = ""
    for _ in range(runs):
        start = time.perf_counter()
        view = load_monitoring(settings, name)
        load_ms.append((time.perf_counter() - start) * 1000)
        query_ms.append(view.query_ms)
        start = time.perf_counter()
        payloads = [view.figures[f].to_json() for f in FIGURE_NAMES]
        json_ms.append((time.perf_counter() - start) * 1000)
        json_bytes = sum(len(p) for p in payloads)
        start = time.perf_counter()
        load_health(settings, make_window(name))
        health_ms.append((time.perf_counter() - start) * 1000)
        summary = view.summary
        points = len({x for trace in view.figures["requests"].data for x in (trace.x or ())})
    return {
        "window": name, "rows_in_window": rows_in_window(settings, name), "runs": runs,
        "load_ms": round(statistics.median(load_ms), 1),
        "query_ms": round(statistics.median(query_ms), 1),
        "figures_ms": round(statistics.median(load_ms) - statistics.median(query_ms), 1),
        "to_json_ms": round(statistics.median(json_ms), 1),
        "total_ms": round(statistics.median(a + b for a, b in zip(load_ms, json_ms,
                                                                     strict=True)), 1),
        "load_max_ms": round(max(load_ms), 1),
        "health_ms": round(statistics.median(health_ms), 1),
        "json_kb": round(json_bytes / 1024, 1),
        "chart_points": points,
        "summary": summary,
    }


def print_table(results: list[dict[str, Any]]) -> None:
    header = (f"{'window':<15} {'rows':>8} {'load ms':>9} {'query ms':>9} {'figs ms':>8} "
              f"{'to_json':>8} {'total ms':>9} {'health ms':>9} {'JSON KB':>8} {'points':>7}")
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['window']:<15} {r['rows_in_window']:>8,} {r['load_ms']:>9.1f} "
              f"{r['query_ms']:>9.1f} {r['figures_ms']:>8.1f} {r['to_json_ms']:>8.1f} "
              f"{r['total_ms']:>9.1f} {r['health_ms']:>9.1f} {r['json_kb']:>8.1f} "
              f"{r['chart_points']:>7}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="prediction rows to insert")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per window (median)")
    parser.add_argument("--feedback-share", type=float, default=0.05,
                        help="share of ok rows that get a rating (default 0.05)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--postgres", action="store_true",
                        help=f"use a fresh schema on {POSTGRES_URL} (POSTGRES_BENCH_URL)")
    parser.add_argument("--keep-schema", metavar="NAME",
                        help="with --postgres: fill schema NAME once and keep it, so later "
                             "runs skip the setup (DROP SCHEMA NAME CASCADE when done)")
    args = parser.parse_args(argv)

    backend = "postgresql" if args.postgres else "sqlite"
    with tempfile.TemporaryDirectory(prefix="bench-monitoring-") as tmp, \
            database(args.postgres, Path(tmp), args.keep_schema) as settings:
        kept = stored_rows(settings)
        if kept and kept != args.rows:
            parser.error(f"schema {args.keep_schema} holds {kept:,} rows, not {args.rows:,}")
        if kept:
            setup: dict[str, Any] = {"rows": kept, "kept_schema": args.keep_schema}
            print(f"{backend}: {kept:,} predictions already in schema {args.keep_schema}")
        else:
            setup = fill(settings, args.rows, args.feedback_share, args.seed)
            print(f"{backend}: inserted {setup['rows']:,} predictions and "
                  f"{setup['feedback']:,} ratings in {setup['insert_s']:.1f}s "
                  f"({setup['rows_per_s']:,} rows/s; generated in {setup['generate_s']:.1f}s)"
                  " -- setup, not measured below")
        start = time.perf_counter()
        folded = rollups.catch_up(settings)
        setup["fold_s"] = round(time.perf_counter() - start, 2)
        print(f"folded {folded:,} rows into the rollups in {setup['fold_s']:.1f}s "
              "(the app does this in the background as rows arrive) -- setup")
        start = time.perf_counter()
        load_monitoring(settings, list(WINDOWS)[-1])  # cold caches; not in the medians
        setup["first_load_ms"] = round((time.perf_counter() - start) * 1000, 1)
        results = [measure(settings, name, args.runs) for name in WINDOWS]
        print(f"medians of {args.runs} runs; load = SQL aggregates + Plotly figures "
              f"(load_monitoring), to_json = fig.to_json() of every figure, "
              f"points = time buckets in the requests chart\n")
        print_table(results)
        print(f"\nsummary for {results[-1]['window']}: {results[-1]['summary']}")
        print(json.dumps({"benchmark": "monitoring", "backend": backend, "setup": setup,
                          "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
