"""The web console: server-rendered pages (Jinja2, inline SVG charts, one committed stylesheet) for the
administration's boards and for operators' uploads and rejections, mounted by api.app.create_app.

Routes stay thin: they check who is signed in, call api.console.queries (metrics/, alerts/, quarantine)
and render a template. Readable without JavaScript; nothing is fetched from other hosts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from alerts.store import STATES
from api.console import auth, charts, queries, views
from api.deps import database
from api.errors import ApiError
from api.keys import Principal
from metrics.reconciliation import reconciliation
from metrics.timeutil import now, parse_as_of
from reference.catalogue import INDICATORS
from reference.regions import PROVINCE, region_name

HERE = Path(__file__).parent
STYLESHEET = HERE / "static" / "console.css"

router = APIRouter(include_in_schema=False)

templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(
    value=views.format_value,
    number=views.format_number,
    age=views.format_age,
    time=views.format_time,
    status_word=views.status_word,
    tone=views.status_tone,
    scope=views.format_scope,
    compact=charts.compact_number,
    region_name=region_name,
)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _page(request: Request, name: str, who: Principal | None, status_code: int = 200, **context: Any) -> Response:
    context |= {"who": who, "path": request.url.path, "public": auth.boards_public(request)}
    return templates.TemplateResponse(request, name, context, status_code=status_code, headers=SECURITY_HEADERS)


def _message(request: Request, who: Principal | None, status_code: int, title: str, text: str) -> Response:
    return _page(request, "message.html", who, status_code, title=title, text=text)


def _to_signin(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)


def _gate(request: Request, who: Principal | None, roles: tuple[str, ...]) -> Response | None:
    """None when `who` may see the page; otherwise the answer (sign in first, or not with this key)."""
    if who is None:
        return _to_signin(request)
    if who.role not in roles:
        what = f"an {who.role} key of {who.operator}" if who.operator else f"a {who.role} key"
        return _message(
            request,
            who,
            403,
            "Not with this key",
            f"This page needs a key with role {' or '.join(roles)}; you are signed in with {what}. "
            "Sign out and sign in with another key, or ask an administrator for one.",
        )
    return None


def _board_gate(request: Request, who: Principal | None) -> Response | None:
    return None if auth.boards_public(request) else _gate(request, who, auth.BOARD_ROLES)


def _scoped_gate(request: Request, who: Principal | None) -> Response | None:
    """Pages every key may see, an operator key scoped to its own operator (alerts, feeds)."""
    return None if auth.boards_public(request) or who is not None else _to_signin(request)


def _as_of(text: str | None) -> Any:
    return parse_as_of(text) if text else None


def _scope(who: Principal | None) -> str | None:
    """An operator key sees only its own operator's alerts, feeds and rejections."""
    return who.operator if who is not None and who.role == "operator" else None


# -- boards -------------------------------------------------------------------------------------------------


@router.get("/")
def overview_page(request: Request, as_of: str | None = Query(None, max_length=40)) -> Response:
    who = auth.signed_in(request)
    if (refused := _board_gate(request, who)) is not None:
        return refused
    try:
        at = _as_of(as_of)
    except ValueError:
        return _message(request, who, 422, "Bad date", f"as_of={as_of!r} is not a date; use YYYY-MM-DD.")
    with database(request).read_connection() as conn:
        cards = queries.overview(conn, at)
    return _page(request, "overview.html", who, cards=cards, as_of=as_of)


@router.get("/targets/{target_id}")
def target_page(request: Request, target_id: str, as_of: str | None = Query(None, max_length=40)) -> Response:
    who = auth.signed_in(request)
    if (refused := _board_gate(request, who)) is not None:
        return refused
    try:
        at = _as_of(as_of)
    except ValueError:
        return _message(request, who, 422, "Bad date", f"as_of={as_of!r} is not a date; use YYYY-MM-DD.")
    with database(request).read_connection() as conn:
        detail = queries.target_detail(conn, target_id, at)
    if detail is None:
        return _message(request, who, 404, "No such target", f"There is no target {target_id!r}; see the overview.")
    return _page(request, "target.html", who, d=detail, as_of=as_of)


@router.get("/alerts")
def alerts_page(
    request: Request,
    state: str = Query("firing", max_length=10),
    rule: str | None = Query(None, max_length=64),
    operator: str | None = Query(None, max_length=32),
    page: int = Query(1, ge=1, le=100_000),
) -> Response:
    who = auth.signed_in(request)
    if (refused := _scoped_gate(request, who)) is not None:
        return refused
    if state not in STATES:
        return _message(request, who, 422, "Bad state", f"state={state!r}: use one of {', '.join(STATES)}.")
    scope = _scope(who) or (operator or None)
    with database(request).connection() as conn:
        view = queries.alerts_view(conn, scope, state=state, rule=rule or None, page=page)
    return _page(request, "alerts.html", who, v=view)


