"""The bot's durable records: runs, orders and their events, trades, verdicts, commands.

The database is the bot's truth: every write here is one transaction (all of it is stored or
none of it), committed before the bot writes its state file or talks to the exchange about
it. An order's intent row is committed before the order is sent, so a crash between the two
leaves a row with ``sent_at`` null that the restarted bot settles by asking the exchange
for its client order id.

Four repositories, each over one :class:`Database`: :class:`BotRunRepository` (the current
run) and :class:`BotRecordRepository` (trades, verifications, risk events) here,
:class:`OrderRepository` (intents, sends, exchange events; ``store.bot_orders``) and
:class:`BotCommandRepository` (operator commands; ``store.bot_commands``), re-exported here.
A value the store cannot keep (a misspelt intent, a non-finite price, a duplicate client
order id) is a ``DataError`` naming it, and nothing of the write is stored. See
docs/recovery.md and docs/bot_commands.md.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Final, Protocol

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketbot.core.clock import as_utc
from marketbot.core.errors import ConfigError, DataError
from marketbot.store._bot_common import (
    Clock,
    info_from_row,
    json_object,
    number,
    one_of,
    refused,
    run_row,
    text,
)
from marketbot.store._codec import to_json_value
from marketbot.store.bot_commands import BotCommandInfo, BotCommandRepository, check_command
from marketbot.store.bot_orders import (
    CLIENT_ORDER_ID_MAX_LENGTH,
    FINAL_ORDER_STATUSES,
    OrderEventInfo,
    OrderInfo,
    OrderIntent,
    OrderRepository,
    OrderUpdate,
)
from marketbot.store.database import Database
from marketbot.store.models import (
    BOT_MODES,
    TRADE_DIRECTIONS,
    VERIFICATION_STATUSES,
    BotRiskEvent,
    BotRun,
    BotTrade,
    BotVerification,
    utc_now,
)

__all__ = [
    "CLIENT_ORDER_ID_MAX_LENGTH",
    "FINAL_ORDER_STATUSES",
    "BotCommandInfo",
    "BotCommandRepository",
    "BotRecordRepository",
    "BotRunInfo",
    "BotRunRepository",
    "BotRunSpec",
    "OrderEventInfo",
    "OrderInfo",
    "OrderIntent",
    "OrderRepository",
    "OrderUpdate",
    "RiskEventLike",
    "TradeRecord",
    "VerificationRecord",
    "check_command",
    "config_hash",
    "new_run_id",
]

RUN_ID_BYTES: Final = 8  # 16 hex digits


@dataclass(frozen=True, slots=True)
class BotRunSpec:
    """What a new bot run trades and how it is configured.

    Attributes:
        strategy: Strategy name.
        symbol: The asset traded (``bitcoin``, ``BTC/USDT``).
        timeframe: Bar length label (``1h``).
        source: Where the bars come from (``binance``, ``coingecko``).
        mode: ``paper`` or ``live``.
        params: Strategy parameters (JSON-compatible values).
        config: The run's resolved configuration (costs, risk limits, exits...), hashed into
            ``config_hash`` so that runs can be told apart by configuration.
        start: When the run starts (UTC); None means now.
        end: When it ends, for a run over a fixed period (a replay); None while it runs.
    """

    strategy: str
    symbol: str
    timeframe: str
    source: str
    mode: str
    params: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class BotRunInfo:
    """A stored bot run; ``id`` is the database's, ``run_id`` the random client-id prefix."""

    id: int
    run_id: str
    strategy: str
    symbol: str
    timeframe: str
    source: str
    mode: str
    params: dict[str, Any]
    config: dict[str, Any]
    config_hash: str
    start: datetime
    end: datetime | None
    created_at: datetime
    archived_at: datetime | None
    last_bar_time: datetime | None
    progress: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """A closed round trip; units as in a backtest's trades (``pnl_pct`` in percent)."""

    bot_run_id: int
    strategy: str
    symbol: str
    direction: str
    size: float
    entry_time: datetime
    entry_price: float
    exit_time: datetime
    exit_price: float
    pnl: float
    pnl_pct: float
    fees: float
    exit_reason: str
    entry_tag: str | None = None
    entry_client_order_id: str | None = None
    exit_client_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class VerificationRecord:
    """The trade verifier's verdict on one order (``slippage`` a fraction, + is worse)."""

    client_order_id: str
    status: str
    at: datetime
    expected_price: float | None = None
    fill_price: float | None = None
    slippage: float | None = None
    discrepancies: Sequence[Any] = ()


class RiskEventLike(Protocol):
    """What :meth:`BotRecordRepository.record_risk_event` reads from a risk event.

    A structural type, so the store need not import the rules layer above it;
    ``marketbot.risk.circuit_breaker.RiskEvent`` has this shape.
    """

    @property
    def kind(self) -> str:
        """``circuit_breaker_tripped``, ``override``..."""

    @property
    def at(self) -> datetime:
        """When it happened."""

    @property
    def message(self) -> str:
        """What happened, for people."""

    @property
    def details(self) -> Mapping[str, Any]:
        """Machine-readable facts; ``who`` and ``why`` are stored in their own columns."""


