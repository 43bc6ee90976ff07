"""Lifecycle actions as one call each (one transaction each), shared by the CLI and the UI.

The UI additionally needs the admin token: `authorize` compares it in constant time with
ADMIN_TOKEN and refuses every action when no token is configured.
"""

from __future__ import annotations

import hmac

from classifier import registry
from classifier.registry import ModelVersionInfo
from feedback.db import session_scope
from feedback.errors import NotAuthorizedError
from feedback.settings import Settings


def actions_disabled_reason(settings: Settings) -> str | None:
    """Why lifecycle actions are off in the UI, or None when they are available."""
    if not settings.admin_token:
        return ("Lifecycle actions are disabled: no ADMIN_TOKEN is set for this app. Set the "
                "ADMIN_TOKEN environment variable (a Space secret) to enable them.")
    return None


def authorize(settings: Settings, token: str | None) -> None:
    """Raise NotAuthorizedError unless `token` equals the configured ADMIN_TOKEN."""
    reason = actions_disabled_reason(settings)
    if reason:
        raise NotAuthorizedError(reason)
    if not hmac.compare_digest((token or "").encode(), settings.admin_token.encode()):
        raise NotAuthorizedError("Wrong admin token.")


def promote(settings: Settings, version: int, *, actor: str, reason: str = "",
            force: bool = False) -> ModelVersionInfo:
    with session_scope(settings) as session:
        return registry.promote(session=session, version=version, actor=actor, reason=reason,
                                force=force)


def rollback(settings: Settings, *, actor: str, reason: str = "") -> ModelVersionInfo:
    with session_scope(settings) as session:
        return registry.rollback(session=session, actor=actor, reason=reason)


def start_canary(settings: Settings, version: int, percent: int | None, *, actor: str,
                 reason: str = "", force: bool = False) -> ModelVersionInfo:
    with session_scope(settings) as session:
        return registry.start_canary(session=session, version=version,
                                     percent=settings.canary_percent if percent is None
                                     else percent, actor=actor, reason=reason, force=force)


def stop_canary(settings: Settings, *, actor: str, reason: str = "") -> int:
    with session_scope(settings) as session:
        return registry.stop_canary(session=session, actor=actor, reason=reason)


def reject(settings: Settings, version: int, *, actor: str, reason: str = "") -> ModelVersionInfo:
    with session_scope(settings) as session:
        return registry.reject(session=session, version=version, actor=actor, reason=reason)



def list_versions(settings: Settings) -> list[ModelVersionInfo]:
    with session_scope(settings) as session:
        return registry.list_versions(session=session)


def get_version(settings: Settings, version: int) -> ModelVersionInfo:
    with session_scope(settings) as session:
        return registry.get_version(session=session, version=version)


def list_events(settings: Settings, limit: int = 50) -> list[dict[str, object]]:
    with session_scope(settings) as session:
        return registry.list_events(session=session, limit=limit)
