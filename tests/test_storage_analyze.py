"""After a bulk load or a rollup rebuild the tables it changed are analysed (planner statistics current),
on a real PostgreSQL: the CSV loader and the scheduler's rollup job."""

from __future__ import annotations

from pathlib import Path

import psycopg

from collectors.csvfile import load_csv
from core.settings import Settings
from infrawatch.scheduler import Scheduler
from storage.analyze import needs_analyze


def _analysed_by_hand(conn: psycopg.Connection) -> dict[str, int]:
    """Tables with a manual (not autovacuum) ANALYZE, and the row count the planner now knows."""
    conn.commit()
    rows = conn.execute(
        "SELECT s.relname, c.reltuples::bigint FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid"
        " WHERE s.last_analyze IS NOT NULL"
    ).fetchall()
    conn.commit()
    return {name: int(n) for name, n in rows}


def test_a_csv_load_analyses_the_partitions_it_filled(conn: psycopg.Connection, tmp_path: Path) -> None:
    path = tmp_path / "june.csv"
    lines = ["ts,region,metric,value"]
    lines += [
        f"2023-06-{d:02d},{360100 + 100 * c},traffic_mobile_gb,{100 + d}" for d in range(1, 31) for c in range(11)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert _analysed_by_hand(conn) == {}
    report = load_csv(conn, path, operator="cmcc", operator_column_trusted=False)
    assert report.accepted == 330
    analysed = _analysed_by_hand(conn)
    # partitions are UTC months: 1 June 00:00 in Shanghai is still May there
    parts = {name: n for name, n in analysed.items() if name.startswith("observation_y2023")}
    assert sum(parts.values()) == 330, analysed  # the planner knows the rows of the partitions filled
    assert "feed_freshness" in analysed


def test_a_rollup_rebuild_analyses_the_rollups(db_url: str, conn: psycopg.Connection, tmp_path: Path) -> None:
    path = tmp_path / "days.csv"
    lines = ["ts,region,metric,value"] + [f"2023-06-{d:02d},360100,traffic_mobile_gb,{d}" for d in range(1, 31)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    load_csv(conn, path, operator="cmcc", operator_column_trusted=False)
    assert "indicator_rollup" not in _analysed_by_hand(conn)
    scheduler = Scheduler(db_url, Settings(), runner="test")
    assert scheduler.run("rollups")
    analysed = _analysed_by_hand(conn)
    assert analysed.get("indicator_rollup", 0) > 0, analysed


def test_which_tables_need_analysing() -> None:
    assert needs_analyze(5, 0, analysed_before=False)  # a new partition
    assert not needs_analyze(0, 100, analysed_before=False)
    assert not needs_analyze(5, 1000, analysed_before=True)  # autovacuum's business
    assert needs_analyze(100, 1000, analysed_before=True)
