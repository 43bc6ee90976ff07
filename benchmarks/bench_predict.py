"""Latency of one classify request at three depths, side by side.

1. raw      `pipeline.predict_proba([text])` of the live model (the sklearn work alone);
2. service  `PredictionService.predict(text)` in-process: validation, redaction, model,
            and the SQLite write of the prediction log row;
3. e2e      `gradio_client.Client.predict(text, api_name="/classify")` against `python app.py`
            started as a subprocess on the same DATA_DIR (HTTP, Gradio queue, SSE, JSON);
4. rest     the same event through Gradio's plain REST pair with httpx (POST
            /gradio_api/call/classify, then read its SSE stream), to tell the cost of the
            server's queue from the cost of gradio_client itself.

Requests run one after another (no concurrency). Messages are the texts of
classifier/data/test.csv, cycled. Usage (from the repository root):

    python benchmarks/bench_predict.py                     # N=1000 in-process, N=300 e2e
    python benchmarks/bench_predict.py --n 200 --n-e2e 50  # quick run
    python benchmarks/bench_predict.py --data-dir /tmp/st  # keep / reuse the trained model

The last line printed is one JSON object with every number, for scripts.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.apphost import running_app  # noqa: E402
from classifier.bootstrap import ensure_live_model  # noqa: E402
from classifier.dataset import DEFAULT_TEST, load_dataset  # noqa: E402
from classifier.service import PredictionService  # noqa: E402
from feedback.db import dispose_engines  # noqa: E402
from feedback.settings import Settings, load_settings  # noqa: E402

# Settings the benchmark must not inherit from the caller's shell.


def stats_ms(samples_ns: list[int]) -> dict[str, float]:
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    return {
        "n": int(ms.size),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p90_ms": round(float(np.percentile(ms, 90)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "max_ms": round(float(ms.max()), 3),
    }


def timed(call: Callable[[str], object], messages: list[str], n: int, warmup: int) -> list[int]:
    """Run `call` on `n` messages (after `warmup` untimed calls); nanoseconds per call."""
    cycle = itertools.cycle(messages)
    for _ in range(warmup):
        call(next(cycle))
    samples = []
    for _ in range(n):
        text = next(cycle)
        start = time.perf_counter_ns()
        call(text)
        samples.append(time.perf_counter_ns() - start)
    return samples


def gradio_rest_call(http: httpx.Client, url: str) -> Callable[[str], object]:
    """One /classify through Gradio's REST API: POST the event, read its SSE result."""

    def call(text: str) -> object:
        posted = http.post(f"{url}/gradio_api/call/classify", json={"data": [text]})
        posted.raise_for_status()
        event_id = posted.json()["event_id"]
        event = ""
        with http.stream("GET", f"{url}/gradio_api/call/classify/{event_id}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    if event == "error":
                        raise RuntimeError(f"classify failed: {line}")
                    return json.loads(line[5:])
        raise RuntimeError("no result in the event stream")

    return call


def print_table(rows: list[tuple[str, dict[str, float]]]) -> None:
    header = f"{'path':<36} {'n':>6} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} {'mean ms':>9}"
    print(header)
    print("-" * len(header))
    for name, s in rows:
        print(f"{name:<36} {s['n']:>6} {s['p50_ms']:>9.3f} {s['p90_ms']:>9.3f} "
              f"{s['p99_ms']:>9.3f} {s['mean_ms']:>9.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000,
                        help="timed in-process calls, raw and service each (default 1000)")
    parser.add_argument("--n-e2e", type=int, default=300,
                        help="timed gradio_client calls (default 300; 0 skips the app)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed calls before each run")
    parser.add_argument("--data-dir", type=Path,
                        help="DATA_DIR to use (default: a fresh temporary folder)")
    parser.add_argument("--server-timeout", type=float, default=180,
                        help="seconds to wait for app.py to become healthy")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        data_dir = (args.data_dir or Path(tmp) / "data").resolve()
        base = load_settings()
        settings: Settings = dataclasses.replace(base, data_dir=data_dir, database_url="")

        start = time.perf_counter()
        trained = ensure_live_model(settings, progress=lambda m: print(f"  {m}", file=sys.stderr))
        setup_s = time.perf_counter() - start
        print(f"DATA_DIR {data_dir}: default model "
              f"{'trained' if trained else 'already live'} in {setup_s:.1f}s")

        messages = load_dataset(DEFAULT_TEST).texts
        service = PredictionService(settings)
        model = service.current_model()
        print(f"model version {model.version}, {len(model.labels)} labels; "
              f"{len(messages)} test messages, cycled; warm-up {args.warmup} calls per run")

        raw = stats_ms(timed(lambda t: model.pipeline.predict_proba([t]), messages,
                             args.n, args.warmup))
        inproc = stats_ms(timed(lambda t: service.predict(t, source="batch"), messages,
                                args.n, args.warmup))
        rows = [("raw pipeline.predict_proba", raw),
                ("PredictionService.predict (+DB)", inproc)]
        dispose_engines()

        e2e = rest = None
        if args.n_e2e > 0:
            from gradio_client import Client

            log_path = Path(tmp) / "app.log"
            with running_app(data_dir, log_path, args.server_timeout) as url:
                client = Client(url, verbose=False, analytics_enabled=False,
                                download_files=False)
                try:
                    e2e = stats_ms(timed(lambda t: client.predict(t, api_name="/classify"),
                                         messages, args.n_e2e, min(args.warmup, 10)))
                finally:
                    client.close()
                with httpx.Client(timeout=60) as http:
                    rest = stats_ms(timed(gradio_rest_call(http, url), messages, args.n_e2e,
                                          min(args.warmup, 10)))
            rows.append(("gradio_client /classify (e2e)", e2e))
            rows.append(("Gradio REST /call/classify (httpx)", rest))

        print()
        print_table(rows)
        print()
        ratios = {
            "service_over_raw_p50": round(inproc["p50_ms"] / raw["p50_ms"], 2),
            "service_over_raw_p99": round(inproc["p99_ms"] / raw["p99_ms"], 2),
        }
        print(f"service / raw:        p50 x{ratios['service_over_raw_p50']}, "
              f"p99 x{ratios['service_over_raw_p99']}  "
              f"(DB write + validation + redaction ≈ {inproc['p50_ms'] - raw['p50_ms']:.2f} ms)")
        if e2e is not None:
            ratios["e2e_over_service_p50"] = round(e2e["p50_ms"] / inproc["p50_ms"], 2)
            ratios["e2e_over_service_p99"] = round(e2e["p99_ms"] / inproc["p99_ms"], 2)
            print(f"e2e / in-process:     p50 x{ratios['e2e_over_service_p50']}, "
                  f"p99 x{ratios['e2e_over_service_p99']}  "
                  f"(HTTP + Gradio queue ≈ {e2e['p50_ms'] - inproc['p50_ms']:.2f} ms at p50)")
        if rest is not None and e2e is not None:
            ratios["rest_over_service_p50"] = round(rest["p50_ms"] / inproc["p50_ms"], 2)
            ratios["e2e_over_rest_p50"] = round(e2e["p50_ms"] / rest["p50_ms"], 2)
            print(f"REST / in-process:    p50 x{ratios['rest_over_service_p50']}; "
                  f"gradio_client / REST: p50 x{ratios['e2e_over_rest_p50']}  "
                  f"(client-side overhead ≈ {e2e['p50_ms'] - rest['p50_ms']:.2f} ms)")
        print(json.dumps({
            "benchmark": "predict", "model_version": model.version,
            "raw": raw, "service": inproc, "e2e": e2e, "rest": rest, "ratios": ratios,
            "setup_seconds": round(setup_s, 2), "cpus": os.cpu_count(),
            "python": platform.python_version(),
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
