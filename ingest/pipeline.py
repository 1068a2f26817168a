"""The one ingest pipeline every collector uses: validate, COPY into staging, merge by identity, record.

Identity is (metric, region, operator, entity, ts). The same identity and value again is a duplicate
(counted, stored once); another value is a revision (newest wins, the earlier value goes to
observation_history). Valid rows, quarantined rejections and the batch record commit in one
transaction, so a caller that acknowledges after `submit` returns never loses or half-stores input.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import psycopg

from infrawatch.settings import get_settings
from ingest.report import BatchReport, Rejection
from ingest.timestamps import from_us
from ingest.validate import JSON_TS, TimestampRule, frame_from_items, validate_frame

log = logging.getLogger(__name__)

_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS iw_staging (
    seq integer, metric text COLLATE "C", region integer, operator text COLLATE "C",
    entity text COLLATE "C", ts_us bigint, value double precision,
    ts timestamptz GENERATED ALWAYS AS (to_timestamp(ts_us / 1000000.0::float8)) STORED
) ON COMMIT DELETE ROWS
"""

_MERGE_TEMPLATE = """
WITH cur AS (
    SELECT s.metric, s.region, s.operator, s.entity, s.ts, s.value,
           o.value AS old_value, o.batch_id AS old_batch, (o.batch_id IS NOT NULL) AS existed
    FROM iw_staging s
    LEFT JOIN observation o USING (metric, region, operator, entity, ts)
), hist AS (
    INSERT INTO observation_history (metric, region, operator, entity, ts, value, batch_id, superseded_by)
    SELECT metric, region, operator, entity, ts, old_value, old_batch, %(batch)s
    FROM cur WHERE existed AND old_value <> value
    RETURNING 1
), {write}, fresh AS (
    INSERT INTO feed_freshness (operator, metric, region, last_ts, last_received_at)
    SELECT operator, metric, region, max(ts), now() FROM cur GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (operator, metric, region) DO UPDATE
    SET last_ts = GREATEST(feed_freshness.last_ts, EXCLUDED.last_ts),
        last_received_at = EXCLUDED.last_received_at
    RETURNING 1
), dirty AS (
    INSERT INTO rollup_dirty (metric, day)
    SELECT DISTINCT metric, (ts AT TIME ZONE 'UTC')::date FROM cur WHERE NOT existed OR old_value <> value
    ORDER BY 1, 2
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT count(*) FILTER (WHERE NOT existed),
       count(*) FILTER (WHERE existed AND old_value = value),
       count(*) FILTER (WHERE existed AND old_value <> value),
       (SELECT count(*) FROM hist), (SELECT count(*) FROM fresh), (SELECT count(*) FROM dirty), {counted}
FROM cur
"""

# Fast path: new identities are plain inserts, revisions plain updates. A concurrent writer inserting the
# same identity between our read and write makes it fail with a unique violation; then the upsert runs.
_MERGE_FAST = _MERGE_TEMPLATE.format(
    write="""ins AS (
    INSERT INTO observation (metric, region, operator, entity, ts, value, batch_id)
    SELECT metric, region, operator, entity, ts, value, %(batch)s FROM cur WHERE NOT existed
    RETURNING 1
), upd AS (
    UPDATE observation o SET value = cur.value, batch_id = %(batch)s, received_at = now()
    FROM cur WHERE cur.existed AND cur.old_value <> cur.value
      AND (o.metric, o.region, o.operator, o.entity, o.ts) = (cur.metric, cur.region, cur.operator, cur.entity, cur.ts)
    RETURNING 1
)""",
    counted="(SELECT count(*) FROM ins) + (SELECT count(*) FROM upd)",
)

_MERGE_UPSERT = _MERGE_TEMPLATE.format(
    write="""up AS (
    INSERT INTO observation (metric, region, operator, entity, ts, value, batch_id)
    SELECT metric, region, operator, entity, ts, value, %(batch)s
    FROM cur WHERE NOT existed OR old_value <> value
    ORDER BY metric, region, operator, entity, ts
    ON CONFLICT (metric, region, operator, entity, ts)
    DO UPDATE SET value = EXCLUDED.value, batch_id = EXCLUDED.batch_id, received_at = now()
    RETURNING 1
)""",
    counted="(SELECT count(*) FROM up)",
)

