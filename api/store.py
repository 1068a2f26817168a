"""Small data-access functions the API needs on tables whose owning modules it may not edit.

`upload` belongs to collectors/csvfile (which records reports) and `operator` to the core schema;
reading a stored report and registering a data-centre operator are one statement each, kept here.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from reference.operators import is_valid_operator_id
from storage.transactions import owns_transaction


class OperatorExists(ValueError):
    """The operator id is already registered."""


@owns_transaction
def get_upload_report(conn: psycopg.Connection, upload_id: uuid.UUID) -> tuple[str | None, dict[str, Any]] | None:
    """(operator, report) of a recorded upload, or None when there is no such upload."""
    row = conn.execute("SELECT operator, report FROM upload WHERE id = %s", (upload_id,)).fetchone()
    return (row[0], row[1]) if row else None


def register_operator(conn: psycopg.Connection, operator_id: str, name: str, name_zh: str = "") -> None:
    """Add a (data-centre) operator so its keys and observations are accepted."""
    if not is_valid_operator_id(operator_id):
        raise ValueError(
            f"operator id {operator_id!r} is not valid: 2-32 characters, lower-case letters, digits and _, "
            "starting with a letter"
        )
    if not name.strip():
        raise ValueError("give the operator a name (--name)")
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO operator (id, name, name_zh) VALUES (%s, %s, %s) ON CONFLICT (id) DO NOTHING RETURNING id",
            (operator_id, name.strip(), name_zh.strip()),
        ).fetchone()
    if row is None:
        raise OperatorExists(f"operator {operator_id!r} is already registered")


@owns_transaction
def list_operators(conn: psycopg.Connection) -> list[tuple[str, str, str, bool]]:
    """(id, name, name_zh, builtin) of every registered operator."""
    rows = conn.execute("SELECT id, name, name_zh, builtin FROM operator ORDER BY builtin DESC, id").fetchall()
    return [(r[0], r[1], r[2], r[3]) for r in rows]
