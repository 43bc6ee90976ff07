"""Latency of one classify request at three depths, side by side.

1. raw      `pipeline.predict_proba([text])` of the live model (the sklearn work alone);
2. service  `PredictionService.predict(text)` in-process: validation, redaction, model,
            and the SQLite write of the prediction log row;
3. e2e      `gradio_client.Client.predict(text, api_name="/classify")` against `python app.py`
            started as a subprocess on the same DATA_DIR (HTTP, Gradio queue, SSE, JSON);
4. rest     the same event through Gradio's plain REST pair with httpx (POST
            /gradio_api/call/classify, then read its SSE stream), to tell the cost of the
            server's queue from the cost of gradio_client itself.

Paths 1 and 2 also run for a second model (`--compare`, default `tfidf`), trained the same
way into a sibling DATA_DIR, in alternating rounds, so the two models' medians come from one
run under the same conditions. Requests run one after another (no concurrency). Messages are
the texts of classifier/data/test.csv, cycled. Usage (from the repository root):

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
from classifier.model.names import DEFAULT_MODEL, MODELS  # noqa: E402
from classifier.serving.service import PredictionService  # noqa: E402
from classifier.training.dataset import (  # noqa: E402
    DEFAULT_TAXONOMY,
    DEFAULT_TEST,
    DEFAULT_TRAIN,
    load_dataset,
    load_taxonomy,
)
from classifier.training.default_model import ensure_live_model  # noqa: E402
from classifier.training.train import train_version  # noqa: E402
from classifier.versions import registry  # noqa: E402
from feedback.db import dispose_engines, session_scope  # noqa: E402
from feedback.settings import Settings, load_settings  # noqa: E402

# Settings the benchmark must not inherit from the caller's shell.


def stats_ms(samples_ns: list[int]) -> dict[str, float]:
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    return {
        "n": int(ms.size),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p90_ms": round(float(np.percentile(ms, 90)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
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
    header = (f"{'path':<44} {'n':>6} {'p50 ms':>9} {'p90 ms':>9} {'p95 ms':>9} "
              f"{'p99 ms':>9} {'mean ms':>9}")
    print(header)
    print("-" * len(header))
    for name, s in rows:
        print(f"{name:<44} {s['n']:>6} {s['p50_ms']:>9.3f} {s['p90_ms']:>9.3f} "
              f"{s['p95_ms']:>9.3f} {s['p99_ms']:>9.3f} {s['mean_ms']:>9.3f}")


def train_like_first_start(settings: Settings, model: str) -> bool:
    """Train `model` exactly as the first start trains the default (Banking77 intents onto
    the support taxonomy, promoted); False when a version is already live there."""
    with session_scope(settings) as session:
        if registry.live_version(session=session) is not None:
            return False
    train_version(data=load_dataset(DEFAULT_TRAIN), test=load_dataset(DEFAULT_TEST),
                  settings=settings, taxonomy=load_taxonomy(DEFAULT_TAXONOMY),
                  params={"model": model}, promote=True, actor="benchmark",
                  progress=lambda m: print(f"  {m}", file=sys.stderr))
    return True


def side_by_side(calls: dict[str, Callable[[str], object]], messages: list[str], n: int,
                 warmup: int, rounds: int = 5) -> dict[str, dict[str, float]]:
    """Time every call on the same messages in alternating rounds, so slow spells of the
    machine hit all of them alike."""
    samples: dict[str, list[int]] = {name: [] for name in calls}
    for call in calls.values():
        timed(call, messages, 0, warmup)
    for r in range(rounds):
        chunk = messages[(r * n // rounds) % len(messages):] + messages
        for name, call in calls.items():
            samples[name] += timed(call, chunk, n // rounds, 0)
    return {name: stats_ms(s) for name, s in samples.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000,
                        help="timed in-process calls, raw and service each (default 1000)")
    parser.add_argument("--n-e2e", type=int, default=300,
                        help="timed gradio_client calls (default 300; 0 skips the app)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed calls before each run")
    parser.add_argument("--compare", default="tfidf", choices=[*MODELS, "none"],
                        help="second model timed side by side with the default (default "
                        "tfidf; 'none' skips it)")
    parser.add_argument("--data-dir", type=Path,
                        help="DATA_DIR to use (default: a fresh temporary folder)")
    parser.add_argument("--server-timeout", type=float, default=300,
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
        services = {DEFAULT_MODEL: PredictionService(settings)}
        compare_s = None
        if args.compare not in ("none", DEFAULT_MODEL):
            other = dataclasses.replace(
                settings, data_dir=data_dir.with_name(f"{data_dir.name}-{args.compare}"))
            start = time.perf_counter()
            fresh = train_like_first_start(other, args.compare)
            compare_s = time.perf_counter() - start
            print(f"{args.compare} model {'trained' if fresh else 'already live'} in "
                  f"{compare_s:.1f}s (DATA_DIR {other.data_dir})")
            services[args.compare] = PredictionService(other)

        messages = load_dataset(DEFAULT_TEST).texts
        models = {name: service.current_model() for name, service in services.items()}
        model = models[DEFAULT_MODEL]
        print(f"models {', '.join(f'{n} (version {m.version})' for n, m in models.items())}, "
              f"{len(model.labels)} labels; {len(messages)} test messages, cycled; warm-up "
              f"{args.warmup} calls per path; 5 alternating rounds")

        timings = side_by_side({
            **{f"{n}: raw pipeline.predict_proba": (lambda t, m=m: m.pipeline.predict_proba([t]))
               for n, m in models.items()},
            **{f"{n}: PredictionService.predict (+DB)":
               (lambda t, s=s: s.predict(t, source="batch")) for n, s in services.items()},
        }, messages, args.n, args.warmup)
        raw = timings[f"{DEFAULT_MODEL}: raw pipeline.predict_proba"]
        inproc = timings[f"{DEFAULT_MODEL}: PredictionService.predict (+DB)"]
        rows = list(timings.items())
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
            "benchmark": "predict", "model": DEFAULT_MODEL, "model_version": model.version,
            "raw": raw, "service": inproc, "e2e": e2e, "rest": rest, "ratios": ratios,
            "compared": {n: {"raw": timings[f"{n}: raw pipeline.predict_proba"],
                             "service": timings[f"{n}: PredictionService.predict (+DB)"]}
                         for n in models if n != DEFAULT_MODEL},
            "setup_seconds": round(setup_s, 2),
            "compare_setup_seconds": None if compare_s is None else round(compare_s, 2),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
