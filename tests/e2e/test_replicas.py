"""Three replicas of the app on one PostgreSQL database, as behind a load balancer.

A test-side round robin sends REST traffic (every fifth message empty, so the rejection
alert fires) while the CLI promotes a new version, one replica is killed (-9), and the CLI
rolls back. Then:

- every surviving replica served the promoted version, and then the previous one, within
  its poll interval (plus slack for requests in flight);
- no request failed on a surviving replica (the empty messages get their 422);
- the Monitoring figures from the rollups, folded by the replicas while they wrote, equal
  the raw log for every window and bucket;
- the rejection incident is one alert row and one webhook, whichever replica saw it.
"""

from __future__ import annotations

import http.server
import json
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conftest import Server, SmallModel, install_model, start_server, stop_server
from sqlalchemy import func, select
from test_two_process import run_cli

from dashboards import queries, rollups
from feedback.db import session_scope
from feedback.settings import Settings
from feedback.tables import Alert, Prediction, PredictionRollup, utc_now

pytestmark = pytest.mark.chaos
REPLICAS = 3
POLL_SECONDS = 1.0
SLACK_SECONDS = 3.0  # a request in flight when the switch lands, a busy machine
CLIENTS = 4


class Webhook(http.server.ThreadingHTTPServer):
    """Collects the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.received: list[dict[str, object]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    server = Webhook()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def replicas(postgres_settings: Settings, small_model: SmallModel, tmp_path: Path,
             webhook: Webhook) -> Iterator[list[Server]]:
    install_model(postgres_settings, small_model, promote=True)
    install_model(postgres_settings, small_model, promote=False)
    env = {"DATABASE_URL": postgres_settings.effective_database_url,
           "MODEL_POLL_SECONDS": str(POLL_SECONDS), "ALERT_CHECK_SECONDS": "1",
           "ALERT_REJECTION_RATE": "0.1", "ALERT_WEBHOOK_URL": webhook.url,
           "RATE_LIMIT_PER_MINUTE": "0", "UI_RATE_LIMIT_PER_MINUTE": "0"}
    with ThreadPoolExecutor(REPLICAS) as pool:  # started together, as a deployment does
        starting = [pool.submit(start_server, tmp_path / f"data-{i}",
                                tmp_path / f"replica-{i}.log", extra_env=env)
                    for i in range(REPLICAS)]
    started = [f.result() for f in starting if f.exception() is None]
    try:
        assert len(started) == REPLICAS, [f.exception() for f in starting]
        yield started
    finally:
        for server in started:
            if server.process.poll() is None:
                stop_server(server)


def test_replicas_on_one_database(replicas: list[Server], postgres_settings: Settings,
                                  webhook: Webhook) -> None:
    alive = list(replicas)
    killed: dict[str, float] = {}  # url -> when
    answers: list[tuple[float, str, int, int | None]] = []  # (start, url, status, version)
    stop = threading.Event()

    def client(offset: int) -> None:
        n = offset
        with httpx.Client(timeout=10) as http:
            while not stop.is_set():
                server = alive[n % len(alive)]
                n += 1
                text = "" if n % 5 == 0 else f"I was charged twice, order {n}"
                start = time.monotonic()
                try:
                    r = http.post(f"{server.url}/api/v1/predict", json={"text": text})
                    version = r.json().get("model_version") if r.status_code == 200 else None
                    answers.append((start, server.url, r.status_code, version))
                except httpx.HTTPError:
                    answers.append((start, server.url, 0, None))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        time.sleep(3)
        _, promoted = run_cli(postgres_settings, "promote", "2", "--reason", "replicas")
        time.sleep(POLL_SECONDS + SLACK_SECONDS + 1)
        victim = alive[0]
        killed[victim.url] = time.monotonic()
        alive.remove(victim)  # the balancer stops sending to it as it dies
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(timeout=10)
        time.sleep(2)
        rollback_started, rolled_back = run_cli(postgres_settings, "rollback")
        time.sleep(POLL_SECONDS + SLACK_SECONDS + 1)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)

    surviving = [(start, url, status, version) for start, url, status, version in answers
                 if url not in killed]
    failed = [a for a in surviving if a[2] not in (200, 422)]
    assert not failed, failed[:5]
    assert sum(a[2] == 422 for a in surviving) > 20
    for server in alive:
        mine = [(start, version) for start, url, status, version in surviving
                if url == server.url and status == 200]
        switched = [v for t, v in mine if promoted + POLL_SECONDS + SLACK_SECONDS < t
                    < rollback_started]
        assert switched and set(switched) == {2}, server.url
        back = [v for t, v in mine if t > rolled_back + POLL_SECONDS + SLACK_SECONDS]
        assert back and set(back) == {1}, server.url

    # The replicas fold the rollups every second while they write; one more fold here.
    rollups.catch_up(postgres_settings)
    now = utc_now()
    with session_scope(postgres_settings) as session:
        for name in ("Last 24 hours", "Last 7 days", "Last 30 days"):
            window = queries.make_window(name, now)
            assert rollups.covers(window)
            for fast, exact in (
                    (queries.requests_by_status, queries._requests_by_status_from_log),
                    (queries.label_mix, queries._label_mix_from_log),
                    (queries.latency_histogram, queries._latency_histogram_from_log)):
                assert sorted(fast(session=session, window=window)) == sorted(
                    exact(session=session, window=window)), (name, fast.__name__)
        # Every (slot, version, status, label) count equals the log's, to the row.
        p = Prediction
        keys = (rollups._slot_expr(), func.coalesce(p.model_version, 0), p.status,
                func.coalesce(p.label, ""))
        raw = {tuple(k): n for *k, n in session.execute(
            select(*keys, func.count()).group_by(*keys))}
        r = PredictionRollup
        rolled = {(s, v, st, lb): n for s, v, st, lb, n in session.execute(
            select(r.slot, r.model_version, r.status, r.label, r.n))}
        assert rolled == raw
        alerts = session.scalar(select(func.count()).select_from(Alert)
                                .where(Alert.rule == "rejection_rate"))
    assert alerts == 1
    deadline = time.monotonic() + 5  # webhooks are posted in the background
    while time.monotonic() < deadline and not webhook.received:
        time.sleep(0.1)
    opened = [p for p in webhook.received if p["rule"] == "rejection_rate"]
    assert [p["change"] for p in opened] == ["opened"]
