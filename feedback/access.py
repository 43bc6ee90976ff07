"""Who may do what: people, roles and sign-in, one policy for every entry point.

Roles nest: an agent classifies and rates what they classified; a reviewer also works the
review queue and reads monitoring (which shows messages); an admin also changes what
serves, retrains, and exports. People are local accounts (hashed in the database, managed
with `python -m classifier users`), Hugging Face users on a Space (allow-lists per role
from settings), or whoever holds ADMIN_TOKEN.

Safe by default: once any secret or person is configured (admin token, API keys, accounts,
Hugging Face allow-lists), an anonymous visitor is an agent and nothing more. With none
configured, a loopback install is one person's own machine and they review freely; a public
address without any sign-in keeps review and models closed and says why.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import IntEnum

from feedback import accounts
from feedback.api_keys import any_api_keys
from feedback.db import session_scope
from feedback.errors import NotAuthorizedError, StorageError
from feedback.settings import Settings

log = logging.getLogger(__name__)

# How long a sign-in token's lookup is reused (and how often the app's background loop
# re-reads whether any account or key exists): a disabled account or a sign-out elsewhere
# takes effect within this many seconds, and a busy page costs no database read per event.
CACHE_SECONDS = 5.0
MAX_CACHED_SIGN_INS = 10_000
ADMIN_TOKEN_NAME = "admin (token)"
ANONYMOUS = "anonymous"


class Role(IntEnum):
    AGENT = 1
    REVIEWER = 2
    ADMIN = 3

    @property
    def title(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Caller:
    """Who is calling, as every handler sees it: never trusted from the client."""

    name: str | None  # None: not signed in
    role: Role
    via: str  # "anonymous", "account", "admin token", "hugging face"
    # Came through a reverse proxy (forwarding headers): from another machine, whatever
    # address the server listens on.
    proxied: bool = False

    @property
    def label(self) -> str:
        """The name recorded with what this caller writes (reviews, events, retrain jobs)."""
        return self.name or ANONYMOUS

    @property
    def signed_in(self) -> bool:
        return self.name is not None


# Headers a reverse proxy adds: a request carrying one came from another machine.
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def came_through_proxy(headers: Mapping[str, str]) -> bool:
    """Whether a request was forwarded by a reverse proxy (header names lower-case, as
    Starlette's Headers give them case-insensitively)."""
    return any(name in headers for name in PROXY_HEADERS)


def is_loopback(host: str) -> bool:
    """Whether the app listens only on this machine (so nobody else can reach it)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class AccessPolicy:
    """Resolves callers and decides; safe to share between threads."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        # Accounts or API keys exist in the database. Until it has been read: assume so
        # (closed, not open).
        self._stored = True
        self._sign_ins: dict[str, tuple[float, Caller | None]] = {}
        self.loopback = is_loopback(settings.server_name)
        self.refresh()

    @property
    def hugging_face_sign_in(self) -> bool:
        """Sign in with Hugging Face is on: a Space with `hf_oauth: true`."""
        return bool(self.settings.space_id and self.settings.oauth_client_id)

    def refresh(self) -> None:
        """Re-read whether accounts or API keys exist (the app's background loop does, every
        CACHE_SECONDS); on a database error keep the last answer and log it."""
        try:
            with session_scope(self.settings) as session:
                stored = accounts.any_accounts(session=session) or any_api_keys(session=session)
        except StorageError as exc:
            log.error("could not read accounts: %s", exc)
            return
        self._stored = stored

    def configured(self) -> bool:
        """Whether any secret or person is configured, which closes everything but
        classifying to anonymous visitors (from memory: no database read)."""
        s = self.settings
        return bool(s.admin_token or s.api_keys or s.admin_users or s.reviewer_users
                    or self._stored)

    def anonymous(self, *, proxied: bool = False) -> Caller:
        """A caller with no identity. On a loopback install with nothing configured that is
        the machine's owner, unless the request came through a proxy: a proxy on the same
        host brings in other machines' visitors."""
        private = self.loopback and not proxied and not self.configured()
        return Caller(None, Role.REVIEWER if private else Role.AGENT, ANONYMOUS, proxied)

    def refusal(self, caller: Caller, needed: Role, action: str) -> str | None:
        """Why `caller` may not `action` (a phrase such as "work the review queue"), or None."""
        if caller.role >= needed:
            return None
        if caller.signed_in:
            return (f"{caller.label} is signed in as {caller.role.title}; to {action} you need "
                    f"the {needed.title} role. Ask an admin.")
        if not self.configured() and (not self.loopback or caller.proxied):
            how = ("add people to ADMIN_USERS / REVIEWER_USERS" if self.hugging_face_sign_in
                   else "create accounts with `python -m classifier users add NAME --role "
                   "reviewer` or set ADMIN_TOKEN")
            return (f"Closed: to {action} you must sign in, and this server is reachable from "
                    f"other machines with no sign-in configured. An operator must {how}.")
        return f"Sign in as {needed.title} to {action}."

    def require(self, caller: Caller, needed: Role, action: str) -> None:
        """Raise NotAuthorizedError (saying why and what to do) unless caller may act."""
        reason = self.refusal(caller, needed, action)
        if reason:
            raise NotAuthorizedError(reason)

    # --- signing in -----------------------------------------------------------------------

    def sign_in(self, username: str, password: str) -> tuple[str, Caller]:
        """Check a local account's password, or the admin token; returns (cookie token,
        caller). Raises NotAuthorizedError with one message for every kind of failure."""
        username = (username or "").strip()
        role, name = None, username
        with session_scope(self.settings) as session:
            account = accounts.verify_account(session=session, username=username,
                                              password=password or "")
            if account is not None:
                role = Role[account.role.upper()]
            elif self.settings.admin_token and username in ("", "admin") and hmac.compare_digest(
                    (password or "").encode(), self.settings.admin_token.encode()):
                role, name = Role.ADMIN, ADMIN_TOKEN_NAME
            if role is None:
                raise NotAuthorizedError("Wrong user name or password.")
            token, _ = accounts.open_sign_in(
                session=session, username=name, role=role.title,
                lifetime=timedelta(hours=self.settings.sign_in_hours))
        caller = Caller(name, role, "account" if name != ADMIN_TOKEN_NAME else "admin token")
        return token, caller

    def sign_out(self, token: str) -> None:
        with session_scope(self.settings) as session:
            accounts.close_sign_in(session=session, token=token)
        with self._lock:
            self._sign_ins.pop(token, None)

    def caller_for_token(self, token: str) -> Caller | None:
        """The signed-in person of a cookie token, or None (unknown, expired, signed out)."""
        now = self._clock()
        with self._lock:
            cached = self._sign_ins.get(token)
            if cached is not None and now - cached[0] < CACHE_SECONDS:
                return cached[1]
        with session_scope(self.settings) as session:
            found = accounts.find_sign_in(session=session, token=token)
        caller = None if found is None else Caller(
            found.username, Role[found.role.upper()],
            "admin token" if found.username == ADMIN_TOKEN_NAME else "account")
        with self._lock:
            if len(self._sign_ins) >= MAX_CACHED_SIGN_INS:
                self._sign_ins.clear()
            self._sign_ins[token] = (now, caller)
        return caller

    def purge_expired_sign_ins(self) -> int:
        """Delete sign-ins past their expiry (the app's background loop does, hourly): a
        cookie's row is only useful until then. Returns how many went."""
        with session_scope(self.settings) as session:
            return accounts.purge_expired_sign_ins(session=session)

    def caller_for_hugging_face(self, username: str) -> Caller:
        """A Hugging Face user signed in on this Space, with the role the allow-lists give."""
        s = self.settings
        role = (Role.ADMIN if username in s.admin_users else
                Role.REVIEWER if username in s.reviewer_users else Role.AGENT)
        return Caller(username, role, "hugging face")
