"""Console access tokens: created by `aiguillage tokens create`, stored as a SHA-256 hash only.

A token is a random secret shown once to whoever creates it; the database keeps its hash, so a
stolen database does not give access to the console. Roles: `agent` reads conversations, reviews
answers and exports; `admin` can also erase a conversation.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select

from assistant.store import ApiToken, Database, utcnow

ROLES = ("agent", "admin")
PREFIX = "aig_"


@dataclass(frozen=True)
class Principal:
    id: int
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(db: Database, name: str, role: str) -> tuple[str, ApiToken]:
    """Store a new token and return (secret, row): the secret is never stored nor shown again."""
    if role not in ROLES:
        raise ValueError(f"rôle inconnu : {role} (agent ou admin)")
    name = name.strip()
    if not name:
        raise ValueError("le nom du jeton est vide")
    secret = PREFIX + secrets.token_urlsafe(32)
    with db.writing() as session:
        row = ApiToken(name=name[:80], role=role, token_hash=hash_token(secret))
        session.add(row)
        session.flush()
    return secret, row


def authenticate(db: Database, secret: str | None) -> Principal | None:
    """The holder of a valid, unrevoked token; None otherwise."""
    if not secret or not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    with db.writing() as session:
        row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
        if row is None or row.revoked_at is not None:
            return None
        now = utcnow()
        if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
            row.last_used_at = now
        return Principal(row.id, row.name, row.role)


def list_tokens(db: Database) -> list[ApiToken]:
    with db.writing() as session:
        return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def revoke_token(db: Database, token_id: int) -> bool:
    with db.writing() as session:
        row = session.get(ApiToken, token_id)
        if row is None or row.revoked_at is not None:
            return False
        row.revoked_at = utcnow()
        return True
