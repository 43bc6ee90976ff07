"""REST API overhead: our POST /api/v1/predict against a bare FastAPI app, same model.

In one run, side by side on loopback:

  ours  `python app.py` (Gradio mounted, API key, rate limiter, body guard, metrics,
        validation, redaction, and one prediction row written per request to SQLite);
  bare  a minimal FastAPI app (this file with --serve-bare) that loads the same live model
        artifact from the same database (classifier.model.artifacts.load_model) and answers
        POST /predict with predict_proba: no checks, no logging.

A bounded asyncio + httpx load generator sends a fixed number of requests (or stops at a
time budget) at concurrency 1 and 8, alternating bare/ours in rounds so that drifting load
on a shared machine hits both alike. It reports p50/p99 latency and throughput of both and
the ratios. After the run our server is stopped and the prediction rows are counted: every
answered request must have left exactly one row (none lost).

Targets: our p50 within 1.25x of bare, our throughput at least 0.8x of bare, 0 rows lost.

    python benchmarks/bench_api.py                    # 2,000 requests per side and level
    python benchmarks/bench_api.py --n 400 --rounds 2 # quick run
    python benchmarks/bench_api.py --data-dir /tmp/st # keep / reuse the trained model

The last line printed is one JSON object with every number.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from benchmarks.apphost import ensure_trained, free_port, live_artifact, running  # noqa: E402

SECRET = "bench-secret-" + "0123456789abcdef"
# Settings the servers must not inherit from the caller's shell.
TARGET_P50_RATIO = 1.25
TARGET_THROUGHPUT_RATIO = 0.8


OURS_HEADERS = {"Authorization": f"Bearer {SECRET}"}


def ours_env(data_dir: Path, port: int) -> dict[str, str]:
    """`python app.py`'s environment: an API key required, and the rate limiter on every
    request with a limit the benchmark never reaches."""
    return {"DATA_DIR": str(data_dir), "GRADIO_SERVER_PORT": str(port),
            "API_KEYS": f"bench:{SECRET}",
            "RATE_LIMIT_PER_MINUTE": "100000000", "RATE_LIMIT_BURST": "1000000"}


class BareBody(BaseModel):
    text: str


def answer(pipeline: Any, classes: list[str], text: str) -> dict[str, object]:
    """What a peer server answers for one text: the label, its confidence and every
    category's probability, highest first (the shape of our API's answer)."""
    proba = pipeline.predict_proba([text])[0]
    scores = dict(sorted(((c, round(float(p), 6)) for c, p in zip(classes, proba,
                                                                  strict=True)),
                         key=lambda kv: kv[1], reverse=True))
    label, confidence = next(iter(scores.items()))
    return {"label": label, "confidence": confidence, "scores": scores}


def serve_bare(data_dir: Path, port: int) -> None:
    """The baseline: the live model behind one FastAPI route, nothing else."""
    import uvicorn
    from fastapi import FastAPI

    from classifier.model.artifacts import load_model

    version, data, sha = live_artifact(data_dir)
    pipeline = load_model(data, expected_sha256=sha, name=f"version {version}")
    classes = [str(c) for c in pipeline.classes_]
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, int]:
        return {"model_version": version}

    @app.post("/predict")
    def predict(body: BareBody) -> dict[str, object]:
        start = time.perf_counter()
        return {"request_id": uuid.uuid4().hex, **answer(pipeline, classes, body.text),
                "model_version": version,
                "latency_ms": round((time.perf_counter() - start) * 1000, 3)}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


@dataclasses.dataclass
class Run:
    latencies_ns: list[int] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    ok: int = 0
    failed: int = 0


async def load(url: str | list[str], headers: dict[str, str], messages: list[str], n: int,
               concurrency: int, budget_s: float, into: Run) -> None:
    """Send `n` requests from `concurrency` workers (or stop at the time budget); with
    several URLs, worker i sends to URL i mod len (round robin, as a load balancer would)."""
    urls = [url] if isinstance(url, str) else url
    cycle = itertools.cycle(messages)
    remaining = n
    deadline = time.monotonic() + budget_s
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30, headers=headers) as client:

        async def worker(target: str) -> None:
            nonlocal remaining
            while remaining > 0 and time.monotonic() < deadline:
                remaining -= 1
                text = next(cycle)
                start = time.perf_counter_ns()
                response = await client.post(target, json={"text": text})
                into.latencies_ns.append(time.perf_counter_ns() - start)
                if response.status_code == 200:
                    into.ok += 1
                else:
                    into.failed += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker(urls[i % len(urls)]) for i in range(concurrency)))
        into.seconds += time.perf_counter() - start


def summarize(run: Run) -> dict[str, float]:
    ms = np.asarray(run.latencies_ns, dtype=np.float64) / 1e6
    return {"n": int(ms.size), "ok": run.ok, "failed": run.failed,
            "p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "mean_ms": round(float(ms.mean()), 3),
            "throughput_rps": round(ms.size / run.seconds, 1)}


def count_api_rows(data_dir: Path) -> int:
    from sqlalchemy import create_engine, func, select

    from feedback.tables import Prediction

    engine = create_engine(f"sqlite:///{data_dir / 'support_triage.db'}")
    try:
        with engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(Prediction).where(
                Prediction.source == "api", Prediction.status == "ok")) or 0
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000,
                        help="timed requests per side and concurrency level (default 2000)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--rounds", type=int, default=4,
                        help="alternate bare/ours this many times per level (default 4)")
    parser.add_argument("--warmup", type=int, default=50, help="untimed requests per server")
    parser.add_argument("--budget", type=float, default=300,
                        help="seconds at most per side, round and level")
    parser.add_argument("--data-dir", type=Path, help="DATA_DIR (default: a temporary folder)")
    parser.add_argument("--server-timeout", type=float, default=180)
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare:
        serve_bare(args.data_dir, args.serve_bare)
        return 0

    from classifier.training.dataset import DEFAULT_TEST, load_dataset

    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        data_dir = (args.data_dir or Path(tmp) / "data").resolve()
        ensure_trained(data_dir)
        rows_before = count_api_rows(data_dir)
        messages = load_dataset(DEFAULT_TEST).texts

        ours_port, bare_port = free_port(), free_port()
        ours_url = f"http://127.0.0.1:{ours_port}"
        bare_url = f"http://127.0.0.1:{bare_port}"
        results: dict[str, dict[int, Run]] = {"bare": {}, "ours": {}}
        with running([sys.executable, "app.py"], ours_env(data_dir, ours_port),
                     f"{ours_url}/api/v1/health",
                     Path(tmp) / "ours.log", args.server_timeout), \
             running([sys.executable, __file__, "--serve-bare", str(bare_port), "--data-dir",
                      str(data_dir)], {"DATA_DIR": str(data_dir)}, f"{bare_url}/health",
                     Path(tmp) / "bare.log",
                     args.server_timeout):
            sides = {"bare": (f"{bare_url}/predict", {}),
                     "ours": (f"{ours_url}/api/v1/predict", OURS_HEADERS)}
            for name, (url, headers) in sides.items():
                warm = Run()
                asyncio.run(load(url, headers, messages, args.warmup, 1, 60, warm))
                results.setdefault(f"{name}_warmup_ok", {})[0] = warm
            for concurrency in args.concurrency:
                per_round = max(1, args.n // args.rounds)
                for name in sides:
                    results[name][concurrency] = Run()
                for _ in range(args.rounds):
                    for name, (url, headers) in sides.items():
                        asyncio.run(load(url, headers, messages, per_round, concurrency,
                                         args.budget, results[name][concurrency]))
                print(f"  concurrency {concurrency}: done", file=sys.stderr)
        # Our server has exited (gracefully): every row it was going to write is written.
        warm_ok = results["ours_warmup_ok"][0].ok
        sent_ok = sum(run.ok for run in results["ours"].values()) + warm_ok
        rows = count_api_rows(data_dir) - rows_before

    table = []
    ratios: dict[str, dict[str, float]] = {}
    for concurrency in args.concurrency:
        bare, ours = summarize(results["bare"][concurrency]), summarize(
            results["ours"][concurrency])
        table += [("bare", concurrency, bare), ("ours", concurrency, ours)]
        ratios[str(concurrency)] = {
            "p50": round(ours["p50_ms"] / bare["p50_ms"], 3),
            "p99": round(ours["p99_ms"] / bare["p99_ms"], 3),
            "throughput": round(ours["throughput_rps"] / bare["throughput_rps"], 3)}
    print()
    header = (f"{'server':<6} {'conc':>4} {'n':>6} {'failed':>6} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'mean ms':>8} {'req/s':>8}")
    print(header)
    print("-" * len(header))
    for name, concurrency, s in table:
        print(f"{name:<6} {concurrency:>4} {s['n']:>6} {s['failed']:>6} {s['p50_ms']:>8.2f} "
              f"{s['p99_ms']:>8.2f} {s['mean_ms']:>8.2f} {s['throughput_rps']:>8.1f}")
    print()
    passed = rows == sent_ok and all(s["failed"] == 0 for _, _, s in table)
    for concurrency, r in ratios.items():
        ok_p50 = r["p50"] <= TARGET_P50_RATIO
        ok_tp = r["throughput"] >= TARGET_THROUGHPUT_RATIO
        passed = passed and ok_p50 and ok_tp
        print(f"concurrency {concurrency}: ours/bare p50 x{r['p50']} "
              f"({'ok' if ok_p50 else 'MISS'}, target <= {TARGET_P50_RATIO}), p99 x{r['p99']}, "
              f"throughput x{r['throughput']} ({'ok' if ok_tp else 'MISS'}, target >= "
              f"{TARGET_THROUGHPUT_RATIO})")
    print(f"prediction rows: {rows} written for {sent_ok} answered requests "
          f"({sent_ok - rows} lost)")
    print(json.dumps({
        "benchmark": "api", "n_per_level": args.n, "rounds": args.rounds,
        "results": {f"{name}_c{c}": s for name, c, s in table}, "ratios": ratios,
        "rows_expected": sent_ok, "rows_written": rows, "rows_lost": sent_ok - rows,
        "targets_met": passed, "cpus": os.cpu_count(), "python": platform.python_version()}))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
