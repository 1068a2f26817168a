"""Reading spreadsheets: encoding detection, header layout (long or wide) and chunked raw frames.

Pure of the database: turns a file into raw observation frames (see ingest.validate) with line numbers.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from ingest.distinct import Distinct
from ingest.report import Rejection
from ingest.validate import RAW_COLUMNS
from reference.catalogue import METRICS

KEY_COLUMNS = ("ts", "region", "operator", "entity")
_EXTRA = [f"__extra_{i}" for i in range(8)]  # room for rows with more fields than the header
LONG_REQUIRED = ("ts", "region", "metric", "value")


#: A header line longer than this is refused (a wide header of every metric is a few KiB).
MAX_HEADER_CHARS = 64 * 1024
#: A field longer than this is refused where the row-by-row reader reads the file (Python's csv default).
MAX_FIELD_CHARS = 128 * 1024
#: Rows per frame when the row-by-row reader takes over from pandas.
_FALLBACK_CHUNK_ROWS = 10_000


class UnusableInput(ValueError):
    """The file cannot be read as observations at all (unreadable, wrong encoding, missing columns)."""


class InputTooLarge(UnusableInput):
    """A header or field is beyond its size limit (the message names the limit): exit 2, HTTP 413."""


@dataclass(frozen=True)
class FileScan:
    sha256: str
    encoding: str
    size: int


@dataclass
class CsvLayout:
    format: str  # "long" or "wide"
    columns: list[str]  # normalised header names in file order
    metric_columns: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


def scan_file(path: Path, chunk: int = 1 << 20) -> FileScan:
    """One pass over the file: its SHA-256 and its encoding (UTF-8 with or without BOM, else GB18030)."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8 = True
    size = 0
    first = b""
    try:
        with open(path, "rb") as fh:
            while block := fh.read(chunk):
                if not first:
                    first = block[:3]
                size += len(block)
                digest.update(block)
                if utf8:
                    try:
                        decoder.decode(block)
                    except UnicodeDecodeError:
                        utf8 = False
        if utf8:
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        utf8 = False
    except OSError as exc:
        raise UnusableInput(f"cannot read {path}: {exc.strerror or exc}") from None
    if utf8:
        encoding = "utf-8-sig" if first.startswith(codecs.BOM_UTF8) else "utf-8"
    else:
        encoding = "gb18030"
    return FileScan(digest.hexdigest(), encoding, size)


def _normalise(name: str) -> str:
    return (
        str(name).replace("\ufeff", "").strip().lower()
        if str(name).strip().lower() in (*KEY_COLUMNS, *LONG_REQUIRED)
        or str(name).replace("\ufeff", "").strip().lower() in METRICS
        else str(name).replace("\ufeff", "").strip()
    )


def detect_layout(header: list[str]) -> CsvLayout:
    cols = [_normalise(c) for c in header]
    dupes = sorted({c for c in cols if cols.count(c) > 1})
    if dupes:
        raise UnusableInput(f"the header repeats column(s) {', '.join(dupes)}")
    if "metric" in cols or "value" in cols:
        missing = [c for c in LONG_REQUIRED if c not in cols]
        if missing:
            raise UnusableInput(
                f"long-format header lacks column(s) {', '.join(missing)}; "
                "a long CSV needs ts,region,metric,value (operator,entity optional)"
            )
        ignored = [c for c in cols if c not in (*LONG_REQUIRED, "operator", "entity")]
        return CsvLayout("long", cols, ignored_columns=ignored)
    missing = [c for c in ("ts", "region") if c not in cols]
    if missing:
        raise UnusableInput(
            f"header lacks column(s) {', '.join(missing)}; a CSV needs ts and region, then "
            "either metric,value (long) or one column per metric id (wide)"
        )
    metric_cols = [c for c in cols if c in METRICS]
    if not metric_cols:
        raise UnusableInput(
            "no column is a metric id (e.g. bs5g_total, gigabit_users); wide CSVs have one "
            "column per metric, long CSVs have metric and value columns"
        )
    ignored = [c for c in cols if c not in metric_cols and c not in KEY_COLUMNS]
    return CsvLayout("wide", cols, metric_columns=metric_cols, ignored_columns=ignored)


