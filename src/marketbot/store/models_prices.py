"""Tables of price data: crypto bars, Polymarket prices, markets and order books."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from marketbot.store.models_base import Base, BigId, UTCDateTime, utc_now


class CryptoPriceHistory(Base):
    """One OHLCV bar of a price series identified by (source, symbol, timeframe).

    ``timestamp`` is the bar's open time in whole seconds since the Unix epoch (UTC).
    """

    __tablename__ = "crypto_price_history"
    __table_args__ = (
        sa.UniqueConstraint("source", "symbol", "timeframe", "timestamp"),
        sa.Index("ix_crypto_price_history_symbol_timestamp", "symbol", "timestamp"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(sa.String(64))
    symbol: Mapped[str] = mapped_column(sa.String(100))
    timeframe: Mapped[str] = mapped_column(sa.String(16))
    timestamp: Mapped[int] = mapped_column(sa.BigInteger)
    open: Mapped[float] = mapped_column(sa.Double)
    high: Mapped[float] = mapped_column(sa.Double)
    low: Mapped[float] = mapped_column(sa.Double)
    close: Mapped[float] = mapped_column(sa.Double)
    volume: Mapped[float] = mapped_column(sa.Double)


class PolymarketHistory(Base):
    """One price point of a Polymarket outcome token (price is a probability, 0 to 1).

    ``timestamp`` is in whole seconds since the Unix epoch (UTC).
    """

    __tablename__ = "polymarket_history"
    __table_args__ = (
        sa.UniqueConstraint("token_id", "timestamp"),
        sa.Index("ix_polymarket_history_market_id_timestamp", "market_id", "timestamp"),
        sa.CheckConstraint("price >= 0 AND price <= 1", name="price_probability"),
        sa.CheckConstraint("liquidity IS NULL OR liquidity >= 0", name="liquidity_positive"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    market_id: Mapped[str] = mapped_column(sa.String(128))
    token_id: Mapped[str] = mapped_column(sa.String(128))
    outcome: Mapped[str] = mapped_column(sa.String(128))
    timestamp: Mapped[int] = mapped_column(sa.BigInteger)
    price: Mapped[float] = mapped_column(sa.Double)
    liquidity: Mapped[float | None] = mapped_column(sa.Double)


class PolymarketMarket(Base):
    """A Polymarket market as Gamma last described it, and how far its history is collected.

    ``outcomes``, ``token_ids`` and ``outcome_prices`` are parallel JSON lists in Gamma's
    order (``outcomes[i]`` is traded as CLOB token ``token_ids[i]``); a market has a handful
    of outcomes, so a list column is simpler than a child table and still queryable.
    ``liquidity``, ``volume`` and ``outcome_prices`` are a snapshot taken at ``updated_at``,
    not history. ``collected_until`` is the end of the last time range whose price history
    was fetched for every token; ``fidelity_minutes`` is the resolution it was fetched at.
    """

    __tablename__ = "polymarket_markets"
    __table_args__ = (
        sa.UniqueConstraint("market_id"),
        sa.Index("ix_polymarket_markets_slug", "slug"),
        sa.CheckConstraint("volume IS NULL OR volume >= 0", name="volume_positive"),
        sa.CheckConstraint("liquidity IS NULL OR liquidity >= 0", name="liquidity_positive"),
        sa.CheckConstraint(
            "fidelity_minutes IS NULL OR fidelity_minutes >= 1", name="fidelity_minutes_positive"
        ),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    market_id: Mapped[str] = mapped_column(sa.String(128))
    condition_id: Mapped[str] = mapped_column(sa.String(128))
    slug: Mapped[str] = mapped_column(sa.String(255))
    question: Mapped[str] = mapped_column(sa.Text)
    event_slug: Mapped[str | None] = mapped_column(sa.String(255))
    outcomes: Mapped[list[str]] = mapped_column(sa.JSON)
    token_ids: Mapped[list[str]] = mapped_column(sa.JSON)
    outcome_prices: Mapped[list[float]] = mapped_column(sa.JSON)
    volume: Mapped[float | None] = mapped_column(sa.Double)
    liquidity: Mapped[float | None] = mapped_column(sa.Double)
    start_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    closed_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution_status: Mapped[str | None] = mapped_column(sa.String(64))
    winning_outcome: Mapped[str | None] = mapped_column(sa.String(128))
    fidelity_minutes: Mapped[int | None] = mapped_column(sa.Integer)
    collected_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)


# --- Polymarket order books (issue 13; migration 0007) ---


class PolymarketBook(Base):
    """The top of one outcome token's order book at one moment (a snapshot).

    ``outcome_index`` is the outcome's position in the market's ``outcomes`` (0 or 1: books
    are stored for binary markets only); ``timestamp_ms`` is milliseconds since the Unix epoch,
    UTC, an integer for the same reasons as the price series' seconds. A side with no order
    has NULL price and size. Crossed (bid above ask) and locked (bid equal to ask) books are
    stored as recorded: whether a quote is usable is the backtest's decision, not the store's.
    """

    __tablename__ = "polymarket_books"
    __table_args__ = (
        sa.UniqueConstraint("market_id", "outcome_index", "timestamp_ms"),
        sa.CheckConstraint("outcome_index IN (0, 1)", name="outcome_index_binary"),
        sa.CheckConstraint(
            "best_bid IS NULL OR (best_bid >= 0 AND best_bid <= 1)", name="best_bid_probability"
        ),
        sa.CheckConstraint(
            "best_ask IS NULL OR (best_ask >= 0 AND best_ask <= 1)", name="best_ask_probability"
        ),
        sa.CheckConstraint("bid_size IS NULL OR bid_size >= 0", name="bid_size_positive"),
        sa.CheckConstraint("ask_size IS NULL OR ask_size >= 0", name="ask_size_positive"),
        # A side is a price and a size, or empty: never one without the other.
        sa.CheckConstraint("(best_bid IS NULL) = (bid_size IS NULL)", name="bid_side_whole"),
        sa.CheckConstraint("(best_ask IS NULL) = (ask_size IS NULL)", name="ask_side_whole"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    market_id: Mapped[str] = mapped_column(sa.String(128))
    outcome_index: Mapped[int] = mapped_column(sa.SmallInteger)
    timestamp_ms: Mapped[int] = mapped_column(sa.BigInteger)
    best_bid: Mapped[float | None] = mapped_column(sa.Double)
    bid_size: Mapped[float | None] = mapped_column(sa.Double)
    best_ask: Mapped[float | None] = mapped_column(sa.Double)
    ask_size: Mapped[float | None] = mapped_column(sa.Double)
