"""Run every panel query of a board against a database as Grafana would, and report what is wrong.

Variables get Grafana's current selection (custom: the saved value; query variables: their first
option, or every option when "All" is chosen), queries are expanded by dashboards.grafana_sql, and each
result is checked for the columns its panel type needs and for rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from dashboards.grafana_sql import TimeRange, Variable, expand, variables_used

NUMERIC_TYPES = frozenset({"int2", "int4", "int8", "float4", "float8", "numeric"})
TIME_TYPES = frozenset({"timestamptz", "timestamp", "date"}) | NUMERIC_TYPES


@dataclass(frozen=True)
class QueryResult:
    board: str
    panel: str
    ref_id: str
    sql: str
    columns: list[tuple[str, str]]
    rows: int
    problem: str | None

    def describe(self) -> str:
        where = f"{self.board} / {self.panel!r} / {self.ref_id}"
        return f"{where}: {self.problem}" + (f"\n{self.sql}" if self.problem else "")


def column_problem(panel_type: str, fmt: str, columns: list[tuple[str, str]]) -> str | None:
    """What is wrong with a result's (name, type) columns for this panel type and format, or None."""
    if not columns:
        return "no columns"
    numeric = [n for n, t in columns if t in NUMERIC_TYPES]
    if panel_type == "timeseries" or fmt == "time_series":
        if columns[0][0] != "time" or columns[0][1] not in TIME_TYPES:
            return f"a time series needs a `time` column first, got {columns[0]}"
        if not [n for n, t in columns[1:] if t in NUMERIC_TYPES]:
            return "a time series needs a numeric value column"
    elif panel_type in ("stat", "gauge") and not numeric:
        return "a stat needs numeric columns"
    elif panel_type in ("bargauge", "barchart") and (not numeric or len(numeric) == len(columns)):
        return "a bar chart needs a label column and a numeric column"
    return None


def select_variable(conn: psycopg.Connection, var: dict[str, Any], *, all_values: bool) -> Variable:
    """A variable as Grafana fills it on load."""
    multi, include_all = bool(var.get("multi")), bool(var.get("includeAll"))
    if var["type"] != "query":
        return Variable(var["name"], var["current"]["value"], multi, include_all)
    cur = conn.execute(var["query"])
    names = [c.name for c in cur.description or []]
    col = names.index("__value") if "__value" in names else 0
    values = [str(row[col]) for row in cur.fetchall()]
    if not values:
        raise LookupError(f"variable {var['name']!r} has no options: {var['query']}")
    if include_all and all_values:
        return Variable(var["name"], values, multi, True)
    return Variable(var["name"], [values[0]] if multi else values[0], multi, include_all)


def _targets(board: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            yield panel, target


def _type_names(conn: psycopg.Connection, oids: list[int]) -> dict[int, str]:
    return dict(conn.execute("SELECT oid::int, typname::text FROM pg_type WHERE oid = ANY(%s)", [oids]).fetchall())


def check_board(
    conn: psycopg.Connection,
    stem: str,
    board: dict[str, Any],
    *,
    start: datetime,
    end: datetime,
    all_values: bool = True,
) -> list[QueryResult]:
    """Every query of the board, run read-only; the transaction is rolled back afterwards."""
    row = conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    timescaledb = bool(row and row[0])
    variables = {v["name"]: select_variable(conn, v, all_values=all_values) for v in board["templating"]["list"]}
    time_range = TimeRange(start, end, variables=variables)
    results = []
    for panel, target in _targets(board):
        raw = target["rawSql"]
        unknown = variables_used(raw) - set(variables)
        if unknown:
            results.append(
                QueryResult(stem, panel["title"], target["refId"], raw, [], 0, f"undefined variables {sorted(unknown)}")
            )
            continue
        sql = expand(raw, time_range, timescaledb=timescaledb)
        try:
            cur = conn.execute(sql)
            rows = cur.fetchall()
            description = cur.description or []
        except psycopg.Error as exc:
            conn.rollback()
            results.append(
                QueryResult(stem, panel["title"], target["refId"], sql, [], 0, f"{type(exc).__name__}: {exc}")
            )
            continue
        names = _type_names(conn, [c.type_code for c in description])
        columns = [(c.name, names.get(c.type_code, "?")) for c in description]
        problem = column_problem(panel["type"], target.get("format", "table"), columns)
        if problem is None and not rows:
            problem = "returned no rows"
        results.append(QueryResult(stem, panel["title"], target["refId"], sql, columns, len(rows), problem))
    conn.rollback()
    return results