def new_run_id() -> str:
    """A random run id: 16 hex digits, the prefix of the run's client order ids."""
    return secrets.token_hex(RUN_ID_BYTES)


def config_hash(config: Mapping[str, Any]) -> str:
    """The sha256 hex of the configuration's canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(
        to_json_value(config, where="config"), sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class BotRunRepository:
    """Bot runs: start one, find the current ones (not archived), archive one.

    A bot runs one or more strategies, each on its symbol, and each (strategy, symbol) has
    its own run row (its own ``run_id``); at most one run per (strategy, symbol) is current.

    Args:
        database: The database to use (migrated to the current schema).
        clock: Returns the current time; tests pass a fixed clock.
    """

    def __init__(self, database: Database, *, clock: Clock = utc_now) -> None:
        self._database = database
        self._clock = clock

    def start_run(self, spec: BotRunSpec) -> BotRunInfo:
        """Store a new run, with a fresh random ``run_id``, and return it.

        Raises:
            ConfigError: a run of the same strategy and symbol is still current; archive it
                first (or carry on with it).
            DataError: a value the store cannot keep (an unknown mode, an empty name).
        """
        now = as_utc(self._clock())
        one_of(spec.mode, BOT_MODES, "mode")
        row = BotRun(
            run_id=new_run_id(),
            strategy=text(spec.strategy, "strategy", 100),
            symbol=text(spec.symbol, "symbol", 100),
            timeframe=text(spec.timeframe, "timeframe", 16),
            source=text(spec.source, "source", 64),
            mode=spec.mode,
            params=json_object(spec.params, "params"),
            config=json_object(spec.config, "config"),
            config_hash=config_hash(spec.config),
            start=as_utc(spec.start) if spec.start is not None else now,
            end=as_utc(spec.end) if spec.end is not None else None,
            created_at=now,
        )
        with self._database.session() as session, session.begin():
            current = _current(session, spec.strategy, spec.symbol)
            if current is not None:
                raise ConfigError(
                    f"bot run {current.id} ({current.strategy} on {current.symbol}, run id "
                    f"{current.run_id}) is still current: archive it before starting another"
                )
            session.add(row)
            session.flush()
            return info_from_row(BotRunInfo, row)

    def current_run(
        self, strategy: str | None = None, symbol: str | None = None
    ) -> BotRunInfo | None:
        """The newest run not archived yet (of this strategy and symbol, when given), or None."""
        with self._database.session() as session:
            row = _current(session, strategy, symbol)
            return None if row is None else info_from_row(BotRunInfo, row)

    def current_runs(self) -> list[BotRunInfo]:
        """Every run not archived yet, oldest first."""
        query = sa.select(BotRun).where(BotRun.archived_at.is_(None)).order_by(BotRun.id)
        with self._database.session() as session:
            return [info_from_row(BotRunInfo, row) for row in session.scalars(query)]

    def get(self, bot_run_id: int) -> BotRunInfo:
        """One run by its database id.

        Raises:
            DataError: there is no such run.
        """
        with self._database.session() as session:
            return info_from_row(BotRunInfo, run_row(session, bot_run_id))

    def set_last_bar_time(self, bot_run_id: int, bar_time: datetime) -> BotRunInfo:
        """Record the open time of the last closed bar the run acted on.

        Raises:
            DataError: no such run, or ``bar_time`` is before the one stored (bars only move
                forward; a replay of older bars belongs in a new run).
        """
        return self._advance(bot_run_id, bar_time, None)

    def save_progress(
        self, bot_run_id: int, bar_time: datetime, progress: Mapping[str, Any]
    ) -> BotRunInfo:
        """Record the last bar acted on and what to resume from after it, in one transaction.

        Raises:
            DataError: no such run, ``bar_time`` before the one stored, or ``progress`` not
                JSON-ready.
        """
        return self._advance(bot_run_id, bar_time, json_object(progress, "progress"))

    def _advance(
        self, bot_run_id: int, bar_time: datetime, progress: dict[str, Any] | None
    ) -> BotRunInfo:
        """Move ``last_bar_time`` forward (never back), with the progress when given."""
        bar_time = as_utc(bar_time)
        with self._database.session() as session, session.begin():
            row = run_row(session, bot_run_id)
            if row.last_bar_time is not None and bar_time < row.last_bar_time:
                raise DataError(
                    f"bot run {bot_run_id}: last bar time {bar_time.isoformat()} is before the "
                    f"stored {row.last_bar_time.isoformat()}"
                )
            row.last_bar_time = bar_time
            if progress is not None:
                row.progress = progress
            return info_from_row(BotRunInfo, row)

    def archive(self, bot_run_id: int) -> BotRunInfo:
        """Make the run no longer current: set ``archived_at`` (and ``end`` when unset).

        Raises:
            DataError: no such run, or it is archived already.
        """
        now = as_utc(self._clock())
        with self._database.session() as session, session.begin():
            row = run_row(session, bot_run_id)
            if row.archived_at is not None:
                raise DataError(
                    f"bot run {bot_run_id} was archived already ({row.archived_at.isoformat()})"
                )
            row.archived_at = now
            row.end = row.end or now
            return info_from_row(BotRunInfo, row)


def _current(session: Session, strategy: str | None, symbol: str | None) -> BotRun | None:
    query = (
        sa.select(BotRun)
        .where(BotRun.archived_at.is_(None))
        .order_by(BotRun.created_at.desc(), BotRun.id.desc())
        .limit(1)
    )
    if strategy is not None:
        query = query.where(BotRun.strategy == strategy)
    if symbol is not None:
        query = query.where(BotRun.symbol == symbol)
    return session.scalar(query)


class BotRecordRepository:
    """What the bot learns and keeps: closed trades, verifications and risk events.

    Args:
        database: The database to use (migrated to the current schema).
    """

    def __init__(self, database: Database) -> None:
        self._database = database

    @property
    def database(self) -> Database:
        """The database the records go to."""
        return self._database

    def record_trade(self, trade: TradeRecord) -> int:
        """Store a closed trade; return its id.

        Raises:
            DataError: an unknown direction, a size that is not positive, a negative price
                (0 is a binary outcome's), a non-finite number, or an unknown run or client
                order id.
        """
        one_of(trade.direction, TRADE_DIRECTIONS, "trade direction")
        number(trade.size, "size", positive=True)
        for name in ("entry_price", "exit_price"):  # 0: a binary outcome that paid nothing
            if (number(getattr(trade, name), name) or 0.0) < 0.0:
                raise DataError(f"{name}={getattr(trade, name)!r}: must not be negative")
        for name in ("pnl", "pnl_pct", "fees"):
            number(getattr(trade, name), name)
        values = {item.name: getattr(trade, item.name) for item in fields(trade)}
        values["entry_time"] = as_utc(trade.entry_time)
        values["exit_time"] = as_utc(trade.exit_time)
        return self._insert(BotTrade(**values), f"trade of {trade.symbol}")

    def record_verification(self, verification: VerificationRecord) -> int:
        """Store a verifier's verdict on an order; return its id.

        Raises:
            DataError: an unknown status or client order id, or a non-finite number.
        """
        one_of(verification.status, VERIFICATION_STATUSES, "verification status")
        for name in ("expected_price", "fill_price", "slippage"):
            number(getattr(verification, name), name)
        row = BotVerification(
            client_order_id=verification.client_order_id,
            status=verification.status,
            expected_price=verification.expected_price,
            fill_price=verification.fill_price,
            slippage=verification.slippage,
            discrepancies=to_json_value(list(verification.discrepancies), where="discrepancies"),
            at=as_utc(verification.at),
        )
        return self._insert(row, f"verification of order {verification.client_order_id}")

    def record_risk_event(self, event: RiskEventLike, *, bot_run_id: int | None = None) -> int:
        """Store a risk event (its details' ``who`` and ``why`` in their own columns)."""
        details = json_object(event.details, "details")
        who, why = details.get("who"), details.get("why")
        row = BotRiskEvent(
            bot_run_id=bot_run_id,
            kind=text(event.kind, "risk event kind", 64),
            at=as_utc(event.at),
            who=None if who is None else text(str(who), "who", 100),
            why=None if why is None else str(why),
            message=event.message,
            details=details,
        )
        return self._insert(row, f"risk event {event.kind}")

    def trades(self, bot_run_id: int) -> list[TradeRecord]:
        """The run's closed trades in the order they closed."""
        query = (
            sa.select(BotTrade)
            .where(BotTrade.bot_run_id == bot_run_id)
            .order_by(BotTrade.exit_time, BotTrade.id)
        )
        with self._database.session() as session:
            return [info_from_row(TradeRecord, row) for row in session.scalars(query)]

    def verifications(self, client_order_id: str) -> list[VerificationRecord]:
        """The verdicts on one order, oldest first."""
        query = (
            sa.select(BotVerification)
            .where(BotVerification.client_order_id == client_order_id)
            .order_by(BotVerification.id)
        )
        with self._database.session() as session:
            return [
                VerificationRecord(
                    client_order_id=row.client_order_id,
                    status=row.status,
                    at=row.at,
                    expected_price=row.expected_price,
                    fill_price=row.fill_price,
                    slippage=row.slippage,
                    discrepancies=tuple(row.discrepancies),
                )
                for row in session.scalars(query)
            ]

    def _insert(self, row: BotTrade | BotVerification | BotRiskEvent, what: str) -> int:
        try:
            with self._database.session() as session, session.begin():
                session.add(row)
                session.flush()
                return int(row.id)
        except IntegrityError as exc:
            raise refused(what, exc) from exc
