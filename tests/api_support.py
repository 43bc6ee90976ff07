"""Helpers shared by the REST API tests: an app built by app.create_app on given settings,
its API key, and the prediction rows the calls leave behind."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app import create_app
from feedback.db import session_scope
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


# The clients built here, running their app's lifespan (background loops, log writer):
# closed after each test by `close_app_writers`.
_CLIENTS: list[TestClient] = []


def api_client(settings: Settings) -> TestClient:
    """A client of the whole app (REST routes, middleware, Gradio UI) built by create_app,
    with its lifespan running, as under uvicorn."""
    app, _startup = create_app(settings)
    client = TestClient(app, raise_server_exceptions=False)
    client.__enter__()
    _CLIENTS.append(client)
    return client


def wait_for_key_refresh(client: TestClient, timeout: float = 30) -> None:
    """Until the app's background loop has reloaded the API keys once more."""
    loop = next(loop for loop in client.app.state.work.loops if loop.name == "api-keys")
    runs, deadline = loop.runs, time.monotonic() + timeout
    while loop.runs <= runs + 1 and time.monotonic() < deadline:
        time.sleep(0.05)


def stop_apps() -> None:
    """Stop every app built here (their lifespan: loops, log writer)."""
    while _CLIENTS:
        _CLIENTS.pop().__exit__(None, None, None)


# The fixtures that make a test's database: requested by close_app_writers first.
DATABASE_FIXTURES = ("settings", "sqlite_settings", "postgres_settings")


@pytest.fixture
def close_app_writers(request: pytest.FixtureRequest) -> Iterator[None]:
    """Use with `usefixtures` in a module: stops the apps its tests built, before their
    database is dropped. pytest tears fixtures down in the reverse order of their set-up, and
    a module's `usefixtures` is set up before the test's own, so this one asks for the test's
    database first (otherwise a background loop can still be querying a PostgreSQL schema
    while it is dropped: CI saw the DROP SCHEMA deadlock)."""
    for name in DATABASE_FIXTURES:
        if name in request.fixturenames:
            request.getfixturevalue(name)
    yield
    stop_apps()


def prediction_rows(settings: Settings) -> list[dict[str, Any]]:
    """Every prediction row as a dict, oldest first (every answered request's row is
    committed before its answer)."""
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
