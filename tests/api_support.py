"""Helpers shared by the REST API tests: an app built by app.create_app on given settings,
its API key, and the prediction rows the calls leave behind."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app import create_app
from feedback.db import session_scope
from feedback.log_writer import PredictionLogWriter
from feedback.settings import Settings
from feedback.tables import Feedback, Prediction

SECRET = "test-secret-0123456789abcdef"
OTHER_SECRET = "other-secret-0123456789abcdef"
API_KEYS = f"client1:{SECRET},{OTHER_SECRET}"
AUTH = {"Authorization": f"Bearer {SECRET}"}
OTHER_AUTH = {"Authorization": f"Bearer {OTHER_SECRET}"}
JSON = {"content-type": "application/json"}
ADMIN = "admin-token-for-tests"


def api_settings(settings: Settings, **overrides: Any) -> Settings:
    """`settings` with API keys and an admin token, and no rate limit unless asked for."""
    base = {"api_keys": API_KEYS, "admin_token": ADMIN, "rate_limit_per_minute": 0}
    return dataclasses.replace(settings, **{**base, **overrides})


# The background log writers of the apps built here, by database: flushed before rows are
# read (API rows are written in batches off the request path) and closed after each test.
_WRITERS: list[tuple[str, PredictionLogWriter]] = []


def api_client(settings: Settings) -> TestClient:
    """A client of the whole app (REST routes, middleware, Gradio UI) built by create_app."""
    app, _startup = create_app(settings)
    _WRITERS.append((settings.effective_database_url, app.state.log_writer))
    return TestClient(app, raise_server_exceptions=False)


def flush_logs(settings: Settings) -> None:
    for url, writer in _WRITERS:
        if url == settings.effective_database_url:
            assert writer.flush(timeout=30), "the prediction log writer did not catch up"


@pytest.fixture(autouse=False)
def close_app_writers() -> Iterator[None]:
    """Use with autouse in a module: closes the log writers of the apps its tests built."""
    mark = len(_WRITERS)
    yield
    for _url, writer in _WRITERS[mark:]:
        writer.close(timeout=2)
    del _WRITERS[mark:]


def prediction_rows(settings: Settings) -> list[dict[str, Any]]:
    """Every prediction row as a dict, oldest first (after the app's log writers caught up)."""
    flush_logs(settings)
    with session_scope(settings) as session:
        rows = session.scalars(select(Prediction).order_by(Prediction.id)).all()
        return [{c.name: getattr(r, c.name) for c in Prediction.__table__.columns} for r in rows]


def feedback_rows(settings: Settings) -> list[dict[str, Any]]:
    with session_scope(settings) as session:
        rows = session.scalars(select(Feedback).order_by(Feedback.id)).all()
        return [{c.name: getattr(r, c.name) for c in Feedback.__table__.columns} for r in rows]


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is a JSON error with this status and code, and no traceback."""
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    assert "Traceback" not in response.text
    return body["error"]
