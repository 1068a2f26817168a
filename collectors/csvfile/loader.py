"""Loading one CSV file through the ingest pipeline, chunk by chunk, into an upload report."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from collectors.csvfile.reader import detect_layout, iter_raw_frames, read_header, scan_file
from ingest.ahead import read_ahead
from ingest.pipeline import IngestPipeline, PreparedBatch
from ingest.report import BatchReport, Rejection
from ingest.validate import TimestampRule
from storage.analyze import LOAD_TABLES, OBSERVATIONS, analyze_changed

MAX_ERRORS_IN_REPORT = 1000


@dataclass
class UploadReport:
    """The upload report of docs/interface.md §7, plus what else a person fixing the file needs."""

    id: str
    filename: str
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    revised: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    errors_not_listed: int = 0
    format: str = ""
    encoding: str = ""
    ignored_columns: list[str] = field(default_factory=list)
    same_as: str | None = None  # an earlier upload of the identical file
    operator: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def unchanged(self) -> bool:
        return self.accepted == 0 and self.revised == 0


def _error_entry(r: Rejection, wide: bool) -> dict[str, Any]:
    column = r.field
    if wide and r.field == "value" and "column " in r.location:
        column = r.location.rsplit("column ", 1)[1]
    return {"line": r.line, "column": column, "error": r.reason}


def load_csv(
    conn: psycopg.Connection,
    path: Path,
    *,
    operator: str | None,
    operator_column_trusted: bool,
    timezone: str | None = None,
    pipeline: IngestPipeline | None = None,
    source: str | None = None,
    filename: str | None = None,
    chunk_rows: int = 100_000,
    on_progress: Callable[[int], None] | None = None,
    upload_id: str | None = None,
) -> UploadReport:
    """Stream a CSV into the database. Raises UnusableInput when nothing in it can be read as observations.

    Each chunk is its own committed batch, so a crash part-way loses nothing already stored, and loading
    the file again only counts duplicates.
    """
    pipeline = pipeline or IngestPipeline()
    scan = scan_file(path)
    layout = detect_layout(read_header(path, scan.encoding))
    name = filename or path.name
    report = UploadReport(
        id=upload_id or str(uuid.uuid4()),
        filename=name,
        format=layout.format,
        encoding=scan.encoding,
        ignored_columns=layout.ignored_columns,
        operator=operator,
    )
    with conn.transaction():  # ours when the connection was idle; never a commit of the caller's
        previous = conn.execute(
            "SELECT id FROM upload WHERE sha256 = %s AND operator IS NOT DISTINCT FROM %s"
            " ORDER BY created_at DESC LIMIT 1",
            (scan.sha256, operator),
        ).fetchone()
    if previous:
        report.same_as = str(previous[0])
    rule = TimestampRule(strict=False, timezone=timezone)
    src = source or f"csv:{name}"
    pipeline.known_operators(conn)  # loaded now, so the read-ahead thread can validate

    def prepared() -> Iterator[tuple[PreparedBatch, int]]:
        """Read and prepare chunks in the read-ahead thread while the previous one is being stored (a chunk
        validated here no longer holds its raw frame, with every line's text)."""
        for frame, rejections, rows in iter_raw_frames(
            path,
            scan,
            layout,
            operator=operator,
            operator_column_trusted=operator_column_trusted,
            chunk_rows=chunk_rows,
            on_progress=on_progress,
        ):
            batch = pipeline.prepare(frame, rejections, operator=operator, ts_rule=rule)
            del frame
            yield batch, rows

    totals = BatchReport()
    for ready, rows in read_ahead(prepared(), name="csv-read-ahead"):
        report.rows += rows
        batch = pipeline.store(conn, ready, source=src, upload_id=report.id)
        totals += batch.counts()
        for r in sorted(batch.rejections, key=lambda r: r.line or 0):
            if len(report.errors) < MAX_ERRORS_IN_REPORT:
                report.errors.append(_error_entry(r, layout.format == "wide"))
            else:
                report.errors_not_listed += 1
    report.accepted, report.duplicates, report.revised, report.rejected = (
        totals.accepted,
        totals.duplicates,
        totals.revised,
        totals.rejected,
    )
    with conn.transaction():
        conn.execute(
            "INSERT INTO upload (id, operator, filename, sha256, report) VALUES (%s, %s, %s, %s, %s)",
            (report.id, operator, name, scan.sha256, Jsonb(report.as_dict())),
        )
    if report.accepted or report.revised:  # a bulk load: the planner should know the new rows
        analyze_changed(conn, (OBSERVATIONS, *LOAD_TABLES))
    return report
