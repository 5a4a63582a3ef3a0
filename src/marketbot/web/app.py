"""``create_app``: the dashboard's FastAPI app, its lifespan and its routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from marketbot.store.database import Database
from marketbot.store.jobs import JobRepository
from marketbot.store.web_auth import WebAuthRepository
from marketbot.web.context import TEMPLATES_DIR, WebContext
from marketbot.web.errors import install_error_handlers
from marketbot.web.filters import install_filters
from marketbot.web.security import SecurityMiddleware
from marketbot.web.settings import WebSettings

STATIC_DIR = Path(__file__).resolve().parent / "static"
VENDOR_DIR = Path(__file__).resolve().parent.parent / "assets" / "vendor"


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    templates.env.autoescape = True
    install_filters(templates.env)
    return templates


def _context(app: FastAPI) -> WebContext:
    context = getattr(app.state, "web_context", None)
    if not isinstance(context, WebContext):
        raise RuntimeError("the dashboard's lifespan has not started")
    return context


def create_app(settings: WebSettings | None = None) -> FastAPI:
    """The dashboard app; nothing is opened until its lifespan starts.

    The lifespan migrates and opens the database and, unless ``run_worker`` is off, starts
    the job worker process (which first fails the jobs an earlier worker left running).
    """
    web = settings if settings is not None else WebSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        marketbot_settings = web.marketbot_settings()
        database = Database.from_settings(marketbot_settings)
        database.migrate()
        app.state.web_context = WebContext(
            web=web,
            settings=marketbot_settings,
            database=database,
            auth=WebAuthRepository(database, clock=web.clock),
            jobs=JobRepository(database, clock=web.clock),
            templates=_templates(),
        )
        worker = None
        if web.run_worker:
            from marketbot.web.worker import start_worker_process

            worker = start_worker_process(marketbot_settings)
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            database.dispose()

    app = FastAPI(
        title="marketbot",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(
        SecurityMiddleware,
        auth=lambda: _context(app).auth,
        idle=web.session_idle,
        tls=web.tls,
    )
    app.mount("/static/vendor", StaticFiles(directory=str(VENDOR_DIR)), name="vendor")
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    _include_routes(app)
    _add_openapi(app)
    return app


def _include_routes(app: FastAPI) -> None:
    from marketbot.web.routes import ROUTERS

    for router in ROUTERS:
        app.include_router(router)


def _add_openapi(app: FastAPI) -> None:
    cached: dict[str, Any] = {}

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> dict[str, Any]:
        if not cached:
            spec = get_openapi(title="marketbot", version="1", routes=app.routes)
            spec["paths"] = {
                path: item
                for path, item in spec.get("paths", {}).items()
                if path.startswith("/api/")
            }
            cached.update(spec)
        return cached
