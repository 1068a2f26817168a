"""The one ingest door every collector uses: `prepare` (validate, no database) then `store` (COPY, merge by
identity, quarantine, record — one transaction).

Identity is (metric, region, operator, entity, ts): a series (table `series`, an integer id per metric,
region, operator and entity) and an instant; rows land in `observation_point` keyed by (series_id, ts). The
same identity and value again is a duplicate (counted, stored once); another value is a revision (newest
wins, the earlier value goes to observation_history). Valid rows, quarantined rejections and the batch
record commit in one transaction, so a caller that acknowledges after `store` returns never loses or
half-stores input.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from psycopg.pq import TransactionStatus

from core.settings import get_settings
from ingest.report import BatchReport, Rejection
from ingest.timestamps import from_us
from ingest.validate import JSON_TS, TimestampRule, frame_from_items, validate_frame

log = logging.getLogger(__name__)

#: A series: (metric, region, operator, entity).
SeriesKey = tuple[str, int, str, str]

_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS iw_staging_point (
    series_id integer, ts timestamptz, value double precision, batch_id bigint
) ON COMMIT DELETE ROWS
"""

_COPY_STAGING = "COPY iw_staging_point (series_id, ts, value, batch_id) FROM STDIN (FORMAT binary)"

# Insert first: a new identity (the common case) costs one index descent and no join. Rows that already
# existed are left alone by ON CONFLICT DO NOTHING (waiting for a concurrent writer of the same identity
# to commit) and still carry another batch's id, which is how the second statement finds them.
_INSERT_NEW = """
INSERT INTO observation_point (series_id, ts, value, batch_id)
SELECT series_id, ts, value, batch_id FROM iw_staging_point
ON CONFLICT DO NOTHING
"""

# Freshness (latest ts per operator, metric and region) and the rollups' dirty hours, from arrays computed
# client-side over every stored row; when some identities existed, the dirty hours only of the rows this
# batch inserted or revised (they now carry its id).
_RECORD_TEMPLATE = """
WITH fresh AS (
    INSERT INTO feed_freshness (operator, metric, region, last_ts, last_received_at)
    SELECT operator, metric, region, last_ts, now()
    FROM unnest(%(f_operator)s::text[], %(f_metric)s::text[], %(f_region)s::int[], %(f_ts)s::timestamptz[])
         AS f(operator, metric, region, last_ts)
    ORDER BY 1, 2, 3
    ON CONFLICT (operator, metric, region) DO UPDATE
    SET last_ts = GREATEST(feed_freshness.last_ts, EXCLUDED.last_ts),
        last_received_at = EXCLUDED.last_received_at
    RETURNING 1
), dirty AS (
    INSERT INTO rollup_dirty (metric, day, hour)
    {dirty}
    ORDER BY 1, 2, 3
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM fresh), (SELECT count(*) FROM dirty)
"""
_RECORD_FROM_ARRAYS = _RECORD_TEMPLATE.format(
    dirty="""SELECT metric, day, hour FROM unnest(%(d_metric)s::text[], %(d_day)s::date[], %(d_hour)s::smallint[])
         AS d(metric, day, hour)"""
)
_RECORD_SOME_EXISTED = _RECORD_TEMPLATE.format(
    dirty="""SELECT DISTINCT k.metric, (s.ts AT TIME ZONE 'UTC')::date, extract(hour FROM s.ts AT TIME ZONE 'UTC')::smallint
    FROM iw_staging_point s JOIN series k ON k.id = s.series_id
    WHERE NOT EXISTS (
        SELECT 1 FROM observation_point o
        WHERE (o.series_id, o.ts) = (s.series_id, s.ts) AND o.batch_id <> %(batch)s)"""
)

_COPY_POINTS = "COPY observation_point (series_id, ts, value, batch_id) FROM STDIN (FORMAT binary)"

