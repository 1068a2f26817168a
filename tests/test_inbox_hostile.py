"""The inbox watcher against faults and careless or hostile drops: a database outage (a real TCP cut
between watcher and PostgreSQL), an operator column naming another operator, a symbolic link out of the
folder, a file still being written, the `.part` convention and an interrupted load."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from collectors.inbox import watch_inbox
from tests.mqtt_support import ROOT, wait_for

HEADER = "ts,region,metric,value\n"


class TcpCut:
    """A TCP relay to PostgreSQL that can be cut (every connection dropped, new ones refused) and restored."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.up()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            socks, self._socks = self._socks, []
            listener, self._listener = self._listener, None
        for s in [*socks, *([listener] if listener else [])]:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            with self._lock:
                self._socks += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def _count(db_url: str, sql: str = "SELECT count(*) FROM observation") -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def _watcher(inbox: Path, db_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "INFRAWATCH_DATABASE_URL": db_url, "INFRAWATCH_LOG_LEVEL": "INFO"}
    with open(log, "ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "infrawatch", "watch-inbox", str(inbox), "--operator", "cmcc", "--interval", "0.2"],
            cwd=ROOT,
            env=env,
            stdout=fh,
            stderr=fh,
        )


def _done(inbox: Path, name: str) -> bool:
    return (inbox / "done").is_dir() and any(p.name.endswith(f"-{name}") for p in (inbox / "done").iterdir())


def test_the_watcher_survives_a_database_outage_and_loads_what_arrived_meanwhile(db_url, tmp_path):
    params = conninfo_to_dict(db_url)
    cut = TcpCut(str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432))
    proxied = make_conninfo(db_url, host="127.0.0.1", port=str(cut.port))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    proc = _watcher(inbox, proxied, tmp_path / "watcher.log")
    try:
        (inbox / "before.csv").write_text(HEADER + "2023-06,360100,bs5g_total,10\n")
        wait_for(lambda: _done(inbox, "before.csv"), 30, "first file not loaded")
        cut.down()  # the database is gone for the watcher
        (inbox / "during.csv").write_text(HEADER + "2023-06,360200,bs5g_total,11\n")
        time.sleep(4)  # it found the file, failed to load it, and is retrying
        assert proc.poll() is None, (tmp_path / "watcher.log").read_text()
        cut.up()
        wait_for(lambda: _done(inbox, "during.csv"), 40, "file dropped during the outage not loaded")
        assert _count(db_url) == 2
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait(10)
        cut.down()


def test_a_file_still_being_written_is_taken_only_once_complete(db_url, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    log = tmp_path / "watcher.log"
    proc = _watcher(inbox, db_url, log)
    try:
        wait_for(lambda: "inbox.start" in log.read_text(), 30, "watcher did not start")
        time.sleep(0.5)  # scanning every 0.2 s
        path = inbox / "growing.csv"
        with open(path, "w") as fh:
            fh.write(HEADER + "".join(f"2023-06,36{i:02d}00,bs5g_total,{i}\n" for i in range(1, 6)))
            fh.flush()
            time.sleep(1.2)  # a slow copy: several scans see the first half
            fh.write("".join(f"2023-06,36{i:02d}00,bs5g_total,{i}\n" for i in range(6, 12)))
        wait_for(lambda: _done(inbox, "growing.csv"), 30, "file not loaded")
        assert _count(db_url) == 11  # the 11 cities 360100 … 361100: the rows written after the pause too
    finally:
        proc.kill()
        proc.wait(10)


def test_the_operator_is_the_watchers_and_a_row_naming_another_is_rejected(db_url, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "mixed.csv").write_text(
        "ts,region,metric,value,operator\n2023-06,360100,bs5g_total,10,cmcc\n2023-06,360200,bs5g_total,11,ctcc\n"
        "2023-06,360300,bs5g_total,12,\n"
    )
    watch_inbox(inbox, operator="cmcc", once=True)
    assert _count(db_url, "SELECT count(*) FROM observation WHERE operator = 'cmcc'") == 2
    assert _count(db_url, "SELECT count(*) FROM observation WHERE operator <> 'cmcc'") == 0
    assert _count(db_url, "SELECT count(*) FROM quarantine WHERE reason LIKE '%ctcc%'") == 1


def test_a_symbolic_link_out_of_the_folder_is_not_followed(db_url, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    outside = tmp_path / "secret.csv"
    outside.write_text(HEADER + "2023-06,360100,bs5g_total,10\nroot:x:0:0,2,3,4\n")
    (inbox / "link.csv").symlink_to(outside)
    watch_inbox(inbox, operator="cmcc", once=True)
    assert _count(db_url) == 0
    assert _count(db_url, "SELECT count(*) FROM quarantine") == 0
    assert outside.read_text().startswith(HEADER)  # the target is untouched
    assert not (inbox / "link.csv").exists()
    failed = inbox / "failed"
    assert any(p.name.endswith("link.csv") and p.is_symlink() for p in failed.iterdir())
    reports = [p.read_text() for p in failed.iterdir() if p.name.endswith(".report.json")]
    assert any("symbolic link" in r for r in reports)


def test_part_files_wait_for_their_rename_and_an_interrupted_load_resumes(db_url, tmp_path):
    from collectors.inbox import InboxWatcher

    inbox = tmp_path / "inbox"
    (inbox / ".processing").mkdir(parents=True)
    # a load interrupted by a crash left its file in .processing/
    (inbox / ".processing" / "interrupted.csv").write_text(HEADER + "2023-06,360100,bs5g_total,10\n")
    (inbox / "coming.csv.part").write_text(HEADER + "2023-06,360200,bs5g_total,11\n")
    watcher = InboxWatcher(inbox, operator="cmcc", quiet_s=0.0)
    watcher.scan_once()
    assert _count(db_url) == 1 and _done(inbox, "interrupted.csv")
    assert (inbox / "coming.csv.part").exists()
    (inbox / "coming.csv.part").rename(inbox / "coming.csv")
    watcher.scan_once()  # seen once: its size is noted
    watcher.scan_once()  # unchanged: taken
    assert _count(db_url) == 2 and _done(inbox, "coming.csv")
    assert not list((inbox / ".processing").iterdir())


def test_an_inbox_without_an_operator_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--operator"):
        watch_inbox(tmp_path, operator="", once=True)
