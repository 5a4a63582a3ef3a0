"""What every request handler needs, built once by the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates

from marketbot.config import Settings
from marketbot.core.errors import ConfigError
from marketbot.store.database import Database
from marketbot.store.jobs import JobRepository
from marketbot.store.web_auth import SessionInfo, WebAuthRepository
from marketbot.web.settings import WebSettings

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class WebContext:
    """The open database, its repositories and the templates of one running app."""

    web: WebSettings
    settings: Settings
    database: Database
    auth: WebAuthRepository
    jobs: JobRepository
    templates: Jinja2Templates

    @property
    def data_dir(self) -> Path:
        """Marketbot's data directory."""
        return self.settings.data_dir


def web_context(request: Request) -> WebContext:
    """The app's context (a FastAPI dependency)."""
    context = getattr(request.app.state, "web_context", None)
    if not isinstance(context, WebContext):
        raise ConfigError("the dashboard is not started: use it inside its lifespan")
    return context


def signed_in(request: Request) -> SessionInfo:
    """The session the security middleware found (a FastAPI dependency)."""
    info = request.scope.get("web_session")
    if not isinstance(info, SessionInfo):
        raise ConfigError("no session on a route that needs one")
    return info


def page(
    request: Request, name: str, values: dict[str, Any] | None = None, *, status_code: int = 200
) -> Any:
    """Render a page template with the session's user and CSRF token."""
    context = web_context(request)
    info = request.scope.get("web_session")
    base: dict[str, Any] = {
        "username": info.username if isinstance(info, SessionInfo) else None,
        "csrf_token": info.csrf_token if isinstance(info, SessionInfo) else "",
        "path": request.url.path,
    }
    return context.templates.TemplateResponse(
        request, name, {**base, **(values or {})}, status_code=status_code
    )


def wants_fragment(request: Request) -> bool:
    """Htmx asked (``HX-Request``): answer with an HTML fragment instead of JSON."""
    return request.headers.get("hx-request") == "true"


# Dependencies as annotations (FastAPI's recommended form).
Context = Annotated[WebContext, Depends(web_context)]
SignedIn = Annotated[SessionInfo, Depends(signed_in)]
