"""Watching an inbox folder: load each settled CSV, move it to done/ or failed/, write its report beside it."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import psycopg

from collectors.csvfile import UnusableInput, load_csv
from ingest.pipeline import IngestPipeline
from storage import connect

log = logging.getLogger(__name__)


def process_file(
    conn: psycopg.Connection, path: Path, *, operator: str | None, timezone: str, pipeline: IngestPipeline
) -> Path:
    """Load one file and move it; returns its new path. done/ when every row stored, else failed/."""
    try:
        report = load_csv(
            conn,
            path,
            operator=operator,
            operator_column_trusted=True,
            timezone=timezone,
            pipeline=pipeline,
            source=f"inbox:{path.name}",
        )
        body = report.as_dict()
        folder = "done" if report.rejected == 0 else "failed"
    except UnusableInput as exc:
        body = {"filename": path.name, "error": str(exc)}
        folder = "failed"
    target_dir = path.parent / folder
    target_dir.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = target_dir / f"{stamp}-{path.name}"
    shutil.move(str(path), target)
    target.with_name(target.name + ".report.json").write_text(json.dumps(body, ensure_ascii=False, indent=2))
    log.info(
        "inbox file processed",
        extra={
            "event": "inbox.file",
            "file": path.name,
            "outcome": folder,
            "rejected": body.get("rejected"),
            "error": body.get("error"),
        },
    )
    return target


def _settled(path: Path, seen: dict[Path, tuple[int, float]]) -> bool:
    """A file is taken once its size and mtime are unchanged between two scans (the copy finished)."""
    st = path.stat()
    sig = (st.st_size, st.st_mtime)
    before = seen.get(path)
    seen[path] = sig
    return before == sig


def watch_inbox(
    inbox: Path, *, operator: str | None, timezone: str = "Asia/Shanghai", interval: float = 2.0, once: bool = False
) -> None:
    inbox.mkdir(parents=True, exist_ok=True)
    pipeline = IngestPipeline()
    seen: dict[Path, tuple[int, float]] = {}
    log.info("watching inbox", extra={"event": "inbox.start", "inbox": str(inbox)})
    with connect() as conn:
        while True:
            for path in sorted(inbox.iterdir()):
                if not path.is_file() or path.name.startswith(".") or path.suffix.lower() not in (".csv", ".txt"):
                    continue
                if once or _settled(path, seen):
                    seen.pop(path, None)
                    process_file(conn, path, operator=operator, timezone=timezone, pipeline=pipeline)
            if once:
                return
            time.sleep(interval)
