"""A watchdog that ends a parent's services when the parent dies, however it dies (SIGKILL included).

The parent starts `python -m core.watchdog [PGDATA]` with a pipe on its standard input and writes the
process-group id of each child it spawns, one a line. When the parent ends, the pipe closes: the watchdog
then sends SIGTERM to every group it was told about (SIGKILL to those still there after a grace period) and
stops the embedded PostgreSQL under PGDATA (a daemon no signal of the parent reaches). A parent that stops
its services itself leaves the watchdog nothing to do. Children also get PR_SET_PDEATHSIG (`die_with_parent`)
so they hear of the parent's death at once, even before the watchdog acts.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """For `preexec_fn`: ask Linux to send `sig` to this process when its parent dies (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except OSError:
        pass


class Watchdog:
    """The parent's side: start the watchdog and tell it about each child."""

    def __init__(self, pgdata: Path | None = None) -> None:
        args = [sys.executable, "-m", "core.watchdog"] + ([str(pgdata)] if pgdata else [])
        # its own session: a Ctrl-C or a kill of the parent's group does not end it before it has cleaned up
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def watch(self, pgid: int) -> None:
        """End this process group when the parent dies."""
        self._line(str(pgid))

    def watch_pgdata(self, pgdata: Path) -> None:
        """Stop the embedded PostgreSQL under pgdata when the parent dies."""
        self._line(f"pgdata {pgdata}")

    def _line(self, text: str) -> None:
        stdin = self.proc.stdin
        if stdin is None or self.proc.poll() is not None:
            return
        try:
            stdin.write(f"{text}\n".encode())
            stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def close(self) -> None:
        """The parent has stopped everything itself: let the watchdog go (it finds nothing left)."""
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pgid, sig)


def run(stream: IO[bytes], pgdata: Path | None, grace_s: float = 10.0) -> None:
    """Read groups until the parent is gone, then end them and the embedded PostgreSQL."""
    groups: list[int] = []
    for raw in iter(stream.readline, b""):
        line = raw.decode().strip()
        if line.startswith("pgdata "):
            pgdata = Path(line.removeprefix("pgdata "))
        elif line.isdigit():
            groups.append(int(line))
    live = [g for g in groups if _alive(g)]
    for g in live:
        _signal_group(g, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while live and time.monotonic() < deadline:
        time.sleep(0.2)
        live = [g for g in live if _alive(g)]
    for g in live:
        _signal_group(g, signal.SIGKILL)
    if pgdata is not None and (pgdata / "postmaster.pid").exists():
        from core.embedded import stop_embedded_postgres

        stop_embedded_postgres(pgdata, timeout=30)


if __name__ == "__main__":  # pragma: no cover - run as the watchdog process
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    run(sys.stdin.buffer, Path(sys.argv[1]) if len(sys.argv) > 1 else None)
