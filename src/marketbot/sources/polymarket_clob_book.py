"""The top of a Polymarket outcome token's order book, from the CLOB's ``GET /book``.

The CLOB answers ``GET /book?token_id=ID`` with the token's book::

    {"market": "0x...", "asset_id": "ID", "timestamp": "1767614400000", "hash": "...",
     "bids": [{"price": "0.48", "size": "1200"}, ...],
     "asks": [{"price": "0.52", "size": "800"}, ...],
     "min_order_size": "5", "tick_size": "0.01", "neg_risk": false}

Prices and sizes are decimal strings. The levels' order is not relied on (the CLOB lists
bids from the lowest and asks from the highest): the best bid is the highest bid price, the
best ask the lowest ask price, each with its size. An empty side is None, as in
``polymarket_books``. Requests go through ``net/`` (rate limiter, retries) at priority 5.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from marketbot.net import ApiError, HttpClient

BOOK_PRIORITY: Final = 5
"""The limiter priority of a book poll: normal (1 is an emergency, 10 low)."""


@dataclass(frozen=True, slots=True)
class TopOfBook:
    """The best level of each side of one token's book (None: the side is empty)."""

    token_id: str
    best_bid: float | None
    bid_size: float | None
    best_ask: float | None
    ask_size: float | None


def parse_book(payload: Any, token_id: str, *, where: str) -> TopOfBook:
    """The top of the book in a ``GET /book`` answer.

    Raises:
        ApiError: not a book, a level without a price or size, a price outside [0, 1] or a
            negative size (naming ``where``, the side and the value).
    """
    if not isinstance(payload, Mapping):
        raise ApiError(f"{where}: expected a JSON object, got {type(payload).__name__}")
    best: dict[str, tuple[float, float] | None] = {}
    for side, pick in (("bids", max), ("asks", min)):
        levels = payload.get(side, [])
        if not isinstance(levels, list):
            raise ApiError(f"{where}: {side} is not a list")
        parsed = [_level(level, side, where) for level in levels]
        best[side] = pick(parsed, key=lambda level: level[0]) if parsed else None
    bid, ask = best["bids"], best["asks"]
    return TopOfBook(
        token_id=token_id,
        best_bid=None if bid is None else bid[0],
        bid_size=None if bid is None else bid[1],
        best_ask=None if ask is None else ask[0],
        ask_size=None if ask is None else ask[1],
    )


def fetch_top_of_book(clob: HttpClient, token_id: str) -> TopOfBook:
    """``GET /book?token_id=ID`` at priority 5, as its top of book.

    Raises:
        ApiError: a 4xx answer (an unknown token) or a malformed book.
        ServerUnavailableError: 5xx, timeouts or connection errors after the retries.
    """
    payload = clob.get_json("book", {"token_id": token_id}, priority=BOOK_PRIORITY)
    return parse_book(payload, token_id, where=f"{clob.service} GET /book?token_id={token_id}")


def _level(level: Any, side: str, where: str) -> tuple[float, float]:
    if not isinstance(level, Mapping):
        raise ApiError(f"{where}: a level of {side} is not an object: {level!r}")
    price, size = _number(level.get("price")), _number(level.get("size"))
    if price is None or not 0.0 <= price <= 1.0:
        raise ApiError(f"{where}: {side} price {level.get('price')!r} is outside [0, 1]")
    if size is None or size < 0.0:
        raise ApiError(f"{where}: {side} size {level.get('size')!r} is not a size >= 0")
    return price, size


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
