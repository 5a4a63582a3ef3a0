"""SQLAlchemy models: the seed's six tables, runs, the bot's records, books, alerts, web.

Each later migration (0002-0010) has its section; docs/store.md lists every table.

Timestamps are stored in one of two ways, chosen per table for what the rows are used for:

* Price series (``crypto_price_history``, ``polymarket_history``) store ``timestamp`` as an
  integer number of seconds since the Unix epoch, UTC. Bars are bulk numeric data that is
  loaded straight into numpy; an integer round-trips exactly on every database, makes the
  unique key exact (no text formats or time zone settings involved), and is the fastest
  thing to read.
* Records that people look at (journal entries, alerts, runs, keys) use :class:`UTCDateTime`,
  a timezone-aware ``DateTime``: PostgreSQL stores ``timestamptz``, SQLite stores UTC text,
  and both give back timezone-aware UTC datetimes.

Every constraint has a name (see ``NAMING_CONVENTION``) so that later migrations can alter it
on both SQLite (batch mode) and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION: Final = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ALERT_KINDS: Final = ("price", "strategy", "portfolio")
ALERT_OPERATORS: Final = (">", ">=", "<", "<=")

# A 64-bit id on PostgreSQL; SQLite only auto-increments a column declared INTEGER.
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utc_now() -> datetime:
    """The current time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A ``DateTime`` that always comes back timezone-aware in UTC.

    Naive datetimes given to it are taken as UTC, like everywhere else in marketbot. SQLite
    has no time zone type, so the value is converted to UTC and stored without an offset.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC before the driver sees the value."""
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Attach UTC to what the database returns."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every marketbot table; its metadata is what migrations build."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class CryptoPriceHistory(Base):
    """One OHLCV bar of a price series identified by (source, symbol, timeframe).

    ``timestamp`` is the bar's open time in whole seconds since the Unix epoch (UTC).
    """

    __tablename__ = "crypto_price_history"
    __table_args__ = (
        sa.UniqueConstraint("source", "symbol", "timeframe", "timestamp"),
        sa.Index("ix_crypto_price_history_symbol_timestamp", "symbol", "timestamp"),
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
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

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    market_id: Mapped[str] = mapped_column(sa.String(128))
    token_id: Mapped[str] = mapped_column(sa.String(128))
    outcome: Mapped[str] = mapped_column(sa.String(128))
    timestamp: Mapped[int] = mapped_column(sa.BigInteger)
    price: Mapped[float] = mapped_column(sa.Double)
    liquidity: Mapped[float | None] = mapped_column(sa.Double)


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


class Alert(Base):
    """A user alert: fires when ``metric`` of ``subject`` compares true against ``threshold``.

    Examples: price of ``bitcoin`` > 100000; confidence of strategy ``momentum`` > 0.8;
    total_value of the portfolio (no subject) > 15000.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        sa.CheckConstraint(
            "kind IN (" + ", ".join(f"'{kind}'" for kind in ALERT_KINDS) + ")", name="kind"
        ),
        sa.CheckConstraint(
            "operator IN (" + ", ".join(f"'{op}'" for op in ALERT_OPERATORS) + ")",
            name="operator",
        ),
        sa.CheckConstraint("trigger_count >= 0", name="trigger_count_positive"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(16))
    subject: Mapped[str | None] = mapped_column(sa.String(100))
    metric: Mapped[str] = mapped_column(sa.String(64))
    operator: Mapped[str] = mapped_column(sa.String(2))
    threshold: Mapped[float] = mapped_column(sa.Double)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    trigger_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_triggered: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    # Migration 0009: the threshold's unit (usd, pct, fraction, count, signal, price), the
    # cooldown between firings, whether the alert may fire (it disarms when it fires and
    # re-arms when the condition is false), the bars it is evaluated on (null: any) and the
    # value seen at its last evaluation.
    unit: Mapped[str | None] = mapped_column(sa.String(16))
    cooldown_seconds: Mapped[int] = mapped_column(sa.Integer, default=3600)
    armed: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    timeframe: Mapped[str | None] = mapped_column(sa.String(16))
    last_value: Mapped[float | None] = mapped_column(sa.Double)


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


