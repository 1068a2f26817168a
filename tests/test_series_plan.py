"""The published series function reads each series on the rollup's primary key: called per city and operator
(as the explorer's city × operator matrix and the contribution boards call it), every scan of
indicator_rollup bounds region, operator and the buckets in the index, instead of probing each bucket or
filtering whole indicators."""

from __future__ import annotations

import json
from typing import Any

import psycopg

LATERAL = """
    SELECT g.code, o.id, v.value
    FROM iw_region g
    CROSS JOIN (SELECT ''::text AS id UNION ALL SELECT id FROM operator) o
    CROSS JOIN LATERAL (
        SELECT s.value FROM iw_indicator_series('bs5g_total', g.code, o.id, '2023-01-01', '2024-01-01', '1d') s
        WHERE s.value IS NOT NULL ORDER BY s.ts DESC LIMIT 1) v
    WHERE g.level = 'city' AND g.parent = 360000
"""


def _scans(node: dict[str, Any], table: str) -> list[dict[str, Any]]:
    found = [node] if node.get("Relation Name") == table else []
    for child in node.get("Plans", []):
        found += _scans(child, table)
    return found


def test_each_series_is_read_on_the_rollups_primary_key(conn: psycopg.Connection) -> None:
    # a year of daily buckets for 11 cities × 5 operators (and all operators), three indicators
    conn.execute(
        """
        INSERT INTO indicator_rollup (interval, bucket, indicator, region, operator, entity, value)
        SELECT '1d', d, i, g.code, o, '', 1
        FROM generate_series('2023-01-01 00:00+08'::timestamptz, '2023-12-31 00:00+08', '1 day') d,  -- plan days
             unnest(ARRAY['bs5g_total', 'gigabit_users', 'users_5g']) i,
             (SELECT code FROM iw_region WHERE level = 'city' AND parent = 360000) g,
             unnest(ARRAY['', 'cmcc', 'cucc', 'ctcc', 'cbn', 'chinatower']) o
        """
    )
    conn.execute("ANALYZE indicator_rollup")
    rows = conn.execute(LATERAL).fetchall()
    assert len(rows) >= 11 * 6 and all(v == 1 for _, _, v in rows)
    (plan,) = conn.execute("EXPLAIN (FORMAT JSON) " + LATERAL).fetchone()  # type: ignore[misc]
    scans = _scans(json.loads(plan)[0]["Plan"] if isinstance(plan, str) else plan[0]["Plan"], "indicator_rollup")
    assert scans, "indicator_rollup is not read"
    for scan in scans:
        cond = scan.get("Index Cond", "")
        assert scan.get("Index Name") == "indicator_rollup_pkey", scan
        for column in ("interval", "region", "operator", "entity", "bucket"):
            assert column in cond, (column, cond)
