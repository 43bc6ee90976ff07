"""Replicas starting together on an empty database: only one trains the default model."""

from __future__ import annotations

import threading
from datetime import timedelta

from conftest import SmallModel, install_model

from classifier.training import default_model as bootstrap
from classifier.versions import registry
from feedback import leases
from feedback.db import session_scope
from feedback.settings import Settings


def test_a_second_process_waits_for_the_first_ones_training(
        settings: Settings, small_model: SmallModel, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(bootstrap, "WAIT_SECONDS", 0.05)
    with session_scope(settings) as session:  # the other replica is training
        assert leases.claim_lease(session=session, name=bootstrap.FIRST_START_LEASE,
                                  holder="other-replica", ttl=timedelta(seconds=60))
    said: list[str] = []
    waiting = threading.Event()
    outcome: list[object] = []

    def progress(message: str) -> None:
        said.append(message)
        if "Another process" in message:
            waiting.set()

    def start() -> None:
        outcome.append(bootstrap.ensure_live_model(settings, progress=progress, model="tfidf"))

    thread = threading.Thread(target=start)
    thread.start()
    assert waiting.wait(timeout=30)
    install_model(settings, small_model, promote=True)  # the other replica's model goes live
    with session_scope(settings) as session:
        leases.release_lease(session=session, name=bootstrap.FIRST_START_LEASE,
                             holder="other-replica")
    thread.join(timeout=30)
    assert outcome == [None]  # it trained nothing
    assert not any(message.startswith("No live model yet") for message in said)
    with session_scope(settings) as session:
        assert [v.version for v in registry.list_versions(session=session)] == [1]


def test_a_crashed_trainer_is_taken_over_once_its_lease_expires(settings: Settings) -> None:
    with session_scope(settings) as session:
        leases.claim_lease(session=session, name=bootstrap.FIRST_START_LEASE,
                           holder="crashed-replica", ttl=timedelta(seconds=-1))
        assert leases.claim_lease(session=session, name=bootstrap.FIRST_START_LEASE,
                                  holder="next-replica", ttl=bootstrap.FIRST_START_TTL)