class _CountingReader(io.RawIOBase):
    """Wraps a binary file and reports bytes read, for progress bars."""

    def __init__(self, fh: IO[bytes], on_progress: Callable[[int], None] | None) -> None:
        self._fh = fh
        self._on_progress = on_progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._fh.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        if self._on_progress and n:
            self._on_progress(n)
        return n


def read_header(path: Path, encoding: str) -> list[str]:
    try:
        with open(path, encoding=encoding, newline="") as fh:
            line = fh.readline(MAX_HEADER_CHARS + 1)
    except UnicodeDecodeError:
        raise UnusableInput(f"{path.name} is not text (neither UTF-8 nor GB18030); upload a CSV file") from None
    if "\x00" in line:
        raise UnusableInput(f"{path.name} is not text (it holds NUL bytes); upload a CSV file")
    if len(line) > MAX_HEADER_CHARS:
        raise InputTooLarge(
            f"{path.name}: the header line is longer than {MAX_HEADER_CHARS} characters "
            f"({MAX_HEADER_CHARS // 1024} KiB), the limit; the first line must be the column names only"
        )
    if not line.strip():
        raise UnusableInput(f"{path.name} is empty or has no header line")
    try:
        return next(csv.reader([line]))
    except csv.Error as exc:
        raise UnusableInput(f"{path.name}: the header line is not readable CSV ({exc})") from None


def iter_raw_frames(
    path: Path,
    scan: FileScan,
    layout: CsvLayout,
    *,
    operator: str | None,
    operator_column_trusted: bool,
    chunk_rows: int = 100_000,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[pd.DataFrame, list[Rejection], int]]:
    """Yield (raw frame, rejections found here, data rows in chunk) per chunk of the file.

    `operator` is the trusted operator (API key) or the default (--operator). When the operator column
    is not trusted (an operator's key), a row whose operator column disagrees is rejected.
    """
    with open(path, "rb") as raw_fh:
        stream = io.BufferedReader(_CountingReader(raw_fh, on_progress), 1 << 20)
        text = io.TextIOWrapper(stream, encoding=scan.encoding, newline="")
        try:
            first_line = 2
            failed = False
            try:
                # inside the try: with a quote that never closes near the top, pandas fails while opening
                reader = pd.read_csv(
                    text,
                    dtype=object,  # plain Python str cells: pandas' string dtype is several times slower
                    keep_default_na=False,
                    chunksize=chunk_rows,
                    skip_blank_lines=False,
                    header=None,
                    skiprows=1,
                    names=[*layout.columns, *_EXTRA],
                    engine="c",
                    index_col=False,
                )
                for chunk in reader:
                    rows = len(chunk)
                    lines = np.arange(first_line, first_line + rows)
                    first_line += rows
                    frame, rejections = _to_raw(chunk, lines, layout, operator, operator_column_trusted)
                    yield frame, rejections, rows
            except pd.errors.ParserError:
                # A row pandas cannot tokenise (far more fields than the header, a quote that never
                # closes): the rest of the file is read row by row, so only the bad rows are rejected.
                failed = True
            if failed:
                yield from _row_by_row(path, scan, layout, first_line, operator, operator_column_trusted, chunk_rows)
        except UnicodeDecodeError as exc:
            raise UnusableInput(
                f"{path.name} is neither UTF-8 nor GB18030 text ({exc.reason} at byte "
                f"{exc.start}); save it as UTF-8 CSV"
            ) from None


