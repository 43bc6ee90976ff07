"""The REST API through FastAPI's TestClient on the app built by app.create_app with the real
prediction service: every route, status code and error code, and the rows each call logs."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

import pytest
from api_support import (
    ADMIN,
    AUTH,
    JSON,
    OTHER_AUTH,
    SECRET,
    api_client,
    api_settings,
    assert_error,
    close_app_writers,  # noqa: F401 - fixture
    feedback_rows,
    prediction_rows,
    wait_for_key_refresh,
)
from fastapi.testclient import TestClient
from sqlalchemy import select, text

import app
from classifier.serving.service import PredictionService
from feedback.api_keys import create_api_key, revoke_api_key
from feedback.db import get_engine, session_scope
from feedback.settings import Settings
from feedback.tables import Alert

pytestmark = pytest.mark.usefixtures("close_app_writers")
MESSAGE = "I was charged twice for the same coffee, please refund one of them."
PII_MESSAGE = "Refund my card 4111 1111 1111 1111 please, mail jane.doe@example.com"


@pytest.fixture
def client(live_sqlite_settings: Settings) -> TestClient:
    return api_client(api_settings(live_sqlite_settings))


@pytest.fixture
def settings_of(client: TestClient, live_sqlite_settings: Settings) -> Settings:
    return live_sqlite_settings


def last_row(settings: Settings) -> dict[str, object]:
    return prediction_rows(settings)[-1]


# --- predict --------------------------------------------------------------------------------

def test_predict_answers_and_logs_one_redacted_api_row(live_settings: Settings) -> None:
    """SQLite and PostgreSQL: the answer has every field, the row holds the redacted text."""
    client = api_client(api_settings(live_settings))
    response = client.post("/api/v1/predict", json={"text": PII_MESSAGE}, headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"request_id", "label", "confidence", "scores", "model_version",
                         "latency_ms", "verdict"}
    assert body["label"] == next(iter(body["scores"]))
    assert body["confidence"] == max(body["scores"].values())
    assert abs(sum(body["scores"].values()) - 1) < 1e-3
    rows = prediction_rows(live_settings)
    assert len(rows) == 1
    row = rows[0]
    assert (row["request_id"], row["source"], row["status"]) == (body["request_id"], "api", "ok")
    assert row["model_version"] == body["model_version"] and row["label"] == body["label"]
    assert "[CARD]" in row["text"] and "[EMAIL]" in row["text"]
    assert "4111" not in row["text"] and "jane.doe" not in row["text"]


@pytest.mark.parametrize(("message", "verdict"), [
    ("hello", "off_topic"),
    ("thanks a lot!", "off_topic"),
    (MESSAGE, "confident"),
])
def test_predict_says_when_a_message_is_no_support_request(
        client: TestClient, settings_of: Settings, message: str, verdict: str) -> None:
    body = client.post("/api/v1/predict", json={"text": message}, headers=AUTH).json()
    assert body["verdict"] == verdict
    assert body["label"] in body["scores"]  # the old fields keep their meaning
    row = last_row(settings_of)
    assert (row["status"], row["label"]) == ("ok", body["label"])
    assert (row["reason"] is not None) == (verdict == "off_topic")


@pytest.mark.parametrize(("message", "code"), [
    ("", "empty"),
    ("   \n\t ", "empty"),
    ("x" * 5001, "too_long"),
    ("\x00\x01\x02\x03 binary", "binary"),
    ("1234 5678 !!!", "no_words"),
])
def test_refused_messages_get_422_with_the_check_code_and_a_rejected_row(
        client: TestClient, settings_of: Settings, message: str, code: str) -> None:
    error = assert_error(client.post("/api/v1/predict", json={"text": message}, headers=AUTH),
                         422, code)
    assert len(error["message"]) < 300
    row = last_row(settings_of)
    assert (row["status"], row["source"]) == ("rejected", "api")
    assert row["reason"].startswith(code) and row["text"] is None
    assert row["text_chars"] == len(message)


@pytest.mark.parametrize("body", [
    {"text": 5}, {"text": None}, {"text": ["a"]}, {"text": {"a": 1}}, {"text": True},
    {}, [], "text", 3, None, {"texts": ["x"]},
])
def test_wrong_json_types_get_422_invalid_request_and_a_rejected_row(
        client: TestClient, settings_of: Settings, body: object) -> None:
    response = client.post("/api/v1/predict", content=json.dumps(body), headers={**AUTH, **JSON})
    error = assert_error(response, 422, "invalid_request")
    row = last_row(settings_of)
    assert row["request_id"] == error["request_id"]
    assert (row["status"], row["source"], row["text"]) == ("rejected", "api", None)
    assert row["reason"].startswith("invalid_request: POST /api/v1/predict")


def test_unknown_field_is_named_but_a_huge_one_is_not_echoed(
        client: TestClient, settings_of: Settings) -> None:
    error = assert_error(client.post("/api/v1/predict", json={"text": "hi there", "lang": "en"},
                                     headers=AUTH), 422, "invalid_request")
    assert "unknown field 'lang'" in error["message"]
    huge = "k" * 100_000
    response = client.post("/api/v1/predict", json={"text": "hello", huge: "v" * 100_000},
                           headers=AUTH)
    error = assert_error(response, 422, "invalid_request")
    assert len(response.content) < 1000 and huge not in response.text
    assert [r["status"] for r in prediction_rows(settings_of)] == ["rejected", "rejected"]


def test_malformed_json_gets_422_invalid_request(client: TestClient) -> None:
    error = assert_error(client.post("/api/v1/predict", content=b'{"text": "unfinished',
                                     headers={**AUTH, **JSON}), 422, "invalid_request")
    assert "not valid JSON" in error["message"]
    deep = b"[" * 200_000
    assert_error(client.post("/api/v1/predict", content=deep, headers={**AUTH, **JSON}),
                 400, "invalid_request")


@pytest.mark.parametrize("body", [
    b'{"text": "caf\xe9 refund please"}',  # Latin-1, not UTF-8
    b'{"text": "\xff\xfe\x00"}',
    b'\xef\xbb\xbf{"text": "\xc3"}',  # truncated multi-byte sequence
])
def test_invalid_utf8_body_gets_400_invalid_utf8(client: TestClient, settings_of: Settings,
                                                 body: bytes) -> None:
    error = assert_error(client.post("/api/v1/predict", content=body, headers={**AUTH, **JSON}),
                         400, "invalid_utf8")
    row = last_row(settings_of)
    assert row["request_id"] == error["request_id"] and row["status"] == "rejected"
    assert row["reason"].startswith("invalid_utf8")


def test_unpaired_surrogate_escape_gets_400_invalid_utf8(client: TestClient,
                                                         settings_of: Settings) -> None:
    """Valid JSON, but "\\ud800" is no Unicode character: neither UTF-8 nor the database can
    hold it, so it is refused instead of failing at the log write."""
    for body in (b'{"text": "\\ud800"}', b'{"text": "refund \\udfff my card"}'):
        assert_error(client.post("/api/v1/predict", content=body, headers={**AUTH, **JSON}),
                     400, "invalid_utf8")
    assert_error(client.post("/api/v1/feedback", headers={**AUTH, **JSON},
                             content=b'{"request_id": "\\ud800", "verdict": "up"}'),
                 400, "invalid_utf8")
    assert [r["reason"].split(":")[0] for r in prediction_rows(settings_of)] == \
        ["invalid_utf8"] * 3


# --- body size ------------------------------------------------------------------------------

def test_body_over_the_limit_gets_413_declared_or_streamed(live_sqlite_settings: Settings) -> None:
    client = api_client(api_settings(live_sqlite_settings, max_body_bytes=1000))
    ok = client.post("/api/v1/predict", json={"text": "refund " * 100}, headers=AUTH)
    assert ok.status_code == 200, ok.text
    declared = client.post("/api/v1/predict", json={"text": "refund " * 200}, headers=AUTH)
    assert_error(declared, 413, "body_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams
        yield b'{"text": "'
        for _ in range(50):
            yield b"refund " * 10
        yield b'"}'

    streamed = client.post("/api/v1/predict", content=chunks(), headers={**AUTH, **JSON})
    assert_error(streamed, 413, "body_too_large")
    assert [r["status"] for r in prediction_rows(live_sqlite_settings)] == \
        ["ok", "rejected", "rejected"]


def test_default_body_limit_is_one_mebibyte(client: TestClient) -> None:
    body = json.dumps({"text": "a" * (1024 * 1024)})
    assert_error(client.post("/api/v1/predict", content=body, headers={**AUTH, **JSON}),
                 413, "body_too_large")


# --- keys -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("headers", "code"), [
    ({}, "missing_api_key"),
    ({"Authorization": ""}, "missing_api_key"),
    ({"Authorization": f"Basic {SECRET}"}, "missing_api_key"),
    ({"Authorization": "Bearer "}, "missing_api_key"),
    ({"Authorization": "Bearer wrong-secret-0123456789"}, "invalid_api_key"),
    ({"Authorization": f"Bearer {SECRET}x"}, "invalid_api_key"),
])
def test_missing_or_wrong_key_gets_401_before_the_body_is_read(
        client: TestClient, settings_of: Settings, headers: dict[str, str], code: str) -> None:
    for path, body in (("/api/v1/predict", b'{"text": "hello"}'),
                       ("/api/v1/predict/batch", b"not even json \xff"),
                       ("/api/v1/feedback", b"{}")):
        response = client.post(path, content=body, headers={**headers, **JSON})
        assert_error(response, 401, code)
        assert response.headers["www-authenticate"] == "Bearer"
    assert_error(client.get("/api/v1/models", headers=headers), 401, code)
    # Anyone can send these as fast as they like: counted, never a database row each.
    assert prediction_rows(settings_of) == []
    metrics = client.get("/metrics").text
    assert f'support_triage_unauthenticated_requests_total{{code="{code}"}} 4.0' in metrics


def test_both_key_forms_of_api_keys_work(client: TestClient) -> None:
    for headers in (AUTH, OTHER_AUTH, {"Authorization": f"bearer {SECRET}"}):
        assert client.post("/api/v1/predict", json={"text": MESSAGE},
                           headers=headers).status_code == 200


def test_keys_are_never_logged_but_key_ids_are(client: TestClient,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client.post("/api/v1/predict", json={"text": 1}, headers=AUTH)
    client.post("/api/v1/predict", json={"text": MESSAGE},
                headers={"Authorization": "Bearer a-wrong-secret-123456789"})
    assert "client1" in caplog.text
    assert SECRET not in caplog.text and "a-wrong-secret" not in caplog.text


def test_database_keys_work_until_revoked(live_sqlite_settings: Settings,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # The app's key loop runs every KEY_REFRESH_SECONDS (5 s); this test waits for two of
    # its runs after the revoke, so it runs the same loop every 0.2 s.
    monkeypatch.setattr(app, "KEY_REFRESH_SECONDS", 0.2)
    settings = api_settings(live_sqlite_settings, api_keys="")
    with session_scope(settings) as session:
        info, secret = create_api_key(session=session, name="crm")
    client = api_client(settings)
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.post("/api/v1/predict", json={"text": MESSAGE}, headers=headers).status_code \
        == 200
    assert_error(client.post("/api/v1/predict", json={"text": MESSAGE}), 401, "missing_api_key")
    with session_scope(settings) as session:
        revoke_api_key(session=session, key_id=info.id)
    wait_for_key_refresh(client)
    assert_error(client.post("/api/v1/predict", json={"text": MESSAGE}, headers=headers),
                 401, "invalid_api_key")
    # Revoking the last key locks the API; it does not fall back to open.
    assert_error(client.post("/api/v1/predict", json={"text": MESSAGE}), 401, "missing_api_key")


def test_no_keys_on_loopback_leaves_the_api_open(live_sqlite_settings: Settings) -> None:
    client = api_client(api_settings(live_sqlite_settings, api_keys=""))
    assert client.post("/api/v1/predict", json={"text": MESSAGE}).status_code == 200
    assert client.get("/api/v1/models").status_code == 200
    # ... but not to what a reverse proxy on the same machine forwards from others.
    forwarded = {"X-Forwarded-For": "203.0.113.9"}
    error = assert_error(client.post("/api/v1/predict", json={"text": MESSAGE},
                                     headers=forwarded), 401, "api_keys_required")
    assert "reverse proxy" in error["message"]


def test_no_keys_on_a_public_host_refuses_every_keyed_route(live_sqlite_settings: Settings) -> None:
    settings = api_settings(live_sqlite_settings, api_keys="", server_name="0.0.0.0")
    client = api_client(settings)
    for call in (lambda: client.post("/api/v1/predict", json={"text": MESSAGE}),
                 lambda: client.post("/api/v1/predict", json={"text": MESSAGE}, headers=AUTH),
                 lambda: client.post("/api/v1/predict/batch", json={"texts": [MESSAGE]}),
                 lambda: client.post("/api/v1/feedback", json={}),
                 lambda: client.get("/api/v1/models")):
        error = assert_error(call(), 401, "api_keys_required")
        assert "API_KEYS" in error["message"]
    assert client.get("/api/v1/health").status_code == 200
    assert client.get("/").status_code == 200  # the UI is not behind API keys


def test_malformed_api_keys_setting_fails_at_start_without_showing_the_secret(
        live_sqlite_settings: Settings) -> None:
    with pytest.raises(ValueError, match="API_KEYS entry 2: the secret is shorter") as caught:
        api_client(api_settings(live_sqlite_settings, api_keys=f"{SECRET},shortone"))
    assert "shortone" not in str(caught.value)
    with pytest.raises(ValueError, match="key id 'a' is used twice"):
        api_client(api_settings(live_sqlite_settings, api_keys=f"a:{SECRET},a:{SECRET}x"))


# --- rate limit -----------------------------------------------------------------------------

def test_rate_limit_per_key_gives_429_with_retry_after(live_sqlite_settings: Settings) -> None:
    settings = api_settings(live_sqlite_settings, rate_limit_per_minute=6, rate_limit_burst=2)
    client = api_client(settings)
    statuses = [client.post("/api/v1/predict", json={"text": MESSAGE}, headers=AUTH).status_code
                for _ in range(2)]
    assert statuses == [200, 200]
    limited = client.post("/api/v1/predict", json={"text": MESSAGE}, headers=AUTH)
    error = assert_error(limited, 429, "rate_limited")
    assert 1 <= int(limited.headers["retry-after"]) <= 10
    assert "wait" in error["message"]
    # Another key has its own bucket; health is never limited.
    assert client.post("/api/v1/predict", json={"text": MESSAGE},
                       headers=OTHER_AUTH).status_code == 200
    assert client.get("/api/v1/health").status_code == 200
    rows = prediction_rows(settings)
    assert [r["status"] for r in rows] == ["ok", "ok", "rejected", "ok"]
    assert rows[2]["reason"].startswith("rate_limited")


# --- batch ----------------------------------------------------------------------------------

def test_batch_reports_bad_items_without_failing_and_logs_each_as_batch(
        live_settings: Settings) -> None:
    client = api_client(api_settings(live_settings))
    texts = [MESSAGE, "", "x" * 6000, PII_MESSAGE, "\x00\x01\x02\x03"]
    response = client.post("/api/v1/predict/batch", json={"texts": texts}, headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["ok"], body["failed"]) == (2, 3)
    items = body["items"]
    assert [i["index"] for i in items] == list(range(5))
    assert [i["error"]["code"] if i["error"] else None for i in items] == \
        [None, "empty", "too_long", None, "binary"]
    assert items[0]["result"]["label"] and items[1]["result"] is None
    rows = prediction_rows(live_settings)
    assert [(r["source"], r["status"]) for r in rows] == [
        ("batch", "ok"), ("batch", "rejected"), ("batch", "rejected"), ("batch", "ok"),
        ("batch", "rejected")]
    assert "[CARD]" in rows[3]["text"] and "4111" not in rows[3]["text"]
    assert rows[0]["request_id"] == items[0]["result"]["request_id"]


def test_batch_limits(live_sqlite_settings: Settings) -> None:
    settings = api_settings(live_sqlite_settings, batch_max_texts=3)
    client = api_client(settings)
    error = assert_error(client.post("/api/v1/predict/batch", json={"texts": ["a b"] * 4},
                                     headers=AUTH), 422, "too_many_texts")
    assert "BATCH_MAX_TEXTS" in error["message"]
    assert_error(client.post("/api/v1/predict/batch", json={"texts": []}, headers=AUTH),
                 422, "invalid_request")
    assert_error(client.post("/api/v1/predict/batch", json={"texts": ["ok", 5]}, headers=AUTH),
                 422, "invalid_request")
    assert_error(client.post("/api/v1/predict/batch", json={"texts": "one"}, headers=AUTH),
                 422, "invalid_request")
    assert client.post("/api/v1/predict/batch", json={"texts": ["refund me"] * 3},
                       headers=AUTH).status_code == 200
    statuses = [(r["source"], r["status"]) for r in prediction_rows(settings)]
    assert statuses == [("api", "rejected")] * 4 + [("batch", "ok")] * 3


# --- feedback -------------------------------------------------------------------------------

def test_feedback_saves_changes_and_refuses(live_settings: Settings) -> None:
    client = api_client(api_settings(live_settings))
    answer = client.post("/api/v1/predict", json={"text": MESSAGE}, headers=AUTH).json()
    rid = answer["request_id"]
    other = next(label for label in answer["scores"] if label != answer["label"])

    up = client.post("/api/v1/feedback", json={"request_id": rid, "verdict": "up"}, headers=AUTH)
    assert up.status_code == 200, up.text
    assert up.json() == {"request_id": rid, "verdict": "up", "correct_label": None,
                         "comment": None, "changed": False}
    down = client.post("/api/v1/feedback", headers=AUTH, json={
        "request_id": rid, "verdict": "down", "correct_label": other, "comment": "close"})
    assert down.json()["changed"] is True and down.json()["correct_label"] == other
    rows = feedback_rows(live_settings)
    assert len(rows) == 1 and (rows[0]["verdict"], rows[0]["correct_label"]) == ("down", other)

    assert_error(client.post("/api/v1/feedback", json={"request_id": "f" * 32, "verdict": "up"},
                             headers=AUTH), 404, "not_found")
    same = assert_error(client.post("/api/v1/feedback", headers=AUTH, json={
        "request_id": rid, "verdict": "down", "correct_label": answer["label"]}),
        422, "correction_matches_prediction")
    assert "must name a different category" in same["message"]
    assert feedback_rows(live_settings)[0]["correct_label"] == other  # unchanged
    error = assert_error(client.post("/api/v1/feedback", headers=AUTH, json={
        "request_id": rid, "verdict": "down", "correct_label": "weather"}), 422, "invalid_input")
    assert "not a category" in error["message"]
    rejected = client.post("/api/v1/predict", json={"text": ""}, headers=AUTH)
    assert rejected.status_code == 422
    rejected_id = prediction_rows(live_settings)[-1]["request_id"]
    assert_error(client.post("/api/v1/feedback", json={"request_id": rejected_id,
                                                       "verdict": "up"}, headers=AUTH),
                 422, "invalid_input")
    for bad in ({"request_id": rid, "verdict": "meh"}, {"request_id": rid},
                {"request_id": "", "verdict": "up"}, {"request_id": "a" * 65, "verdict": "up"},
                {"request_id": rid, "verdict": "up", "stars": 5}):
        assert_error(client.post("/api/v1/feedback", json=bad, headers=AUTH), 422,
                     "invalid_request")


# --- health, models, not found --------------------------------------------------------------

def test_health_needs_no_key_and_names_the_live_version(client: TestClient) -> None:
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "model_version": 1}


def test_without_a_model_predict_and_health_answer_503(sqlite_settings: Settings) -> None:
    client = api_client(api_settings(sqlite_settings))
    health = client.get("/api/v1/health")
    assert health.status_code == 503 and health.json()["status"] == "preparing"
    response = client.post("/api/v1/predict", json={"text": MESSAGE}, headers=AUTH)
    assert_error(response, 503, "model_unavailable")
    assert response.headers["retry-after"].isdigit()
    assert_error(client.post("/api/v1/predict/batch", json={"texts": [MESSAGE]}, headers=AUTH),
                 503, "model_unavailable")
    assert client.get("/api/v1/models", headers=AUTH).json() == {
        "live_version": None, "canary_version": None, "versions": []}


def test_models_lists_versions_with_the_live_one(client: TestClient) -> None:
    response = client.get("/api/v1/models", headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert body["live_version"] == 1 and body["canary_version"] is None
    assert [(v["version"], v["status"]) for v in body["versions"]] == [(1, "live")]
    assert body["versions"][0]["labels"] == 5 and len(body["versions"][0]["sha256"]) == 64


def test_unknown_api_paths_and_methods_answer_json(client: TestClient) -> None:
    assert_error(client.get("/api/v1/nothing-here", headers=AUTH), 404, "not_found")
    assert_error(client.post("/api/v1/models", headers=AUTH), 405, "method_not_allowed")
    response = client.get("/api/v1/predict", headers=AUTH)
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


# --- storage failure, crashes ---------------------------------------------------------------

def test_storage_failure_gets_503_then_recovers_by_itself(live_settings: Settings) -> None:
    """SQLite and PostgreSQL: while the prediction log cannot be written the API answers 503
    storage_unavailable with Retry-After (no answer without its row), readiness says why,
    liveness stays up; once the database is back the app serves again without a restart and
    the outage is recorded as an alert."""
    client = api_client(api_settings(live_settings))
    engine = get_engine(live_settings)
    with engine.begin() as conn:  # the log table goes away (and comes back below)
        conn.execute(text("ALTER TABLE predictions RENAME TO predictions_away"))
    response = client.post("/api/v1/predict", json={"text": MESSAGE}, headers=AUTH)
    error = assert_error(response, 503, "storage_unavailable")
    assert "Traceback" not in error["message"]
    assert response.headers["retry-after"].isdigit()
    assert_error(client.post("/api/v1/predict", json={"text": MESSAGE}, headers=AUTH),
                 503, "storage_unavailable")  # refused at once while storage is down
    assert client.get("/api/v1/health/live").status_code == 200
    ready = client.get("/api/v1/health/ready")
    assert ready.status_code == 503 and ready.json()["status"] == "storage_down"
    assert_error(client.post("/api/v1/predict", json={"text": 5}, headers=AUTH),
                 422, "invalid_request")  # a refusal still answers

    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE predictions_away RENAME TO predictions"))
    deadline = time.monotonic() + 30  # the probe loop notices within about a second
    while client.get("/api/v1/health/ready").status_code != 200 and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    answer = client.post("/api/v1/predict", json={"text": MESSAGE}, headers=AUTH)
    assert answer.status_code == 200
    assert answer.json()["request_id"] in {r["request_id"] for r in prediction_rows(
        live_settings)}
    with session_scope(live_settings) as session:
        [outage] = session.scalars(select(Alert).where(Alert.rule == "storage_down")).all()
    assert outage.state == "resolved" and outage.value is not None and outage.value >= 2


def test_an_unexpected_crash_is_a_500_without_a_traceback(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: PredictionService, text: object, *, source: str = "ui") -> None:
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(PredictionService, "predict", boom)
    response = client.post("/api/v1/predict", json={"text": MESSAGE}, headers=AUTH)
    error = assert_error(response, 500, "internal")
    assert "secret internals" not in response.text and "RuntimeError" not in response.text
    assert "logged" in error["message"]


# --- the UI stays outside the API rules -----------------------------------------------------

def test_gradio_paths_need_no_key_and_keep_their_own_body_rules(
        live_sqlite_settings: Settings) -> None:
    client = api_client(api_settings(live_sqlite_settings, max_body_bytes=100))
    assert client.get("/").status_code == 200
    assert client.get("/config").status_code == 200
    assert client.get("/gradio_api/info").status_code == 200
    big = client.post("/gradio_api/queue/join", content=b"x" * 1000, headers=JSON)
    assert big.status_code != 413 and "body_too_large" not in big.text
    assert prediction_rows(live_sqlite_settings) == []


def test_openapi_documents_every_route_and_the_key(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    assert {"/api/v1/predict", "/api/v1/predict/batch", "/api/v1/feedback", "/api/v1/health",
            "/api/v1/models", "/api/v1/export/predictions.csv"} <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["APIKey"]["scheme"] == "bearer"
    predict = spec["paths"]["/api/v1/predict"]["post"]
    assert predict["security"] == [{"APIKey": []}]
    assert {"401", "413", "422", "429", "503"} <= set(predict["responses"])
    assert "security" not in spec["paths"]["/api/v1/health"]["get"]
    assert spec["components"]["schemas"]["PredictRequest"]["additionalProperties"] is False
    assert client.get("/api/docs").status_code == 200


# --- export ---------------------------------------------------------------------------------

def test_export_needs_the_admin_token(client: TestClient, settings_of: Settings) -> None:
    client.post("/api/v1/predict", json={"text": MESSAGE}, headers=AUTH)
    assert_error(client.get("/api/v1/export/predictions.csv"), 403, "not_authorized")
    assert_error(client.get("/api/v1/export/predictions.csv", headers={"X-Admin-Token": "no"}),
                 403, "not_authorized")
    # An API key is not an admin token.
    assert_error(client.get("/api/v1/export/predictions.csv", headers=AUTH), 403,
                 "not_authorized")
    response = client.get("/api/v1/export/predictions.csv", headers={"X-Admin-Token": ADMIN})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    lines = response.text.splitlines()
    assert lines[0].startswith("request_id,created_at,source,status")
    assert len(lines) == 5 and ",api,ok," in lines[1]  # the answer and the three refusals
    assert all(",api,rejected,not_authorized: GET" in line for line in lines[2:])
    assert_error(client.get("/api/v1/export/predictions.csv?since=yesterday",
                            headers={"X-Admin-Token": ADMIN}), 422, "invalid_input")
    reasons = [r["reason"] for r in prediction_rows(settings_of) if r["status"] == "rejected"]
    assert [r.split(":")[0] for r in reasons] == ["not_authorized"] * 3


def test_export_is_disabled_without_an_admin_token(live_sqlite_settings: Settings) -> None:
    client = api_client(api_settings(live_sqlite_settings, admin_token=""))
    error = assert_error(client.get("/api/v1/export/predictions.csv",
                                    headers={"X-Admin-Token": ""}), 403, "not_authorized")
    assert "ADMIN_TOKEN" in error["message"]