# Only when some identities existed: duplicates (same value) and revisions (new value wins, the old one
# goes to history). Rows this batch inserted carry its id and are skipped.
_MERGE_EXISTING = """
WITH old AS (
    SELECT s.series_id, s.ts, s.value, o.value AS old_value, o.batch_id AS old_batch
    FROM iw_staging_point s
    JOIN observation_point o USING (series_id, ts)
    WHERE o.batch_id <> %(batch)s
), hist AS (
    INSERT INTO observation_history (metric, region, operator, entity, ts, value, batch_id, superseded_by)
    SELECT k.metric, k.region, k.operator, k.entity, old.ts, old.old_value, old.old_batch, %(batch)s
    FROM old JOIN series k ON k.id = old.series_id
    WHERE old.old_value <> old.value
    RETURNING 1
), upd AS (
    UPDATE observation_point o SET value = old.value, batch_id = %(batch)s
    FROM old WHERE old.old_value <> old.value AND (o.series_id, o.ts) = (old.series_id, old.ts)
    RETURNING 1
)
SELECT count(*) FILTER (WHERE old_value = value),
       count(*) FILTER (WHERE old_value <> value),
       (SELECT count(*) FROM hist), (SELECT count(*) FROM upd)
FROM old
"""

# Series the cache lacks: made where new (in identity order, so concurrent writers lock them in the same
# order), then those another writer made found by a second statement, whose snapshot sees its commit.
_MAKE_SERIES = """
INSERT INTO series (metric, region, operator, entity)
SELECT * FROM unnest(%(metric)s::text[], %(region)s::int[], %(operator)s::text[], %(entity)s::text[])
ORDER BY 1, 2, 3, 4
ON CONFLICT DO NOTHING
RETURNING id, metric, region, operator, entity
"""
_FIND_SERIES = """
SELECT s.id, s.metric, s.region, s.operator, s.entity
FROM unnest(%(metric)s::text[], %(region)s::int[], %(operator)s::text[], %(entity)s::text[]) AS w(metric, region, operator, entity)
JOIN series s ON s.metric = w.metric AND s.region = w.region AND s.operator = w.operator AND s.entity = w.entity
"""
#: At most this many series ids are cached (memory stays bounded; beyond it, a miss costs a look-up).
_SERIES_CACHE_MAX = 200_000

_IDENTITY = ["metric", "region", "operator", "entity", "ts_us"]


#: One `observation_point` row (series_id, ts, value, batch_id) in PostgreSQL's binary COPY format: the field
#: count, then each field's length and its big-endian value (timestamptz: µs since 2000-01-01 UTC). Built for
#: a whole batch by numpy, with no text to format or for the server to parse.
_POINT_ROW = np.dtype(
    [("fields", ">i2"), ("n_sid", ">i4"), ("sid", ">i4"), ("n_ts", ">i4"), ("ts", ">i8"),
     ("n_value", ">i4"), ("value", ">f8"), ("n_batch", ">i4"), ("batch", ">i8")]
)  # fmt: skip
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_COPY_TRAILER = (-1).to_bytes(2, "big", signed=True)
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 UTC in Unix µs


@dataclass(slots=True)
class StagedRows:
    """Valid rows made ready for the database without it: the last copy of each identity (`rows`), the
    earlier copies (`superseded`, with `same` telling duplicate from revision), the UTC months they fall in,
    the freshness / rollup arrays, and the batch's `series` in identity order with its points (`points`,
    binary COPY rows in identity and time order, series and batch ids still to fill; `point_series`: each
    point's position in `series`)."""

    rows: pd.DataFrame
    superseded: pd.DataFrame
    months: list[int]
    series: list[SeriesKey]
    points: np.ndarray
    point_series: np.ndarray
    record: dict[str, list[Any]]

    def copy_data(self, series_ids: list[int], batch_id: int) -> bytes:
        """Binary COPY data of the `observation_point` rows (series_id, ts, value, batch_id), ordered by
        (series_id, ts) so that the primary key is filled in order."""
        by_series = np.asarray(series_ids, dtype=np.int64)
        ids = by_series[self.point_series]
        if np.all(by_series[1:] > by_series[:-1]):  # ids in identity order (series made in that order)
            rows = self.points.copy()
            rows["sid"] = ids
        else:
            order = np.argsort(ids, kind="stable")  # each series' points stay in time order
            rows = self.points[order]
            rows["sid"] = ids[order]
        rows["batch"] = batch_id
        return _COPY_HEADER + rows.tobytes() + _COPY_TRAILER