def _row_by_row(
    path: Path,
    scan: FileScan,
    layout: CsvLayout,
    first_line: int,
    operator: str | None,
    operator_column_trusted: bool,
    chunk_rows: int,
) -> Iterator[tuple[pd.DataFrame, list[Rejection], int]]:
    """The file from data row `first_line` (header = line 1) on, read with Python's csv module: a row with
    too many fields is rejected on its own; a quote that never closes rejects that row and every line after
    it (one rejection naming the line); a field over MAX_FIELD_CHARS refuses the file (InputTooLarge)."""
    width = len(layout.columns) + len(_EXTRA)
    chunk_rows = min(chunk_rows, _FALLBACK_CHUNK_ROWS)
    with open(path, encoding=scan.encoding, newline="") as fh:
        reader = csv.reader(fh, strict=True)
        next(reader, None)  # the header
        for _ in range(first_line - 2):  # rows pandas already read
            next(reader, None)
        line = first_line
        rows: list[list[str | None]] = []
        malformed: list[Rejection] = []
        tail: Rejection | None = None
        while True:
            physical = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                text = str(exc)
                if "field larger than field limit" in text:
                    raise InputTooLarge(
                        f"{path.name}: line {physical} holds a field longer than {MAX_FIELD_CHARS} characters "
                        f"({MAX_FIELD_CHARS // 1024} KiB), the limit"
                    ) from None
                if "unexpected end of data" in text:
                    tail = Rejection(
                        f"line {line}",
                        "",
                        f'a quoted field opens on line {physical} and never closes (unbalanced "); this row and '
                        f"the {max(reader.line_num - physical, 0)} lines after it are rejected: close the quote",
                        "",
                        line=line,
                    )
                    break
                malformed.append(
                    Rejection(f"line {line}", "", f"row is not readable CSV ({text})", f"(line {physical})", line=line)
                )
                rows.append([""] * width)  # a blank row keeps the numbering and is skipped as blank
                line += 1
                continue
            rows.append(_fit(fields, width))
            line += 1
            if len(rows) >= chunk_rows:
                yield _frame_of(rows, line, layout, operator, operator_column_trusted, malformed)
                rows, malformed = [], []
        if rows:
            yield _frame_of(rows, line, layout, operator, operator_column_trusted, malformed)
        if tail is not None:
            yield pd.DataFrame(columns=RAW_COLUMNS), [tail], 1


def _fit(fields: list[str], width: int) -> list[str | None]:
    """A row as the pandas reader shapes it: missing fields None, fields past the room for extras
    folded into the last extra (non-empty when any of them is)."""
    if len(fields) > width:
        fields = [*fields[: width - 1], "x" if any(fields[width - 1 :]) else ""]
    row: list[str | None] = list(fields)
    row.extend([None] * (width - len(row)))
    return row


def _frame_of(
    rows: list[list[str | None]],
    next_line: int,
    layout: CsvLayout,
    operator: str | None,
    trusted: bool,
    malformed: list[Rejection],
) -> tuple[pd.DataFrame, list[Rejection], int]:
    chunk = pd.DataFrame(rows, columns=[*layout.columns, *_EXTRA], dtype=object)
    lines = np.arange(next_line - len(rows), next_line)
    frame, rejections = _to_raw(chunk, lines, layout, operator, trusted)
    return frame, malformed + rejections, len(rows)


