"""Local accounts and sign-ins: who may use the web UI beyond classifying.

Passwords are kept as salted scrypt hashes (the standard library's memory-hard KDF, so no
extra dependency); sign-in tokens only as their sha256, so a database dump gives no usable
password or session. Functions take the session as a keyword argument and return plain
dataclasses.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from feedback.db import rows_matched
from feedback.errors import InvalidInputError, NotFoundError
from feedback.tables import Account, SignIn, utc_now

ROLES = ("agent", "reviewer", "admin")
# scrypt cost: 2**14 x 8 blocks is about 16 MB and 50 ms per check, OWASP's floor for scrypt;
# slow enough to make guessing a stolen hash expensive, fast enough for a sign-in.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SCRYPT_MAXMEM = 64 * 1024 * 1024
SALT_BYTES = 16
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024  # scrypt hashes any length; this only bounds the work per request
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")
TOKEN_BYTES = 32


@dataclass(frozen=True)
class AccountInfo:
    username: str
    role: str
    created_at: datetime
    disabled_at: datetime | None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


@dataclass(frozen=True)
class SignInInfo:
    username: str
    role: str
    expires_at: datetime


def _info(row: Account) -> AccountInfo:
    return AccountInfo(username=row.username, role=row.role, created_at=row.created_at,
                       disabled_at=row.disabled_at)


def _scrypt(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R,
                          p=SCRYPT_P, maxmem=SCRYPT_MAXMEM)


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$hash` (base64): the parameters travel with the hash, so they can be
    raised later without breaking stored accounts."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt)
    return "$".join(["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])


def password_matches(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt),
                                  n=int(n), r=int(r), p=int(p), maxmem=SCRYPT_MAXMEM)
    except ValueError:
        return False
    return hmac.compare_digest(computed, base64.b64decode(digest))


# Checked against when the user name is unknown, so a wrong name costs as long as a wrong
# password and response times do not reveal which names exist.
_DUMMY_HASH = hash_password(secrets.token_hex(8))


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInputError(f"Unknown role {role!r}; choose one of {', '.join(ROLES)}.")
    return role


def check_password(password: str) -> str:
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise InvalidInputError(f"A password needs {MIN_PASSWORD_CHARS} to "
                                f"{MAX_PASSWORD_CHARS} characters.")
    return password


def create_account(*, session: Session, username: str, role: str,
                   password: str) -> AccountInfo:
    """Add an account. Raises InvalidInputError for a bad or taken name, role or password."""
    username = username.strip()
    if not USERNAME.fullmatch(username):
        raise InvalidInputError("A user name is 1-100 letters, digits and . _ @ - (starting "
                                "with a letter or digit).")
    check_role(role)
    check_password(password)
    if session.get(Account, username) is not None:
        raise InvalidInputError(f"Account {username!r} already exists; use `users set-role` "
                                "or `users set-password` to change it.")
    row = Account(username=username, role=role, password_hash=hash_password(password),
                  created_at=utc_now(), disabled_at=None)
    session.add(row)
    session.flush()
    return _info(row)


def _get(session: Session, username: str) -> Account:
    row = session.get(Account, username)
    if row is None:
        raise NotFoundError(f"Account {username!r} not found; `python -m classifier users "
                            "list` shows them.")
    return row


def _end_sign_ins(session: Session, username: str) -> None:
    session.execute(delete(SignIn).where(SignIn.username == username))


def set_role(*, session: Session, username: str, role: str) -> AccountInfo:
    """Change a role; the person's open sign-ins end, so the new role applies at once."""
    row = _get(session, username)
    row.role = check_role(role)
    _end_sign_ins(session, username)
    return _info(row)


def set_password(*, session: Session, username: str, password: str) -> AccountInfo:
    """Change a password (and re-enable a disabled account); open sign-ins end."""
    row = _get(session, username)
    row.password_hash = hash_password(check_password(password))
    row.disabled_at = None
    _end_sign_ins(session, username)
    return _info(row)


def disable_account(*, session: Session, username: str) -> AccountInfo:
    """Disable an account (idempotent) and end its sign-ins; the row stays for the audit."""
    row = _get(session, username)
    if row.disabled_at is None:
        row.disabled_at = utc_now()
    _end_sign_ins(session, username)
    return _info(row)


def list_accounts(*, session: Session) -> list[AccountInfo]:
    return [_info(r) for r in session.scalars(select(Account).order_by(Account.username))]


def any_accounts(*, session: Session) -> bool:
    """Whether an account was ever created (disabled ones count: disabling the last account
    must not open the UI to everyone)."""
    return session.scalar(select(Account.username).limit(1)) is not None


def verify_account(*, session: Session, username: str, password: str) -> AccountInfo | None:
    """The active account with this name and password, else None (in constant-ish time)."""
    row = session.get(Account, username.strip()) if len(password) <= MAX_PASSWORD_CHARS \
        else None
    if row is None or row.disabled_at is not None:
        password_matches(password[:MAX_PASSWORD_CHARS], _DUMMY_HASH)
        return None
    return _info(row) if password_matches(password, row.password_hash) else None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def open_sign_in(*, session: Session, username: str, role: str,
                 lifetime: timedelta) -> tuple[str, SignInInfo]:
    """Start a sign-in; returns its token (for the cookie, not kept here) and its info."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = utc_now()
    row = SignIn(token_sha256=token_hash(token), username=username, role=check_role(role),
                 created_at=now, expires_at=now + lifetime)
    session.add(row)
    session.flush()
    return token, SignInInfo(username=username, role=role, expires_at=row.expires_at)


def find_sign_in(*, session: Session, token: str) -> SignInInfo | None:
    """The unexpired sign-in of a cookie token, else None."""
    row = session.get(SignIn, token_hash(token))
    if row is None or row.expires_at <= utc_now():
        return None
    return SignInInfo(username=row.username, role=row.role, expires_at=row.expires_at)


def close_sign_in(*, session: Session, token: str) -> None:
    session.execute(delete(SignIn).where(SignIn.token_sha256 == token_hash(token)))


def purge_expired_sign_ins(*, session: Session) -> int:
    result = session.execute(delete(SignIn).where(SignIn.expires_at <= utc_now()))
    return rows_matched(result)
