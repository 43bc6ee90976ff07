"""Serving overhead against two peers serving the same model: bare FastAPI and MLflow serve.

In one run, the three servers pinned to core 0 and the load generator pinned to core 1
(`taskset`), so the client never takes the servers' CPU (the fault of bench_api.py, whose
load generator shares both cores with the server):

  bare    a minimal FastAPI app (bench_api.py --serve-bare): the live model, no checks, no log;
  mlflow  `mlflow models serve --env-manager local` (one uvicorn worker) serving the same
          artifact, loaded by classifier.model.artifacts.load_model in a pyfunc wrapper
          (benchmarks/mlflow_model.py), JSON `{"inputs": [text]}`;
  ours    `python app.py` with API keys: POST /api/v1/predict, every request logged and
          committed (group commit, the default).

The load generator is a separate process: one stdlib `http.client` keep-alive connection per
thread, pre-encoded JSON bodies cycling through Banking77's test texts, a fixed request count
per run (bounded by a time budget). It reports its own CPU share (CPU time / wall time) and
the server's, so a reader can see which side is the bottleneck. Each round first measures the
model's own floor (in-process `predict_proba` on one text, median of --floor-calls calls, in
a process pinned to the servers' core), then runs concurrency 1 and 8 against every server,
in an order rotated per round. Reported: per-server medians over rounds and medians of
per-round ratios. After the run our server is stopped and its log rows counted (0 lost).

Targets: ours' p50 above the model floor at c=1 at most 1.5 ms; ours' throughput at c=8 at
least 1.5x MLflow's; ours' p99 at c=8 no worse than MLflow's; no failed request, no lost row.

    python benchmarks/bench_serving.py --mlflow-python /work/mlflow-venv/bin/python
    python benchmarks/bench_serving.py --quick              # one short round: does it work?
    python benchmarks/bench_serving.py --data-dir /tmp/st   # keep / reuse the trained model

MLflow comes from benchmarks/requirements-serving.txt, in its own virtualenv (it conflicts
with the dev requirements); --mlflow-python names that environment's python (default: this
one). The last line printed is one JSON object with every number; exit status 1 when a
target fails.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SERVER_CORE, CLIENT_CORE = 0, 1
SERVERS = ("bare", "mlflow", "ours")
TARGET_OVERHEAD_MS = 1.5  # ours: p50 at c=1 minus the model's floor
TARGET_THROUGHPUT_VS_MLFLOW = 1.5  # ours / MLflow at c=8
TARGET_P99_VS_MLFLOW = 1.0  # ours / MLflow at c=8


def pinned(core: int, command: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *command]


# --- the load generator (run as its own process on the client core) -----------------------

def load_generator(spec: dict) -> dict:
    """Send spec["warmup"] untimed then spec["n"] timed requests from spec["concurrency"]
    threads, each with its own keep-alive connection; returns latencies and CPU shares."""
    from benchmarks.apphost import total_cpu

    bodies = [b.encode() for b in spec["bodies"]]
    headers = {"Content-Type": "application/json", **spec["headers"]}
    concurrency, n, budget = spec["concurrency"], spec["n"], spec["budget"]
    warm_counter, counter = itertools.count(), itertools.count()  # next() is atomic
    start = threading.Barrier(concurrency + 1)
    latencies: list[list[int]] = [[] for _ in range(concurrency)]
    outcome = [{"ok": 0, "failed": 0, "warm_ok": 0, "connects": 0, "error": ""}
               for _ in range(concurrency)]

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection(spec["host"], spec["port"], timeout=30)
        mine, out = latencies[i], outcome[i]

        def send(k: int) -> tuple[int, int]:
            if conn.sock is None:
                out["connects"] += 1
            t0 = time.perf_counter_ns()
            try:
                conn.request("POST", spec["path"], bodies[k % len(bodies)], headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                out["error"] = repr(exc)
                status = 0
            return status, time.perf_counter_ns() - t0

        while (k := next(warm_counter)) < spec["warmup"]:
            out["warm_ok"] += send(k)[0] == 200
        out["connects"] = 0
        start.wait()
        deadline = time.monotonic() + budget
        while time.monotonic() < deadline and (k := next(counter)) < n:
            status, elapsed = send(k)
            mine.append(elapsed)
            out["ok" if status == 200 else "failed"] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    start.wait()
    wall0, cpu0 = time.perf_counter(), os.times()
    server0 = total_cpu(spec["server_pids"])
    idle0 = {name: total_cpu(pids) for name, pids in spec["idle_pids"].items()}
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - wall0
    cpu1 = os.times()
    server_cpu = total_cpu(spec["server_pids"]) - server0
    idle = {name: (total_cpu(pids) - idle0[name]) / wall
            for name, pids in spec["idle_pids"].items()}
    client_cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return {"latencies_ns": sorted(itertools.chain.from_iterable(latencies)),
            "seconds": wall,
            **{key: sum(o[key] for o in outcome) for key in ("ok", "failed", "warm_ok",
                                                             "connects")},
            "errors": sorted({o["error"] for o in outcome if o["error"]}),
            "client_cpu_share": client_cpu / wall, "server_cpu_share": server_cpu / wall,
            "idle_cpu_share": idle}


# --- the model's own floor (its own process, on the server core) -------------------------

def model_floor(artifact: Path, meta: Path, data_dir: Path) -> None:
    """Load the model once; for every number N read from stdin, time N in-process
    predict_proba calls on one text each (Banking77 test texts, cycled) and print one JSON
    line with their median. The same process serves every measurement of a run."""
    from classifier.model.artifacts import load_model
    from classifier.model.features import using_data_dir
    from classifier.training.dataset import DEFAULT_TEST, load_dataset

    info = json.loads(meta.read_text())
    pipeline = load_model(artifact.read_bytes(), expected_sha256=info["sha256"])
    texts = load_dataset(DEFAULT_TEST).texts
    with using_data_dir(data_dir):
        for line in sys.stdin:
            calls, times = int(line), []
            for k in range(calls + 20):  # 20 untimed: caches warm again after a pause
                if k == 20:
                    cpu0 = time.process_time_ns()
                t0 = time.perf_counter_ns()
                pipeline.predict_proba([texts[k % len(texts)]])
                if k >= 20:
                    times.append(time.perf_counter_ns() - t0)
            print(json.dumps({"p50_ms": statistics.median(times) / 1e6,
                              "mean_ms": statistics.fmean(times) / 1e6,
                              "cpu_ms": (time.process_time_ns() - cpu0) / calls / 1e6}),
                  flush=True)


@contextmanager
def floor_process(artifact: Path, meta: Path, data_dir: Path) -> Iterator[Callable[[int], dict]]:
    """A model-floor process pinned to the servers' core; yields measure(calls), which
    returns the p50 wall time and the mean CPU time of one call, in ms."""
    process = subprocess.Popen(
        pinned(SERVER_CORE, [sys.executable, __file__, "--floor", str(artifact), str(meta),
                             "--data-dir", str(data_dir)]),
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdin is not None and process.stdout is not None

    def measure(calls: int) -> dict:
        process.stdin.write(f"{calls}\n")
        process.stdin.flush()
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the model-floor process exited ({process.wait()})")
        return json.loads(line)

    try:
        yield measure
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- MLflow: save the live artifact as a pyfunc model (run with MLflow's python) ----------

def save_mlflow_model(target: Path, artifact: Path, meta: Path) -> None:
    import mlflow

    mlflow.pyfunc.save_model(
        str(target), python_model=str(ROOT / "benchmarks" / "mlflow_model.py"),
        artifacts={"model": str(artifact), "meta": str(meta)},
        code_paths=[str(ROOT / name) for name in ("classifier", "feedback", "benchmarks")])


# --- the orchestrator ---------------------------------------------------------------------

def percentile(sorted_values: list[int], q: float) -> float:
    """Linear-interpolation percentile (numpy's default) of sorted values."""
    position = (len(sorted_values) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def summarize(run: dict) -> dict:
    ms = run["latencies_ns"]
    return {"n": len(ms), "ok": run["ok"], "failed": run["failed"],
            "p50_ms": round(percentile(ms, 50) / 1e6, 3),
            "p99_ms": round(percentile(ms, 99) / 1e6, 3),
            "mean_ms": round(statistics.fmean(ms) / 1e6, 3),
            "throughput_rps": round(len(ms) / run["seconds"], 1),
            "client_cpu": round(run["client_cpu_share"], 3),
            "server_cpu": round(run["server_cpu_share"], 3),
            "server_cpu_ms_per_request": round(run["server_cpu_share"] * run["seconds"]
                                               / max(len(ms), 1) * 1000, 3),
            "idle_peers_cpu": round(sum(run["idle_cpu_share"].values()), 3),
            "connects": run["connects"]}


def run_json(command: list[str], what: str) -> dict:
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000,
                        help="timed requests per server, concurrency and round (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, server order rotated "
                        "each round (default 3)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--warmup", type=int, default=100,
                        help="untimed requests before each run (default 100)")
    parser.add_argument("--floor-calls", type=int, default=500,
                        help="in-process predict_proba calls per round (default 500)")
    parser.add_argument("--budget", type=float, default=120,
                        help="seconds at most per timed run (default 120)")
    parser.add_argument("--data-dir", type=Path, help="DATA_DIR (default: a temporary folder)")
    parser.add_argument("--mlflow-python", type=Path, default=Path(sys.executable),
                        help="python of an environment with benchmarks/requirements-serving.txt "
                        "(default: this one)")
    parser.add_argument("--quick", action="store_true",
                        help="one round of 200 requests: checks the harness, not the numbers")
    parser.add_argument("--server-timeout", type=float, default=240)
    parser.add_argument("--client", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--floor", nargs=2, type=Path, metavar=("ARTIFACT", "META"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--save-mlflow", nargs=3, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        print(json.dumps(load_generator(json.loads(args.client.read_text()))))
        return 0
    if args.floor:
        model_floor(*args.floor, args.data_dir)
        return 0
    if args.save_mlflow:
        save_mlflow_model(*args.save_mlflow)
        return 0
    if args.quick:
        args.n, args.rounds, args.warmup, args.floor_calls = 200, 1, 30, 200
    if len(os.sched_getaffinity(0)) < 2:
        parser.error("needs two cores: servers on core 0, the load generator on core 1")

    import contextlib

    from benchmarks.apphost import ensure_trained, free_port, live_artifact, process_tree, running
    from benchmarks.bench_api import OURS_HEADERS, count_api_rows, ours_env
    from classifier.training.dataset import DEFAULT_TEST, load_dataset

    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp_name:
        tmp = Path(tmp_name)
        data_dir = (args.data_dir or tmp / "data").resolve()
        ensure_trained(data_dir)
        low = min(args.concurrency)
        version, data, sha = live_artifact(data_dir)
        artifact, meta = tmp / "model.skops", tmp / "meta.json"
        artifact.write_bytes(data)
        meta.write_text(json.dumps({"version": version, "sha256": sha}))
        mlflow_dir = tmp / "mlflow-model"
        saved = subprocess.run([str(args.mlflow_python), __file__, "--save-mlflow",
                                str(mlflow_dir), str(artifact), str(meta)], cwd=ROOT,
                               capture_output=True, text=True)
        if saved.returncode != 0:
            raise RuntimeError(f"saving the MLflow model with {args.mlflow_python} failed "
                               "(is benchmarks/requirements-serving.txt installed there?):\n"
                               + saved.stderr[-3000:])
        mlflow_version = subprocess.run(
            [str(args.mlflow_python), "-c", "import mlflow; print(mlflow.__version__)"],
            capture_output=True, text=True, check=True).stdout.strip()
        texts = load_dataset(DEFAULT_TEST).texts
        rows_before = count_api_rows(data_dir)

        ports = {name: free_port() for name in SERVERS}
        targets = {  # path, headers, one body per text
            "bare": ("/predict", {}, [json.dumps({"text": t}) for t in texts]),
            "mlflow": ("/invocations", {}, [json.dumps({"inputs": [t]}) for t in texts]),
            "ours": ("/api/v1/predict", OURS_HEADERS, [json.dumps({"text": t}) for t in texts]),
        }
        mlflow_bin = str(args.mlflow_python.parent)
        commands = {
            "bare": ([sys.executable, str(ROOT / "benchmarks" / "bench_api.py"), "--serve-bare",
                      str(ports["bare"]), "--data-dir", str(data_dir)],
                     {"DATA_DIR": str(data_dir)}, "/health", False),
            "mlflow": ([str(args.mlflow_python), "-m", "mlflow", "models", "serve", "-m",
                        str(mlflow_dir), "--env-manager", "local", "-p", str(ports["mlflow"]),
                        "-h", "127.0.0.1", "-w", "1"],
                       # the encoder's derived graph is in DATA_DIR; `uvicorn` is found on PATH
                       {"DATA_DIR": str(data_dir),
                        "PATH": f"{mlflow_bin}{os.pathsep}{os.environ.get('PATH', '')}"},
                       "/health", True),
            "ours": ([sys.executable, "app.py"], ours_env(data_dir, ports["ours"]),
                     "/api/v1/health", False),
        }
        runs: dict[tuple[str, int, int], dict] = {}
        floors: dict[tuple[str, int], float] = {}  # wall p50 ms bracketing each c=low run
        floor_cpu: list[float] = []  # CPU ms of one call, every measurement
        answered = 0  # requests our server answered 200: each must have left a log row
        with contextlib.ExitStack() as stack:
            pids = {}
            for name, (command, env, health, group) in commands.items():
                process = stack.enter_context(running(
                    pinned(SERVER_CORE, command), env,
                    f"http://127.0.0.1:{ports[name]}{health}", tmp / f"{name}.log",
                    args.server_timeout, group=group))
                pids[name] = process.pid
            floor = stack.enter_context(floor_process(artifact, meta, data_dir))
            trees = {name: process_tree(pid) for name, pid in pids.items()}
            for name, tree in trees.items():
                cores = set().union(*(os.sched_getaffinity(pid) for pid in tree))
                if cores != {SERVER_CORE}:
                    raise RuntimeError(f"{name} runs on cores {cores}, not {SERVER_CORE}")
            print(f"servers on core {SERVER_CORE}: " + ", ".join(
                f"{name} pids {tree}" for name, tree in trees.items()), file=sys.stderr)

            def load(name: str, concurrency: int, n: int, warmup: int) -> dict:
                path, headers, bodies = targets[name]
                spec = tmp / "client.json"
                spec.write_text(json.dumps({
                    "host": "127.0.0.1", "port": ports[name], "path": path,
                    "headers": headers, "bodies": bodies, "n": n, "warmup": warmup,
                    "concurrency": concurrency, "budget": args.budget,
                    "server_pids": trees[name],
                    "idle_pids": {other: t for other, t in trees.items() if other != name}}))
                return run_json(pinned(CLIENT_CORE, [sys.executable, __file__, "--client",
                                                     str(spec)]), f"load on {name}")

            for name in SERVERS:  # first requests load encoders and warm caches
                run = load(name, 1, 0, 300)
                if name == "ours":
                    answered += run["warm_ok"]
            for round_ in range(args.rounds):
                order = SERVERS[round_ % 3:] + SERVERS[:round_ % 3]
                for concurrency in args.concurrency:
                    for name in order:
                        before = floor(args.floor_calls) if concurrency == low else {}
                        run = runs[name, concurrency, round_] = load(
                            name, concurrency, args.n, args.warmup)
                        if concurrency == low:  # the floor bracketing this run
                            after = floor(args.floor_calls)
                            floors[name, round_] = (before["p50_ms"] + after["p50_ms"]) / 2
                            floor_cpu.extend((before["cpu_ms"], after["cpu_ms"]))
                        if name == "ours":
                            answered += run["warm_ok"] + run["ok"]
                print(f"  round {round_ + 1}/{args.rounds} ({' '.join(order)}): floor " + ", ".join(
                    f"{floors[name, round_]:.2f}" for name in order) + " ms, " + ", ".join(
                          f"{name} c{c} p50 {summarize(runs[name, c, round_])['p50_ms']:.2f}"
                          for c in args.concurrency for name in SERVERS), file=sys.stderr)
        # Our server has exited (gracefully): every row it was going to write is written.
        rows = count_api_rows(data_dir) - rows_before
        logs = {name: (tmp / f"{name}.log").read_text(errors="replace")[-2000:]
                for name in SERVERS}

    return report(args, runs, floors, floor_cpu, rows, answered, mlflow_version, logs)


def report(args: argparse.Namespace, runs: dict[tuple[str, int, int], dict],
           floors: dict[tuple[str, int], float], floor_cpu: list[float], rows: int,
           answered: int, mlflow_version: str, logs: dict[str, str]) -> int:
    rounds = range(args.rounds)
    per_round = {key: summarize(run) for key, run in runs.items()}
    table = {}
    for concurrency in args.concurrency:
        for name in SERVERS:
            rs = [per_round[name, concurrency, r] for r in rounds]
            table[f"{name}_c{concurrency}"] = {
                key: median([s[key] for s in rs])
                for key in ("p50_ms", "p99_ms", "mean_ms", "throughput_rps", "client_cpu",
                            "server_cpu", "idle_peers_cpu", "server_cpu_ms_per_request")}
            table[f"{name}_c{concurrency}"]["n"] = sum(s["n"] for s in rs)
            table[f"{name}_c{concurrency}"]["failed"] = sum(s["failed"] for s in rs)
    low, high = min(args.concurrency), max(args.concurrency)
    ratios = {
        **{f"{name}_overhead_ms_c{low}": median(
            [per_round[name, low, r]["p50_ms"] - floors[name, r] for r in rounds])
           for name in SERVERS},
        f"ours_vs_mlflow_throughput_c{high}": median(
            [per_round["ours", high, r]["throughput_rps"]
             / per_round["mlflow", high, r]["throughput_rps"] for r in rounds]),
        f"ours_vs_mlflow_p99_c{high}": median(
            [per_round["ours", high, r]["p99_ms"] / per_round["mlflow", high, r]["p99_ms"]
             for r in rounds]),
        f"ours_vs_bare_throughput_c{high}": median(
            [per_round["ours", high, r]["throughput_rps"]
             / per_round["bare", high, r]["throughput_rps"] for r in rounds]),
        f"mlflow_vs_bare_throughput_c{high}": median(
            [per_round["mlflow", high, r]["throughput_rps"]
             / per_round["bare", high, r]["throughput_rps"] for r in rounds]),
    }
    idle_own = {name: median([run["idle_cpu_share"][name] for (other, _, _), run
                              in runs.items() if other != name]) for name in SERVERS}
    failed = sum(s["failed"] for s in per_round.values())
    errors = sorted({e for run in runs.values() for e in run["errors"]})
    reconnects = sum(s["connects"] for s in per_round.values())
    checks = {
        f"ours overhead above the model at c={low} <= {TARGET_OVERHEAD_MS} ms":
            ratios[f"ours_overhead_ms_c{low}"] <= TARGET_OVERHEAD_MS,
        f"ours / MLflow throughput at c={high} >= {TARGET_THROUGHPUT_VS_MLFLOW}":
            ratios[f"ours_vs_mlflow_throughput_c{high}"] >= TARGET_THROUGHPUT_VS_MLFLOW,
        f"ours / MLflow p99 at c={high} <= {TARGET_P99_VS_MLFLOW}":
            ratios[f"ours_vs_mlflow_p99_c{high}"] <= TARGET_P99_VS_MLFLOW,
        "no failed request": failed == 0,
        "no lost log row": rows == answered,
    }

    print()
    header = (f"{'server':<7}{'conc':>5}{'n':>7}{'failed':>7}{'p50 ms':>8}{'p99 ms':>8}"
              f"{'mean ms':>8}{'req/s':>8}   CPU share: {'server':>6}{'client':>7}{'idle':>6}"
              f"  {'CPU ms/req':>10}")
    print(header)
    print("-" * len(header))
    for concurrency in args.concurrency:
        for name in SERVERS:
            s = table[f"{name}_c{concurrency}"]
            print(f"{name:<7}{concurrency:>5}{s['n']:>7}{s['failed']:>7}{s['p50_ms']:>8.2f}"
                  f"{s['p99_ms']:>8.2f}{s['mean_ms']:>8.2f}{s['throughput_rps']:>8.1f}"
                  f"{'':>15}{s['server_cpu']:>6.2f}{s['client_cpu']:>7.2f}"
                  f"{s['idle_peers_cpu']:>6.2f}  {s['server_cpu_ms_per_request']:>10.2f}")
    print(f"\n(medians over {args.rounds} round(s) of {args.n} requests; CPU share = CPU "
          "seconds per wall second of the measured server (core 0), of the load generator "
          "(core 1), and of the two idle servers; CPU ms/req = the measured server's CPU time "
          "per answered request)")
    print(f"model floor (in-process predict_proba on one text, p50 of {args.floor_calls} calls "
          f"before and after each c={low} run): " + ", ".join(
              f"{name} " + "/".join(f"{floors[name, r]:.2f}" for r in rounds) for name in SERVERS)
          + f" ms; median {median(list(floors.values())):.3f} ms")
    model_cpu = median(floor_cpu)
    cpu_above = {name: round(table[f"{name}_c{high}"]["server_cpu_ms_per_request"] - model_cpu, 3)
                 for name in SERVERS}
    print(f"CPU time per request above the model's own ({model_cpu:.2f} ms a call) at c={high}: "
          + ", ".join(f"{name} {v:.2f} ms" for name, v in cpu_above.items())
          + " (CPU time, so less moved by other jobs on the machine than latency)")
    overheads = ", ".join(f"{name} {ratios[f'{name}_overhead_ms_c{low}']:.2f} ms"
                          for name in SERVERS)
    print(f"overhead above the model at c={low} (p50 - floor, median of rounds): {overheads}")
    print(f"c={high}: ours/MLflow throughput x{ratios[f'ours_vs_mlflow_throughput_c{high}']}, "
          f"p99 x{ratios[f'ours_vs_mlflow_p99_c{high}']}; ours/bare throughput "
          f"x{ratios[f'ours_vs_bare_throughput_c{high}']}; MLflow/bare throughput "
          f"x{ratios[f'mlflow_vs_bare_throughput_c{high}']}")
    print("CPU share of each server while idle (the others measured; median): " + ", ".join(
        f"{name} {share:.3f}" for name, share in idle_own.items()))
    print(f"prediction rows: {rows} written for {answered} answered requests "
          f"({answered - rows} lost); connections reopened during timed runs: {reconnects}")
    for check, ok in checks.items():
        print(f"  {'ok  ' if ok else 'MISS'} {check}")
    if errors:
        print(f"errors: {errors[:5]}")
        for name, tail in logs.items():
            print(f"--- {name} log (end) ---\n{tail}")
    passed = all(checks.values())
    print(json.dumps({
        "benchmark": "serving", "n_per_run": args.n, "rounds": args.rounds,
        "warmup": args.warmup, "results": table,
        "per_round": {f"{name}_c{c}_r{r + 1}": s for (name, c, r), s in per_round.items()},
        "model_floor_ms": {f"{name}_r{r + 1}": round(v, 3) for (name, r), v in floors.items()},
        "ratios": ratios,
        "idle_cpu_share": idle_own, "model_cpu_ms": model_cpu,
        f"cpu_ms_above_model_c{high}": cpu_above,
        "rows_expected": answered, "rows_written": rows, "rows_lost": answered - rows,
        "targets": checks, "targets_met": passed, "mlflow": mlflow_version,
        "cpus": os.cpu_count(), "python": platform.python_version()}))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
