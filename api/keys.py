"""API keys: minting, HMAC hashing, lookup of the caller behind a key, listing and revocation.

A key looks like `iw_<prefix>_<secret>`. The prefix (public, unique) finds the row; the stored hash is
HMAC-SHA256(settings.secret_key, whole key), compared in constant time. The key itself is shown once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import psycopg

from reference.operators import ADMIN_WRITTEN
from storage.transactions import owns_transaction

Role = Literal["operator", "viewer", "admin"]
ROLES: tuple[Role, ...] = ("operator", "viewer", "admin")
KEY_PREFIX = "iw_"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's id, role and (for operator keys) its operator."""

    key_id: int
    role: Role
    operator: str | None
    name: str = ""

    @property
    def label(self) -> str:
        """How batches and logs name this caller."""
        return f"key{self.key_id}" + (f":{self.operator}" if self.operator else f":{self.role}")


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: int
    prefix: str
    role: str
    operator: str | None
    name: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class KeyError_(ValueError):
    """A key cannot be created as asked (what to fix is in the message)."""


def hash_key(key: str, secret: str) -> str:
    return hmac.new(secret.encode(), key.encode(), hashlib.sha256).hexdigest()


def mint_key() -> tuple[str, str]:
    """A fresh (key, prefix) pair."""
    prefix = secrets.token_hex(4)
    return f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(24)}", prefix


def split_key(key: str) -> str | None:
    """The lookup prefix of a well-formed key, else None."""
    if not key.startswith(KEY_PREFIX):
        return None
    prefix, sep, rest = key[len(KEY_PREFIX) :].partition("_")
    if not sep or len(prefix) != 8 or not rest or len(key) > 200:
        return None
    return prefix


def create_key(
    conn: psycopg.Connection, *, role: str, operator: str | None, name: str, secret: str
) -> tuple[str, KeyRecord]:
    """Store a new key's hash; returns the key (to show once) and its record."""
    if role not in ROLES:
        raise KeyError_(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if role == "operator" and not operator:
        raise KeyError_("an operator key needs --operator (the operator whose data it writes and reads)")
    if role != "operator" and operator:
        raise KeyError_(f"a {role} key is not bound to an operator; leave out --operator")
    if operator in ADMIN_WRITTEN:
        raise KeyError_(
            f"operator {operator!r} is written only by admin keys and the administrator's command line;"
            " create an admin key instead"
        )
    if operator and not conn.execute("SELECT 1 FROM operator WHERE id = %s", (operator,)).fetchone():
        raise KeyError_(f"unknown operator {operator!r}; register it first with `infrawatch operators add`")
    key, prefix = mint_key()
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO api_key (prefix, hash, role, operator, name) VALUES (%s, %s, %s, %s, %s)"
            " RETURNING id, prefix, role, operator, name, created_at, revoked_at, last_used_at",
            (prefix, hash_key(key, secret), role, operator, name),
        ).fetchone()
    assert row is not None
    return key, KeyRecord(*row)


@owns_transaction
def authenticate(conn: psycopg.Connection, key: str, secret: str) -> Principal | None:
    """The caller behind a presented key, or None when it is malformed, unknown or revoked."""
    prefix = split_key(key)
    if prefix is None:
        return None
    row = conn.execute(
        "SELECT id, hash, role, operator, name FROM api_key WHERE prefix = %s AND revoked_at IS NULL", (prefix,)
    ).fetchone()
    if row is None or not hmac.compare_digest(row[1], hash_key(key, secret)):
        return None
    # Mark use at most once a minute per key, so reads don't turn into a write each.
    conn.execute(
        "UPDATE api_key SET last_used_at = now() WHERE id = %s"
        " AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
        (row[0],),
    )
    return Principal(key_id=int(row[0]), role=row[2], operator=row[3], name=row[4])


@owns_transaction
def list_keys(conn: psycopg.Connection, *, include_revoked: bool = True) -> list[KeyRecord]:
    rows = conn.execute(
        "SELECT id, prefix, role, operator, name, created_at, revoked_at, last_used_at FROM api_key"
        + ("" if include_revoked else " WHERE revoked_at IS NULL")
        + " ORDER BY id"
    ).fetchall()
    return [KeyRecord(*r) for r in rows]


def revoke_key(conn: psycopg.Connection, key_id: int) -> bool:
    """Revoke a key; False when no such active key exists."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE api_key SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL RETURNING id", (key_id,)
        ).fetchone()
    return row is not None