class APIKey(Base):
    """An exchange's credentials, encrypted at rest; there is deliberately no plaintext column.

    Each ``encrypted_*`` column is a Fernet token of one credential ccxt's
    ``requiredCredentials`` can name (null when the exchange does not need it);
    ``masked_key`` is what the UI may show (``****`` and the API key's, or else the wallet
    address's, last 4 characters). The last ``keys test`` is kept beside them (migration 0008).
    """

    __tablename__ = "api_keys"
    __table_args__ = (sa.UniqueConstraint("exchange", "label"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    exchange: Mapped[str] = mapped_column(sa.String(64))
    label: Mapped[str] = mapped_column(sa.String(100), default="default")
    encrypted_key: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    encrypted_secret: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    masked_key: Mapped[str] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    encrypted_password: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    encrypted_uid: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    encrypted_private_key: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    encrypted_wallet_address: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    last_tested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_test_ok: Mapped[bool | None] = mapped_column(sa.Boolean)
    last_test_message: Mapped[str | None] = mapped_column(sa.Text)

    def __repr__(self) -> str:
        return f"APIKey({self.exchange}/{self.label}, {self.masked_key})"


class BacktestRun(Base):
    """One finished backtest, kept so that past runs can be listed and compared.

    ``params``, ``settings`` and ``metrics`` are JSON (non-finite floats as the strings
    ``"inf"``, ``"-inf"``, ``"nan"``); ``equity_curve`` and ``trades`` are compressed blobs
    that only :meth:`BacktestRunRepository.get` decodes, so listing runs stays cheap.
    """

    __tablename__ = "backtest_runs"
    __table_args__ = (
        sa.Index("ix_backtest_runs_strategy_created_at", "strategy", "created_at"),
        sa.Index("ix_backtest_runs_symbol_created_at", "symbol", "created_at"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    strategy: Mapped[str] = mapped_column(sa.String(100))
    symbol: Mapped[str] = mapped_column(sa.String(100))
    timeframe: Mapped[str] = mapped_column(sa.String(16))
    source: Mapped[str] = mapped_column(sa.String(64))
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    settings: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    recommendation: Mapped[str] = mapped_column(sa.String(16))
    trade_count: Mapped[int] = mapped_column(sa.Integer)
    equity_curve: Mapped[bytes] = mapped_column(sa.LargeBinary)
    trades: Mapped[bytes] = mapped_column(sa.LargeBinary)
    # A run on a CSV file (``backtest --data``): its file name and the sha256 of its content,
    # so that runs can be told apart by the bars they traded on; null for stored bars.
    data_file: Mapped[str | None] = mapped_column(sa.String(255))
    data_sha256: Mapped[str | None] = mapped_column(sa.String(64))


class OptimizationRun(Base):
    """One finished optimisation: what was searched, the winner, and every combination.

    ``summary`` is the optimiser's JSON summary (best parameters, metric, diagnostics);
    ``results`` is the full table as a compressed JSON blob, decoded only when one run is
    read, so listing runs stays cheap.
    """

    __tablename__ = "optimization_runs"
    __table_args__ = (
        sa.Index("ix_optimization_runs_strategy_created_at", "strategy", "created_at"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    strategy: Mapped[str] = mapped_column(sa.String(100))
    symbol: Mapped[str] = mapped_column(sa.String(100))
    method: Mapped[str] = mapped_column(sa.String(16))
    metric: Mapped[str] = mapped_column(sa.String(64))
    best_params: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    best_metric: Mapped[float | None] = mapped_column(sa.Double)
    combinations: Mapped[int] = mapped_column(sa.Integer)
    summary: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    results: Mapped[bytes] = mapped_column(sa.LargeBinary)


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


def _one_of(column: str, values: tuple[str, ...]) -> str:
    """A CHECK expression: ``column`` holds one of ``values``."""
    return f"{column} IN (" + ", ".join(f"'{value}'" for value in values) + ")"


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
        sa.CheckConstraint(_one_of("mode", BOT_MODES), name="mode"),
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
        sa.CheckConstraint(_one_of("intent", ORDER_INTENTS), name="intent"),
        sa.CheckConstraint(_one_of("side", ORDER_SIDES), name="side"),
        sa.CheckConstraint(_one_of("type", ORDER_TYPES), name="type"),
        sa.CheckConstraint(_one_of("status", ORDER_STATUSES), name="status"),
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

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
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
        sa.CheckConstraint(_one_of("direction", TRADE_DIRECTIONS), name="direction"),
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
        sa.CheckConstraint(_one_of("status", VERIFICATION_STATUSES), name="status"),
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
        sa.CheckConstraint(_one_of("kind", BOT_COMMAND_KINDS), name="kind"),
        sa.CheckConstraint(_one_of("status", BOT_COMMAND_STATUSES), name="status"),
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

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    market_id: Mapped[str] = mapped_column(sa.String(128))
    outcome_index: Mapped[int] = mapped_column(sa.SmallInteger)
    timestamp_ms: Mapped[int] = mapped_column(sa.BigInteger)
    best_bid: Mapped[float | None] = mapped_column(sa.Double)
    bid_size: Mapped[float | None] = mapped_column(sa.Double)
    best_ask: Mapped[float | None] = mapped_column(sa.Double)
    ask_size: Mapped[float | None] = mapped_column(sa.Double)


# --- Live trading: key store additions (issue 14; migration 0008) ---


class WalkForwardRun(Base):
    """One stored walk-forward validation: its out-of-sample verdict, for the live gates.

    ``params`` are the last window's (what would be traded next); ``out_of_sample_metrics``
    and ``recommendation`` come from the stitched out-of-sample run; ``summary`` is the
    result's JSON (windows, settings) without the equity curve.
    """

    __tablename__ = "walk_forward_runs"
    __table_args__ = (
        sa.Index("ix_walk_forward_runs_strategy_created_at", "strategy", "created_at"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    strategy: Mapped[str] = mapped_column(sa.String(100))
    symbol: Mapped[str] = mapped_column(sa.String(100))
    timeframe: Mapped[str] = mapped_column(sa.String(16))
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    metric: Mapped[str] = mapped_column(sa.String(64))
    windows: Mapped[int] = mapped_column(sa.Integer)
    out_of_sample_metrics: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    recommendation: Mapped[str] = mapped_column(sa.String(16))
    summary: Mapped[dict[str, Any]] = mapped_column(sa.JSON)


# --- Alerts and events (issue 14; migration 0009) ---
EVENT_SEVERITIES: Final = ("info", "warning", "emergency")


class Event(Base):
    """Something the bot or an alert wants a person to know, and whether the notice went out.

    ``kind`` says what happened (``alert_fired``, ``circuit_breaker_tripped``,
    ``slippage_high``, ``order_rejected``, ``heartbeat_stale``...); ``details`` holds its facts
    (JSON). ``alert_id`` links an alert's firing. ``delivered`` is true once every notify URL
    took the notice; ``delivery_error`` says which did not (by scheme and host only: a URL may
    hold a password).
    """

    __tablename__ = "events"
    __table_args__ = (
        sa.CheckConstraint(_one_of("severity", EVENT_SEVERITIES), name="severity"),
        sa.Index("ix_events_at", "at"),
        sa.Index("ix_events_alert_id", "alert_id"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(sa.String(64))
    severity: Mapped[str] = mapped_column(sa.String(16))
    message: Mapped[str] = mapped_column(sa.Text)
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    alert_id: Mapped[int | None] = mapped_column(sa.ForeignKey("alerts.id", ondelete="SET NULL"))
    delivered: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    delivery_error: Mapped[str | None] = mapped_column(sa.Text)


# --- Web dashboard (issue 15; migration 0010) ---
# The web dashboard's records (migration 0010): one admin, server-side sessions, the login
# attempts the rate limit counts, and the long actions the job worker runs in order.
JOB_STATUSES: Final = ("queued", "compiling", "running", "done", "failed", "cancelled")
JOB_KINDS: Final = ("backtest", "compare", "optimize", "collect", "fill_gaps")


class WebUser(Base):
    """The dashboard's admin: a username and an argon2 password hash (never the password)."""

    __tablename__ = "web_users"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(sa.String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class WebSession(Base):
    """A signed-in browser: the sha256 of its random cookie value, never the value itself."""

    __tablename__ = "web_sessions"
    __table_args__ = (sa.Index("ix_web_sessions_user_id", "user_id"),)

    id_sha256: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("web_users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebLoginAttempt(Base):
    """One failed sign-in, counted per username and per client address by the rate limit."""

    __tablename__ = "web_login_attempts"
    __table_args__ = (
        sa.Index("ix_web_login_attempts_username_at", "username", "at"),
        sa.Index("ix_web_login_attempts_ip_at", "ip", "at"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(sa.String(100))
    ip: Mapped[str] = mapped_column(sa.String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Job(Base):
    """A long action (backtest, comparison, optimisation, collection) the worker runs in order.

    ``params`` is the validated request; ``result`` what the job made (``{"run_id": 7}``);
    ``progress`` a fraction 0..1 with ``message`` saying what it is doing.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        sa.CheckConstraint(_one_of("kind", JOB_KINDS), name="kind"),
        sa.CheckConstraint(_one_of("status", JOB_STATUSES), name="status"),
        sa.CheckConstraint("progress >= 0 AND progress <= 1", name="progress_fraction"),
        sa.Index("ix_jobs_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(16), default="queued")
    progress: Mapped[float] = mapped_column(sa.Double, default=0.0)
    message: Mapped[str | None] = mapped_column(sa.Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    error: Mapped[str | None] = mapped_column(sa.Text)
    cancel_requested: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_by: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
