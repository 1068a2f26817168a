"""The jiangxi-2023 scenario loaded once per test session into a database of its own, which modules that only
read it clone (CREATE DATABASE … TEMPLATE, a fraction of a second) instead of loading it again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: The scenario's plan year seen from just after its end (deadlines passed, progress final).
AS_OF = datetime(2024, 1, 1, 0, 0, tzinfo=SHANGHAI)


class _Items(list[dict[str, Any]]):
    """Items that pandas shares instead of deep-copying. frame_from_items keeps the submitted list in
    frame.attrs, which pandas deep-copies on every derived frame (90 % of submit_items' time for a big
    batch; ingest/delivery.py works around it the same way)."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _Items:
        return self


def _items(frame: Any) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The scenario's true observations as JSON items, one list per operator (its own credentials)."""
    for operator, part in frame.groupby("operator", sort=True):
        ts = [datetime.fromtimestamp(us / 1e6, SHANGHAI).isoformat() for us in part["ts_us"].tolist()]
        yield (
            str(operator),
            [
                {"ts": t, "region": str(r), "metric": m, "value": v, "entity": e}
                for t, r, m, v, e in zip(
                    ts,
                    part["region"].tolist(),
                    part["metric"].tolist(),
                    part["value"].tolist(),
                    part["entity"].tolist(),
                    strict=True,
                )
            ],
        )


def load_jiangxi_2023(conn: psycopg.Connection) -> None:
    """The jiangxi-2023 scenario through the ingest pipeline, then rollups, targets, progress and alerts.

    Data-centre meters are kept at one reading a day (local midnight) instead of every 5 minutes: they
    are counters, so daily increases and daily PUE are unchanged while the load stays within the test
    budget.
    """
    from alerts.engine import evaluate
    from alerts.store import sync_rules_file
    from ingest.pipeline import IngestPipeline
    from metrics import evaluate_targets, load_targets, refresh_rollups, store_progress
    from metrics.reconciliation import publish_reconciliation
    from simulators.generate import generate
    from simulators.scenario import load_scenario

    frame = generate(load_scenario("jiangxi-2023"))
    dc = frame["metric"].str.startswith("dc_")
    midnight = (frame["ts_us"] // 1_000_000 + 8 * 3600) % 86400 == 0
    frame = frame[~dc | midnight]
    pipeline = IngestPipeline()
    for operator, items in _items(frame):
        for i in range(0, len(items), 20_000):
            chunk = _Items(items[i : i + 20_000])
            pipeline.submit_items(conn, chunk, source="simulator:jiangxi-2023", operator=operator)
    # What an imperfect sender adds: rejected items end up in quarantine with their reasons.
    pipeline.submit_items(
        conn,
        [
            {"ts": "2023-12-31T00:00:00+08:00", "region": "360100", "metric": "bs5g_total", "value": -5},
            {"ts": "2023-12-31T00:00:00+08:00", "region": "999999", "metric": "bs5g_total", "value": 5},
            {"ts": "2023-12-31T00:00:00", "region": "360100", "metric": "bs5g_total", "value": 5},
        ],
        source="mqtt",
        operator="cucc",
    )
    # An official province total beside the operators' city figures (the reconciliation panel's gap).
    pipeline.submit_items(
        conn,
        [
            {
                "ts": "2023-12-31T00:00:00+08:00",
                "region": "360000",
                "metric": "bs5g_total",
                "value": 80000,
                "operator": "all",
            }
        ],
        source="test:official statistics",
        operator="admin",
        operator_may_vary=True,
    )
    load_targets(conn)
    conn.commit()
    while refresh_rollups(conn):
        pass
    conn.commit()
    store_progress(conn, evaluate_targets(conn, as_of=AS_OF))
    conn.commit()
    sync_rules_file(conn)
    conn.commit()
    evaluate(conn, AS_OF, refresh_targets=False)
    conn.commit()
    publish_reconciliation(conn, AS_OF)


class ScenarioDatabases:
    """The loaded scenario as a template database and the clones made of it."""

    def __init__(self, server_url: str, template: str) -> None:
        self.server_url, self.template = server_url, template

    @contextmanager
    def clone(self, prefix: str) -> Iterator[str]:
        """A database of its own holding the loaded scenario, dropped afterwards; yields its URL."""
        from tests.conftest import RUN_ID, with_dbname

        name = f"iw_{prefix}_{RUN_ID}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(self.server_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        try:
            yield with_dbname(self.server_url, name)
        finally:
            with psycopg.connect(self.server_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
