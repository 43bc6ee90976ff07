"""What the chaos modules (tests/e2e/test_chaos.py and test_chaos_timed.py) share besides
their servers (conftest.py's `server_env` and `proxied_server`): the message they send and
the check that no answered row went missing."""

from __future__ import annotations

from sqlalchemy import create_engine, select

from feedback.tables import Feedback, Prediction

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
