import importlib
from pathlib import Path

import pytest
from conftest import ROOT

from classifier.versions import registry
from feedback.db import session_scope
from feedback.store import count_rows


def test_settings_fixture_opens_each_database(settings):
    with session_scope(settings) as session:
        assert count_rows(session=session) == {"predictions": 0, "feedback": 0}


def test_live_settings_has_a_gated_live_model(live_settings):
    with session_scope(live_settings) as session:
        live = registry.live_version(session=session)
        assert registry.get_version(session=session, version=live).gate_passed is True


@pytest.mark.parametrize("package", ["api", "app", "classifier", "dashboards", "feedback", "ui"])
def test_test_folders_never_shadow_the_packages(package):
    """tests/api, tests/ui... are on sys.path (pytest's prepend import mode) but hold no
    __init__.py, so `import api` still finds the application's package."""
    found = Path(importlib.import_module(package).__file__).resolve()
    expected = ROOT / "app.py" if package == "app" else ROOT / package / "__init__.py"
    assert found == expected
