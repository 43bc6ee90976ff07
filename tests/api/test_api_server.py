"""The REST API over real HTTP: `python app.py` started as a subprocess with API_KEYS set,
every route and its error codes, and the rows left in the server's SQLite log."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import Server, start_server, stop_server
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from feedback.tables import Prediction

TIMEOUT = 30
LOG_DELAY_SECONDS = 10  # far more than the writer needs; only a broken log waits this long
KEYS = {"main": "server-main-secret-0123456789", "burst": "server-burst-secret-0123456789",
        "spare": "server-spare-secret-0123456789"}
ADMIN = "server-admin-token-0123456789"
MESSAGE = "I was charged twice for the same coffee this morning, please refund one of them."


def auth(key: str = "main") -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[key]}"}


@pytest.fixture(scope="module")
def server(trained_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("api-server")
    shutil.copytree(trained_data_dir, folder / "data")
    running = start_server(folder / "data", folder / "server.log", extra_env={
        "API_KEYS": ",".join(f"{k}:{v}" for k, v in KEYS.items()), "ADMIN_TOKEN": ADMIN,
        "RATE_LIMIT_PER_MINUTE": "30", "RATE_LIMIT_BURST": "20", "MAX_BODY_BYTES": "20000"})
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        yield client


def rows(data_dir: Path) -> list[Prediction]:
    engine = create_engine(f"sqlite:///file:{data_dir / 'support_triage.db'}?mode=ro&uri=true")
    try:
        with Session(engine, expire_on_commit=False) as session:
            found = list(session.scalars(select(Prediction).order_by(Prediction.id)))
            session.expunge_all()
            return found
    finally:
        engine.dispose()


def rows_when(data_dir: Path, count: int) -> list[Prediction]:
    """The rows once there are `count` of them: API rows are written in batches by a
    background writer, a moment after the answer."""
    deadline = time.monotonic() + LOG_DELAY_SECONDS
    while len(found := rows(data_dir)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def settled_rows(data_dir: Path) -> list[Prediction]:
    """The rows once the writer has caught up with earlier requests (two equal reads)."""
    previous = rows(data_dir)
    while True:
        time.sleep(0.2)
        current = rows(data_dir)
        if len(current) == len(previous):
            return current
        previous = current


def row(data_dir: Path, request_id: str) -> Prediction:
    deadline = time.monotonic() + LOG_DELAY_SECONDS
    while True:
        matches = [r for r in rows(data_dir) if r.request_id == request_id]
        if matches or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(matches) == 1
    return matches[0]


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text[:300]
    body = response.json()["error"]
    assert body["code"] == code and body["message"] and "Traceback" not in response.text
    return body


def test_startup_log_says_keys_are_configured(server: Server) -> None:
    assert "REST API: 3 key(s) from API_KEYS" in server.log()


def test_predict_over_http(server: Server, http: httpx.Client) -> None:
    response = http.post("/api/v1/predict", json={"text": MESSAGE + " jane@example.com"},
                         headers=auth())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["label"] == "billing" and body["model_version"] == 1
    logged = row(server.data_dir, body["request_id"])
    assert (logged.source, logged.status, logged.label) == ("api", "ok", "billing")
    assert "[EMAIL]" in (logged.text or "") and "jane@" not in (logged.text or "")


@pytest.mark.parametrize(("headers", "code"), [
    ({}, "missing_api_key"), ({"Authorization": "Bearer nope-nope-nope-nope"}, "invalid_api_key")])
def test_unauthenticated_calls_are_counted_not_logged(server: Server, http: httpx.Client,
                                                      headers: dict[str, str], code: str) -> None:
    before = len(settled_rows(server.data_dir))
    for _ in range(3):
        error_of(http.post("/api/v1/predict", json={"text": MESSAGE}, headers=headers), 401, code)
    assert len(settled_rows(server.data_dir)) == before
    assert (f'support_triage_unauthenticated_requests_total{{code="{code}"}} 3.0'
            in http.get("/metrics").text)


@pytest.mark.parametrize(("kwargs", "status", "code"), [
    ({"json": {"text": "  "}, "headers": auth()}, 422, "empty"),
    ({"json": {"text": "x" * 5001}, "headers": auth()}, 422, "too_long"),
    ({"json": {"text": "\x00\x01\x02"}, "headers": auth()}, 422, "binary"),
    ({"json": {"text": 42}, "headers": auth()}, 422, "invalid_request"),
    ({"json": {"text": "hi", "extra": 1}, "headers": auth()}, 422, "invalid_request"),
    ({"content": b'{"text": "caf\xe9"}', "headers": {**auth(), "content-type":
                                                     "application/json"}},
     400, "invalid_utf8"),
    ({"content": b'{"text": "' + b"a" * 30000 + b'"}',
      "headers": {**auth(), "content-type": "application/json"}}, 413, "body_too_large"),
])
def test_predict_errors_over_http(server: Server, http: httpx.Client, kwargs: dict[str, object],
                                  status: int, code: str) -> None:
    before = len(settled_rows(server.data_dir))
    error_of(http.post("/api/v1/predict", **kwargs), status, code)  # type: ignore[arg-type]
    logged = rows_when(server.data_dir, before + 1)
    assert len(logged) == before + 1
    assert logged[-1].status == "rejected" and (logged[-1].reason or "").startswith(code)
    assert logged[-1].text is None


def test_streamed_body_over_the_limit(http: httpx.Client) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(300):
            yield b"refund " * 20
        yield b'"}'

    error_of(http.post("/api/v1/predict", content=body(),
                       headers={**auth(), "content-type": "application/json"}),
             413, "body_too_large")


def test_batch_and_feedback_over_http(server: Server, http: httpx.Client) -> None:
    batch = http.post("/api/v1/predict/batch", headers=auth(),
                      json={"texts": [MESSAGE, "", "Please close my account."]})
    assert batch.status_code == 200, batch.text
    items = batch.json()["items"]
    assert [i["error"]["code"] if i["error"] else "ok" for i in items] == ["ok", "empty", "ok"]
    request_id = items[2]["result"]["request_id"]
    assert row(server.data_dir, request_id).source == "batch"

    rated = http.post("/api/v1/feedback", headers=auth(), json={
        "request_id": request_id, "verdict": "down", "correct_label": "account"})
    assert rated.status_code == 200 and rated.json()["changed"] is False
    error_of(http.post("/api/v1/feedback", headers=auth(),
                       json={"request_id": "0" * 32, "verdict": "up"}), 404, "not_found")
    error_of(http.post("/api/v1/predict/batch", headers=auth(), json={"texts": ["a"] * 101}),
             422, "too_many_texts")


def test_health_models_and_unknown_routes(http: httpx.Client) -> None:
    health = http.get("/api/v1/health")
    assert health.status_code == 200 and health.json() == {"status": "ok", "model_version": 1}
    models = http.get("/api/v1/models", headers=auth("spare"))
    assert models.status_code == 200 and models.json()["live_version"] == 1
    error_of(http.get("/api/v1/models"), 401, "missing_api_key")
    error_of(http.get("/api/v1/unknown", headers=auth("spare")), 404, "not_found")
    error_of(http.delete("/api/v1/feedback", headers=auth("spare")), 405, "method_not_allowed")


def burst(http: httpx.Client) -> list[httpx.Response]:
    """More requests on the "burst" key than its limit lets through (tests of this module
    may run on different workers, each with its own server: each makes what it checks)."""
    return [http.get("/api/v1/models", headers=auth("burst")) for _ in range(40)]


def test_rate_limit_over_http(http: httpx.Client) -> None:
    statuses = burst(http)
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, [r.status_code for r in statuses]
    assert all(r.status_code in (200, 429) for r in statuses)
    error_of(limited[0], 429, "rate_limited")
    assert int(limited[0].headers["retry-after"]) >= 1
    assert http.get("/api/v1/models", headers=auth("spare")).status_code == 200


def test_export_over_http(http: httpx.Client) -> None:
    error_of(http.get("/api/v1/export/predictions.csv"), 403, "not_authorized")
    texts = [f"{MESSAGE} ({i})" for i in range(12)]
    assert http.post("/api/v1/predict/batch", headers=auth(),
                     json={"texts": texts}).status_code == 200
    with http.stream("GET", "/api/v1/export/predictions.csv",
                     headers={"X-Admin-Token": ADMIN}) as response:
        assert response.status_code == 200
        text = response.read().decode()
    lines = text.splitlines()
    assert lines[0].startswith("request_id,created_at,source,status,reason,text")
    assert any(",batch,ok," in line for line in lines) and len(lines) > 10


def test_metrics_over_http(http: httpx.Client) -> None:
    assert any(r.status_code == 429 for r in burst(http))
    response = http.get("/metrics")
    assert response.status_code == 200
    names = {f.name for f in text_string_to_metric_families(response.text)}
    assert {"support_triage_http_requests", "support_triage_predictions",
            "support_triage_http_request_duration_seconds", "support_triage_feedback"} <= names
    assert 'status="429"' in response.text


def test_ui_is_not_behind_api_keys(http: httpx.Client) -> None:
    assert http.get("/").status_code == 200
    assert http.get("/gradio_api/info").status_code == 200


def test_the_log_never_shows_a_key(server: Server, http: httpx.Client) -> None:
    error_of(http.post("/api/v1/predict", json={"text": 42}, headers=auth()), 422,
             "invalid_request")
    burst(http)
    error_of(http.post("/api/v1/predict", json={"text": MESSAGE},
                       headers={"Authorization": "Bearer nope-nope-nope-nope"}), 401,
             "invalid_api_key")
    log = server.log()
    assert "rejected POST /api/v1/predict: invalid_request (key main" in log
    for secret in (*KEYS.values(), ADMIN, "nope-nope-nope-nope"):
        assert secret not in log


@pytest.mark.e2e
def test_public_host_without_keys_refuses_the_api(trained_data_dir: Path,
                                                  tmp_path: Path) -> None:
    shutil.copytree(trained_data_dir, tmp_path / "data")
    public = start_server(tmp_path / "data", tmp_path / "public.log",
                          extra_env={"GRADIO_SERVER_NAME": "0.0.0.0"})
    try:
        assert "no API keys configured and host 0.0.0.0 is not loopback" in public.log()
        response = httpx.post(f"{public.url}/api/v1/predict", json={"text": MESSAGE},
                              timeout=TIMEOUT)
        assert "API_KEYS" in error_of(response, 401, "api_keys_required")["message"]
        assert httpx.get(f"{public.url}/api/v1/health", timeout=TIMEOUT).status_code == 200
        assert httpx.get(f"{public.url}/", timeout=TIMEOUT).status_code == 200
    finally:
        stop_server(public)