@router.get("/feeds")
def feeds_page(request: Request) -> Response:
    who = auth.signed_in(request)
    if (refused := _scoped_gate(request, who)) is not None:
        return refused
    with database(request).read_connection() as conn:
        grid, stale = queries.feeds_view(conn, _scope(who))
    return _page(request, "feeds.html", who, grid=grid, stale=stale)


@router.get("/reconciliation")
def reconciliation_page(
    request: Request,
    indicator: str = Query("bs5g_total", max_length=64),
    region: int = Query(PROVINCE),
    period: str | None = Query(None, max_length=10),
) -> Response:
    """Reported totals beside the sums of their parts (regions below, operators), with gap and coverage."""
    who = auth.signed_in(request)
    if (refused := _board_gate(request, who)) is not None:
        return refused
    with database(request).read_connection() as conn:
        try:
            rows = reconciliation(conn, indicator, region=region, period=period, as_of=None if period else now())
        except (KeyError, ValueError) as exc:
            return _message(request, who, 422, "Cannot reconcile", str(exc.args[0]))
    return _page(
        request,
        "reconciliation.html",
        who,
        rows=rows,
        indicator=indicator,
        region=region,
        period=period or "",
        indicators=sorted(INDICATORS),
    )


@router.get("/bulletins")
def bulletins_page(request: Request) -> Response:
    """The generated monthly and quarterly bulletins, each with its Word, PDF and Excel file."""
    from bulletins.store import list_bulletins

    who = auth.signed_in(request)
    if (refused := _board_gate(request, who)) is not None:
        return refused
    with database(request).read_connection() as conn:
        items = list_bulletins(conn)
    return _page(request, "bulletins.html", who, bulletins=items)


@router.get("/bulletins/{bulletin_id}/{file}")
def bulletin_file(request: Request, bulletin_id: int, file: str) -> Response:
    from bulletins.store import read_file

    who = auth.signed_in(request)
    if (refused := _board_gate(request, who)) is not None:
        return refused
    with database(request).read_connection() as conn:
        f = read_file(conn, bulletin_id, file)
    if f is None:
        return _message(request, who, 404, "No such file", f"Bulletin {bulletin_id} has no file {file!r}.")
    headers = {**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{f.filename}"'}
    return Response(f.content, media_type=f.content_type, headers=headers)


# -- operators ----------------------------------------------------------------------------------------------


@router.get("/signin")
def signin_form(request: Request, next: str | None = Query(None, max_length=500)) -> Response:
    return _page(request, "signin.html", auth.signed_in(request), next=auth.safe_next(next, ""), error=None)


@router.post("/signin")
async def signin(request: Request) -> Response:
    form = await request.form()
    key = str(form.get("key") or "").strip()
    nxt = auth.safe_next(str(form.get("next") or ""), "")
    who = await run_in_threadpool(auth.check_key, request, key) if key else None
    if who is None:
        error = (
            "That key is unknown or revoked. Paste the whole key (iw_…) an administrator gave you."
            if key
            else "Paste your API key."
        )
        return _page(request, "signin.html", None, 401, next=nxt, error=error)
    default = "/upload" if who.role == "operator" else "/"
    response = RedirectResponse(nxt or default, status_code=303)
    auth.remember(response, request, key)
    return response


@router.api_route("/signout", methods=["GET", "POST"])
def signout(request: Request) -> Response:
    response = RedirectResponse("/signin", status_code=303)
    auth.forget(response)
    return response


@router.get("/upload")
def upload_form(request: Request) -> Response:
    who = auth.signed_in(request)
    if (refused := _gate(request, who, auth.UPLOAD_ROLES)) is not None:
        return refused
    return _page(request, "upload.html", who, report=None, error=None)


@router.post("/upload")
async def upload(request: Request) -> Response:
    """The same handling as POST /v1/uploads (streamed to disk, collectors.csvfile.load_csv with the
    key's operator), shown as a page with the row-by-row report."""
    from api.routes.uploads import post_upload

    who = await run_in_threadpool(auth.signed_in, request)
    if (refused := _gate(request, who, auth.UPLOAD_ROLES)) is not None:
        return refused
    assert who is not None
    try:
        answer = await post_upload(request, who)
    except ApiError as exc:
        return _page(request, "upload.html", who, exc.status, report=None, error=exc.message)
    report = json.loads(bytes(answer.body))
    return _page(request, "upload.html", who, report=report, error=None)


@router.get("/rejections")
def rejections_page(request: Request) -> Response:
    who = auth.signed_in(request)
    if who is None:
        return _to_signin(request)
    with database(request).connection() as conn:
        rows = queries.recent_rejections(conn, _scope(who))
    return _page(request, "rejections.html", who, rows=rows, limit=queries.MAX_REJECTIONS)


@router.get("/static/console.css")
def stylesheet() -> Response:
    return FileResponse(STYLESHEET, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})
