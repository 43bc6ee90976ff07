"""Faults and load, on loopback only, each case bounded in time (marker `chaos`):

- kill -9 under load, three times: no answered prediction or rating is missing afterwards;
- PostgreSQL behind a TCP proxy that goes silent for 10 s: liveness keeps answering fast,
  requests get 503 within 3 s, the app recovers without a restart, no answered row is lost;
  a lock held on the deployment table does not stop serving;
- two processes starting a retrain at the same moment, 20 times: exactly one job each time;
- a 10,000-row batch beside REST traffic: REST p95 stays within 3x of idle;
- 5,000 anonymous web sessions (CHAOS_SESSIONS=20000 for the full case): the server's
  memory grows by at most 50 MB.

Every process started here is stopped by its PID; PostgreSQL itself is never touched (the
outage is the proxy's).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Server, SmallModel, install_model, start_server, stop_server
from gradio_queue import call_fn, dependencies
from sqlalchemy import create_engine, func, select, text
from tcp_proxy import TcpProxy

from classifier.review import retrain
from feedback import leases, review_store
from feedback.db import dispose_engines, get_engine, session_scope
from feedback.settings import Settings
from feedback.tables import Feedback, Prediction, RetrainJob

pytestmark = pytest.mark.chaos
MESSAGE = "I was charged twice for my coffee, please refund one"


def answered_rows(database_url: str) -> tuple[set[str], set[str]]:
    """(request ids of every prediction row, request ids of every rated prediction)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            predictions = set(conn.scalars(select(Prediction.request_id)))
            rated = set(conn.scalars(select(Prediction.request_id).join(
                Feedback, Feedback.prediction_id == Prediction.id)))
    finally:
        engine.dispose()
    return predictions, rated


