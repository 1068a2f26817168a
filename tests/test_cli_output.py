"""What the command line prints for a person and for a pipe: no stray warnings, whole ids in piped tables,
flags without `<bool>` in --help."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg

from metrics import load_targets


def _piped(*args: str, db_url: str | None = None) -> subprocess.CompletedProcess[str]:
    """The real command with its output piped, in an environment like a container's (no XDG_RUNTIME_DIR,
    no COLUMNS)."""
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "COLUMNS")}
    if db_url:
        env["INFRAWATCH_DATABASE_URL"] = db_url
    return subprocess.run(
        [sys.executable, "-m", "infrawatch", *args], capture_output=True, text=True, env=env, timeout=180, check=False
    )


def test_piped_status_shows_whole_target_ids_and_no_warning(db_url: str, conn: psycopg.Connection) -> None:
    load_targets(conn)
    conn.commit()
    result = _piped("status", db_url=db_url)
    assert result.returncode == 0, result.stderr
    for target_id in ("jx-2023-iot-over-pop", "gz-2025-5g-efficiency", "jx-2022-gigabit-cities"):
        assert target_id in result.stdout
    assert "…" not in result.stdout.split("\n", 2)[2]  # nothing cut short below the header
    assert "Warning" not in result.stderr, result.stderr


def test_help_names_types_plainly_and_flags_without_a_type() -> None:
    result = _piped("load-csv", "--help")
    assert result.returncode == 0, result.stderr
    assert "<bool>" not in result.stdout and "<str>" not in result.stdout, result.stdout
    flag = next(line for line in result.stdout.splitlines() if "--json" in line)
    assert "Print the reports as JSON" in flag and "TEXT" not in flag
    option = next(line for line in result.stdout.splitlines() if "--timezone" in line)
    assert "TEXT" in option
    assert "RuntimeDirWarning" not in result.stderr
