"""The web dashboard: a FastAPI app with server-side sessions, CSRF and a job worker.

``create_app(settings)`` builds the app without any I/O; its lifespan opens the database and
starts the job worker. ``marketbot web serve`` runs it under uvicorn (docs/dashboard.md).
"""

from __future__ import annotations

from marketbot.web.app import create_app
from marketbot.web.settings import WebSettings

__all__ = ["WebSettings", "create_app"]
