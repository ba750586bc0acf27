"""Sign-in and sign-out over HTTP: only an HTTP answer can set an HttpOnly cookie.

The login page posts a plain form here; the answer sets the cookie and sends
the browser back to the console. Form posts are accepted only from the
console's own origins (a cross-site form cannot sign anyone in or out).
"""

from __future__ import annotations

import os
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse
from reflex.config import get_config
from sqlmodel import Session

from active_sessions import auth
from active_sessions.db import get_engine

router = APIRouter(prefix="/auth", include_in_schema=False)
MAX_FORM_FIELD = 1000


def _allowed_origins() -> set[str]:
    config = get_config()
    origins = {origin.rstrip("/") for origin in config.cors_allowed_origins if origin != "*"}
    if config.deploy_url:
        origins.add(config.deploy_url.rstrip("/"))
    return origins


def _origin(request: Request) -> str | None:
    """The console's origin the form came from, or None for anyone else."""
    origin = (request.headers.get("origin") or "").rstrip("/")
    own = f"{request.url.scheme}://{request.url.netloc}"
    if origin and (origin in _allowed_origins() or origin == own):
        return origin
    return None


def _next_path(raw: object) -> str:
    # Only a path on the console: never another site (open redirect).
    if isinstance(raw, str) and raw.startswith("/") and not raw.startswith("//") and "\\" not in raw:
        return raw[:MAX_FORM_FIELD]
    return "/"


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.post("/login")
async def login(request: Request):
    origin = _origin(request)
    if origin is None:
        return JSONResponse({"error": "sign in from the console's own page"}, status_code=403)
    form = await request.form()
    email = str(form.get("email") or "")[:MAX_FORM_FIELD]
    password = str(form.get("password") or "")[:MAX_FORM_FIELD]
    next_path = _next_path(form.get("next"))
    with Session(get_engine(), expire_on_commit=False) as db:
        token = auth.sign_in(db, email=email, password=password, address=_address(request))
        db.commit()
    if token is None:
        query = urlencode({"error": "1", "next": next_path})
        return RedirectResponse(f"{origin}/login?{query}", status_code=303)
    response = RedirectResponse(f"{origin}{next_path}", status_code=303)
    response.set_cookie(
        auth.COOKIE_NAME,
        token,
        httponly=True,
        samesite="lax",
        # Behind a TLS-terminating proxy the request looks like http: trust the configured address.
        secure=request.url.scheme == "https"
        or os.environ.get("ACTIVE_SESSIONS_URL", "").startswith("https://"),
        path="/",
    )
    return response


@router.post("/logout")
async def logout(request: Request):
    origin = _origin(request)
    if origin is None:
        return JSONResponse({"error": "sign out from the console's own page"}, status_code=403)
    token = request.cookies.get(auth.COOKIE_NAME)
    with Session(get_engine(), expire_on_commit=False) as db:
        auth.sign_out(db, token, address=_address(request))
        db.commit()
    response = RedirectResponse(f"{origin}/login?signed_out=1", status_code=303)
    response.delete_cookie(auth.COOKIE_NAME, path="/", httponly=True, samesite="lax")
    return response