def stage_rows(valid: pd.DataFrame) -> StagedRows:
    """The pure, CPU-heavy part of storing a batch, so it can run on another thread than the database work."""
    order, starts = _identity_order_and_starts(valid)
    if _has_repeats(valid, order, starts):
        rows, superseded = _split_superseded(valid)
        order, starts = _identity_order_and_starts(rows)
    else:  # the usual batch: every identity once
        rows, superseded = valid, valid.iloc[:0].assign(same=pd.Series(dtype=bool))
    series, points, point_series = _points(rows, order, starts)
    return StagedRows(
        rows=rows,
        superseded=superseded,
        months=_months_of(rows["ts_us"].to_numpy(dtype=np.int64)) if len(rows) else [],
        series=series,
        points=points,
        point_series=point_series,
        record=_record_arrays(rows, order, starts) if len(rows) else {},
    )


@dataclass(slots=True)
class PreparedBatch:
    """A batch on its way from `prepare` to `store`: the operator it is recorded under, how many inputs it
    had and the rejections found so far; then either the valid rows staged for the database (`staged`,
    None when there are none) or, while an operator it names is not known yet, the raw `frame` whose validation `store` finishes."""

    operator: str | None
    received: int
    rejections: list[Rejection]
    ts_rule: TimestampRule = JSON_TS
    frame: pd.DataFrame | None = None  # raw, waiting for validation (None once validated)
    staged: StagedRows | None = None

    @property
    def validated(self) -> bool:
        return self.frame is None


def now_us() -> int:
    return int(time.time() * 1_000_000)


