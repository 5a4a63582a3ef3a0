"""The trade journal: entries with search and filters, linked trades, save and delete."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, BeforeValidator, Field

from marketbot.core.errors import DataError
from marketbot.store.web_journal import JournalEntry, JournalFilter, JournalRepository
from marketbot.web.context import Context, WebContext, page, wants_fragment
from marketbot.web.errors import FieldError, NotFoundError
from marketbot.web.journal_links import TradeLinks
from marketbot.web.schemas import JournalSaveRequest, blank_is_none

router = APIRouter(tags=["trade_journal"])
pages = APIRouter(include_in_schema=False)

EntryId = Annotated[int, Path(ge=1, le=2**62)]
Text = Annotated[str | None, Field(max_length=200)]
# The search form sends an empty field for "any": blank means not given.
Rating = Annotated[Annotated[int, Field(ge=1, le=5)] | None, BeforeValidator(blank_is_none)]
Day = Annotated[date | None, BeforeValidator(blank_is_none)]
Limit = Annotated[int, Field(ge=1, le=200)]
Offset = Annotated[int, Field(ge=0, le=2**31)]


def _rows(context: WebContext, entries: list[JournalEntry]) -> list[dict[str, Any]]:
    links = TradeLinks(context.database)
    return [{**entry.to_json(), "trade": links.resolve(entry.trade_ref)} for entry in entries]


def _blank(value: str | None) -> str | None:
    return value if value and value.strip() else None


class JournalQuery(BaseModel):
    """The journal list's search text, filters and page."""

    q: Text = None
    strategy: Text = None
    symbol: Text = None
    rating: Rating = None
    start: Day = None
    end: Day = None
    limit: Limit = 50
    offset: Offset = 0


@router.get("/api/trade_journal/list")
def list_entries(
    request: Request, context: Context, query: Annotated[JournalQuery, Query()]
) -> Any:
    """Entries, newest first, matching a search and filters: ``{"items", "total"}``."""
    where = JournalFilter(
        _blank(query.q), _blank(query.strategy), _blank(query.symbol), query.rating,
        query.start, query.end,
    )  # fmt: skip
    entries, total = JournalRepository(context.database).list_entries(
        where, limit=query.limit, offset=query.offset
    )
    rows = _rows(context, entries)
    if wants_fragment(request):
        return context.templates.TemplateResponse(
            request, "fragments/journal_rows.html", {"entries": rows, "total": total}
        )
    return {"items": rows, "total": total}


@router.post("/api/trade_journal/save")
def save_entry(request: Request, body: JournalSaveRequest, context: Context) -> Any:
    """Create or update an entry; a ``trade_ref`` must name a trade that exists."""
    if body.trade_ref is not None and TradeLinks(context.database).resolve(body.trade_ref) is None:
        raise FieldError("body.trade_ref", "no such trade: use trade:ID or run:RUN_ID:N")
    repository = JournalRepository(context.database)
    try:
        entry = repository.save(body.id, body.model_dump(exclude={"id"}))
    except DataError as exc:
        if body.id is not None and "no journal entry" in str(exc):
            raise NotFoundError(str(exc)) from None
        raise
    if wants_fragment(request):
        entries, total = repository.list_entries(JournalFilter())
        return context.templates.TemplateResponse(
            request,
            "fragments/journal_saved.html",
            {"entries": _rows(context, entries), "total": total, "saved": entry, "entry": None},
        )
    return entry.to_json()


@router.post("/api/trade_journal/{entry_id}/delete")
def delete_entry(request: Request, entry_id: EntryId, context: Context) -> Any:
    """Delete an entry."""
    if not JournalRepository(context.database).delete(entry_id):
        raise NotFoundError(f"no journal entry with id {entry_id}")
    if wants_fragment(request):
        return HTMLResponse("")
    return {"deleted": entry_id}


@pages.get("/trade_journal/{entry_id}/edit")
def edit_form(request: Request, entry_id: EntryId, context: Context) -> Any:
    """The entry form filled with one entry (an htmx fragment)."""
    try:
        entry = JournalRepository(context.database).get(entry_id)
    except DataError as exc:
        raise NotFoundError(str(exc)) from None
    return context.templates.TemplateResponse(
        request, "fragments/journal_form.html", {"entry": entry.to_json()}
    )


@pages.get("/trade_journal")
def journal_page(
    request: Request,
    context: Context,
    trade_ref: Annotated[str | None, Query(max_length=128)] = None,
) -> Any:
    """The journal: the entry form (prefilled from ``?trade_ref=``), search and the list."""
    entries, total = JournalRepository(context.database).list_entries(JournalFilter())
    draft: dict[str, Any] | None = None
    if trade_ref:
        trade = TradeLinks(context.database).resolve(trade_ref)
        if trade is not None:
            draft = {
                "trade_ref": trade_ref,
                "symbol": trade.get("symbol"),
                "strategy": trade.get("strategy"),
                "entry_reason": trade.get("entry_tag") or trade.get("tag"),
            }
    return page(
        request,
        "journal.html",
        {"entries": _rows(context, entries), "total": total, "entry": draft},
    )
