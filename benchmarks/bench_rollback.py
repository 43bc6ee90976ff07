"""How long a rollback takes to reach a running app.

Starts `python app.py` on a temporary SQLite database holding the default model (version 1)
and a gated copy (version 2), keeps classify requests flowing through gradio_client, and
alternates `python -m classifier promote 2` / `python -m classifier rollback` from another
process. Prints, per switch, the seconds from starting the CLI command (so its own start-up
counts) to the first answer from the new version, then the median for rollbacks. Target:
under 5 s (default poll interval 2 s).

    python benchmarks/bench_rollback.py [--runs 5] [--poll 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from gradio_client import Client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.apphost import running_app  # noqa: E402
from classifier.training.default_model import ensure_live_model  # noqa: E402
from classifier.versions import registry  # noqa: E402
from classifier.versions.gate import run_gate  # noqa: E402
from feedback.db import dispose_engines, session_scope  # noqa: E402
from feedback.settings import load_settings  # noqa: E402


def prepare(data_dir: Path) -> None:
    """Default model live as version 1, and version 2: the same artifact, gated for real."""
    os.environ["DATA_DIR"] = str(data_dir)
    settings = load_settings()
    ensure_live_model(settings, progress=lambda _m: None)
    with session_scope(settings) as session:
        copy = registry.export_version(session=session, version=1)
        registry.register_version(session=session, new=copy, actor="bench")
    assert run_gate(settings=settings, version=2).passed
    dispose_engines()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--poll", type=float, default=2.0, help="MODEL_POLL_SECONDS of the app")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        prepare(data_dir)
        env = {**os.environ, "DATA_DIR": str(data_dir)}
        with running_app(data_dir, data_dir / "app.log",
                         env_extra={"MODEL_POLL_SECONDS": str(args.poll)}) as url:
            seen: list[tuple[float, int]] = []
            failures: list[str] = []
            stop = threading.Event()

            def traffic() -> None:
                client = Client(url, verbose=False)
                while not stop.is_set():
                    try:
                        _, version, _, _ = client.predict("I lost my card",
                                                          api_name="/classify")
                        seen.append((time.monotonic(), int(version)))
                    except Exception as exc:
                        failures.append(repr(exc))

            worker = threading.Thread(target=traffic, daemon=True)
            worker.start()

            def switch(command: list[str], target: int) -> float:
                started = time.monotonic()
                subprocess.run([sys.executable, "-m", "classifier", *command], cwd=ROOT,
                               env=env, check=True, capture_output=True)
                done = time.monotonic()
                while True:
                    hits = [t for t, v in list(seen) if t > done and v == target]
                    if hits:
                        return hits[0] - started
                    time.sleep(0.02)

            rollbacks = []
            for run in range(args.runs):
                promote = switch(["promote", "2"], 2)
                rollback = switch(["rollback"], 1)
                rollbacks.append(rollback)
                print(f"run {run + 1}: promote took effect in {promote:.2f} s, "
                      f"rollback in {rollback:.2f} s")
            stop.set()
            worker.join(timeout=30)
    median = statistics.median(rollbacks)
    print(f"rollback command start to effect: median {median:.2f} s over {len(rollbacks)} runs "
          f"(poll interval {args.poll} s), failed requests: {len(failures)}")
    for failure in failures[:5]:
        print("failed request:", failure)
    print(json.dumps({"rollback_median_s": round(median, 3), "runs": len(rollbacks),
                      "poll_seconds": args.poll, "failed_requests": len(failures)}))


if __name__ == "__main__":
    main()
