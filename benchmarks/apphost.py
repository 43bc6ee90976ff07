"""Start `python app.py` (or another server) for a benchmark and stop it afterwards."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
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

from feedback.settings import SETTING_ENV_NAMES  # noqa: E402

# The benchmark's own environment must not leak the developer's settings into the servers.
SETTINGS_ENV = SETTING_ENV_NAMES


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(command: list[str], env_extra: dict[str, str], health_url: str, log_path: Path,
            timeout: float, *, group: bool = False) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` from the repository root until the block ends; yields once
    `health_url` answers 200. Raises RuntimeError (with the server's log) otherwise.
    `group`: the command starts children of its own (a CLI that spawns the real server), so
    it runs in its own process group and the stop signal goes to the whole group."""
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    env.update({"GRADIO_ANALYTICS_ENABLED": "False", **env_extra})
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=group)
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
        stop = (lambda sig: os.killpg(process.pid, sig)) if group else process.send_signal
        with contextlib.suppress(ProcessLookupError):
            stop(signal.SIGTERM)  # graceful: uvicorn finishes in-flight requests first
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                stop(signal.SIGKILL)
            process.wait()
        if group:  # children may outlive the leader: let them finish, then make sure
            try:
                for _ in range(100):
                    os.killpg(process.pid, 0)
                    time.sleep(0.1)
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


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


def ensure_trained(data_dir: Path) -> None:
    """Train and promote the default model into `data_dir`'s SQLite database unless a
    version is live there already (a reused --data-dir)."""
    from classifier.training.default_model import ensure_live_model
    from feedback.db import dispose_engines
    from feedback.settings import load_settings

    settings = dataclasses.replace(load_settings(), data_dir=data_dir, database_url="")
    trained = ensure_live_model(settings, progress=lambda m: print(f"  {m}", file=sys.stderr))
    dispose_engines()
    print(f"DATA_DIR {data_dir}: default model {'trained' if trained else 'already live'}")


def live_artifact(data_dir: Path) -> tuple[int, bytes, str]:
    """The live model version of the SQLite database in `data_dir`: (version, the artifact's
    bytes, their registered sha256), for `classifier.model.artifacts.load_model`."""
    from classifier.versions import registry
    from feedback.db import dispose_engines, session_scope
    from feedback.settings import load_settings

    settings = dataclasses.replace(load_settings(), data_dir=data_dir, database_url="")
    try:
        with session_scope(settings) as session:
            version = registry.live_version(session=session)
            if version is None:
                raise RuntimeError(f"no live model in {data_dir}")
            data, sha = registry.read_artifact(session=session, version=version)
    finally:
        dispose_engines()
    return version, data, sha


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process `pid` has used (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def total_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid)
    return total


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (a CLI and the server it started)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit():
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo += children.get(tree[-1], [])
    return tree
