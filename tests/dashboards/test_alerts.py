"""Each alert rule fires and resolves; open alerts never repeat; webhooks never hurt serving."""

from __future__ import annotations

import dataclasses
import http.server
import json
import random
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from classifier.serving.service import PredictionService
from dashboards.alerts import evaluate_alerts, list_open_alerts
from dashboards.notify import post_json
from feedback import alert_store
from feedback.db import session_scope
from feedback.settings import Settings
from feedback.store import PredictionRecord, log_prediction, record_feedback
from feedback.tables import utc_now

ROOT = Path(__file__).resolve().parents[2]


def add_rows(settings: Settings, n: int, *, status: str = "ok", latency: float = 3.0,
             at: datetime | None = None, spread: timedelta = timedelta(0),
             version: int | None = 1) -> list[str]:
    """Insert n prediction rows directly (timestamps controlled); returns their request ids."""
    now = at or utc_now()
    ids = []
    with session_scope(settings) as session:
        for i in range(n):
            rid = uuid.uuid4().hex
            ids.append(rid)
            answered = status == "ok"
            log_prediction(session=session, record=PredictionRecord(
                request_id=rid, created_at=now - spread * (i / max(n, 1)), source="api",
                status=status, reason=None if answered else "test", text="my card is lost",
                text_chars=15, label="account" if answered else None,
                confidence=0.9 if answered else None,
                scores={"account": 0.9, "billing": 0.1} if answered else None,
                model_version=version, latency_ms=latency))
    return ids


def evaluate(settings: Settings, **kwargs: object) -> dict[str, str]:
    sent: list[dict[str, object]] = []
    changes = evaluate_alerts(settings, notify=lambda _url, payload: sent.append(payload),
                              **kwargs)  # type: ignore[arg-type]
    return {c.rule: c.change for c in changes}


def open_rules(settings: Settings) -> set[str]:
    return {a.rule for a in list_open_alerts(settings)}


def test_error_rate_fires_and_resolves(live_settings: Settings) -> None:
    add_rows(live_settings, 25)
    add_rows(live_settings, 5, status="error")
    assert evaluate(live_settings)["error_rate"] == "opened"
    add_rows(live_settings, 100)
    assert evaluate(live_settings)["error_rate"] == "resolved"
    assert "error_rate" not in open_rules(live_settings)


def test_rejection_rate_fires_and_resolves(live_settings: Settings) -> None:
    add_rows(live_settings, 20)
    add_rows(live_settings, 10, status="rejected")
    assert evaluate(live_settings)["rejection_rate"] == "opened"
    add_rows(live_settings, 60)
    assert evaluate(live_settings)["rejection_rate"] == "resolved"


def test_latency_fires_and_resolves(live_settings: Settings) -> None:
    add_rows(live_settings, 30, latency=900)
    changes = evaluate(live_settings)
    assert changes["latency_p95"] == "opened"
    with session_scope(live_settings) as session:
        alert = alert_store.open_alert_for(session=session, rule="latency_p95")
    assert alert and "limit 500 ms" in alert.message and "CPU" in alert.advice
    add_rows(live_settings, 800, latency=2)
    assert evaluate(live_settings)["latency_p95"] == "resolved"


def test_too_little_traffic_never_fires(live_settings: Settings) -> None:
    add_rows(live_settings, 5, status="error")
    assert evaluate(live_settings) == {}


def test_negative_feedback_fires_and_resolves(live_settings: Settings) -> None:
    ids = add_rows(live_settings, 40)
    with session_scope(live_settings) as session:
        for rid in ids[:12]:
            record_feedback(session=session, request_id=rid, verdict="down",
                            correct_label="billing")
    assert evaluate(live_settings)["negative_feedback"] == "opened"
    with session_scope(live_settings) as session:
        for rid in ids[12:40]:
            record_feedback(session=session, request_id=rid, verdict="up")
    assert evaluate(live_settings)["negative_feedback"] == "resolved"


def test_traffic_drop_fires_and_resolves(live_settings: Settings) -> None:
    now = utc_now()
    # About 30 requests an hour over the six days before the last hour, then silence.
    add_rows(live_settings, 30 * 24 * 6, at=now - timedelta(hours=2),
             spread=timedelta(days=6))
    assert evaluate(live_settings, now=now)["traffic_drop"] == "opened"
    add_rows(live_settings, 40, at=now - timedelta(minutes=1))
    assert evaluate(live_settings, now=now)["traffic_drop"] == "resolved"


def test_service_down_fires_and_resolves(live_settings: Settings) -> None:
    assert evaluate(live_settings, probe=lambda: (False, "health answered 503"))[
        "service_down"] == "opened"
    assert evaluate(live_settings, probe=lambda: (True, "up"))["service_down"] == "resolved"


