"""Lifecycle actions as one call each (one transaction each), shared by the CLI and the UI.

The UI additionally needs the admin token: `authorize` compares it in constant time with
ADMIN_TOKEN and refuses every action when no token is configured. `overview` and
`valid_actions` tell a person which actions the registry would accept for each version, so
the UI offers only those.

A reason is optional here (the CLI, first start and auto-promotion call these without a
person typing one); entry points where a person acts call `require_reason` first.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from classifier.versions import registry
from classifier.versions.registry import (
    CANARY,
    LIVE,
    REJECTED,
    DeploymentState,
    ModelVersionInfo,
)
from feedback.db import session_scope
from feedback.errors import InvalidInputError, NotAuthorizedError
from feedback.settings import Settings

PROMOTE, START_CANARY, STOP_CANARY, ROLLBACK, REJECT = (
    "promote", "canary", "stop", "rollback", "reject")
# Changing what answers every request, or ruling a version out for good, must say why: the
# audit trail is read later by someone who was not there. A canary is small and reversible.
REASON_REQUIRED = frozenset({PROMOTE, ROLLBACK, REJECT})


@dataclass(frozen=True)
class Overview:
    """Every version and what serves, read in one transaction so that they agree."""

    versions: list[ModelVersionInfo]
    state: DeploymentState
    previous_live: int | None  # where a rollback returns to

    def find(self, version: int | None) -> ModelVersionInfo | None:
        return next((v for v in self.versions if v.version == version), None)


def overview(settings: Settings) -> Overview:
    with session_scope(settings) as session:
        return Overview(registry.list_versions(session=session),
                        registry.deployment_state(session=session),
                        registry.previous_live_version(session=session))


def valid_actions(info: ModelVersionInfo, view: Overview) -> tuple[str, ...]:
    """The actions the registry would accept for `info` now, in the order to offer them.

    START_CANARY on the running canary changes its share. A version that has not passed the
    readiness gate is only offered REJECT: overriding the gate is for the CLI's --force.
    """
    if info.status == LIVE:
        previous = view.find(view.previous_live)
        return (ROLLBACK,) if previous is not None and previous.status != REJECTED else ()
    if info.status == REJECTED:
        return ()
    gated = (PROMOTE,) if info.gate_passed else ()
    if info.status == CANARY:
        return (*gated, START_CANARY, STOP_CANARY, REJECT)
    free = view.state.live_version is not None and view.state.canary_version is None
    return (*((START_CANARY,) if gated and free else ()), *gated, REJECT)


def require_reason(action: str, version: int, reason: str) -> str:
    """The reason, stripped; raises InvalidInputError when `action` needs one and it is
    empty."""
    reason = (reason or "").strip()
    if action in REASON_REQUIRED and not reason:
        raise InvalidInputError(f"Give a reason to {action} version {version}: it is kept in "
                                "the audit trail with your name. Nothing was changed.")
    return reason


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


def deployment_revision(settings: Settings) -> int:
    """Changes whenever live or canary changes: a confirmation is stale once it moved."""
    with session_scope(settings) as session:
        return registry.deployment_revision(session=session)


def list_events(settings: Settings, limit: int = 50) -> list[registry.AuditEvent]:
    with session_scope(settings) as session:
        return registry.list_events(session=session, limit=limit)
