"""Accounts, sign-in sessions, rate limits and the audit log (plain Python).

Passwords are Argon2 hashes. A signed-in browser holds a random token in an
HttpOnly cookie; the database keeps only its SHA-256, so a leaked table signs
nobody in. Sessions end on sign-out or after `IDLE_TIMEOUT` without use.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from limits import RateLimitItemPerMinute, storage, strategies
from sqlmodel import Session
from starlette.requests import cookie_parser

from active_sessions import queries
from active_sessions.models import AuditEntry, LoginSession, Member, Role, utcnow

COOKIE_NAME = "active_sessions_login"
IDLE_TIMEOUT = timedelta(minutes=int(os.environ.get("ACTIVE_SESSIONS_IDLE_MINUTES", "30")))
# Writing last_seen_at on every event would make each click a write; a minute's slack is plenty.
TOUCH_EVERY = timedelta(seconds=60)
MIN_PASSWORD_LENGTH = 12
ACCOUNT_LIMIT = RateLimitItemPerMinute(5)
ADDRESS_LIMIT = RateLimitItemPerMinute(20)

_hasher = PasswordHasher()
# Verified against when the email is unknown, so both cases take as long.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AuditAction:
    SIGN_IN = "sign in"
    SIGN_IN_FAILED = "sign in failed"
    SIGN_IN_LIMITED = "sign in rate limited"
    SIGN_OUT = "sign out"
    EXPORT = "export"


@dataclass(frozen=True)
class Identity:
    """Who a browser is signed in as."""

    member_id: int
    workspace_id: int
    email: str
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN.value


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def normalized_email(text: str) -> str:
    """An account's email as stored (lowercase, no blanks around it); ValueError for anything
    that is not `local@domain` without blanks, or longer than an address can be."""
    email = text.strip().lower()
    if not re.fullmatch(r"[^@\s]+@[^@\s]+", email) or len(email) > 320:
        raise ValueError(f"not an email address: {text!r}")
    return email


def create_account(
    db: Session,
    *,
    workspace_id: int,
    email: str,
    password: str,
    name: str | None = None,
    role: Role = Role.ADMIN,
) -> Member:
    """Create or update the account with this email in the workspace."""
    email = normalized_email(email)
    check_password_strength(password)
    other = queries.account_by_email(session=db, email=email)
    if other is not None and other.workspace_id != workspace_id:
        raise ValueError(f"{email} already signs in to another workspace")
    member = other or queries.member_by_email(session=db, workspace_id=workspace_id, email=email)
    if member is None:
        # Member names are unique per workspace (a VPN user, e.g. an OpenVPN login named by its email).
        if queries.members_by_name(session=db, workspace_id=workspace_id, names=[name or email]):
            raise ValueError(f"the workspace already has a member named {name or email!r}: give another name")
        member = Member(workspace_id=workspace_id, name=name or email, email=email, created_at=utcnow())
        db.add(member)
    member.role = role.value
    member.password_hash = hash_password(password)
    db.flush()
    return member


def record(
    db: Session,
    *,
    action: str,
    actor: str,
    workspace_id: int | None,
    member_id: int | None = None,
    address: str | None = None,
    details: dict | None = None,
) -> None:
    db.add(
        AuditEntry(
            workspace_id=workspace_id,
            member_id=member_id,
            actor=actor[:320],
            action=action,
            at=utcnow(),
            client_address=(address or "")[:64] or None,
            details=details or {},
        )
    )


def record_export(db: Session, admin: Identity, *, address: str | None, details: dict) -> None:
    """The admin's export in the audit log: who, from where, what."""
    record(
        db,
        action=AuditAction.EXPORT,
        actor=admin.email,
        workspace_id=admin.workspace_id,
        member_id=admin.member_id,
        address=address,
        details=details,
    )


@lru_cache(maxsize=1)
def _limiter() -> strategies.MovingWindowRateLimiter:
    # Shared by all workers through Redis when there is one.
    redis_url = os.environ.get("REDIS_URL")
    backend = storage.storage_from_string(redis_url) if redis_url else storage.MemoryStorage()
    return strategies.MovingWindowRateLimiter(backend)


def sign_in(db: Session, *, email: str, password: str, address: str | None) -> str | None:
    """A new session token, or None. The caller cannot tell an unknown email from a bad password."""
    email = (email or "").strip().lower()[:320]
    limiter = _limiter()
    allowed = limiter.hit(ACCOUNT_LIMIT, "account", email) & limiter.hit(
        ADDRESS_LIMIT, "address", address or ""
    )
    member = queries.account_by_email(session=db, email=email) if email else None
    if not allowed:
        record(
            db,
            action=AuditAction.SIGN_IN_LIMITED,
            actor=email,
            address=address,
            workspace_id=member.workspace_id if member else None,
            member_id=member.id if member else None,
        )
        return None
    try:
        _hasher.verify(member.password_hash if member else _DUMMY_HASH, password or "")
        verified = member is not None
    except (VerificationError, InvalidHashError):
        verified = False
    if not verified:
        record(
            db,
            action=AuditAction.SIGN_IN_FAILED,
            actor=email,
            address=address,
            workspace_id=member.workspace_id if member else None,
            member_id=member.id if member else None,
        )
        return None
    token = secrets.token_urlsafe(32)
    now = utcnow()
    db.add(
        LoginSession(
            token_hash=_token_hash(token),
            member_id=member.id,
            workspace_id=member.workspace_id,
            created_at=now,
            last_seen_at=now,
            client_address=address,
        )
    )
    record(
        db,
        action=AuditAction.SIGN_IN,
        actor=email,
        address=address,
        workspace_id=member.workspace_id,
        member_id=member.id,
        details={"role": member.role},
    )
    db.flush()
    return token


def identify(db: Session, token: str | None, *, now: datetime | None = None) -> Identity | None:
    """Who holds this token, if its session is live; a live session's idle clock restarts."""
    if not token or len(token) > 100:
        return None
    now = now or utcnow()
    found = queries.login_identity(session=db, token_hash=_token_hash(token))
    if found is None or found.ended_at is not None:
        return None
    if now - found.last_seen_at > IDLE_TIMEOUT:
        queries.set_login_times(
            session=db, login_id=found.login_id, ended_at=found.last_seen_at + IDLE_TIMEOUT
        )
        return None
    if now - found.last_seen_at > TOUCH_EVERY:
        queries.set_login_times(session=db, login_id=found.login_id, last_seen_at=now)
    return Identity(
        member_id=found.member_id,
        workspace_id=found.workspace_id,
        email=found.email or "",
        name=found.name,
        role=found.role,
    )


def sign_out(db: Session, token: str | None, *, address: str | None) -> None:
    if not token or len(token) > 100:
        return
    found = queries.login_identity(session=db, token_hash=_token_hash(token))
    if found is None or found.ended_at is not None:
        return
    queries.set_login_times(session=db, login_id=found.login_id, ended_at=utcnow())
    record(
        db,
        action=AuditAction.SIGN_OUT,
        actor=found.email or found.name,
        address=address,
        workspace_id=found.workspace_id,
        member_id=found.member_id,
    )
    db.flush()


def token_from_cookie_header(header: str | None) -> str | None:
    if not header:
        return None
    # Starlette's lenient parser, as `auth_api` reads the same cookie: the strict
    # SimpleCookie gives up on the whole header when any other cookie of the host
    # (any port) holds a space, quote or JSON, and the console would look signed out.
    return cookie_parser(header).get(COOKIE_NAME) or None
