"""Start `python app.py` (or another server) for a benchmark and stop it afterwards."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from feedback.settings import Settings  # noqa: E402

# The benchmark's own environment must not leak the developer's settings into the servers.
SETTINGS_ENV = frozenset({*(f.metadata["env"] for f in dataclasses.fields(Settings)), "PORT"})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(command: list[str], env_extra: dict[str, str], health_url: str, log_path: Path,
            timeout: float) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` from the repository root until the block ends; yields once
    `health_url` answers 200. Raises RuntimeError (with the server's log) otherwise."""
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    env.update({"GRADIO_ANALYTICS_ENABLED": "False", **env_extra})
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command} exited early:\n{log_path.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command} not healthy after {timeout}s:\n"
                                   f"{log_path.read_text()}")
            try:
                if httpx.get(health_url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        yield process
    finally:
        process.terminate()  # graceful: uvicorn finishes in-flight requests first
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def running_app(data_dir: Path, log_path: Path, timeout: float = 240,
                env_extra: dict[str, str] | None = None) -> Iterator[str]:
    """`python app.py` on a free port over `data_dir`; yields its URL once healthy. The web
    UI's per-client rate limit is off: a benchmark is one client sending on purpose."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"DATA_DIR": str(data_dir), "GRADIO_SERVER_PORT": str(port),
           "UI_RATE_LIMIT_PER_MINUTE": "0", **(env_extra or {})}
    with running([sys.executable, "app.py"], env, f"{url}/api/v1/health", log_path, timeout):
        yield url