def test_drift_fires_on_other_domain_and_resolves(live_settings: Settings,
                                                  small_csv: Path) -> None:
    settings = dataclasses.replace(live_settings, drift_window_requests=250)
    service = PredictionService(settings)
    in_domain = [line.split(",")[0] for line in small_csv.read_text().splitlines()[1:]
                 if line and not line.startswith('"')]
    random.Random(5).shuffle(in_domain)
    off_domain = [line for line in (ROOT / "tests/data/off_domain.txt").read_text().splitlines()
                  if line and not line.startswith("#")]
    assert len(off_domain) >= 200
    for text in in_domain[:250]:
        service.predict(text, source="batch")
    assert "drift" not in evaluate(settings)
    for text in off_domain:
        service.predict(text, source="batch")
    assert evaluate(settings)["drift"] == "opened"
    for text in in_domain[250:500]:
        service.predict(text, source="batch")
    assert evaluate(settings)["drift"] == "resolved"


def test_open_alert_does_not_repeat(live_settings: Settings) -> None:
    add_rows(live_settings, 20)
    add_rows(live_settings, 10, status="error")
    sent: list[dict[str, object]] = []
    armed = dataclasses.replace(live_settings, alert_webhook_url="http://127.0.0.1:9/hook")
    for _ in range(3):
        evaluate_alerts(armed, notify=lambda _u, p: sent.append(p))
    assert [p["rule"] for p in sent].count("error_rate") == 1
    with session_scope(live_settings) as session:
        alerts = alert_store.list_alerts(session=session)
    assert [a.rule for a in alerts].count("error_rate") == 1


class Receiver(http.server.BaseHTTPRequestHandler):
    """Local webhook receiver: records bodies; behaviour set per server."""

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.bodies.append(json.loads(body))  # type: ignore[attr-defined]
        time.sleep(self.server.delay)  # type: ignore[attr-defined]
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[http.server.HTTPServer]:
    status, delay = getattr(request, "param", (200, 0.0))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.bodies, server.status, server.delay = [], status, delay  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def hook_url(server: http.server.HTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/hook"


def test_webhook_payload_is_delivered(live_sqlite_settings: Settings,
                                      receiver: http.server.HTTPServer) -> None:
    armed = dataclasses.replace(live_sqlite_settings, alert_webhook_url=hook_url(receiver))
    add_rows(armed, 20)
    add_rows(armed, 10, status="error")
    evaluate_alerts(armed, notify=post_json)
    payload = receiver.bodies[0]  # type: ignore[attr-defined]
    assert payload["rule"] == "error_rate" and payload["change"] == "opened"
    assert payload["state"] == "open" and "failed" in payload["message"] and payload["advice"]


@pytest.mark.parametrize("receiver", [(500, 0.0), (200, 6.0)], indirect=True,
                         ids=["returns-500", "times-out"])
def test_failing_webhook_leaves_serving_unaffected(live_sqlite_settings: Settings,
                                                   receiver: http.server.HTTPServer) -> None:
    armed = dataclasses.replace(live_sqlite_settings, alert_webhook_url=hook_url(receiver))
    assert post_json(armed.alert_webhook_url, {"ping": 1}, timeout=1.0) is False
    add_rows(armed, 20)
    add_rows(armed, 10, status="error")
    service = PredictionService(armed)
    start = time.monotonic()
    changes = evaluate_alerts(armed)  # the app's default: delivery in the background
    assert time.monotonic() - start < 2.0 and changes
    results = [service.predict("I was charged twice for one coffee") for _ in range(20)]
    assert all(r.label for r in results)
    assert time.monotonic() - start < 5.0


def test_one_open_alert_and_one_webhook_when_processes_race(live_settings: Settings) -> None:
    """Evaluators in several processes see 'no open alert' at the same moment: the database
    keeps one open episode per rule, and only the evaluator that wrote it notifies."""
    add_rows(live_settings, 25)
    add_rows(live_settings, 5, status="error")
    with session_scope(live_settings) as session:
        first = alert_store.open_alert(session=session, rule="error_rate", value=0.2,
                                       message="first", advice="")
    with session_scope(live_settings) as session:  # a second evaluator, a moment late
        second = alert_store.open_alert(session=session, rule="error_rate", value=0.2,
                                        message="second", advice="")
        alert_store.touch_alert(session=session, alert_id=first.id if first else 0,
                                value=0.3, message="the session is still usable")
    assert first is not None and second is None

    add_rows(live_settings, 100)  # resolves it
    assert evaluate(live_settings)["error_rate"] == "resolved"
    add_rows(live_settings, 40, status="error")  # fires again: two evaluators at once
    with_webhook = dataclasses.replace(live_settings, alert_webhook_url="http://127.0.0.1:9")
    sent: list[dict[str, object]] = []
    start = threading.Barrier(4)

    def evaluator() -> None:
        start.wait()
        evaluate_alerts(with_webhook, notify=lambda _url, payload: sent.append(payload))

    threads = [threading.Thread(target=evaluator) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert [p["rule"] for p in sent if p["change"] == "opened"] == ["error_rate"]
    assert open_rules(live_settings) == {"error_rate"}
