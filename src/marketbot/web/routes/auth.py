"""Signing in and out, the first-run setup, and the health check."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response

from marketbot.core.errors import ConfigError
from marketbot.store.web_auth import WebUserInfo
from marketbot.web.context import Context, SignedIn, WebContext, page
from marketbot.web.forms import form_fields
from marketbot.web.passwords import check_password, verify_password
from marketbot.web.security import SESSION_COOKIE

router = APIRouter()


def _client_ip(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _signed_in_response(context: WebContext, user: WebUserInfo) -> Response:
    session_id, _info = context.auth.open_session(user.id)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        httponly=True,
        samesite="strict",
        secure=context.web.tls,
        path="/",
    )
    return response


@router.get("/health", include_in_schema=False)
def health() -> dict[str, str]:
    """Liveness: exactly ``{"status": "ok"}``, nothing about the install."""
    return {"status": "ok"}


@router.get("/login", include_in_schema=False)
def login_page(request: Request) -> Any:
    """The sign-in form."""
    return page(request, "login.html", {"error": None})


def _too_many(request: Request, wait: int) -> Any:
    response = page(
        request,
        "login.html",
        {"error": f"Too many failed sign-ins: try again in {wait} s."},
        status_code=429,
    )
    response.headers["retry-after"] = str(wait)
    return response


@router.post("/login", include_in_schema=False)
async def login(request: Request, context: Context) -> Any:
    """Check the password: 303 to the bot page with a session cookie, else 401 (or 429)."""
    fields = await form_fields(request, ("username", "password"))
    username, password = fields["username"].strip(), fields["password"]
    ip = _client_ip(request)
    web = context.web

    def attempt() -> tuple[int, WebUserInfo | None]:
        wait = context.auth.locked_for(
            username, ip, limit=web.login_failure_limit, window=web.login_window
        )
        if wait:
            return wait, None
        user = context.auth.user(username)
        ok = verify_password(
            web.password_hasher, None if user is None else user.password_hash, password
        )
        if not ok or user is None:
            context.auth.record_failure(username, ip)
            return 0, None
        if web.password_hasher.check_needs_rehash(user.password_hash):
            context.auth.update_hash(user.id, web.password_hasher.hash(password))
        context.auth.forget_failures(username)
        return 0, user

    wait, user = await run_in_threadpool(attempt)
    if wait:
        return _too_many(request, wait)
    if user is None:
        return page(
            request, "login.html", {"error": "Wrong username or password."}, status_code=401
        )
    return _signed_in_response(context, user)


@router.post("/logout", include_in_schema=False)
def logout(
    request: Request,
    context: Context,
    info: SignedIn,
) -> Response:
    """Revoke this session and clear its cookie."""
    context.auth.close_session(info.id_sha256)
    response: Response
    if request.headers.get("hx-request") == "true":
        response = Response(status_code=200, headers={"hx-redirect": "/login"})
    else:
        response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def _setup_open(context: WebContext) -> bool:
    return context.auth.user_count() == 0


@router.get("/setup", include_in_schema=False)
def setup_page(request: Request, context: Context) -> Any:
    """The first-run form (the printed token, a username, a password); 404 once set up."""
    if not _setup_open(context):
        return JSONResponse({"detail": "Not Found"}, status_code=404)
    return page(request, "setup.html", {"error": None})


@router.post("/setup", include_in_schema=False)
async def setup(request: Request, context: Context) -> Any:
    """Create the admin with the one-time token ``web serve`` printed, and sign in."""
    if not _setup_open(context):
        return JSONResponse({"detail": "Not Found"}, status_code=404)
    fields = await form_fields(request, ("token", "username", "password"))
    web = context.web
    ip = _client_ip(request)
    wait = context.auth.locked_for(
        "(setup)", ip, limit=web.login_failure_limit, window=web.login_window
    )
    if wait:
        return _too_many(request, wait)
    token = web.setup_token
    valid = (
        token is not None
        and context.auth.now() < token.expires_at
        and hmac.compare_digest(fields["token"].strip().encode(), token.value.encode())
    )
    if not valid:
        context.auth.record_failure("(setup)", ip)
        return page(
            request,
            "setup.html",
            {"error": "Wrong or expired setup token: restart `marketbot web serve` for a new one."},
            status_code=403,
        )
    try:
        password = check_password(fields["password"])
        hashed = await run_in_threadpool(web.password_hasher.hash, password)
        user = context.auth.create_first_admin(fields["username"], hashed)
    except ConfigError as exc:
        return page(request, "setup.html", {"error": str(exc)}, status_code=400)
    if user is None:
        return JSONResponse({"detail": "Not Found"}, status_code=404)
    return _signed_in_response(context, user)
