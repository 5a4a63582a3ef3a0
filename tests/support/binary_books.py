"""Hand-made binary markets for tests: frames in the data layer's shapes, built from rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from marketbot.backtest.binary_markets import BinaryMarkets

START = pd.Timestamp("2026-01-05T12:00:00Z")


@dataclass(frozen=True)
class Quote:
    """One snapshot of one token: seconds after START, then the top of book (None: empty)."""

    seconds: float
    outcome: int
    bid: float | None
    bid_size: float | None
    ask: float | None
    ask_size: float | None


def two_sided(
    seconds: float,
    up: tuple[float, float],
    down: tuple[float, float],
    size: float = 5000.0,
    *,
    up_size: float | None = None,
    down_size: float | None = None,
) -> list[Quote]:
    """Both tokens' books at one instant: (bid, ask) each, the same size on every level."""
    return [
        Quote(seconds, 0, up[0], size, up[1], size if up_size is None else up_size),
        Quote(seconds, 1, down[0], size, down[1], size if down_size is None else down_size),
    ]


def market_frames(
    markets: dict[str, Sequence[Quote]],
    *,
    payouts: dict[str, tuple[float, float] | None] | None = None,
    minutes: float = 10.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The markets and books frames of ``BinaryMarkets.from_frames``, each market Up/Down.

    Every market runs from START for ``minutes``; payouts default to Up winning (1, 0).
    """
    rows, books = [], []
    for number, (slug, quotes) in enumerate(markets.items()):
        paid = (1.0, 0.0) if payouts is None or slug not in payouts else payouts[slug]
        rows.append(
            {
                "market_id": f"id-{number}",
                "slug": slug,
                "question": f"{slug}?",
                "start": START,
                "end": START + pd.Timedelta(minutes=minutes),
                "label_0": "Up",
                "label_1": "Down",
                "payout_0": np.nan if paid is None else paid[0],
                "payout_1": np.nan if paid is None else paid[1],
                "winner": None if paid is None else ("Up" if paid[0] > paid[1] else "Down"),
            }
        )
        for quote in quotes:
            books.append(
                {
                    "market_id": f"id-{number}",
                    "slug": slug,
                    "outcome_index": np.int8(quote.outcome),
                    "timestamp": START + pd.Timedelta(seconds=quote.seconds),
                    "best_bid": np.nan if quote.bid is None else quote.bid,
                    "bid_size": np.nan if quote.bid_size is None else quote.bid_size,
                    "best_ask": np.nan if quote.ask is None else quote.ask,
                    "ask_size": np.nan if quote.ask_size is None else quote.ask_size,
                }
            )
    markets_frame = pd.DataFrame(rows)
    for column in ("start", "end"):
        markets_frame[column] = markets_frame[column].astype("datetime64[ms, UTC]")
    books_frame = pd.DataFrame(books)
    books_frame["timestamp"] = books_frame["timestamp"].astype("datetime64[ms, UTC]")
    books_frame = books_frame.sort_values(["slug", "timestamp", "outcome_index"], kind="stable")
    return markets_frame, books_frame.reset_index(drop=True)


def binary_markets(
    markets: dict[str, Sequence[Quote]],
    *,
    payouts: dict[str, tuple[float, float] | None] | None = None,
    minutes: float = 10.0,
) -> BinaryMarkets:
    """:func:`market_frames` as BinaryMarkets."""
    return BinaryMarkets.from_frames(*market_frames(markets, payouts=payouts, minutes=minutes))
