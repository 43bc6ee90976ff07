"""Canary routing: a deterministic share of request ids, recorded on every row."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from classifier.serving.model_cache import routes_to_canary
from classifier.serving.service import PredictionResult, PredictionService
from classifier.versions import lifecycle
from dashboards.comparison import compare_live_and_canary
from feedback.db import session_scope
from feedback.settings import Settings
from feedback.tables import Prediction
from tests.conftest import SmallModel, install_model

REQUESTS = 2000
CHUNK = 250


def test_routing_share_is_close_and_stable_per_request_id() -> None:
    ids = [uuid.uuid4().hex for _ in range(20_000)]
    share = sum(routes_to_canary(i, 10) for i in ids) / len(ids)
    assert 0.09 <= share <= 0.11
    assert all(routes_to_canary(i, 10) == routes_to_canary(i, 10) for i in ids[:500])
    assert not any(routes_to_canary(i, 0) for i in ids[:500])
    # Raising the share only adds requests to the canary; none switch back.
    assert all(routes_to_canary(i, 30) for i in ids if routes_to_canary(i, 10))


def test_ten_percent_canary_over_2000_requests(live_settings: Settings,
                                               small_model: SmallModel) -> None:
    install_model(live_settings, small_model, promote=False)
    lifecycle.start_canary(live_settings, 2, 10, actor="test")
    service = PredictionService(live_settings)
    texts = [f"my card payment {i} was declined" for i in range(REQUESTS)]
    # Routed one request id at a time as ever, answered and logged a chunk per call and commit.
    answered = [outcome for start in range(0, REQUESTS, CHUNK)
                for outcome in service.predict_many(texts[start:start + CHUNK], source="api")]
    assert all(isinstance(r, PredictionResult) for r in answered)
    canary_share = sum(r.model_version == 2 for r in answered) / REQUESTS
    assert 0.08 <= canary_share <= 0.12
    with session_scope(live_settings) as session:
        by_version = dict(session.execute(select(Prediction.model_version, func.count())
                                          .group_by(Prediction.model_version)).all())
    assert by_version == {1: REQUESTS - sum(r.model_version == 2 for r in answered),
                          2: sum(r.model_version == 2 for r in answered)}
    for r in answered[:200]:
        assert (r.model_version == 2) == routes_to_canary(r.request_id, 10)
    heading, rows = compare_live_and_canary(live_settings)
    assert "10 % of requests go to version 2" in heading
    table = {row[1]: row for row in rows}
    assert table["live"][0] == 1 and table["canary"][0] == 2
    assert table["live"][2] + table["canary"][2] == REQUESTS
