"""REST API keys stored in the database: create (the secret is returned once), list, revoke.

Only the sha256 of a secret is stored, so a database dump does not leak usable keys.
Functions take the session as a keyword argument and return plain dataclasses.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from feedback.db import session_scope
from feedback.errors import InvalidInputError, NotFoundError
from feedback.settings import Settings
from feedback.tables import ApiKey, utc_now

# Secrets carry a recognisable prefix (so leaked keys are easy to grep for) and 32 random
# bytes, far beyond guessing range.
SECRET_PREFIX = "st_"
SECRET_BYTES = 32
MAX_NAME_CHARS = 100


@dataclass(frozen=True)
class ApiKeyInfo:
    id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def hash_secret(secret: str) -> str:
    """The sha256 hex digest under which a key is stored and looked up."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _info(row: ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(id=row.id, name=row.name, created_at=row.created_at,
                      revoked_at=row.revoked_at)


def create_api_key(*, session: Session, name: str) -> tuple[ApiKeyInfo, str]:
    """Store a new key; returns its info and the secret, which is not kept anywhere.

    Raises InvalidInputError for an empty or over-long name.
    """
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS:
        raise InvalidInputError(
            f"An API key needs a name of 1-{MAX_NAME_CHARS} characters, e.g. the system using it."
        )
    secret = SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    key_id = secrets.token_hex(4)
    while session.get(ApiKey, key_id) is not None:  # 32-bit ids: a clash is rare, not impossible
        key_id = secrets.token_hex(4)
    row = ApiKey(id=key_id, name=name, sha256=hash_secret(secret), created_at=utc_now(),
                 revoked_at=None)
    session.add(row)
    session.flush()
    return _info(row), secret


def list_api_keys(*, session: Session) -> list[ApiKeyInfo]:
    """Every key, oldest first, revoked ones included."""
    return [_info(r) for r in session.scalars(select(ApiKey).order_by(ApiKey.created_at))]


def revoke_api_key(*, session: Session, key_id: str) -> ApiKeyInfo:
    """Revoke a key (idempotent: revoking again keeps the first time). Raises NotFoundError."""
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFoundError(f"API key {key_id!r} not found; `python -m classifier keys list` "
                            "shows the ids.")
    if row.revoked_at is None:
        row.revoked_at = utc_now()
        session.flush()
    return _info(row)


def active_key_hashes(*, session: Session) -> dict[str, str]:
    """{sha256: key id} of every key that is not revoked."""
    rows = session.execute(select(ApiKey.sha256, ApiKey.id).where(ApiKey.revoked_at.is_(None)))
    return {sha: key_id for sha, key_id in rows}


def any_api_keys(*, session: Session) -> bool:
    """Whether a key was ever created (revoked ones count: revoking the last key must lock
    the API, not open it)."""
    return session.scalar(select(ApiKey.id).limit(1)) is not None


def read_key_state(settings: Settings) -> tuple[dict[str, str], bool]:
    """(sha256 -> key id of every active key, whether any key was ever stored), in one
    short transaction: what the REST API's keyring keeps in memory. Raises StorageError."""
    with session_scope(settings) as session:
        keys = active_key_hashes(session=session)
        return keys, bool(keys) or any_api_keys(session=session)
