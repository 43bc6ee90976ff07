"""Throughput with 1, 2 and 3 replicas of the app on one PostgreSQL database.

Each replica is `python app.py` with DATABASE_URL pointing at one fresh schema of the local
PostgreSQL (127.0.0.1:5432, database `test`, or --database-url), all serving the same live
model. A load generator sends REST predictions at a fixed concurrency, its workers spread
round robin over the replicas (as a load balancer would), for 1, 2 and 3 replicas in
alternating order over --rounds rounds. It prints throughput and latency per replica count,
the CPU seconds each side used (replicas, load generator, PostgreSQL's processes), and the
prediction rows written against answered requests (none may be lost).

    python benchmarks/bench_replicas.py                 # default model, 3 rounds
    python benchmarks/bench_replicas.py --model tfidf   # quick: the small model

The last line printed is one JSON object with every number.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.apphost import free_port, running, total_cpu  # noqa: E402
from benchmarks.bench_api import Run, load, summarize  # noqa: E402

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and (entry / "comm").read_text().startswith("postgres"):
                pids.append(int(entry.name))
    return pids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--n", type=int, default=1500, help="requests per count and round")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default=None, help="first-start model (default: the app's)")
    parser.add_argument("--database-url", default=POSTGRES)
    args = parser.parse_args(argv)

    from sqlalchemy import create_engine, func, select, text

    from classifier.training.dataset import DEFAULT_TEST, load_dataset
    from classifier.training.default_model import ensure_live_model
    from feedback.db import dispose_engines
    from feedback.settings import load_settings
    from feedback.tables import Prediction

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(args.database_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{args.database_url}?options=-csearch_path%3D{schema}"
    results: dict[int, Run] = {k: Run() for k in args.replicas}
    cpu: dict[int, dict[str, float]] = {k: {"replicas": 0.0, "client": 0.0, "postgres": 0.0}
                                        for k in args.replicas}
    try:
        settings = dataclasses.replace(load_settings(), database_url=url,
                                       data_dir=Path(tempfile.mkdtemp(prefix="bench-rep-")))
        model = {"model": args.model} if args.model else {}
        ensure_live_model(settings, progress=lambda m: print(f"  {m}", file=sys.stderr),
                          **model)
        dispose_engines()
        messages = load_dataset(DEFAULT_TEST).texts
        env = {"DATABASE_URL": url, "RATE_LIMIT_PER_MINUTE": "0"}
        with tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp, \
                contextlib.ExitStack() as stack:
            urls, pids = [], []
            for i in range(max(args.replicas)):
                port = free_port()
                urls.append(f"http://127.0.0.1:{port}")
                process = stack.enter_context(running(
                    [sys.executable, "app.py"],
                    {**env, "DATA_DIR": str(Path(tmp) / f"data-{i}"),
                     "GRADIO_SERVER_PORT": str(port)},
                    f"{urls[-1]}/api/v1/health", Path(tmp) / f"replica-{i}.log", 240))
                pids.append(process.pid)
            predict = [f"{u}/api/v1/predict" for u in urls]
            for target in predict:  # warm up every replica
                asyncio.run(load(target, {}, messages, 50, 1, 60, Run()))
            for round_ in range(args.rounds):
                order = args.replicas if round_ % 2 == 0 else list(reversed(args.replicas))
                for k in order:
                    before = (total_cpu(pids[:k]), time.process_time(),
                              total_cpu(postgres_pids()))
                    asyncio.run(load(predict[:k], {}, messages, args.n, args.concurrency,
                                     600, results[k]))
                    after = (total_cpu(pids[:k]), time.process_time(),
                             total_cpu(postgres_pids()))
                    for key, b, a in zip(("replicas", "client", "postgres"), before, after,
                                         strict=True):
                        cpu[k][key] += a - b
                print(f"  round {round_ + 1}: done", file=sys.stderr)
        engine = create_engine(url)
        with engine.connect() as conn:
            rows = conn.scalar(select(func.count()).select_from(Prediction).where(
                Prediction.source == "api", Prediction.status == "ok")) or 0
        engine.dispose()
    finally:
        dispose_engines()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    answered = sum(r.ok for r in results.values()) + 50 * max(args.replicas)
    print(f"\n{'replicas':>8} {'n':>6} {'failed':>6} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}"
          f"  CPU s: {'replicas':>8} {'client':>7} {'postgres':>8}")
    table = {}
    for k in args.replicas:
        s = summarize(results[k])
        table[k] = {**s, "cpu_s": {key: round(v, 1) for key, v in cpu[k].items()}}
        print(f"{k:>8} {s['n']:>6} {s['failed']:>6} {s['p50_ms']:>8.2f} {s['p99_ms']:>8.2f} "
              f"{s['throughput_rps']:>8.1f}         {cpu[k]['replicas']:>8.1f} "
              f"{cpu[k]['client']:>7.1f} {cpu[k]['postgres']:>8.1f}")
    busy = {k: (sum(cpu[k].values()) / results[k].seconds) for k in args.replicas}
    print("\ncores kept busy (replicas + client + PostgreSQL CPU per wall second): "
          + ", ".join(f"{k}: {b:.2f}" for k, b in busy.items())
          + f" of {os.cpu_count()}")
    print(f"prediction rows: {rows} written for {answered} answered requests "
          f"({answered - rows} lost)")
    print(json.dumps({"benchmark": "replicas", "concurrency": args.concurrency,
                      "rounds": args.rounds, "results": table,
                      "cores_busy": {k: round(b, 2) for k, b in busy.items()},
                      "median_latency_ms": {k: round(statistics.median(
                          results[k].latencies_ns) / 1e6, 3) for k in args.replicas},
                      "rows_written": rows, "rows_answered": answered,
                      "cpus": os.cpu_count()}))
    return 0 if rows == answered and all(r.failed == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
