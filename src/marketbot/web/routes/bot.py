"""The bot page: status polled every 5 s, events, and operator commands as rows."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from marketbot.core.errors import ConfigError
from marketbot.store.bot_commands import BotCommandRepository
from marketbot.store.events import EventRepository
from marketbot.web.bot_view import bot_page_data, equity_points
from marketbot.web.context import Context, SignedIn, page, wants_fragment
from marketbot.web.errors import FieldError
from marketbot.web.schemas import BotCommandRequest

router = APIRouter(tags=["bot"])
pages = APIRouter(include_in_schema=False)

Limit = Annotated[int, Query(ge=1, le=200)]


@router.get("/api/bot/status")
async def bot_status_route(request: Request, context: Context) -> Any:
    """Positions, P&L, limits in use, breaker, heartbeat, orders, commands, log tail."""
    data = await run_in_threadpool(bot_page_data, context.database, context.settings)
    if wants_fragment(request):
        return context.templates.TemplateResponse(request, "fragments/bot_status.html", {"s": data})
    return data


@router.get("/api/bot/equity")
async def bot_equity(context: Context) -> Any:
    """The bot's equity after each closed trade (for the live equity chart)."""
    data = await run_in_threadpool(bot_page_data, context.database, context.settings)
    return equity_points(data)


@router.get("/api/bot/events")
def bot_events(request: Request, context: Context, limit: Limit = 50) -> Any:
    """The newest events (alerts fired, breaker trips, slippage...): ``{"items", "total"}``."""
    events = EventRepository(context.database).newest(limit)
    items = [
        {
            "id": e.id,
            "at": e.at.isoformat(),
            "kind": e.kind,
            "severity": e.severity,
            "message": e.message,
            "delivered": e.delivered,
        }
        for e in events
    ]
    if wants_fragment(request):
        return context.templates.TemplateResponse(
            request, "fragments/bot_events.html", {"events": items}
        )
    return {"items": items, "total": len(items)}


@router.post("/api/bot/commands", status_code=201)
def bot_command(request: Request, body: BotCommandRequest, context: Context, info: SignedIn) -> Any:
    """Queue a command for the bot (who, when, why); it shows pending until acknowledged."""
    if not body.confirm:
        raise FieldError("body.confirm", "confirm the command first")
    args: dict[str, Any] = {}
    if body.kind in ("force_exit", "force_entry") and body.symbol:
        args["symbol"] = body.symbol
    if body.kind == "force_exit" and body.all:
        args["all"] = True
    try:
        command = BotCommandRepository(context.database).queue(
            body.kind, by=info.username, reason=body.reason, args=args
        )
    except ConfigError as exc:
        field = "body.symbol" if "symbol" in str(exc).lower() or "--all" in str(exc) else "body"
        raise FieldError(field, str(exc)) from None
    payload = {
        "id": command.id,
        "kind": command.kind,
        "args": command.args,
        "by": command.by,
        "reason": command.reason,
        "status": command.status,
        "created_at": command.created_at.isoformat(),
    }
    if wants_fragment(request):
        return context.templates.TemplateResponse(
            request, "fragments/bot_command.html", {"c": payload}, status_code=201
        )
    return JSONResponse(payload, status_code=201)


@pages.get("/")
@pages.get("/bot")
async def bot_page(request: Request, context: Context) -> Any:
    """The bot: status (polled every 5 s), the live equity chart, commands."""
    data = await run_in_threadpool(bot_page_data, context.database, context.settings)
    return page(request, "bot.html", {"s": data})
