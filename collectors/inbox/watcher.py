"""Watching an inbox folder: load each complete CSV, move it to done/ or failed/, write its report beside it.

The rules (see collectors/inbox/README.md):
- The operator is the watcher's `--operator`, never the file's: a row whose operator column names another
  operator is rejected, as over the API with an operator key.
- Only regular files directly in the folder are taken; a symbolic link (wherever it points) is moved to
  failed/ unread, with a report saying why.
- A file is taken when it is complete: its size and modification time unchanged between two scans and
  older than the quiet period. Writers that can should write `NAME.csv.part` and rename it to `NAME.csv`
  when done (a rename is atomic): `.part` files are never taken.
- A taken file is first renamed into `.processing/`; a load interrupted by a crash or a database outage
  is loaded again from there (the ingest merges by identity, so rows already stored count as duplicates).
- A database outage does not stop the watcher: it reconnects with backoff and goes on with what arrived.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from collectors.csvfile import UnusableInput, load_csv
from ingest.pipeline import IngestPipeline
from storage import connect as storage_connect

log = logging.getLogger(__name__)

SUFFIXES = (".csv", ".txt")
PROCESSING = ".processing"
_OUTAGE = (psycopg.OperationalError, psycopg.InterfaceError)


def process_file(
    conn: psycopg.Connection,
    path: Path,
    *,
    operator: str,
    timezone: str | None,
    pipeline: IngestPipeline,
    name: str | None = None,
    inbox: Path | None = None,
) -> Path:
    """Load one file for `operator` and move it; returns its new path. done/ when every row stored, else
    failed/. Database errors propagate (the file stays where it is, to be loaded again)."""
    name = name or path.name
    inbox = inbox or path.parent
    try:
        report = load_csv(
            conn,
            path,
            operator=operator,
            operator_column_trusted=False,  # the operator comes from --operator; a disagreeing column is rejected
            timezone=timezone,
            pipeline=pipeline,
            source=f"inbox:{name}",
            filename=name,
        )
        body: dict[str, Any] = report.as_dict()
        folder = "done" if report.rejected == 0 else "failed"
    except UnusableInput as exc:
        body = {"filename": name, "error": str(exc)}
        folder = "failed"
    return _file_away(path, inbox, folder, name, body)


def _file_away(path: Path, inbox: Path, folder: str, name: str, body: dict[str, Any]) -> Path:
    target_dir = inbox / folder
    target_dir.mkdir(exist_ok=True)
    target = target_dir / f"{time.strftime('%Y%m%dT%H%M%S')}-{name}"
    shutil.move(str(path), target)
    target.with_name(target.name + ".report.json").write_text(json.dumps(body, ensure_ascii=False, indent=2))
    log.info(
        "inbox file processed",
        extra={
            "event": "inbox.file",
            "file": name,
            "outcome": folder,
            "rejected": body.get("rejected"),
            "error": body.get("error"),
        },
    )
    return target


class InboxWatcher:
    """One inbox folder, one operator; `run` scans until `stop()` (or, with `once`, until the folder is empty
    of complete and pending files)."""

    def __init__(
        self,
        inbox: Path,
        *,
        operator: str,
        timezone: str | None = None,
        interval: float = 2.0,
        quiet_s: float = 2.0,
        connect: Callable[[], psycopg.Connection] = storage_connect,
        backoff_max_s: float = 30.0,
    ) -> None:
        if not operator:
            raise ValueError("the inbox needs --operator: every file in it is loaded as that operator's data")
        self.inbox = inbox
        self.operator = operator
        self.timezone = timezone
        self.interval = interval
        self.quiet_s = quiet_s
        self.backoff_max_s = backoff_max_s
        self._connect = connect
        self._conn: psycopg.Connection | None = None
        self._seen: dict[str, tuple[int, int]] = {}
        self._stop = threading.Event()
        self.pipeline = IngestPipeline()

    def stop(self) -> None:
        self._stop.set()

    def run(self, once: bool = False) -> None:
        self.inbox.mkdir(parents=True, exist_ok=True)
        (self.inbox / PROCESSING).mkdir(exist_ok=True)
        log.info("watching inbox", extra={"event": "inbox.start", "inbox": str(self.inbox), "operator": self.operator})
        backoff = 1.0
        try:
            while not self._stop.is_set():
                try:
                    pending = self.scan_once()
                    backoff = 1.0
                except _OUTAGE as exc:
                    self._close()
                    log.warning(
                        "database unavailable; the file stays in the inbox and is loaded again after reconnecting",
                        extra={"event": "inbox.db_retry", "error": str(exc).strip()[:300], "retry_in_s": backoff},
                    )
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, self.backoff_max_s)
                    continue
                if once and not pending:
                    return
                self._stop.wait(min(self.interval, self.quiet_s) if pending else self.interval)
        finally:
            self._close()

    def scan_once(self) -> int:
        """Load what is complete; returns how many files are still waiting to settle."""
        processing = self.inbox / PROCESSING
        for path in sorted(processing.iterdir()):  # interrupted earlier: load again
            if path.is_file() and not path.is_symlink():
                self._load(path, path.name)
        waiting = 0
        with os.scandir(self.inbox) as entries:
            candidates = sorted(entries, key=lambda e: e.name)
        for entry in candidates:
            name = entry.name
            if name.startswith(".") or name.lower().endswith(".part") or not name.lower().endswith(SUFFIXES):
                continue
            path = self.inbox / name
            if entry.is_symlink():
                self._refuse_link(path, name)
                continue
            if not entry.is_file(follow_symlinks=False):
                continue
            if not self._complete(entry):
                waiting += 1
                continue
            taken = processing / name
            try:
                os.rename(path, taken)  # atomic: a writer still holding the old name cannot touch this one
            except FileNotFoundError:
                continue
            mode = os.lstat(taken).st_mode
            if not stat.S_ISREG(mode):  # swapped for a link between the scan and the rename
                self._refuse_link(taken, name)
                continue
            self._load(taken, name)
        return waiting

    def _complete(self, entry: os.DirEntry[str]) -> bool:
        st = entry.stat(follow_symlinks=False)
        sig = (st.st_size, st.st_mtime_ns)
        before = self._seen.get(entry.name)
        self._seen[entry.name] = sig
        quiet = time.time() - st.st_mtime >= self.quiet_s
        if before == sig and quiet:
            del self._seen[entry.name]
            return True
        return False

    def _refuse_link(self, path: Path, name: str) -> None:
        log.warning("symbolic link in the inbox refused", extra={"event": "inbox.symlink", "file": name})
        _file_away(
            path,
            self.inbox,
            "failed",
            name,
            {
                "filename": name,
                "error": "a symbolic link is not read (only regular files placed in the inbox are); copy the file in",
            },
        )

    def _load(self, path: Path, name: str) -> None:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._close()
            self._conn = self._connect()
        try:
            process_file(
                self._conn,
                path,
                operator=self.operator,
                timezone=self.timezone,
                pipeline=self.pipeline,
                name=name,
                inbox=self.inbox,
            )
        except _OUTAGE:
            raise
        except Exception as exc:  # not an outage: this file's fault or ours; file it away, keep watching
            log.exception("inbox file could not be loaded", extra={"event": "inbox.error", "file": name})
            self._close()
            _file_away(path, self.inbox, "failed", name, {"filename": name, "error": f"could not be loaded: {exc}"})

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # pragma: no cover - closing a broken connection
                log.debug("closing the connection failed", exc_info=True)
            self._conn = None


def watch_inbox(
    inbox: Path,
    *,
    operator: str,
    timezone: str | None = None,
    interval: float = 2.0,
    once: bool = False,
    quiet_s: float = 2.0,
) -> None:
    """Watch `inbox` for `operator` until interrupted (with `once`: until nothing is left to take)."""
    InboxWatcher(inbox, operator=operator, timezone=timezone, interval=interval, quiet_s=quiet_s).run(once=once)
