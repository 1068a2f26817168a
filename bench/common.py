"""Shared helpers for the benchmarks: a fresh database, the machine's description, appending to docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = ROOT / "docs" / "benchmarks.md"
BENCHMARKS_HISTORY_MD = ROOT / "docs" / "benchmarks-history.md"
DEFAULT_SERVER = os.environ.get("INFRAWATCH_BENCH_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres")


def fresh_database(name: str, server: str = DEFAULT_SERVER, migrate: bool = True) -> str:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(server)
    params["dbname"] = name
    url = make_conninfo("", **params)
    if migrate:
        from storage import upgrade

        upgrade(url)
    return url


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with psycopg.connect(DEFAULT_SERVER) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    pg = row[0] if row else "?"
    return f"{os.cpu_count()} cores ({cpu}), {platform.python_implementation()} {platform.python_version()}, PostgreSQL {pg}"


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Run a command to completion: wall seconds, user+sys CPU seconds, peak RSS (MB) of the process."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if status != 0 and os.waitstatus_to_exitcode(status) not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a running process has used so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError):
        return 0.0


def postgres_cpu_seconds() -> float:
    """CPU seconds of the PostgreSQL servers on the machine: every live server process (backends, WAL writer,
    checkpointer) plus, from each postmaster, what its exited children used (a client's backend ends with it)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, fields = stat.read_text().split(") ", 1)
        except (OSError, ValueError):
            continue
        if not name.endswith("(postgres"):
            continue
        f = fields.split()
        total += (int(f[11]) + int(f[12])) / tick
        parent = Path(f"/proc/{f[1]}/comm")
        try:
            is_postmaster = parent.read_text().strip() != "postgres"
        except OSError:
            is_postmaster = True
        if is_postmaster:  # exited backends' CPU, as the postmaster reaped them
            total += (int(f[13]) + int(f[14])) / tick
    return total


def load_average() -> str:
    """The 1/5/15-minute load averages, to judge a figure taken on the shared machine."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


def _section_kind(heading: str) -> str:
    """A section's benchmark, without the run's label: "MQTT → database, end to end (after)" → "MQTT → database,
    end to end"."""
    title = heading.removeprefix("## ").split(" — ")[0]
    return re.sub(r"\s*\(.*$", "", title).strip()


def append_section(title: str, command: str, body: str) -> None:
    """Record a run: it replaces the section of the same benchmark in docs/benchmarks.md (the current figures),
    and the section it replaces moves to the end of docs/benchmarks-history.md."""
    BENCHMARKS_MD.parent.mkdir(exist_ok=True)
    if not BENCHMARKS_MD.exists():
        BENCHMARKS_MD.write_text(
            "# Benchmarks\n\nFigures recorded by the scripts in bench/ (never by the tests). "
            "Each section says the machine, the date and the command.\n"
        )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"## {title}\n\n- date: {stamp}\n- machine: {machine()}\n- command: `{command}`\n"
        f"- load average (1/5/15 min) when recorded: {load_average()}\n\n{body.rstrip()}\n"
    )
    head, *sections = re.split(r"(?m)^(?=## )", BENCHMARKS_MD.read_text())
    kind = _section_kind(title)
    replaced = [s for s in sections if _section_kind(s.splitlines()[0]) == kind]
    kept = [s if s not in replaced else section for s in sections]
    if not replaced:
        kept.append(section)
    BENCHMARKS_MD.write_text(head + "".join(s.rstrip() + "\n\n" for s in dict.fromkeys(kept)).rstrip() + "\n")
    if replaced:
        if not BENCHMARKS_HISTORY_MD.exists():
            BENCHMARKS_HISTORY_MD.write_text("# Benchmarks: earlier runs\n")
        with BENCHMARKS_HISTORY_MD.open("a") as fh:
            for old in replaced:
                fh.write("\n" + old.rstrip() + "\n")