class Load:
    """Client threads against one server, recording what was answered."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stop = threading.Event()
        self.predicted: set[str] = set()
        self.rated: set[str] = set()
        self.failures = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self, rest: int, ui: int, raters: int) -> Load:
        workers: list[Callable[[], None]] = [self._rest] * rest + [self._ui] * ui + \
            [self._rater] * raters
        self._threads = [threading.Thread(target=w, daemon=True) for w in workers]
        for t in self._threads:
            t.start()
        return self

    def join(self) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def _note(self, ids: set[str], rid: str) -> None:
        with self._lock:
            ids.add(rid)

    def _failed(self) -> None:
        with self._lock:
            self.failures += 1

    def _rest(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while not self.stop.is_set():
                try:
                    r = client.post("/api/v1/predict", json={"text": MESSAGE})
                except httpx.HTTPError:
                    self._failed()
                    continue
                if r.status_code == 200:
                    self._note(self.predicted, r.json()["request_id"])

    def _rater(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while not self.stop.is_set():
                try:
                    r = client.post("/api/v1/predict", json={"text": MESSAGE})
                    if r.status_code != 200:
                        continue
                    rid = r.json()["request_id"]
                    self._note(self.predicted, rid)
                    if client.post("/api/v1/feedback", json={
                            "request_id": rid, "verdict": "up"}).status_code == 200:
                        self._note(self.rated, rid)
                except httpx.HTTPError:
                    self._failed()

    def _ui(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            try:
                deps, _ = dependencies(client)
            except (httpx.HTTPError, ValueError):
                return
            classify = next(d["id"] for d in deps if d["api_name"] == "classify")
            while not self.stop.is_set():
                try:
                    out = call_fn(client, classify, [MESSAGE], timeout=5)
                except (httpx.HTTPError, ValueError):
                    self._failed()
                    continue
                if out.success:
                    self._note(self.predicted, out.output["data"][2])


CHAOS_ENV = {"UI_RATE_LIMIT_PER_MINUTE": "0", "RATE_LIMIT_PER_MINUTE": "0"}
MIN_ANSWERED = 50  # answered requests before the kill: enough in flight to lose some
LOAD_START_TIMEOUT_S = 30


@pytest.mark.e2e
def test_kill_9_under_load_loses_no_answered_row(trained_data_dir: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(trained_data_dir, data_dir)
    url = f"sqlite:///{data_dir / 'support_triage.db'}"
    predicted: set[str] = set()
    rated: set[str] = set()
    for round_ in range(3):
        server = start_server(data_dir, tmp_path / f"server-{round_}.log", extra_env=CHAOS_ENV)
        load = Load(server.url).start(rest=8, ui=2, raters=2)
        # Kill once the load is well under way (not after a fixed time: on a busy machine
        # the clients may need longer to get going).
        deadline = time.monotonic() + LOAD_START_TIMEOUT_S
        while len(load.predicted) <= MIN_ANSWERED and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(server.process.pid, signal.SIGKILL)  # mid-load, no goodbye
        server.process.wait(timeout=10)
        load.join()
        assert len(load.predicted) > MIN_ANSWERED, "the load did not get going"
        predicted |= load.predicted
        rated |= load.rated
    stored, stored_rated = answered_rows(url)
    assert predicted - stored == set()
    assert rated - stored_rated == set()
    assert rated, "no rating was answered"


@pytest.fixture
def proxied_server(postgres_settings: Settings, small_model: SmallModel,
                   tmp_path: Path) -> Iterator[tuple[Server, TcpProxy, str]]:
    """A server whose PostgreSQL connections go through a proxy the test can cut."""
    install_model(postgres_settings, small_model, promote=True)
    direct = postgres_settings.effective_database_url
    with TcpProxy(5432) as proxy:
        proxied = direct.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        server = start_server(tmp_path / "data", tmp_path / "server.log", extra_env={
            **CHAOS_ENV, "DATABASE_URL": proxied})
        try:
            yield server, proxy, direct
        finally:
            stop_server(server)
            dispose_engines()


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


def test_a_lock_on_the_deployment_table_does_not_stop_serving(
        proxied_server: tuple[Server, TcpProxy, str]) -> None:
    server, _proxy, direct = proxied_server
    engine = create_engine(direct)
    statuses: list[int] = []
    try:
        with engine.connect() as conn, httpx.Client(base_url=server.url, timeout=5) as client:
            conn.execute(text("BEGIN"))
            conn.execute(text("LOCK TABLE deployment IN ACCESS EXCLUSIVE MODE"))
            deadline = time.monotonic() + 6  # beyond several model polls
            while time.monotonic() < deadline:
                statuses.append(client.post("/api/v1/predict",
                                            json={"text": MESSAGE}).status_code)
            conn.execute(text("ROLLBACK"))
    finally:
        engine.dispose()
    assert len(statuses) > 20 and set(statuses) == {200}


def _start_retrain(settings: Settings, barrier: Any, rounds: int, out: Any) -> None:
    """One of the racing processes: each round, start a retrain at the barrier."""
    for _ in range(rounds):
        barrier.wait()
        try:
            out.put(retrain.create_job(settings, actor=f"pid-{os.getpid()}").id)
        except retrain.RetrainError:
            out.put(None)
        barrier.wait()  # the test finishes the round's job before the next


def test_two_processes_starting_a_retrain_get_one_job(settings: Settings) -> None:
    rounds = 20
    get_engine(settings)  # the schema exists before the race
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(3)
    out = context.Queue()
    processes = [context.Process(target=_start_retrain, args=(settings, barrier, rounds, out))
                 for _ in range(2)]
    for p in processes:
        p.start()
    try:
        for _ in range(rounds):
            barrier.wait(timeout=60)
            got = [out.get(timeout=60) for _ in range(2)]
            jobs = [j for j in got if j is not None]
            assert len(jobs) == 1, got
            with session_scope(settings) as session:  # the job ends, as a retrain would
                review_store.update_retrain_job(session=session, job_id=jobs[0],
                                                state="succeeded")
                leases.release_lease(session=session, name=retrain.RETRAIN_LEASE,
                                     holder=retrain.job_holder(jobs[0]))
            barrier.wait(timeout=60)
    finally:
        for p in processes:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    with session_scope(settings) as session:
        assert session.scalar(select(func.count()).select_from(RetrainJob)) == rounds


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


@pytest.fixture
def server_env(trained_data_dir: Path, tmp_path: Path) -> Iterator[Server]:
    data_dir = tmp_path / "data"
    shutil.copytree(trained_data_dir, data_dir)
    server = start_server(data_dir, tmp_path / "server.log", extra_env=CHAOS_ENV)
    yield server
    stop_server(server)


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def test_memory_stays_flat_over_many_anonymous_sessions(server_env: Server) -> None:
    """Each call names a new session: Gradio keeps state for it from the first request on,
    so the cheapest way to make sessions (one direct POST each) is the one tested."""
    # Each new session costs the server 20-30 ms of CPU in Gradio itself (its SessionState
    # builds the config of every one of the page's ~160 components): the suite runs 1,000
    # (5 times UI_SESSIONS_MAX, so most are evicted) to stay in CI's time;
    # CHAOS_SESSIONS=20000 is the full case (about 8 min on a 2.1 GHz Xeon).
    sessions = int(os.environ.get("CHAOS_SESSIONS", "1000"))
    clients = 4  # in parallel, as many browsers would be
    # A handler with no inputs (the Classify tab's reset after a failed classification).
    handler = "clear_result"

    def open_sessions(count: int) -> int:
        with httpx.Client(base_url=server_env.url, timeout=30) as client:
            return sum(client.post(f"/gradio_api/run/{handler}", json={
                "data": [], "fn_index": clear, "session_hash": uuid.uuid4().hex[:11],
            }).status_code == 200 for _ in range(count))

    with httpx.Client(base_url=server_env.url, timeout=30) as client:
        deps, _ = dependencies(client)
        clear = next(d["id"] for d in deps if d["api_name"] == handler)
        for _ in range(100):  # sessions through the queue too, as a browser makes them
            assert call_fn(client, clear, []).success
    open_sessions(300)  # warm up: allocator arenas, caches, the first sessions
    before = rss_mb(server_env.process.pid)
    cpu0 = cpu_s(server_env.process.pid)
    with ThreadPoolExecutor(clients) as pool:
        opened = sum(pool.map(open_sessions, [sessions // clients] * clients))
    after = rss_mb(server_env.process.pid)
    print(f"{opened:,} sessions: RSS {before:.0f} -> {after:.0f} MB, "
          f"server CPU {cpu_s(server_env.process.pid) - cpu0:.0f} s")
    assert opened == sessions // clients * clients
    assert after - before <= 50, (before, after)
