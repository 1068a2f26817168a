"""Console sign-in: the API key kept in an HttpOnly, SameSite=Strict cookie and checked on every request
with the API's own key check (api.keys.authenticate), so a revoked key stops working at once."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from api.deps import database
from api.keys import Principal, authenticate
from api.ratelimit import record_failure, refuse_if_limited

COOKIE = "iw_console_key"
COOKIE_MAX_AGE_S = 12 * 3600
BOARD_ROLES = ("viewer", "admin")
UPLOAD_ROLES = ("operator", "admin")


def signed_in(request: Request) -> Principal | None:
    """The key holder behind the console cookie, or None (no cookie, unknown or revoked key)."""
    if hasattr(request.state, "console_principal"):
        found: Principal | None = request.state.console_principal
        return found
    key = request.cookies.get(COOKIE, "").strip()
    principal = None
    if key:
        principal = _authenticate(request, key)
    request.state.console_principal = principal
    if principal is not None:
        request.state.principal = principal  # named in the access log like API callers
    return principal


def check_key(request: Request, key: str) -> Principal | None:
    """A sign-in attempt: refused with 429 (Retry-After) after too many failures from the address or for
    the key's prefix, as the API refuses them (api.ratelimit)."""
    charge = refuse_if_limited(request, key)
    principal = _authenticate(request, key)
    if principal is None:
        record_failure(request, charge)
    return principal


def _authenticate(request: Request, key: str) -> Principal | None:
    with database(request).connection() as conn:
        return authenticate(conn, key, request.app.state.settings.secret_key)


def remember(response: Response, request: Request, key: str) -> None:
    response.set_cookie(
        COOKIE,
        key,
        max_age=COOKIE_MAX_AGE_S,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def forget(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")


def boards_public(request: Request) -> bool:
    """Boards (overview, targets, alerts, feeds) open without a key only when the settings say so
    (`console_public`, off unless the deployment adds it)."""
    return bool(getattr(request.app.state.settings, "console_public", False))


def safe_next(path: str | None, default: str = "/") -> str:
    """Where to go after signing in: a path on this site only (never another host)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path or "\n" in path:
        return default
    return path
