"""The dashboard's routers, in the order the app includes them."""

from __future__ import annotations

from fastapi import APIRouter

from marketbot.web.routes import (
    alerts,
    auth,
    backtests,
    bot,
    comparison,
    data,
    jobs,
    journal,
    keys,
    optimizations,
    pages,
)

ROUTERS: list[APIRouter] = [
    auth.router,
    pages.router,
    jobs.router,
    backtests.router,
    backtests.pages,
    bot.router,
    bot.pages,
    data.router,
    data.pages,
    comparison.router,
    comparison.pages,
    journal.router,
    journal.pages,
    optimizations.router,
    optimizations.pages,
    keys.router,
    keys.pages,
    alerts.router,
    alerts.pages,
]