class IngestPipeline:
    """The one door: `prepare` (no database; may run on another thread) then `store` (one transaction).
    Stateful only in caches (known operators, series ids, partitions made); safe to share within one process
    (one connection at a time, as collectors use it)."""

    def __init__(self, future_tolerance_s: int | None = None) -> None:
        self.future_tolerance_s = (
            get_settings().future_tolerance_s if future_tolerance_s is None else future_tolerance_s
        )
        self._operators: set[str] = set()
        self._operators_loaded_at = 0.0
        self._months: set[int] = set()
        self._series: dict[SeriesKey, int] = {}  # committed series rows only (never deleted)
        self._series_complete = False  # whether the cache holds every series of the database
        self._series_db: tuple[int, int] | None = None  # the database the cache is of: (oid, max series id seen)
        self._conn_db: weakref.WeakKeyDictionary[psycopg.Connection, int] = weakref.WeakKeyDictionary()
        self._direct = True  # try the direct COPY first; off after a batch whose identities existed

    # -- the door -------------------------------------------------------------------------------

    def prepare(
        self,
        data: pd.DataFrame | Iterable[Any],
        rejections: list[Rejection] | None = None,
        *,
        operator: str | None,
        metric: str | None = None,
        operator_may_vary: bool = False,
        ts_rule: TimestampRule = JSON_TS,
    ) -> PreparedBatch:
        """Everything before the database: decoded JSON items (or a raw frame, see ingest.validate, with the
        `rejections` found upstream) → a `PreparedBatch` for `store`.

        `operator` is the trusted sender (topic, key or --operator; None: the rows name their own), which
        items must agree with unless `operator_may_vary`, and which the batch is recorded under. `metric`
        is the channel's metric for items that name none. Validation happens here when every operator the
        rows name is known from the cache, else lazily in `store`, which can look operators up."""
        if isinstance(data, pd.DataFrame):
            frame, upstream = data, list(rejections or [])
        else:
            frame, found = frame_from_items(
                data, operator=operator or "", metric=metric, operator_may_vary=operator_may_vary
            )
            upstream = [*(rejections or []), *found]
        batch = PreparedBatch(operator, len(frame) + len(upstream), upstream, ts_rule, frame=frame)
        known = self._operators
        if not len(frame) or all(op in known for op in frame["operator"].unique()):
            self._validate(batch, known)
        return batch

    def store(
        self, conn: psycopg.Connection, batch: PreparedBatch, *, source: str, upload_id: str | None = None
    ) -> BatchReport:
        """Validate what `prepare` could not, then write valid rows, rejections and the batch record in one
        transaction (its own; a savepoint inside a caller's); returns the committed batch's report.
        A batch whose write failed can be stored again: it is validated once."""
        if not batch.validated:
            assert batch.frame is not None
            wanted = batch.frame["operator"].unique() if len(batch.frame) else ()
            self._validate(batch, self.known_operators(conn, wanted))
        return self._write(conn, batch, source=source, upload_id=upload_id)

    def submit_items(
        self,
        conn: psycopg.Connection,
        items: Iterable[Any],
        *,
        source: str,
        operator: str,
        metric: str | None = None,
        operator_may_vary: bool = False,
    ) -> BatchReport:
        """`store(prepare(items))` in one call, for scripts, benchmarks and tests (collectors use the door)."""
        batch = self.prepare(items, operator=operator, metric=metric, operator_may_vary=operator_may_vary)
        return self.store(conn, batch, source=source)

    def _validate(self, batch: PreparedBatch, known: set[str]) -> None:
        """Validate the batch's raw frame against `known` operators and stage the valid rows; the raw frame
        (every input's text) is let go."""
        assert batch.frame is not None
        valid, found = validate_frame(
            batch.frame,
            known_operators=known,
            now_us=now_us(),
            ts_rule=batch.ts_rule,
            future_tolerance_s=self.future_tolerance_s,
        )
        batch.rejections.extend(found)
        batch.staged = stage_rows(valid) if len(valid) else None
        batch.frame = None

    # -- the write ------------------------------------------------------------------------------

    def _write(
        self, conn: psycopg.Connection, batch: PreparedBatch, *, source: str, upload_id: str | None
    ) -> BatchReport:
        """Write a validated batch in one transaction."""
        operator, rejections, staged = batch.operator, batch.rejections, batch.staged
        started = time.perf_counter()
        report = BatchReport(received=batch.received, rejected=len(rejections), rejections=list(rejections))
        series_ids: list[int] = []
        if staged is not None:
            self._ensure_partitions(conn, staged.months)
            series_ids = self._series_ids(conn, staged.series)
        with conn.transaction():
            row = conn.execute("SELECT nextval('ingest_batch_id_seq')").fetchone()
            assert row is not None
            batch_id = int(row[0])
            report.batch_id = batch_id
            if staged is not None:
                valid, superseded = staged.rows, staged.superseded
                # Existing identities are found by probing the primary key per staged row instead of
                # merge-joining the whole partition: a batch is small next to the table it lands in.
                conn.execute(
                    "SET LOCAL work_mem = '64MB'; SET LOCAL enable_mergejoin = off; SET LOCAL enable_hashjoin = off"
                )
                text = staged.copy_data(series_ids, batch_id)
                if self._direct and self._copy_new(conn, staged, text):
                    inserted = len(valid)
                    duplicates = revised = 0
                else:
                    inserted, duplicates, revised = self._merge(conn, staged, text, batch_id)
                    # Back to the direct COPY once a batch is all new again (a re-sent file is not).
                    self._direct = inserted == len(valid)
                report.accepted, report.duplicates, report.revised = inserted, duplicates, revised
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

    def _copy_new(self, conn: psycopg.Connection, staged: StagedRows, text: bytes) -> bool:
        """COPY the rows straight into `observation_point` (the multi-row insert path, as fast as a bare COPY),
        on the bet that every identity is new. A unique violation rolls back to a savepoint: False."""
        try:
            with conn.transaction(), conn.cursor().copy(_COPY_POINTS) as copy:
                copy.write(text)
        except psycopg.errors.UniqueViolation:
            return False
        conn.execute(_RECORD_FROM_ARRAYS, staged.record)
        return True

    def _merge(self, conn: psycopg.Connection, staged: StagedRows, text: bytes, batch_id: int) -> tuple[int, int, int]:
        """COPY into staging, insert the new identities, then count duplicates and store revisions."""
        conn.execute(_STAGING)
        with conn.cursor().copy(_COPY_STAGING) as copy:
            copy.write(text)
        inserted = conn.execute(_INSERT_NEW).rowcount
        total = len(staged.rows)
        duplicates = revised = 0
        if inserted < total:
            counts = conn.execute(_MERGE_EXISTING, {"batch": batch_id}).fetchone()
            assert counts is not None
            duplicates, revised = int(counts[0]), int(counts[1])
            conn.execute(_RECORD_SOME_EXISTED, {**staged.record, "batch": batch_id})
        else:
            conn.execute(_RECORD_FROM_ARRAYS, staged.record)
        return inserted, duplicates, revised

    # -- caches -----------------------------------------------------------------------------------

    def known_operators(self, conn: psycopg.Connection, wanted: Iterable[str] = ()) -> set[str]:
        """Registered operators; reloaded when one is asked for that the cache lacks (at most every 2 s)."""
        missing = any(op not in self._operators for op in wanted)
        if not self._operators or (missing and time.monotonic() - self._operators_loaded_at > 2.0):
            with conn.transaction():  # ours when the connection was idle; a savepoint in a caller's
                self._operators = {r[0] for r in conn.execute("SELECT id FROM operator")}
            self._operators_loaded_at = time.monotonic()
        return self._operators

    def _series_ids(self, conn: psycopg.Connection, keys: list[SeriesKey]) -> list[int]:
        """The id of each series, from the cache (the whole `series` table, loaded at first use); the series
        it lacks are made in one statement (INSERT … ON CONFLICT DO NOTHING RETURNING) and those a concurrent
        writer made meanwhile found by a second one, committed before the batch's own transaction when the
        connection was idle. Only ids of committed rows are cached: inside a caller's transaction, which may
        still roll back, the series made serve this batch only."""
        self._load_series(conn)
        missing = [k for k in keys if k not in self._series]
        if not missing:
            return [self._series[k] for k in keys]
        found: dict[SeriesKey, int] = {}
        # a cache that could not hold the whole table looks first: an INSERT that conflicts still uses up an id
        steps = (_MAKE_SERIES, _FIND_SERIES) if self._series_complete else (_FIND_SERIES, _MAKE_SERIES, _FIND_SERIES)
        with conn.transaction():  # ours when the connection was idle; a savepoint in a caller's
            for sql in steps:
                wanted = [k for k in missing if k not in found]
                if not wanted:
                    break
                params = {
                    name: [k[i] for k in wanted] for i, name in enumerate(("metric", "region", "operator", "entity"))
                }
                for sid, metric, region, operator, entity in conn.execute(sql, params).fetchall():
                    found[(metric, region, operator, entity)] = int(sid)
        lost = [k for k in missing if k not in found]
        if lost:
            raise RuntimeError(f"series neither made nor found: {lost[:3]}")
        ids = [self._series.get(k) or found[k] for k in keys]
        if conn.info.transaction_status == TransactionStatus.IDLE and self._series_db is not None:  # committed
            if len(self._series) + len(found) > _SERIES_CACHE_MAX:
                self._series.clear()
                self._series_complete = False
            self._series.update(found)
            self._series_db = (self._series_db[0], max(self._series_db[1], *found.values()))
        return ids

    def _load_series(self, conn: psycopg.Connection) -> None:
        """Keep the id cache only while it is of the connection's database, (re)loading it when not: checked
        once per connection (its database's oid, and the newest series id, which a restored copy of the
        database would be behind), then per batch against the database the connection was found on."""
        db = self._conn_db.get(conn)
        if db is not None and self._series_db is not None and self._series_db[0] == db:
            return
        with conn.transaction():  # ours when the connection was idle; a savepoint in a caller's
            row = conn.execute(
                "SELECT oid::bigint, (SELECT coalesce(max(id), 0) FROM series) FROM pg_database"
                " WHERE datname = current_database()"
            ).fetchone()
            assert row is not None
            db, newest = int(row[0]), int(row[1])
            self._conn_db[conn] = db
            if self._series_db is not None and self._series_db[0] == db and newest >= self._series_db[1]:
                return  # another connection to the same database
            loaded = conn.execute(
                "SELECT id, metric, region, operator, entity FROM series ORDER BY id LIMIT %s", (_SERIES_CACHE_MAX,)
            ).fetchall()
        self._series = {(m, r, o, e): int(i) for i, m, r, o, e in loaded}
        self._series_complete = len(loaded) < _SERIES_CACHE_MAX
        self._series_db = (db, max(self._series.values(), default=0))

    def _ensure_partitions(self, conn: psycopg.Connection, months: list[int]) -> None:
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
    lo, hi = np.array([ts_us.min(), ts_us.max()]).astype("datetime64[us]").astype("datetime64[M]")
    if lo == hi:  # the usual batch: one month, found without sorting every instant
        return [int(lo.astype("datetime64[us]").astype(np.int64))]
    months = np.unique(ts_us.astype("datetime64[us]").astype("datetime64[M]"))
    return [int(m) for m in months.astype("datetime64[us]").astype(np.int64)]


