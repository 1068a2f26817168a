"""POST /v1/uploads (a CSV streamed to disk, then loaded by collectors.csvfile) and GET /v1/uploads/{id}."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.deps import ANY_KEY, WRITER, Database, database, db_conn
from api.errors import ApiError, responses
from api.keys import Principal
from api.multipart import ReceivedUpload, receive_upload
from api.schemas import OPERATOR_PATTERN, UPLOAD_BODY, UploadReportOut, parse_timezone
from api.store import get_upload_report
from api.telemetry import UPLOAD_BYTES, record_ingest, upload_batch
from collectors.csvfile import InputTooLarge, UnusableInput, load_csv

router = APIRouter(prefix="/v1", tags=["ingest"])


def _load(db: Database, upload: ReceivedUpload, operator: str | None, trusted: bool, timezone: str) -> dict[str, Any]:
    try:
        with db.connection() as conn:
            report = load_csv(
                conn,
                upload.path,
                operator=operator,
                operator_column_trusted=trusted,
                timezone=timezone,
                filename=upload.filename,
                source=f"http-upload:{upload.filename}",
            )
    except InputTooLarge as exc:  # a header or field past its limit, which the message names
        raise ApiError(413, f"{exc}") from None
    except UnusableInput as exc:
        # the loader reads a temporary file: name the user's file instead
        raise ApiError(422, str(exc).replace(upload.path.name, upload.filename or "the file")) from None
    except UnicodeDecodeError:  # the loader does not wrap this one when it hits the header line
        raise ApiError(422, f"{upload.filename} is neither UTF-8 nor GB18030 text; save it as UTF-8 CSV") from None
    finally:
        upload.discard()
    return report.as_dict()


def _upload_operator(principal: Principal, named: str | None) -> str | None:
    """Operator keys upload as their operator; admin keys may name a default for rows without one."""
    if principal.role == "admin":
        if named and not re.match(OPERATOR_PATTERN, named):
            raise ApiError(422, f"operator {named!r} is not an operator id (lower-case letters, digits, _)")
        return named or None
    if named and named != principal.operator:
        raise ApiError(403, f"an operator key of {principal.operator} uploads only its own data; leave out operator")
    return principal.operator


@router.post(
    "/uploads",
    status_code=201,
    response_model=UploadReportOut,
    responses=responses(400, 401, 403, 413, 422, 503),
    openapi_extra=UPLOAD_BODY,
    summary="Upload a CSV file",
)
async def post_upload(request: Request, principal: Principal = Depends(WRITER)) -> JSONResponse:
    """Load a CSV (long or wide, UTF-8 or GB18030; docs/interface.md §6) through the ingest pipeline. The file is
    streamed to disk (at most 200 MB). Rows whose `operator` column names another operator are rejected
    for operator keys; admin keys trust the column (or the `operator` field as a default).
    Answers 201 with the upload report, which GET /v1/uploads/{id} returns again."""
    settings = request.app.state.settings
    upload = await receive_upload(
        request, Path(settings.data_dir) / "uploads", request.app.state.limits.max_upload_bytes
    )
    try:
        timezone = parse_timezone(upload.fields.get("timezone"))
        operator = _upload_operator(principal, upload.fields.get("operator"))
    except ApiError:
        upload.discard()
        raise
    UPLOAD_BYTES.inc(upload.size)
    started = time.perf_counter()
    report = await run_in_threadpool(_load, database(request), upload, operator, principal.role == "admin", timezone)
    record_ingest(upload_batch(report), started)
    body = UploadReportOut.model_validate(report).model_dump(mode="json")
    return JSONResponse(body, status_code=201, headers={"Location": f"/v1/uploads/{report['id']}"})


@router.get(
    "/uploads/{upload_id}",
    response_model=UploadReportOut,
    responses=responses(401, 404, 422, 503),
    summary="An upload's report",
)
def get_upload(
    upload_id: uuid.UUID, principal: Principal = Depends(ANY_KEY), conn: psycopg.Connection = Depends(db_conn)
) -> UploadReportOut:
    """The report of an earlier upload. Operator keys see only their own operator's uploads (404 for others)."""
    found = get_upload_report(conn, upload_id)
    if found is None or (principal.role == "operator" and found[0] != principal.operator):
        raise ApiError(404, f"no upload {upload_id} visible to this key; check the id returned by POST /v1/uploads")
    return UploadReportOut.model_validate(found[1])
