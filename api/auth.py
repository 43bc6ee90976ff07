"""Who may call the REST API: keys from API_KEYS and hashed keys in the database.

Clients send `Authorization: Bearer <key>`. Keys are compared by their sha256 and only the
key id is ever logged. With no key configured the API is open on a loopback host only; on
any other host every call is refused with `api_keys_required`, never silently open.
"""

from __future__ import annotations

import logging

from api.errors import ApiError
from feedback.access import is_loopback
from feedback.api_keys import hash_secret, read_key_state
from feedback.errors import StorageError
from feedback.settings import MIN_API_KEY_CHARS, Settings

log = logging.getLogger(__name__)

ANONYMOUS = "anonymous"  # the key id of calls to an open (loopback, keyless) API
# How often the app reloads the database keys in the background: a revoked key stops
# working within this many seconds, and requests never read the database for keys.
KEY_REFRESH_SECONDS = 5.0
MIN_SECRET_CHARS = MIN_API_KEY_CHARS  # load_settings() refuses shorter ones at start-up
KEY_ID_CHARS = 8


def key_id_for(secret: str) -> str:
    """The id of a plain API_KEYS secret: the first 8 hex digits of its sha256."""
    return hash_secret(secret)[:KEY_ID_CHARS]


def parse_api_keys(raw: str) -> dict[str, str]:
    """{sha256 of secret: key id} from API_KEYS (`id:secret` pairs or plain secrets, comma-
    separated). Raises ValueError naming the entry by position, never showing a secret."""
    keys: dict[str, str] = {}
    for position, entry in enumerate((e.strip() for e in raw.split(",")), start=1):
        if not entry:
            continue
        key_id, _, secret = entry.partition(":") if ":" in entry else ("", "", entry)
        key_id, secret = key_id.strip() or key_id_for(secret.strip()), secret.strip()
        if len(secret) < MIN_SECRET_CHARS:
            raise ValueError(f"API_KEYS entry {position}: the secret is shorter than "
                             f"{MIN_SECRET_CHARS} characters; use a long random key.")
        if key_id in keys.values():
            raise ValueError(f"API_KEYS entry {position}: key id {key_id!r} is used twice.")
        keys[hash_secret(secret)] = key_id
    return keys


class ApiKeyring:
    """Checks bearer keys; safe to share between threads."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._env = parse_api_keys(settings.api_keys)
        self._db: dict[str, str] = {}
        # Until the database has been read, assume keys exist there: closed, not open.
        self._db_any = True
        self.open_when_keyless = is_loopback(settings.server_name)
        self.refresh()

    def refresh(self) -> None:
        """Reload the database keys (the app's background loop does, every
        KEY_REFRESH_SECONDS); on a database error keep the last ones and log it."""
        try:
            keys, stored = read_key_state(self._settings)
        except StorageError as exc:
            log.error("could not read API keys from the database: %s", exc)
            return
        self._db, self._db_any = keys, stored  # two plain assignments: readers never lock

    def configured(self) -> bool:
        return bool(self._env) or self._db_any

    def authenticate(self, authorization: str | None, *, proxied: bool = False) -> str:
        """The key id for an `Authorization` header value (from the keys loaded in memory);
        raises ApiError (401) otherwise. Without keys, the API is open only to callers on
        a loopback server's own machine, not to requests a reverse proxy forwards."""
        if not self._env and not self._db_any:
            if self.open_when_keyless and not proxied:
                return ANONYMOUS
            where = ("is reached through a reverse proxy" if proxied
                     else "listens on a public address")
            raise ApiError(401, "api_keys_required",
                           f"The REST API is disabled: this server {where} "
                           "and has no API keys. Set API_KEYS (or create a key with `python -m "
                           "classifier keys create NAME`) and send it as "
                           "`Authorization: Bearer <key>`.")
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "missing_api_key",
                           "Send an API key in the header `Authorization: Bearer <key>`.")
        digest = hash_secret(token)
        key_id = self._env.get(digest) or self._db.get(digest)
        if key_id is None:
            raise ApiError(401, "invalid_api_key", "The API key is unknown or revoked.")
        return key_id

    def describe(self) -> str:
        """One start-up line saying how the API is protected (never showing a key)."""
        configured = self.configured()
        if configured:
            return (f"REST API: {len(self._env)} key(s) from API_KEYS and {len(self._db)} active "
                    "in the database; calls need `Authorization: Bearer <key>`.")
        if self.open_when_keyless:
            return (f"REST API: no API keys configured; open without a key because the host "
                    f"{self._settings.server_name} is loopback. Set API_KEYS before exposing it.")
        return (f"REST API: no API keys configured and host {self._settings.server_name} is not "
                "loopback: /api/v1 answers 401 api_keys_required until API_KEYS is set.")