_IDENTITY = ["metric", "region", "operator", "entity", "ts_us"]


@dataclass(slots=True)
class PreparedBatch:
    """A validated batch ready to store: normalised valid rows, rejections, and how many inputs it had."""

    valid: pd.DataFrame
    rejections: list[Rejection]
    received: int


def now_us() -> int:
    return int(time.time() * 1_000_000)


class IngestPipeline:
    """Stateful only in caches (known operators, partitions made); safe to share within one process."""

    def __init__(self, future_tolerance_s: int | None = None) -> None:
        self.future_tolerance_s = (
            get_settings().future_tolerance_s if future_tolerance_s is None else future_tolerance_s
        )
        self._operators: set[str] = set()
        self._operators_loaded_at = 0.0
        self._months: set[int] = set()

    # -- entry points ---------------------------------------------------------------------------

    def submit_items(
        self,
        conn: psycopg.Connection,
        items: Iterable[Any],
        *,
        source: str,
        operator: str,
        metric: str | None = None,
        operator_may_vary: bool = False,
        upload_id: str | None = None,
    ) -> BatchReport:
        """Decoded JSON items from one sender → stored and quarantined in one transaction."""
        frame, rejections = frame_from_items(
            items, operator=operator, metric=metric, operator_may_vary=operator_may_vary
        )
        return self.submit_frame(conn, frame, rejections, source=source, operator=operator, upload_id=upload_id)

    def submit_frame(
        self,
        conn: psycopg.Connection,
        frame: pd.DataFrame,
        rejections: list[Rejection] | None = None,
        *,
        source: str,
        operator: str | None,
        ts_rule: TimestampRule = JSON_TS,
        upload_id: str | None = None,
    ) -> BatchReport:
        """A raw frame (see ingest.validate) plus rejections found upstream → one committed batch."""
        known = self.known_operators(conn, frame["operator"].unique() if len(frame) else ())
        valid, found = validate_frame(
            frame, known_operators=known, now_us=now_us(), ts_rule=ts_rule, future_tolerance_s=self.future_tolerance_s
        )
        all_rejections = list(rejections or []) + found
        return self.store(
            conn,
            valid,
            all_rejections,
            source=source,
            operator=operator,
            upload_id=upload_id,
            received=len(frame) + len(rejections or []),
        )

    # -- the write ------------------------------------------------------------------------------

    def store(
        self,
        conn: psycopg.Connection,
        valid: pd.DataFrame,
        rejections: list[Rejection],
        *,
        source: str,
        operator: str | None,
        upload_id: str | None = None,
        received: int | None = None,
    ) -> BatchReport:
        """Write valid rows and rejections in one transaction; returns the committed batch's report."""
        started = time.perf_counter()
        report = BatchReport(
            received=len(valid) + len(rejections) if received is None else received,
            rejected=len(rejections),
            rejections=rejections,
        )
        if len(valid):
            self._ensure_partitions(conn, valid["ts_us"])
        with conn.transaction():
            row = conn.execute("SELECT nextval('ingest_batch_id_seq')").fetchone()
            assert row is not None
            batch_id = int(row[0])
            report.batch_id = batch_id
            if len(valid):
                valid, superseded = _split_superseded(valid)
                # Probe the primary key per staged row instead of merge-joining the whole partition: a batch
                # is small next to the table it lands in.
                conn.execute(
                    "SET LOCAL work_mem = '64MB'; SET LOCAL enable_mergejoin = off; SET LOCAL enable_hashjoin = off"
                )
                conn.execute(_STAGING)
                with conn.cursor().copy(
                    "COPY iw_staging (seq, metric, region, operator, entity, ts_us, value) FROM STDIN"
                ) as copy:
                    copy.write(_to_copy_text(valid))
                try:
                    with conn.transaction():
                        counts = conn.execute(_MERGE_FAST, {"batch": batch_id}).fetchone()
                except psycopg.errors.UniqueViolation:
                    counts = conn.execute(_MERGE_UPSERT, {"batch": batch_id}).fetchone()
                assert counts is not None
                report.accepted, report.duplicates, report.revised = int(counts[0]), int(counts[1]), int(counts[2])
                if len(superseded):
                    changed = superseded[~superseded["same"]]
                    report.duplicates += int(superseded["same"].sum())
                    report.revised += len(changed)
                    if len(changed):
                        with conn.cursor().copy(
                            "COPY observation_history (metric, region, operator, entity, ts, value, batch_id,"
                            " superseded_by) FROM STDIN"
                        ) as copy:
                            cols = ["metric", "region", "operator", "entity", "ts_us", "value"]
                            for m, region, op, entity, ts_us, value in changed[cols].itertuples(index=False, name=None):
                                copy.write_row((m, region, op, entity, from_us(int(ts_us)), value, batch_id, batch_id))
            if rejections:
                with conn.cursor().copy(
                    "COPY quarantine (batch_id, source, operator, location, field, raw, reason) FROM STDIN"
                ) as copy:
                    for rej in rejections:
                        copy.write_row((batch_id, source, operator, rej.location, rej.field, rej.raw, rej.reason))
            conn.execute(
                "INSERT INTO ingest_batch (id, source, operator, accepted, duplicates, revised, rejected, upload_id)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    batch_id,
                    source,
                    operator,
                    report.accepted,
                    report.duplicates,
                    report.revised,
                    report.rejected,
                    upload_id,
                ),
            )
        log.debug(
            "batch stored",
            extra={
                "event": "ingest.batch",
                "batch_id": batch_id,
                "source": source,
                "accepted": report.accepted,
                "duplicates": report.duplicates,
                "revised": report.revised,
                "rejected": report.rejected,
                "ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        return report

    # -- caches -----------------------------------------------------------------------------------

    def known_operators(self, conn: psycopg.Connection, wanted: Iterable[str] = ()) -> set[str]:
        """Registered operators; reloaded when one is asked for that the cache lacks (at most every 2 s)."""
        missing = any(op not in self._operators for op in wanted)
        if not self._operators or (missing and time.monotonic() - self._operators_loaded_at > 2.0):
            self._operators = {r[0] for r in conn.execute("SELECT id FROM operator")}
            self._operators_loaded_at = time.monotonic()
            if conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
                conn.commit()
        return self._operators

    def _ensure_partitions(self, conn: psycopg.Connection, ts_us: pd.Series) -> None:
        months = _months_of(ts_us.to_numpy(dtype=np.int64))
        todo = sorted(set(months) - self._months)
        if not todo:
            return
        with conn.transaction():
            for month in todo:
                lo = datetime.fromtimestamp(month * 1e-6, UTC)
                conn.execute("SELECT iw_ensure_partitions(%s, %s)", (lo, lo))
        self._months.update(todo)


def _split_superseded(valid: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Within one batch the last copy of an identity wins; earlier copies are returned with `same` telling
    whether they equal the winner (a duplicate) or not (a revision whose value goes to history)."""
    dropped = valid.duplicated(subset=_IDENTITY, keep="last").to_numpy()
    if not dropped.any():
        return valid, valid.iloc[:0].assign(same=pd.Series(dtype=bool))
    winners = valid[~dropped]
    losers = valid[dropped]
    kept = winners.set_index(_IDENTITY)["value"].reindex(pd.MultiIndex.from_frame(losers[_IDENTITY])).to_numpy()
    return winners, losers.assign(same=losers["value"].to_numpy() == kept)


def _months_of(ts_us: np.ndarray) -> list[int]:
    """Distinct UTC month starts (as epoch µs) of the given instants."""
    months = np.unique(ts_us.astype("datetime64[us]").astype("datetime64[M]"))
    return [int(m) for m in months.astype("datetime64[us]").astype(np.int64)]


def _to_copy_text(valid: pd.DataFrame) -> bytes:
    out = io.StringIO()
    frame = valid[["metric", "region", "operator", "entity", "ts_us", "value"]].sort_values(_IDENTITY)
    frame.insert(0, "seq", np.arange(len(frame)))
    frame["entity"] = (
        frame["entity"].map(_escape_copy) if frame["entity"].str.contains(r"\\", regex=False).any() else frame["entity"]
    )
    frame.to_csv(out, sep="\t", header=False, index=False, float_format="%.17g")
    return out.getvalue().encode()


def _escape_copy(text: str) -> str:
    return text.replace("\\", "\\\\")
