"""The scheduled job: after each month and quarter closes (on a configurable day of the next month),
produce its bulletin once, store it, and send it through the notification channels."""

from __future__ import annotations

import logging
from datetime import datetime

import psycopg

from bulletins.content import build_bulletin
from bulletins.delivery import deliver_bulletins, queue_deliveries
from bulletins.files import render_files
from bulletins.periods import PeriodKind, due_periods, plan_today
from bulletins.store import exists, save_bulletin
from core.settings import Settings
from storage.transactions import owns_transaction

log = logging.getLogger(__name__)


def _kinds(text: str) -> tuple[PeriodKind, ...]:
    out: list[PeriodKind] = []
    for part in text.split(","):
        k = part.strip()
        if k in ("month", "quarter", "year"):
            out.append(k)  # type: ignore[arg-type]
        elif k:
            raise ValueError(f"INFRAWATCH_BULLETIN_KINDS: {k!r} is not month, quarter or year")
    return tuple(out)


@owns_transaction
def run_due_bulletins(conn: psycopg.Connection, now: datetime, settings: Settings, *, runner: str) -> list[int]:
    """Produce the due bulletins that do not exist yet, then send pending deliveries; returns the new ids.
    The (period, region) unique key makes a second scheduler's attempt store nothing.

    Owns its transactions: each bulletin is stored with its deliveries queued in a transaction of its own
    (so one period that fails does not lose another's), and each delivery is recorded as it is sent
    (bulletins.delivery); inside a caller's transaction these are savepoints and nothing is committed."""
    region = settings.bulletin_region
    created = []
    for period in due_periods(plan_today(now), settings.bulletin_day, _kinds(settings.bulletin_kinds)):
        if exists(conn, period.label, region):
            continue
        b = build_bulletin(conn, period, region, generated_at=now)
        files = render_files(b)
        channels = [c.strip() for c in settings.bulletin_channels.split(",") if c.strip()] or None
        with conn.transaction():
            bid = save_bulletin(conn, b, files, created_by=f"scheduler:{runner}")
            if bid is None:
                continue
            queued = queue_deliveries(conn, bid, channels)
        created.append(bid)
        log.info(
            "bulletin produced",
            extra={"event": "bulletins.produced", "bulletin": bid, "period": period.label, "deliveries": queued},
        )
    deliver_bulletins(conn, now, settings.public_url)
    return created
