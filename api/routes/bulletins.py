"""GET /v1/bulletins and GET /v1/bulletins/{id}/{file}: the stored bulletins and their Word, PDF and Excel files."""

from __future__ import annotations

from datetime import date, datetime

import psycopg
from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response
from pydantic import BaseModel

from api.deps import READER, db_read_conn
from api.errors import ApiError, responses
from api.keys import Principal

router = APIRouter(prefix="/v1", tags=["read"])


class BulletinOut(BaseModel):
    id: int
    period: str
    kind: str
    region: int
    period_start: date
    period_end: date
    as_of: datetime
    created_at: datetime
    created_by: str
    summary: dict[str, object]
    files: dict[str, str]  # kind → path of the file


class BulletinList(BaseModel):
    bulletins: list[BulletinOut]


@router.get("/bulletins", response_model=BulletinList, responses=responses(401, 403, 503), summary="Bulletins")
def get_bulletins(
    principal: Principal = Depends(READER), conn: psycopg.Connection = Depends(db_read_conn)
) -> BulletinList:
    """The generated bulletins, newest period first, each with the paths of its .docx, .pdf and .xlsx."""
    from bulletins.store import list_bulletins

    return BulletinList(
        bulletins=[
            BulletinOut(
                **{k: getattr(b, k) for k in BulletinOut.model_fields if k != "files"},
                files={k: f"/v1/bulletins/{b.id}/{k}" for k in b.files},
            )
            for b in list_bulletins(conn)
        ]
    )


@router.get(
    "/bulletins/{bulletin_id}/{file}",
    responses={**responses(401, 403, 404, 503), 200: {"content": {"application/pdf": {}}}},
    summary="A bulletin's file",
)
def get_bulletin_file(
    bulletin_id: int,
    file: str = Path(description="docx, pdf or xlsx (or the file's name)", max_length=200),
    principal: Principal = Depends(READER),
    conn: psycopg.Connection = Depends(db_read_conn),
) -> Response:
    from bulletins.store import read_file

    f = read_file(conn, bulletin_id, file)
    if f is None:
        raise ApiError(404, f"no file {file!r} in bulletin {bulletin_id}; GET /v1/bulletins lists them")
    return Response(
        f.content,
        media_type=f.content_type,
        headers={"Content-Disposition": f'attachment; filename="{f.filename}"'},
    )
