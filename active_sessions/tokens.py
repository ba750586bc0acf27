"""Gateway tokens for the ingest API: random, shown once, stored only as a hash."""

from __future__ import annotations

import hashlib
import secrets

from sqlmodel import Session

from active_sessions import queries, reconcile
from active_sessions.models import Gateway, GatewayToken, utcnow

TOKEN_PREFIX = "asgw_"


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits, so a plain SHA-256 is enough (no password stretching needed).
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(db: Session, *, workspace_id: int, gateway: str) -> str:
    """A new token for the gateway (created on first sight); the only time it is seen."""
    entry = reconcile.ensure_gateway(db, workspace_id, gateway)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.add(
        GatewayToken(
            workspace_id=workspace_id, gateway_id=entry.id, token_hash=hash_token(token), created_at=utcnow()
        )
    )
    db.flush()
    return token


def revoke_tokens(db: Session, *, workspace_id: int, gateway: str) -> int:
    """Revoke every live token of the gateway; returns how many."""
    entry = queries.gateway_by_name(session=db, workspace_id=workspace_id, name=gateway)
    if entry is None:
        return 0
    tokens = queries.live_tokens_of_gateway(session=db, gateway_id=entry.id)
    now = utcnow()
    for token in tokens:
        token.revoked_at = now
    db.flush()
    return len(tokens)


def authenticate(db: Session, token: str) -> Gateway | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    return queries.gateway_for_token(session=db, token_hash=hash_token(token))
