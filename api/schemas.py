"""Request and response shapes of the HTTP API (docs/interface.md §7), and the parsing of query values."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field

from api.errors import ApiError
from core.planzone import plan_tz, plan_tz_name
from ingest.report import BatchReport
from reference.catalogue import INDICATORS, METRICS
from reference.regions import REGIONS, unknown_region_message

PLAN_TZ = plan_tz()  # INFRAWATCH_TIMEZONE
Interval = Literal["1h", "1d", "1mo"]
_BUCKET = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "1mo": timedelta(days=28)}
MAX_SERIES_POINTS = 20_000
TARGET_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
OPERATOR_PATTERN = r"^[a-z][a-z0-9_]{1,31}$"


# -- observations --------------------------------------------------------------------------------


class ObservationsIn(BaseModel):
    """A batch of observations (docs/interface.md §4). Each item is checked on its own: a bad item is rejected
    with its index, the others are stored."""

    observations: list[Any] = Field(
        description="Objects with ts (RFC 3339 with offset), region, metric, value and optional entity; "
        "an admin key may also name `operator` per item.",
        examples=[[{"ts": "2023-06-30T00:00:00+08:00", "region": "360100", "metric": "bs5g_total", "value": 12345}]],
    )


class RejectedItem(BaseModel):
    index: int | None
    field: str
    error: str


class ObservationsReport(BaseModel):
    batch_id: int | None
    received: int
    accepted: int
    duplicates: int
    revised: int
    rejected: list[RejectedItem]

    @classmethod
    def of(cls, report: BatchReport) -> ObservationsReport:
        return cls(
            batch_id=report.batch_id,
            received=report.received,
            accepted=report.accepted,
            duplicates=report.duplicates,
            revised=report.revised,
            rejected=[RejectedItem(index=r.index, field=r.field, error=r.reason) for r in report.rejections],
        )


# -- uploads -------------------------------------------------------------------------------------


class UploadError(BaseModel):
    line: int | None
    column: str
    error: str


class UploadReportOut(BaseModel):
    id: str
    filename: str
    rows: int
    accepted: int
    duplicates: int
    revised: int
    rejected: int
    errors: list[UploadError]
    errors_not_listed: int = 0
    format: str = ""
    encoding: str = ""
    ignored_columns: list[str] = []
    same_as: str | None = None
    operator: str | None = None


UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "the CSV (docs/interface.md §6)"},
                        "timezone": {
                            "type": "string",
                            "description": "IANA time zone for naive timestamps and dates (default Asia/Shanghai)",
                        },
                        "operator": {
                            "type": "string",
                            "description": "admin keys: operator for rows without an operator column",
                        },
                    },
                }
            }
        },
    }
}


# -- catalogue -----------------------------------------------------------------------------------


class IndicatorOut(BaseModel):
    id: str
    unit: str
    description: str
    pushed: bool = Field(description="a metric operators push (else derived from pushed metrics)")
    kind: str | None = Field(description="gauge, delta or counter for pushed metrics")
    derivation: str
    inputs: list[str]
    cadence_s: int | None = None


class Catalogue(BaseModel):
    indicators: list[IndicatorOut]


def catalogue() -> Catalogue:
    """The metric catalogue and derived indicators, as the API shows them."""
    out = []
    for ind in INDICATORS.values():
        metric = METRICS.get(ind.id)
        out.append(
            IndicatorOut(
                id=ind.id,
                unit=ind.unit,
                description=ind.description,
                pushed=metric is not None,
                kind=str(metric.kind) if metric else None,
                derivation=ind.derivation,
                inputs=list(ind.inputs),
                cadence_s=metric.cadence_s if metric else None,
            )
        )
    return Catalogue(indicators=out)


# -- series --------------------------------------------------------------------------------------


class PointOut(BaseModel):
    ts: datetime
    value: float | None


class SeriesOut(BaseModel):
    indicator: str
    unit: str
    region: int
    operator: str | None
    interval: Interval
    start: datetime
    end: datetime
    points: list[PointOut]


def known_indicator(indicator: str) -> str:
    if indicator not in INDICATORS:
        raise ApiError(422, f"unknown indicator {indicator!r}; GET /v1/indicators lists the known ones")
    return indicator


def known_region(region: int) -> int:
    if region not in REGIONS:
        raise ApiError(422, unknown_region_message(str(region)))
    return region


def aware(value: datetime | None, name: str) -> datetime | None:
    """Query times without an offset are read in the plan's time zone (Asia/Shanghai)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=PLAN_TZ)
    return value


def series_window(
    start: datetime | None, end: datetime | None, interval: Interval, now: datetime
) -> tuple[datetime, datetime]:
    """The [start, end] a series covers: end defaults to now, start to a sensible span before end."""
    end_ = aware(end, "end") or now
    default_span = {"1h": timedelta(days=2), "1d": timedelta(days=90), "1mo": timedelta(days=730)}[interval]
    start_ = aware(start, "start") or end_ - default_span
    if start_ >= end_:
        raise ApiError(422, f"start ({start_.isoformat()}) must be before end ({end_.isoformat()})")
    if (end_ - start_) / _BUCKET[interval] > MAX_SERIES_POINTS:
        raise ApiError(
            422,
            f"that range holds more than {MAX_SERIES_POINTS} points at interval {interval}; "
            "narrow start/end or use a coarser interval",
        )
    return start_, end_


def parse_timezone(value: str | None) -> str:
    if not value:
        return plan_tz_name()
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ApiError(422, f"unknown time zone {value!r}; use an IANA name such as Asia/Shanghai") from None
    return value


# -- alerts, health --------------------------------------------------------------------------------


class Readiness(BaseModel):
    ready: bool
    database: str
    broker: str
    #: "not configured", "ok (replay lag 0.4 s)" or "unreachable: …" for INFRAWATCH_DATABASE_READ_URL
    read_replica: str = "not configured"
