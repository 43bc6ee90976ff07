"""GET /metrics: Prometheus text from the official client, counting what the app did."""

from __future__ import annotations

import pytest
from api_support import (
    AUTH,
    api_client,
    api_settings,
    close_app_writers,  # noqa: F401 - fixture
)
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import ApiMetrics
from classifier.serving.service import PredictionService
from classifier.serving.validation import RejectedInputError
from feedback.settings import Settings

pytestmark = pytest.mark.usefixtures("close_app_writers")


def samples(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_requests_predictions_latency_and_feedback(
        live_sqlite_settings: Settings) -> None:
    client = api_client(api_settings(live_sqlite_settings))
    answer = client.post("/api/v1/predict", json={"text": "refund my coffee"}, headers=AUTH)
    client.post("/api/v1/predict", json={"text": "   "}, headers=AUTH)
    client.post("/api/v1/predict", json={"text": "no key"})
    client.post("/api/v1/predict/batch", json={"texts": ["close my account", ""]}, headers=AUTH)
    client.post("/api/v1/feedback", headers=AUTH,
                json={"request_id": answer.json()["request_id"], "verdict": "up"})
    client.get("/api/v1/no-such-route", headers=AUTH)

    found = samples(client)
    http = "support_triage_http_requests_total"
    assert value(found, http, route="/api/v1/predict", method="POST", status="200") == 1
    assert value(found, http, route="/api/v1/predict", method="POST", status="422") == 1
    assert value(found, http, route="/api/v1/predict", method="POST", status="401") == 1
    assert value(found, http, route="/api/v1/predict/batch", method="POST", status="200") == 1
    assert value(found, http, route="/api/v1/feedback", method="POST", status="200") == 1
    assert value(found, http, route="other", method="GET", status="404") == 1

    predictions = "support_triage_predictions_total"
    assert value(found, predictions, source="api", status="ok", model_version="1") == 1
    assert value(found, predictions, source="batch", status="ok", model_version="1") == 1
    assert value(found, predictions, source="batch", status="rejected", model_version="none") == 1
    # the empty message is a rejected prediction; the missing key is counted on its own
    assert value(found, predictions, source="api", status="rejected", model_version="none") == 1
    assert value(found, "support_triage_unauthenticated_requests_total",
                  code="missing_api_key") == 1

    assert value(found, "support_triage_feedback_total", verdict="up") == 1
    assert value(found, "support_triage_http_request_duration_seconds_count",
                 route="/api/v1/predict") == 3
    assert value(found, "support_triage_http_request_duration_seconds_bucket",
                 route="/api/v1/predict", le="+Inf") == 3
    assert value(found, "support_triage_prediction_duration_seconds_count", source="api") == 2


def test_metrics_need_no_key_and_stay_out_of_the_openapi(live_sqlite_settings: Settings) -> None:
    client = api_client(api_settings(live_sqlite_settings, server_name="0.0.0.0", api_keys=""))
    assert client.get("/metrics").status_code == 200
    assert "/metrics" not in client.get("/api/openapi.json").json()["paths"]


def test_ui_predictions_are_counted_through_the_same_service(
        live_sqlite_settings: Settings) -> None:
    metrics = ApiMetrics()
    service = PredictionService(live_sqlite_settings, observers=[metrics])
    service.predict("my card was declined", source="ui")
    with pytest.raises(RejectedInputError):
        service.predict("", source="ui")
    text = metrics.render().decode()
    assert 'support_triage_predictions_total{model_version="1",source="ui",status="ok"} 1.0' \
        in text
    assert ('support_triage_predictions_total{model_version="none",source="ui",'
            'status="rejected"} 1.0') in text


def test_each_app_has_its_own_registry() -> None:
    first, second = ApiMetrics(), ApiMetrics()
    first.count_prediction("api", "ok", 3)
    assert b"source=\"api\"" in first.render() and b"source=\"api\"" not in second.render()
