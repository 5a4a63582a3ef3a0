"""SQLAlchemy models: the seed's six tables plus backtest runs.

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
    """An exchange API key, encrypted at rest; there is deliberately no plaintext column.

    ``encrypted_key`` and ``encrypted_secret`` are Fernet tokens; ``masked_key`` is what the
    UI may show (e.g. ``abcd...wxyz``).
    """

    __tablename__ = "api_keys"
    __table_args__ = (sa.UniqueConstraint("exchange", "label"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    exchange: Mapped[str] = mapped_column(sa.String(64))
    label: Mapped[str] = mapped_column(sa.String(100), default="default")
    encrypted_key: Mapped[bytes] = mapped_column(sa.LargeBinary)
    encrypted_secret: Mapped[bytes] = mapped_column(sa.LargeBinary)
    masked_key: Mapped[str] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


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
