from feedback.db import session_scope
from feedback.store import count_rows


def test_settings_fixture_opens_each_database(settings):
    with session_scope(settings) as session:
        assert count_rows(session=session) == {"predictions": 0, "feedback": 0}
