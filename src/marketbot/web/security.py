"""Authentication, CSRF and security headers as one ASGI middleware, before any body is read.

Public: ``/login``, ``/setup``, ``/health`` and ``/static/*``. Anything else needs a live
session cookie: signed out, ``/api/*`` (and ``/openapi.json``) get 401, pages a 303 to
``/login``. A request that may change something (any method but GET, HEAD, OPTIONS) needs the
session's CSRF token in ``X-CSRF-Token``, else 403 before the route runs. ``/login`` and
``/setup`` have no session yet, so they refuse a cross-site ``Origin`` instead.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import timedelta
from http.cookies import SimpleCookie
from typing import Any, Final

from fastapi.concurrency import run_in_threadpool
from fastapi.datastructures import Headers

from marketbot.store.web_auth import WebAuthRepository

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SESSION_COOKIE: Final = "mb_session"
CSRF_HEADER: Final = "x-csrf-token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_PATHS: Final = frozenset({"/login", "/setup", "/health"})
# A session's last use is written at most this often: reading pages should not write each time.
TOUCH_AFTER: Final = timedelta(minutes=1)

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; object-src 'none'"
)
SECURITY_HEADERS: Final = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
HSTS: Final = "max-age=31536000"


def is_public(path: str) -> bool:
    """Whether a path is served without a session."""
    return path in PUBLIC_PATHS or path.startswith("/static/")


def session_cookie(headers: Headers) -> str | None:
    """The ``mb_session`` cookie's value, or None."""
    raw = headers.get("cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:
        return None
    morsel = jar.get(SESSION_COOKIE)
    return None if morsel is None or not morsel.value else morsel.value


def cross_site(headers: Headers, scope: Scope) -> bool:
    """The request comes from another site's page.

    Browsers say so in ``Sec-Fetch-Site``; under ``Referrer-Policy: no-referrer`` a form's
    ``Origin`` is ``null``, so the Origin decides only when that header is missing. A client
    that sends neither (curl, scripts) is not a page of another site.
    """
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is None:
        return False
    scheme = "https" if scope.get("scheme") == "https" else "http"
    return origin != f"{scheme}://{headers.get('host', '')}"


class SecurityMiddleware:
    """The dashboard's gate: sessions, CSRF, headers (see the module docstring).

    Args:
        app: The app behind the gate.
        auth: Looked up once the app's lifespan opened the database.
        idle: A session unused this long is refused and deleted.
        tls: Add HSTS to every response.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        auth: Callable[[], WebAuthRepository],
        idle: timedelta,
        tls: bool,
    ) -> None:
        self._app = app
        self._auth = auth
        self._idle = idle
        self._tls = tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Let a request through, or answer 401/303/403 without reading its body."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        path: str = scope["path"]
        send = self._with_headers(send, static=path.startswith("/static/"))
        headers = Headers(scope=scope)
        method: str = scope["method"]
        if is_public(path):
            if method not in SAFE_METHODS and cross_site(headers, scope):
                await _json(send, 403, {"detail": "cross-site request refused"})
                return
            await self._app(scope, receive, send)
            return
        cookie = session_cookie(headers)
        info = None
        if cookie is not None:
            auth = self._auth()
            info = await run_in_threadpool(
                auth.live_session, cookie, idle=self._idle, touch_after=TOUCH_AFTER
            )
        if info is None:
            if headers.get("hx-request") == "true":
                # htmx (a poll or a form after the session expired): send the page to /login.
                await _json(send, 401, {"detail": "sign in first"}, redirect="/login")
            elif path.startswith("/api/") or path == "/openapi.json" or method not in SAFE_METHODS:
                await _json(send, 401, {"detail": "sign in first"})
            else:
                await _redirect(send, "/login")
            return
        if method not in SAFE_METHODS:
            token = headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(token.encode(), info.csrf_token.encode()):
                await _json(send, 403, {"detail": "missing or wrong CSRF token"})
                return
        scope["web_session"] = info
        await self._app(scope, receive, send)

    def _with_headers(self, send: Send, *, static: bool) -> Send:
        tls = self._tls

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                added = dict(SECURITY_HEADERS)
                if not static:
                    added["cache-control"] = "no-store"
                if tls:
                    added["strict-transport-security"] = HSTS
                kept = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.decode("latin-1").lower() not in added
                ]
                message["headers"] = kept + [
                    (name.encode("latin-1"), value.encode("latin-1"))
                    for name, value in added.items()
                ]
            await send(message)

        return send_with_headers


async def _json(
    send: Send, status: int, body: dict[str, Any], *, redirect: str | None = None
) -> None:
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if redirect is not None:
        headers.append((b"hx-redirect", redirect.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _redirect(send: Send, location: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [(b"location", location.encode()), (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})
