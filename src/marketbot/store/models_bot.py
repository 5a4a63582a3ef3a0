"""Tables of the bot's records, with the exit settings and the trade journal people keep.

The bot's records are its runs, orders and their events, trades, verifications, risk events
and commands (migration 0005).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from marketbot.store.models_base import Base, BigId, UTCDateTime, one_of, utc_now


class TradeJournal(Base):
    """Notes on one trade: why it was entered (before) and what it taught (after)."""

    __tablename__ = "trade_journal"
    __table_args__ = (
        sa.CheckConstraint("confidence BETWEEN 1 AND 10", name="confidence_1_to_10"),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name="rating_1_to_5"),
        sa.Index("ix_trade_journal_symbol_created_at", "symbol", "created_at"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    trade_ref: Mapped[str | None] = mapped_column(sa.String(128), index=True)
    symbol: Mapped[str] = mapped_column(sa.String(100))
    strategy: Mapped[str | None] = mapped_column(sa.String(100))
    entry_reason: Mapped[str | None] = mapped_column(sa.Text)
    confidence: Mapped[int | None] = mapped_column(sa.Integer)
    exit_reason: Mapped[str | None] = mapped_column(sa.Text)
    lessons: Mapped[str | None] = mapped_column(sa.Text)
    rating: Mapped[int | None] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)


class PositionConfig(Base):
    """Exit parameters for one position or symbol; a null field means "use the default".

    The fractions are of the entry price (``stop_loss=0.05`` exits 5 % below entry).
    """

    __tablename__ = "position_configs"
    __table_args__ = (
        sa.CheckConstraint("stop_loss > 0 AND stop_loss < 1", name="stop_loss_fraction"),
        sa.CheckConstraint("take_profit > 0", name="take_profit_positive"),
        sa.CheckConstraint(
            "trailing_stop > 0 AND trailing_stop < 1", name="trailing_stop_fraction"
        ),
        sa.CheckConstraint("trailing_activation >= 0", name="trailing_activation_positive"),
        sa.CheckConstraint("max_hold_seconds > 0", name="max_hold_seconds_positive"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    position_key: Mapped[str] = mapped_column(sa.String(128), unique=True)
    stop_loss: Mapped[float | None] = mapped_column(sa.Double)
    take_profit: Mapped[float | None] = mapped_column(sa.Double)
    trailing_stop: Mapped[float | None] = mapped_column(sa.Double)
    trailing_activation: Mapped[float | None] = mapped_column(sa.Double)
    max_hold_seconds: Mapped[int | None] = mapped_column(sa.Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)


# The bot's records (migration 0005). Allowed values are CHECK constraints built from these
# tuples, so the database itself refuses a misspelt intent, status or command.
BOT_MODES: Final = ("paper", "live")
ORDER_INTENTS: Final = ("entry", "exit", "protect", "force_entry", "force_exit")
ORDER_SIDES: Final = ("buy", "sell")
ORDER_TYPES: Final = ("market", "limit", "stop")
# ``intent``: committed, not sent yet; the rest are ccxt's unified statuses (``closed`` is
# fully filled; a partial fill is ``open`` with ``filled`` above 0), as the execution layer's.
ORDER_STATUSES: Final = ("intent", "open", "closed", "canceled", "expired", "rejected")
TRADE_DIRECTIONS: Final = ("long", "short")
VERIFICATION_STATUSES: Final = ("verified", "partial_fill", "slippage_high", "failed")
BOT_COMMAND_KINDS: Final = (
    "pause",
    "resume",
    "reset_breaker",
    "override",
    "force_exit",
    "force_entry",
    "stop",
    "reload",
    "halt",
)
BOT_COMMAND_STATUSES: Final = ("pending", "acknowledged", "rejected")


class BotRun(Base):
    """One run of the bot (paper or live) on one strategy and symbol.

    ``run_id`` is a random hex token, unique per run, that prefixes the run's client order
    ids (so an exchange order can be traced back to the run that sent it). ``config`` is the
    resolved configuration the run started with and ``config_hash`` the sha256 of its
    canonical JSON, so that two runs can be told apart by configuration. ``start`` is when the
    run started, ``end`` when it stopped (null while it runs); ``archived_at`` is set when the
    run is no longer the current one. ``last_bar_time`` is the open time of the last closed
    bar the run has acted on; ``progress`` what the loop resumes from after it (the risk
    book's marks and breaker, the open trade), written in the same transaction.
    """

    __tablename__ = "bot_runs"
    __table_args__ = (
        sa.UniqueConstraint("run_id"),
        sa.CheckConstraint(one_of("mode", BOT_MODES), name="mode"),
        sa.Index("ix_bot_runs_archived_at_created_at", "archived_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(sa.String(32))
    strategy: Mapped[str] = mapped_column(sa.String(100))
    symbol: Mapped[str] = mapped_column(sa.String(100))
    timeframe: Mapped[str] = mapped_column(sa.String(16))
    source: Mapped[str] = mapped_column(sa.String(64))
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    config: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    config_hash: Mapped[str] = mapped_column(sa.String(64))
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mode: Mapped[str] = mapped_column(sa.String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_bar_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What a restart resumes from besides the orders: the risk book and the open trade.
    progress: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)


class BotOrder(Base):
    """One order of a bot run, from the intent (committed before sending) to its end.

    ``amount`` is in units of the asset; a market entry sized in the quote currency gives
    ``cost`` (the quote amount) instead, so at least one of them is set. ``price`` is a limit
    price, ``stop_price`` a stop's trigger. ``filled`` (asset units), ``average_price`` and
    ``fee`` (quote currency) follow the exchange's reports. ``bar_time`` is the open time of
    the bar whose close decided the order (null for an operator's order decided between
    bars); ``attempt`` counts re-placements of the same decision (0 for the first order).
    ``sent_at`` stays null until the order was sent: a null there after a crash means "maybe
    never sent", which the bot settles by asking the exchange for ``client_order_id``.
    """

    __tablename__ = "orders"
    __table_args__ = (
        sa.UniqueConstraint("client_order_id"),
        sa.CheckConstraint(one_of("intent", ORDER_INTENTS), name="intent"),
        sa.CheckConstraint(one_of("side", ORDER_SIDES), name="side"),
        sa.CheckConstraint(one_of("type", ORDER_TYPES), name="type"),
        sa.CheckConstraint(one_of("status", ORDER_STATUSES), name="status"),
        sa.CheckConstraint("amount IS NOT NULL OR cost IS NOT NULL", name="amount_or_cost"),
        sa.CheckConstraint("amount IS NULL OR amount > 0", name="amount_positive"),
        sa.CheckConstraint("cost IS NULL OR cost > 0", name="cost_positive"),
        sa.CheckConstraint("price IS NULL OR price > 0", name="price_positive"),
        sa.CheckConstraint("stop_price IS NULL OR stop_price > 0", name="stop_price_positive"),
        sa.CheckConstraint("filled >= 0", name="filled_positive"),
        sa.CheckConstraint("fee >= 0", name="fee_positive"),
        sa.CheckConstraint("attempt >= 0", name="attempt_positive"),
        sa.Index("ix_orders_bot_run_id_status", "bot_run_id", "status"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    client_order_id: Mapped[str] = mapped_column(sa.String(64))
    bot_run_id: Mapped[int] = mapped_column(sa.ForeignKey("bot_runs.id"))
    strategy: Mapped[str] = mapped_column(sa.String(100))
    symbol: Mapped[str] = mapped_column(sa.String(100))
    intent: Mapped[str] = mapped_column(sa.String(16))
    side: Mapped[str] = mapped_column(sa.String(4))
    type: Mapped[str] = mapped_column(sa.String(16))
    amount: Mapped[float | None] = mapped_column(sa.Double)
    cost: Mapped[float | None] = mapped_column(sa.Double)
    price: Mapped[float | None] = mapped_column(sa.Double)
    stop_price: Mapped[float | None] = mapped_column(sa.Double)
    status: Mapped[str] = mapped_column(sa.String(16), default="intent")
    filled: Mapped[float] = mapped_column(sa.Double, default=0.0)
    average_price: Mapped[float | None] = mapped_column(sa.Double)
    fee: Mapped[float] = mapped_column(sa.Double, default=0.0)
    bar_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempt: Mapped[int] = mapped_column(sa.Integer, default=0)
    exchange_order_id: Mapped[str | None] = mapped_column(sa.String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BotOrderEvent(Base):
    """Something that happened to an order: submitted, accepted, a fill, a cancel...

    Keyed by ``client_order_id``; ``order_id`` links the order's row when there is one (an
    order the risk gate denied before its intent was stored has none).
    """

    __tablename__ = "order_events"
    __table_args__ = (
        sa.Index("ix_order_events_client_order_id_at", "client_order_id", "at"),
        sa.Index("ix_order_events_order_id", "order_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    client_order_id: Mapped[str] = mapped_column(sa.String(64))
    order_id: Mapped[int | None] = mapped_column(sa.ForeignKey("orders.id"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON)


class BotTrade(Base):
    """One closed round trip of a bot run: entry and exit, with its result.

    ``size`` is in units of the asset, ``pnl`` and ``fees`` in the quote currency,
    ``pnl_pct`` in percent (12.5 means 12.5 %), as in a backtest's trades.
    """

    __tablename__ = "trades"
    __table_args__ = (
        sa.CheckConstraint(one_of("direction", TRADE_DIRECTIONS), name="direction"),
        sa.CheckConstraint("size > 0", name="size_positive"),
        sa.CheckConstraint("fees >= 0", name="fees_positive"),
        sa.Index("ix_trades_bot_run_id_exit_time", "bot_run_id", "exit_time"),
        sa.Index("ix_trades_symbol_exit_time", "symbol", "exit_time"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    bot_run_id: Mapped[int] = mapped_column(sa.ForeignKey("bot_runs.id"))
    strategy: Mapped[str] = mapped_column(sa.String(100))
    symbol: Mapped[str] = mapped_column(sa.String(100))
    direction: Mapped[str] = mapped_column(sa.String(5))
    size: Mapped[float] = mapped_column(sa.Double)
    entry_time: Mapped[datetime] = mapped_column(UTCDateTime)
    entry_price: Mapped[float] = mapped_column(sa.Double)
    exit_time: Mapped[datetime] = mapped_column(UTCDateTime)
    exit_price: Mapped[float] = mapped_column(sa.Double)
    pnl: Mapped[float] = mapped_column(sa.Double)
    pnl_pct: Mapped[float] = mapped_column(sa.Double)
    fees: Mapped[float] = mapped_column(sa.Double)
    exit_reason: Mapped[str] = mapped_column(sa.String(32))
    entry_tag: Mapped[str | None] = mapped_column(sa.String(100))
    entry_client_order_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("orders.client_order_id")
    )
    exit_client_order_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("orders.client_order_id")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class BotVerification(Base):
    """The trade verifier's verdict on one order: did it fill as expected?

    ``slippage`` is a fraction of ``expected_price`` (0.01 is 1 %), positive when the fill was
    worse than expected; ``discrepancies`` lists what did not match (the verifier's
    ``{"status", "message"}`` objects). Statuses are the verifier's, gravest last.
    """

    __tablename__ = "verifications"
    __table_args__ = (
        sa.CheckConstraint(one_of("status", VERIFICATION_STATUSES), name="status"),
        sa.Index("ix_verifications_client_order_id", "client_order_id"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    client_order_id: Mapped[str] = mapped_column(sa.ForeignKey("orders.client_order_id"))
    status: Mapped[str] = mapped_column(sa.String(16))
    expected_price: Mapped[float | None] = mapped_column(sa.Double)
    fill_price: Mapped[float | None] = mapped_column(sa.Double)
    slippage: Mapped[float | None] = mapped_column(sa.Double)
    discrepancies: Mapped[list[Any]] = mapped_column(sa.JSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class BotRiskEvent(Base):
    """A risk event: a breaker trip or reset, an override, a denial worth keeping.

    ``who`` and ``why`` are set for what a person did (an override, a manual reset).
    """

    __tablename__ = "risk_events"
    __table_args__ = (sa.Index("ix_risk_events_at", "at"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    bot_run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("bot_runs.id"))
    kind: Mapped[str] = mapped_column(sa.String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    who: Mapped[str | None] = mapped_column(sa.String(100))
    why: Mapped[str | None] = mapped_column(sa.Text)
    message: Mapped[str] = mapped_column(sa.Text)
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON)


class BotCommand(Base):
    """An operator's command to the bot, queued here and acknowledged by the bot's loop.

    ``args`` holds the command's arguments (``{"symbol": "BTC/USDT"}``, ``{"all": true}``);
    ``by`` is who asked and ``reason`` why. The bot takes pending commands in id order at its
    next iteration (or at its start) and marks each ``acknowledged`` or ``rejected``, with
    what it did or why not in ``result``.
    """

    __tablename__ = "bot_commands"
    __table_args__ = (
        sa.CheckConstraint(one_of("kind", BOT_COMMAND_KINDS), name="kind"),
        sa.CheckConstraint(one_of("status", BOT_COMMAND_STATUSES), name="status"),
        sa.Index("ix_bot_commands_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    args: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    by: Mapped[str] = mapped_column(sa.String(100))
    reason: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[str | None] = mapped_column(sa.Text)