def _to_raw(
    chunk: pd.DataFrame,
    lines: np.ndarray,
    layout: CsvLayout,
    operator: str | None,
    operator_column_trusted: bool,
) -> tuple[pd.DataFrame, list[Rejection]]:
    rejections: list[Rejection] = []
    # An extra field that is not empty means more fields than the header; fields fill a row from the left,
    # so only a row without a last field has fewer.
    too_many = np.zeros(len(chunk), dtype=bool)
    for col in _EXTRA:
        filled = chunk[col].to_numpy(dtype=object) != ""
        if filled.any():
            too_many |= filled & pd.notna(chunk[col].to_numpy(dtype=object))
    too_few = np.asarray(pd.isna(chunk[layout.columns[-1]].to_numpy(dtype=object)), dtype=bool)
    chunk = chunk[layout.columns]
    if too_few.any():
        chunk = chunk.fillna("")
    # A row's CSV text is rebuilt only for the rows that are rejected (quarantine keeps it).
    raw_lines = RawLines(int(lines[0]) if len(lines) else 0, [chunk[c].to_numpy(dtype=object) for c in layout.columns])
    blank = _blank_rows(raw_lines.columns) & ~too_many
    bad_shape = (too_many | too_few) & ~blank
    if bad_shape.any():
        for pos in np.flatnonzero(bad_shape):
            what = "more" if too_many[pos] else "fewer"
            rejections.append(
                Rejection(
                    f"line {lines[pos]}",
                    "",
                    f"row has {what} fields than the header ({len(layout.columns)})",
                    raw_lines.text(int(lines[pos])),
                    line=int(lines[pos]),
                )
            )
    drop = blank | bad_shape
    if drop.any():
        chunk, lines = chunk[~drop], lines[~drop]
    op_col = _stripped(chunk, "operator")
    if operator_column_trusted:
        ops = op_col.where(op_col != "", operator or "")
        no_op = (ops == "").to_numpy()
        if no_op.any():
            for pos in np.flatnonzero(no_op):
                rejections.append(
                    Rejection(
                        f"line {lines[pos]}",
                        "operator",
                        "no operator: fill the operator column or pass --operator",
                        raw_lines.text(int(lines[pos])),
                        line=int(lines[pos]),
                    )
                )
    else:
        ops = pd.Series(operator or "", index=chunk.index)
        clash = ((op_col != "") & (op_col != operator)).to_numpy()
        no_op = clash
        for pos in np.flatnonzero(clash):
            rejections.append(
                Rejection(
                    f"line {lines[pos]}",
                    "operator",
                    f"operator column says {op_col.iloc[pos]!r} but this upload is for operator {operator!r}",
                    raw_lines.text(int(lines[pos])),
                    line=int(lines[pos]),
                )
            )
    keep = ~no_op
    if not keep.all():
        chunk, lines, ops = chunk[keep], lines[keep], ops[keep]
    entity = _stripped(chunk, "entity")
    base = {
        "region": chunk["region"].to_numpy(dtype=object),
        "operator": ops.to_numpy(dtype=object),
        "entity": entity.to_numpy(dtype=object),
        "ts": chunk["ts"].to_numpy(dtype=object),
        "raw": np.full(len(chunk), None, dtype=object),  # filled from `raw_lines` for rejected rows only
        "index": np.full(len(chunk), None, dtype=object),
        "line": lines,
    }
    if layout.format == "long":
        frame = pd.DataFrame(
            {
                **base,
                "metric": _stripped(chunk, "metric").to_numpy(dtype=object),
                "value": chunk["value"].to_numpy(dtype=object),
            }
        )
        frame["location"] = "value"
    else:
        parts = []
        for col in layout.metric_columns:
            cells = chunk[col].str.strip()
            filled = (cells != "").to_numpy()
            if not filled.any():
                continue
            part = pd.DataFrame({k: v[filled] for k, v in base.items()})
            part["metric"] = col
            part["value"] = cells.to_numpy(dtype=object)[filled]
            part["location"] = col
            parts.append(part)
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=RAW_COLUMNS)
    frame = frame[RAW_COLUMNS]
    frame.attrs["raw_lines"] = raw_lines
    frame.attrs["location"] = LOCATION  # a rejection's location, from the row's line and column
    return frame, rejections


#: Where a rejected row of a spreadsheet is: its line and the column of the value (frame column `location`).
LOCATION = "line {line}, column {location}"


def _stripped(chunk: pd.DataFrame, column: str) -> pd.Series:
    """A column of few distinct values (operator, entity, metric) with spaces stripped, each value once; all
    empty when the file has no such column."""
    if column not in chunk.columns:
        return pd.Series("", index=chunk.index, dtype=object)
    values = Distinct.of(chunk[column]).map(lambda v: v.strip() if isinstance(v, str) else v)
    return pd.Series(values, index=chunk.index, dtype=object)


def _blank_rows(columns: list[np.ndarray]) -> np.ndarray:
    """Rows whose every field is empty or spaces (a line of commas); the full check only runs where the
    first field already is."""
    first = columns[0]
    try:
        blank = (first == "") | np.fromiter(map(str.isspace, first), dtype=bool, count=len(first))
    except TypeError:  # a cell that is not text
        blank = np.fromiter((not str(c).strip() for c in first), dtype=bool, count=len(first))
    for pos in np.flatnonzero(blank):
        blank[pos] = all(not str(col[pos]).strip() for col in columns[1:])
    return blank


class RawLines:
    """A chunk's fields by column, to give a rejected row's CSV text (fields joined by commas) on demand.
    Shared, not copied, by every frame pandas derives from the chunk's (pandas deep-copies `attrs`)."""

    def __init__(self, first_line: int, columns: list[np.ndarray]) -> None:
        self.first_line = first_line
        self.columns = columns

    def text(self, line: int) -> str:
        pos = line - self.first_line
        return ",".join(str(col[pos]) for col in self.columns)

    def __deepcopy__(self, memo: dict[int, object]) -> RawLines:
        return self
