"""Property-based: whatever JSON or bytes arrive at /api/v1/predict, the answer is 200 or a
4xx JSON error, never a 5xx, and every request leaves exactly one prediction row."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from api_support import AUTH, JSON, api_client, api_settings
from conftest import SmallModel, install_model, make_settings
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from feedback.db import dispose_engines, session_scope
from feedback.settings import Settings
from feedback.tables import Prediction

# Every character, unpaired surrogates included (JSON can carry them as \ud800 escapes).
ANY_CHAR = st.characters(codec=None, exclude_categories=())
ANY_TEXT = st.text(alphabet=ANY_CHAR, max_size=300)
JSON_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT
                | st.integers(min_value=-(10**400), max_value=10**400))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(ANY_TEXT, inner, max_size=4), max_leaves=12)
# Messages that look like text: mostly letters, some PII-shaped and long ones.
MESSAGES = (ANY_TEXT | st.text(max_size=40) | st.from_regex(r"[a-z ]{1,20}[0-9 @.+-]{0,30}")
            | st.builds(lambda n: "refund " * n, st.integers(0, 900)))
PROPERTY = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@pytest.fixture(scope="module")
def app_settings(tmp_path_factory: pytest.TempPathFactory,
                 small_model: SmallModel) -> Iterator[Settings]:
    base = make_settings(tmp_path_factory.mktemp("property"))
    install_model(base, small_model, promote=True)
    yield api_settings(base)
    dispose_engines()


@pytest.fixture(scope="module")
def client(app_settings: Settings) -> TestClient:
    return api_client(app_settings)


def row_count(settings_: Settings) -> int:
    with session_scope(settings_) as session:
        return session.scalar(select(func.count()).select_from(Prediction)) or 0


def check(client: TestClient, settings_: Settings, content: bytes,
          headers: dict[str, str] | None = None) -> None:
    before = row_count(settings_)
    response = client.post("/api/v1/predict", content=content, headers={**AUTH, **JSON,
                                                                         **(headers or {})})
    assert response.status_code == 200 or 400 <= response.status_code < 500, response.text
    body: Any = response.json()
    if response.status_code == 200:
        assert set(body) == {"request_id", "label", "confidence", "scores", "model_version",
                             "latency_ms", "verdict"}
    else:
        assert isinstance(body["error"]["code"], str) and body["error"]["message"]
        assert "Traceback" not in response.text and len(response.content) < 2000
    assert row_count(settings_) == before + 1, "every request leaves exactly one row"


@PROPERTY
@given(body=JSON_VALUES)
def test_any_json_value_as_the_body(client: TestClient, app_settings: Settings,
                                    body: object) -> None:
    check(client, app_settings, json.dumps(body).encode())


@PROPERTY
@given(text=MESSAGES, extra=st.dictionaries(ANY_TEXT, JSON_VALUES, max_size=2),
       ascii_only=st.booleans())
def test_any_text_in_the_text_field(client: TestClient, app_settings: Settings, text: str,
                                    extra: dict[str, object], ascii_only: bool) -> None:
    body = {"text": text, **{k: v for k, v in extra.items() if k != "text"}}
    try:
        content = json.dumps(body, ensure_ascii=ascii_only).encode("utf-8")
    except UnicodeEncodeError:  # a raw surrogate cannot be sent unescaped
        content = json.dumps(body).encode()
    check(client, app_settings, content)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(raw=st.binary(max_size=400) | ANY_TEXT.map(
    lambda t: t.encode("utf-8", errors="surrogatepass")),
    content_type=st.sampled_from(["application/json", "text/plain", "", "application/x+json"]))
def test_any_bytes_as_the_body(client: TestClient, app_settings: Settings, raw: bytes,
                               content_type: str) -> None:
    check(client, app_settings, raw, {"content-type": content_type} if content_type else {})