def _identity_order_and_starts(valid: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Row positions in identity order (_identity_order) and, per row in that order, whether a new series
    starts there."""
    order, codes = _identity_order(valid)
    if not len(order):
        return order, np.zeros(0, dtype=bool)
    return order, np.concatenate(([True], np.any(np.diff(codes[:, order], axis=1) != 0, axis=0)))


def _has_repeats(valid: pd.DataFrame, order: np.ndarray, starts: np.ndarray) -> bool:
    """Whether an identity (series and ts) occurs twice: a row in identity order that continues its series
    at its predecessor's ts."""
    ts = valid["ts_us"].to_numpy(dtype=np.int64)[order]
    return bool((~starts[1:] & (ts[1:] == ts[:-1])).any())


def _points(rows: pd.DataFrame, order: np.ndarray, new: np.ndarray) -> tuple[list[SeriesKey], np.ndarray, np.ndarray]:
    """The rows' series in identity order, their points as binary COPY rows in identity and time order
    (series and batch ids left to fill, _POINT_ROW) and each point's position in the series list; `order`
    and `new` from _identity_order_and_starts. Exact: a double is copied as its eight bytes, an
    instant as its microseconds."""
    n = len(rows)
    points = np.empty(n, dtype=_POINT_ROW)
    if not n:
        return [], points, np.zeros(0, dtype=np.int64)
    firsts = order[np.flatnonzero(new)]
    metric = rows["metric"].to_numpy(dtype=object)[firsts].tolist()
    region = rows["region"].to_numpy(dtype=np.int64)[firsts].tolist()
    operator = rows["operator"].to_numpy(dtype=object)[firsts].tolist()
    entity = rows["entity"].to_numpy(dtype=object)[firsts].tolist()
    series = list(zip(metric, region, operator, entity, strict=True))
    points["fields"] = 4
    points["n_sid"], points["n_ts"], points["n_value"], points["n_batch"] = 4, 8, 8, 8
    points["ts"] = rows["ts_us"].to_numpy(dtype=np.int64)[order] - _PG_EPOCH_US
    points["value"] = rows["value"].to_numpy(dtype=np.float64)[order]
    return series, points, np.cumsum(new) - 1


def _record_arrays(valid: pd.DataFrame, order: np.ndarray, new: np.ndarray) -> dict[str, list[Any]]:
    """Parameters of _RECORD_FROM_ARRAYS: latest ts per (operator, metric, region), distinct (metric, UTC hour).
    From the rows in identity order (`order`, series starts `new`), where each series' points run in time
    order: its last point is its latest, and its hours change only where its points do."""
    ts = valid["ts_us"].to_numpy(dtype=np.int64)[order]
    starts = np.flatnonzero(new)
    firsts = order[starts]
    ends = np.append(starts[1:], len(ts)) - 1
    per_series = pd.DataFrame(
        {c: valid[c].to_numpy()[firsts] for c in ("operator", "metric", "region")} | {"ts_us": ts[ends]}
    )
    latest = per_series.groupby(["operator", "metric", "region"], sort=True)["ts_us"].max()
    hour_of = ts // 3_600_000_000
    changes = new | np.concatenate(([True], hour_of[1:] != hour_of[:-1]))
    hours = pd.DataFrame({"metric": valid["metric"].to_numpy()[order[changes]], "hour": hour_of[changes]})
    hours = hours.drop_duplicates().sort_values(["metric", "hour"])
    hour = hours["hour"].to_numpy()
    return {
        "f_operator": latest.index.get_level_values(0).tolist(),
        "f_metric": latest.index.get_level_values(1).tolist(),
        "f_region": [int(r) for r in latest.index.get_level_values(2)],
        "f_ts": [from_us(int(us)) for us in latest.to_numpy()],
        "d_metric": hours["metric"].tolist(),
        "d_day": [from_us(int(d) * 86_400_000_000).date() for d in (hour // 24).tolist()],
        "d_hour": (hour % 24).tolist(),
    }


def _identity_order(valid: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Row positions sorted by identity (text columns compare by code point, as COLLATE "C" does), and the
    series columns' sort codes (metric, region, operator, entity: one row each, in the frame's order)."""
    codes = np.empty((4, len(valid)), dtype=np.int64)
    for i, column in enumerate(_IDENTITY[:4]):
        values = valid[column].to_numpy()
        codes[i] = pd.factorize(values, sort=True)[0] if values.dtype == object else values
    if len(valid) < 2:
        return np.arange(len(valid)), codes
    ts_us = valid["ts_us"].to_numpy(dtype=np.int64)
    return np.lexsort([ts_us, *codes[::-1]]), codes
