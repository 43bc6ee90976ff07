"""Faults under load whose verdict is a time (marker `chaos`; `alone`: no other test runs
beside them, so another worker's load cannot decide it):

- PostgreSQL behind a TCP proxy that goes silent for 10 s: liveness keeps answering fast,
  requests get 503 within 3 s, the app recovers without a restart, no answered row is lost;
- a 10,000-row batch beside REST traffic: REST p95 stays within 3x of idle.

A module of their own: pytest-xdist runs a module on one worker (`--dist loadscope`), and
`alone` tests run last (tests/conftest.py), so they wait for no long test on the other worker.
Every process started here is stopped by its PID; PostgreSQL itself is never touched (the
outage is the proxy's).
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from chaos_support import MESSAGE, answered_rows
from conftest import Server
from gradio_queue import call_fn, dependencies
from tcp_proxy import TcpProxy

pytestmark = pytest.mark.chaos


def timed_get(client: httpx.Client, path: str) -> tuple[int, float]:
    start = time.monotonic()
    try:
        status = client.get(path).status_code
    except httpx.HTTPError:
        status = 0
    return status, time.monotonic() - start


@pytest.mark.alone
def test_a_silent_database_gives_fast_503s_and_recovers(
        proxied_server: tuple[Server, TcpProxy, str]) -> None:
    server, proxy, direct = proxied_server
    liveness: list[tuple[float, int, float]] = []  # (when, status, seconds)
    answers: list[tuple[float, int, float, str | None]] = []  # (when, status, seconds, id)
    stop = threading.Event()

    def watch() -> None:
        with httpx.Client(base_url=server.url, timeout=5) as client:
            while not stop.is_set():
                liveness.append((time.monotonic(), *timed_get(client, "/api/v1/health/live")))
                time.sleep(0.05)

    def predict() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            while not stop.is_set():
                start = time.monotonic()
                try:
                    r = client.post("/api/v1/predict", json={"text": MESSAGE})
                    rid = r.json().get("request_id") if r.status_code == 200 else None
                    answers.append((start, r.status_code, time.monotonic() - start, rid))
                except httpx.HTTPError:
                    answers.append((start, 0, time.monotonic() - start, None))
                time.sleep(0.02)

    threads = [threading.Thread(target=watch)] + [threading.Thread(target=predict)
                                                  for _ in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(2)
        cut = time.monotonic()
        proxy.blackhole()
        time.sleep(10)
        proxy.restore()
        restored = time.monotonic()
        deadline = restored + 30
        while time.monotonic() < deadline and not any(
                when > restored and status == 200 for when, status, _, _ in answers):
            time.sleep(0.2)
        time.sleep(1)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    outage = [(when - cut, status, seconds) for when, status, seconds in liveness
              if cut - 0.5 < when < restored + 3]  # after the warm-up
    assert len(outage) > 100 and all(status == 200 for _, status, _ in outage)
    slowest = sorted(outage, key=lambda sample: sample[2])[-3:]
    print("slowest liveness answers (s after the cut, status, seconds):", slowest)
    assert slowest[-1][2] < 0.1, slowest
    during = [(status, seconds) for when, status, seconds, _ in answers
              if cut + 0.5 < when < cut + 9]
    assert during and all(status == 503 for status, _ in during), during[:5]
    assert max(seconds for _, seconds in during) < 3
    assert any(when > restored and status == 200 for when, status, _, _ in answers), \
        "no answer after the database came back"
    answered = {rid for _, status, _, rid in answers if status == 200 and rid}
    stored, _ = answered_rows(direct)
    assert answered - stored == set()


def rest_latencies(url: str, n: int) -> list[float]:
    out = []
    with httpx.Client(base_url=url, timeout=10) as client:
        for _ in range(n):
            start = time.monotonic()
            assert client.post("/api/v1/predict", json={"text": MESSAGE}).status_code == 200
            out.append(time.monotonic() - start)
    return out


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


@pytest.mark.alone
def test_a_large_batch_does_not_starve_interactive_requests(server_env: Server,
                                                            tmp_path: Path) -> None:
    url = server_env.url
    idle = p95(rest_latencies(url, 150))
    csv_path = tmp_path / "big.csv"
    csv_path.write_text("text\n" + "\n".join(f"{MESSAGE} number {i}" for i in range(10_000)))
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def run_batch() -> None:
        with httpx.Client(base_url=url, timeout=600) as client:
            deps, _ = dependencies(client)
            fn = {d["api_name"]: d["id"] for d in deps}
            uploaded = client.post("/gradio_api/upload", files=[
                ("files", ("big.csv", csv_path.read_bytes(), "text/csv"))]).json()
            data = {"path": uploaded[0], "orig_name": "big.csv",
                    "meta": {"_type": "gradio.FileData"}}
            session = uuid.uuid4().hex[:11]
            call_fn(client, fn["show_columns"], [data], session_hash=session)
            outcome["batch"] = call_fn(client, fn["run_batch"], [data, "text"],
                                       session_hash=session, timeout=600)
        done.set()

    batch = threading.Thread(target=run_batch)
    batch.start()
    time.sleep(2)  # the batch is under way
    busy: list[float] = []
    while not done.is_set() and len(busy) < 400:
        busy += rest_latencies(url, 10)
    batch.join(timeout=600)
    assert outcome["batch"].success and "10,000 rows" in outcome["batch"].text
    assert len(busy) >= 50, "the batch finished before enough interactive requests ran"
    print(f"REST p95 idle {idle * 1000:.1f} ms, beside the batch {p95(busy) * 1000:.1f} ms")
    assert p95(busy) <= 3 * idle, (p95(busy), idle)
