"""Error responses: one shape, no submitted value, never a traceback.

A validation error is 422 ``{"detail": [{"field": "body.exchange", "message": "..."}]}``
(never pydantic's ``input`` or ``ctx``); a marketbot error 400 in the same shape; a missing
record 404; anything unexpected a logged 500 ``{"detail": "internal error"}``.
"""

from __future__ import annotations

import logging
from html import escape
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response

from marketbot.core.errors import MarketbotError

_LOG = logging.getLogger(__name__)


class NotFoundError(MarketbotError):
    """The id in the path names nothing stored (404)."""


class FieldError(MarketbotError):
    """A request field is acceptable in form but wrong in substance (400 naming the field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _field(location: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in location)


def validation_details(errors: list[dict[str, Any]] | Any) -> list[dict[str, str]]:
    """Pydantic's errors as ``{"field", "message"}`` pairs, nothing of the input kept."""
    return [
        {"field": _field(error.get("loc", ())), "message": str(error.get("msg", "invalid"))}
        for error in errors
    ]


def _answer(request: Request, detail: Any, status_code: int) -> Response:
    """JSON, or for htmx an HTML fragment the page shows where the result would go."""
    if request.headers.get("hx-request") != "true":
        return JSONResponse({"detail": detail}, status_code=status_code)
    items = detail if isinstance(detail, list) else [{"field": "", "message": str(detail)}]
    lines = "".join(
        f"<li>{escape(str(item.get('field', '')).removeprefix('body.'))}"
        f"{': ' if item.get('field') else ''}{escape(str(item.get('message', '')))}</li>"
        for item in items
    )
    return HTMLResponse(
        f'<div class="error form-error" role="alert"><ul>{lines}</ul></div>',
        status_code=status_code,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error its documented shape."""

    async def on_validation(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, RequestValidationError):
            raise exc
        return _answer(request, validation_details(exc.errors()), 422)

    async def on_field(request: Request, exc: Exception) -> Response:
        field = exc.field if isinstance(exc, FieldError) else "body"
        return _answer(request, [{"field": field, "message": str(exc)}], 400)

    async def on_not_found(request: Request, exc: Exception) -> Response:
        return _answer(request, str(exc), 404)

    async def on_marketbot(request: Request, exc: Exception) -> Response:
        return _answer(request, [{"field": "body", "message": str(exc)}], 400)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The path and the error's type only: a request body may hold a secret.
        _LOG.error("internal error on %s %s: %s", request.method, request.url.path, type(exc))
        return JSONResponse({"detail": "internal error"}, status_code=500)

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(FieldError, on_field)
    app.add_exception_handler(NotFoundError, on_not_found)
    app.add_exception_handler(MarketbotError, on_marketbot)
    app.add_exception_handler(Exception, on_unexpected)
