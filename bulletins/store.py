"""Stored bulletins: save one (once per period and region), list them, read a file.

Every function runs in its caller's transaction; on an idle connection it ends what it opened itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg

from bulletins.content import Bulletin
from bulletins.files import BulletinFile
from storage.transactions import owns_transaction


@dataclass(frozen=True, slots=True)
class StoredBulletin:
    id: int
    period: str
    kind: str
    region: int
    period_start: date
    period_end: date
    as_of: datetime
    created_at: datetime
    created_by: str
    summary: dict[str, object]
    files: list[str]


_COLUMNS = (
    "b.id, b.period, b.kind, b.region, b.period_start, b.period_end, b.as_of, b.created_at, b.created_by, b.summary"
)


def save_bulletin(conn: psycopg.Connection, b: Bulletin, files: list[BulletinFile], *, created_by: str) -> int | None:
    """Store the bulletin and its files in one transaction (a savepoint inside a caller's); None (nothing
    written) when this period and region already has one."""
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO bulletin (period, kind, region, period_start, period_end, as_of, created_by, summary)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb) ON CONFLICT (period, region) DO NOTHING RETURNING id",
            (
                b.period.label,
                b.period.kind,
                b.region,
                b.period.start,
                b.period.end,
                b.as_of,
                created_by,
                json.dumps(b.summary(), ensure_ascii=False),
            ),
        ).fetchone()
        if row is None:
            return None
        bid = int(row[0])
        for f in files:
            conn.execute(
                "INSERT INTO bulletin_file (bulletin_id, kind, filename, content_type, content) VALUES (%s, %s, %s, %s, %s)",
                (bid, f.kind, f.filename, f.content_type, f.content),
            )
    return bid


@owns_transaction
def exists(conn: psycopg.Connection, period: str, region: int) -> bool:
    return (
        conn.execute("SELECT 1 FROM bulletin WHERE period = %s AND region = %s", (period, region)).fetchone()
        is not None
    )


def _stored(row: tuple[Any, ...], files: list[str]) -> StoredBulletin:
    bid, period, kind, region, ps, pe, as_of, created, by, summary = row
    return StoredBulletin(
        int(bid), str(period), str(kind), int(region), ps, pe, as_of, created, str(by), dict(summary or {}), files
    )


@owns_transaction
def list_bulletins(conn: psycopg.Connection, *, limit: int = 100) -> list[StoredBulletin]:
    """Newest period first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS}, array_agg(f.kind ORDER BY f.kind) FILTER (WHERE f.kind IS NOT NULL)"
        " FROM bulletin b LEFT JOIN bulletin_file f ON f.bulletin_id = b.id"
        " GROUP BY b.id ORDER BY b.period_end DESC, b.kind, b.id DESC LIMIT %s",
        (limit,),
    ).fetchall()
    return [_stored(r[:-1], list(r[-1] or [])) for r in rows]


@owns_transaction
def get_bulletin(conn: psycopg.Connection, bulletin_id: int) -> StoredBulletin | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM bulletin b WHERE b.id = %s", (bulletin_id,)).fetchone()
    if row is None:
        return None
    files = [
        r[0]
        for r in conn.execute("SELECT kind FROM bulletin_file WHERE bulletin_id = %s ORDER BY kind", (bulletin_id,))
    ]
    return _stored(row, files)


@owns_transaction
def read_file(conn: psycopg.Connection, bulletin_id: int, kind: str) -> BulletinFile | None:
    """A stored file by kind (docx, pdf, xlsx) or by its file name."""
    row = conn.execute(
        "SELECT kind, filename, content FROM bulletin_file WHERE bulletin_id = %s AND (kind = %s OR filename = %s)",
        (bulletin_id, kind, kind),
    ).fetchone()
    return BulletinFile(row[0], row[1], bytes(row[2])) if row else None
