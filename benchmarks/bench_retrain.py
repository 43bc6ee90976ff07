"""Serving while retraining: latency and failures at a steady request rate.

Trains the default model into a temporary DATA_DIR
(`classifier.training.default_model.ensure_live_model`),
adds reviewed feedback (the messages of tests/data/new_feature_slice.csv, classified
in-process, rated and accepted) so the retrain has work, starts `python app.py`, and sends
POST /api/v1/predict at a fixed pace (default 20 requests/second; each request on its own
worker, so a slow answer never lowers the offered rate). After a warm-up it measures latency
for `--idle` seconds, then starts a background retrain exactly as the Review tab's button
does (`classifier.review.retrain.launch_retrain`: a job row and a `python -m classifier retrain
--job ID` child at lower priority) and measures until the job finishes. Prints p95 idle and
during the retrain, their ratio (target: at most 2), failed requests (target: 0), the
retrain's duration and outcome, and a final JSON line.

    python benchmarks/bench_retrain.py [--rps 20] [--idle 20] [--warmup 5]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.apphost import running_app  # noqa: E402
from classifier.review import queue as review  # noqa: E402
from classifier.review.retrain import get_job, launch_retrain  # noqa: E402
from classifier.serving.service import PredictionService  # noqa: E402
from classifier.training.dataset import DEFAULT_TEST, load_dataset  # noqa: E402
from classifier.training.default_model import ensure_live_model  # noqa: E402
from feedback.db import dispose_engines  # noqa: E402
from feedback.settings import Settings, load_settings  # noqa: E402

SLICE = ROOT / "tests" / "data" / "new_feature_slice.csv"
WORKERS = 64  # enough that a stalled answer never delays the next scheduled request


@dataclass(frozen=True)
class Sample:
    started: float
    latency_ms: float
    ok: bool
    error: str = ""


def prepare(data_dir: Path) -> Settings:
    """Default model live, and reviewed feedback for the retrain to learn from."""
    os.environ["DATA_DIR"] = str(data_dir)
    settings = load_settings()
    ensure_live_model(settings, progress=lambda _m: None)
    service = PredictionService(settings)
    with SLICE.open(encoding="utf-8") as f:
        rows = [(r["text"], r["category"]) for r in csv.DictReader(f)]
    for text, category in rows:
        result = service.predict(text, source="api")
        if result.label == category:
            service.rate(result.request_id, "up")
        else:
            service.rate(result.request_id, "down", correct_label=category)
        review.review(settings, result.request_id, "accept", reviewer="bench")
    dispose_engines()
    return settings


def p95(samples: list[Sample]) -> float:
    ok = [s.latency_ms for s in samples if s.ok]
    return float(np.percentile(ok, 95)) if ok else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rps", type=float, default=20.0)
    parser.add_argument("--idle", type=float, default=20.0, help="seconds measured idle")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds not measured")
    parser.add_argument("--max-retrain", type=float, default=900.0,
                        help="give up waiting for the retrain after this many seconds")
    args = parser.parse_args()
    texts = load_dataset(DEFAULT_TEST).texts
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        print("Preparing: default model and reviewed feedback…", file=sys.stderr)
        settings = prepare(data_dir)
        samples: list[Sample] = []
        lock = threading.Lock()
        stop = threading.Event()
        with running_app(data_dir, data_dir / "app.log",
                         env_extra={"RATE_LIMIT_PER_MINUTE": "0"}) as url:
            client = httpx.Client(base_url=url, timeout=30,
                                  limits=httpx.Limits(max_connections=WORKERS))

            def one(text: str) -> None:
                started = time.monotonic()
                try:
                    response = client.post("/api/v1/predict", json={"text": text})
                    ok, error = response.status_code == 200, (
                        "" if response.status_code == 200 else f"HTTP {response.status_code}")
                except httpx.HTTPError as exc:
                    ok, error = False, repr(exc)
                sample = Sample(started, (time.monotonic() - started) * 1000, ok, error)
                with lock:
                    samples.append(sample)

            def pace(pool: ThreadPoolExecutor) -> None:
                begin, i = time.monotonic(), 0
                while not stop.is_set():
                    due = begin + i / args.rps
                    time.sleep(max(0.0, due - time.monotonic()))
                    pool.submit(one, texts[i % len(texts)])
                    i += 1

            with ThreadPoolExecutor(max_workers=WORKERS) as pool:
                pacer = threading.Thread(target=pace, args=(pool,), daemon=True)
                pacer.start()
                time.sleep(args.warmup)
                idle_from = time.monotonic()
                time.sleep(args.idle)
                launched = time.monotonic()
                job = launch_retrain(settings, actor="bench")
                print(f"Retrain job {job.id} launched; measuring…", file=sys.stderr)
                while time.monotonic() - launched < args.max_retrain:
                    job = get_job(settings, job.id)
                    if not job.active:
                        break
                    time.sleep(0.5)
                finished = time.monotonic()
                stop.set()
                pacer.join()
            client.close()
        dispose_engines()
    idle = [s for s in samples if idle_from <= s.started < launched]
    during = [s for s in samples if launched <= s.started < finished]
    measured = [s for s in samples if s.started >= idle_from]
    p_idle, p_during = p95(idle), p95(during)
    failures = [s for s in measured if not s.ok]
    offered = len(measured) / (finished - idle_from)
    summary = {
        "rps_target": args.rps, "rps_offered": round(offered, 2),
        "idle_requests": len(idle), "retrain_requests": len(during),
        "p50_idle_ms": round(float(np.percentile([s.latency_ms for s in idle], 50)), 2),
        "p95_idle_ms": round(p_idle, 2),
        "p50_retrain_ms": round(float(np.percentile([s.latency_ms for s in during], 50)), 2),
        "p95_retrain_ms": round(p_during, 2), "p95_ratio": round(p_during / p_idle, 2),
        "max_retrain_ms": round(max(s.latency_ms for s in during), 1),
        "failed_requests": len(failures), "retrain_seconds": round(finished - launched, 1),
        "retrain_state": job.state, "retrain_version": job.version,
        "canary_started": bool(job.summary and job.summary.get("canary_started")),
        "retrain_error": job.error,
    }
    print(f"offered {offered:.1f} requests/s (target {args.rps:g})")
    print(f"idle:       {len(idle):5d} requests  p50 {summary['p50_idle_ms']:7.2f} ms  "
          f"p95 {p_idle:7.2f} ms")
    print(f"retraining: {len(during):5d} requests  p50 {summary['p50_retrain_ms']:7.2f} ms  "
          f"p95 {p_during:7.2f} ms  (max {summary['max_retrain_ms']} ms)")
    print(f"p95 ratio retraining/idle: {summary['p95_ratio']:.2f} (target <= 2); failed "
          f"requests: {len(failures)}")
    print(f"retrain: {job.state} in {summary['retrain_seconds']} s, version {job.version}"
          + (f", error: {job.error}" if job.error else ""))
    for failure in failures[:5]:
        print("failed request:", failure.error)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
