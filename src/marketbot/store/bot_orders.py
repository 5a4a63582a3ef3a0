"""Orders of a bot run: the intent (committed before sending), the send, exchange events.

An order's row is written with status ``intent`` and ``sent_at`` null before the order goes
to the exchange; :meth:`OrderRepository.mark_sent` records the exchange's acceptance and
:meth:`OrderRepository.apply_update` every later event. Each call is one transaction. A
crash between the intent and the send leaves a row :meth:`OrderRepository.unsent` returns,
which the restarted bot settles by asking the exchange for its client order id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketbot.core.clock import as_utc
from marketbot.core.errors import DataError
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
from marketbot.store.database import Database
from marketbot.store.models import (
    ORDER_INTENTS,
    ORDER_SIDES,
    ORDER_STATUSES,
    ORDER_TYPES,
    BotOrder,
    BotOrderEvent,
    BotRun,
    utc_now,
)

FINAL_ORDER_STATUSES: Final = frozenset({"filled", "canceled", "expired", "rejected"})
# Exchanges cap client order ids (Binance: 36 characters of [A-Za-z0-9._:/-]).
CLIENT_ORDER_ID_MAX_LENGTH: Final = 36


def make_client_order_id(run_id: str, sequence: int) -> str:
    """The client order id of a run's ``sequence``-th order: ``mb-<run_id>-<sequence>``."""
    if sequence < 1:
        raise DataError(f"order sequence must be at least 1, got {sequence}")
    return f"mb-{run_id}-{sequence}"


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order the bot decided to send; stored (status ``intent``) before it is sent.

    Attributes:
        bot_run_id: The run's database id (:attr:`BotRunInfo.id`).
        strategy: Strategy name.
        symbol: The asset traded.
        intent: ``entry``, ``exit``, ``protect``, ``force_entry`` or ``force_exit``.
        side: ``buy`` or ``sell``.
        order_type: ``market``, ``limit``, ``stop_market`` or ``stop_limit``.
        amount: Units of the asset; None for a market entry sized by ``cost``.
        cost: Quote currency to spend (a quote-sized market entry); None otherwise.
        price: Limit price (quote currency), for limit orders.
        stop_price: Trigger price, for stop orders.
        bar_time: Open time of the bar whose close decided the order (UTC).
        attempt: 1 for the first send of a decision, 2 for its first re-send...
        client_order_id: None: :func:`make_client_order_id` of the run and the order's
            sequence number in it.
    """

    bot_run_id: int
    strategy: str
    symbol: str
    intent: str
    side: str
    order_type: str
    amount: float | None = None
    cost: float | None = None
    price: float | None = None
    stop_price: float | None = None
    bar_time: datetime | None = None
    attempt: int = 1
    client_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class OrderInfo:
    """A stored order as it stands: the intent plus what the exchange has reported."""

    id: int
    client_order_id: str
    bot_run_id: int
    strategy: str
    symbol: str
    intent: str
    side: str
    order_type: str
    amount: float | None
    cost: float | None
    price: float | None
    stop_price: float | None
    status: str
    filled: float
    average_price: float | None
    fee: float
    bar_time: datetime | None
    attempt: int
    exchange_order_id: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """What the exchange reported about an order; None fields leave the order's value.

    Attributes:
        kind: The event's name (``filled``, ``partially_filled``, ``canceled``, ``timeout``...).
        status: The order's new status (one of ``ORDER_STATUSES``).
        filled: Units filled so far (cumulative).
        average_price: Average fill price so far.
        fee: Fees paid so far (quote currency, cumulative).
        exchange_order_id: The exchange's id, when first learnt from this event.
        details: Anything else worth keeping (the exchange's raw fields, a message).
    """

    kind: str
    status: str | None = None
    filled: float | None = None
    average_price: float | None = None
    fee: float | None = None
    exchange_order_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OrderEventInfo:
    """One stored event of an order."""

    id: int
    order_id: int
    kind: str
    at: datetime
    details: dict[str, Any]


class OrderRepository:
    """Orders: the intent (before sending), the send, and every event after it.

    Args:
        database: The database to use (migrated to the current schema).
        clock: Returns the current time; tests pass a fixed clock.
    """

    def __init__(self, database: Database, *, clock: Clock = utc_now) -> None:
        self._database = database
        self._clock = clock

    def insert_intent(self, intent: OrderIntent) -> OrderInfo:
        """Store an order the bot is about to send (status ``intent``, ``sent_at`` null).

        Raises:
            DataError: an unknown intent, side or type; neither amount nor cost; a price
                that is not a positive finite number; an unknown run; or a client order id
                that is already stored (ids are unique: a re-send needs a new one).
        """
        _check_intent(intent)
        now = as_utc(self._clock())
        what = f"order {intent.client_order_id or '(new)'}"
        try:
            with self._database.session() as session, session.begin():
                run = run_row(session, intent.bot_run_id)
                client_order_id = intent.client_order_id or _next_client_order_id(session, run)
                text(client_order_id, "client order id", CLIENT_ORDER_ID_MAX_LENGTH)
                what = f"order {client_order_id}"
                if _order_row(session, client_order_id) is not None:
                    raise DataError(
                        f"order {client_order_id} is already stored: client order ids are "
                        "unique, give a re-send a new one; nothing was stored"
                    )
                row = _intent_row(intent, client_order_id, now)
                session.add(row)
                session.flush()
                session.add(BotOrderEvent(order_id=row.id, kind="intent", at=now, details={}))
                return info_from_row(OrderInfo, row)
        except IntegrityError as exc:
            raise refused(what, exc) from exc

    def mark_sent(self, client_order_id: str, *, exchange_order_id: str | None = None) -> OrderInfo:
        """Record that the exchange accepted the order: ``sent_at`` now, status ``open``.

        Raises:
            DataError: no such order, or it was marked sent already.
        """
        now = as_utc(self._clock())
        with self._database.session() as session, session.begin():
            row = _order(session, client_order_id)
            if row.sent_at is not None:
                raise DataError(
                    f"order {client_order_id} was marked sent already ({row.sent_at.isoformat()})"
                )
            row.sent_at = row.updated_at = now
            if exchange_order_id is not None:
                row.exchange_order_id = exchange_order_id
            if row.status == "intent":
                row.status = "open"
            details = {"exchange_order_id": exchange_order_id}
            session.add(BotOrderEvent(order_id=row.id, kind="sent", at=now, details=details))
            return info_from_row(OrderInfo, row)

    def apply_update(self, client_order_id: str, update: OrderUpdate) -> OrderInfo:
        """Store an exchange event and bring the order up to date with it, in one transaction.

        The event is always kept (it is history). The order's fields follow it, except that
        a final status (filled, canceled, expired, rejected) is never left and ``filled``
        never goes down: exchanges deliver events out of order.

        Raises:
            DataError: no such order, an unknown status, or a non-finite number.
        """
        now = as_utc(self._clock())
        text(update.kind, "order event kind", 32)
        if update.status is not None:
            one_of(update.status, ORDER_STATUSES, "order status")
        filled = number(update.filled, "filled")
        average_price = number(update.average_price, "average_price", positive=True)
        fee = number(update.fee, "fee")
        details = json_object(update.details, "details")
        try:
            with self._database.session() as session, session.begin():
                row = _order(session, client_order_id)
                session.add(
                    BotOrderEvent(order_id=row.id, kind=update.kind, at=now, details=details)
                )
                if update.status is not None and row.status not in FINAL_ORDER_STATUSES:
                    row.status = update.status
                if filled is not None:
                    row.filled = max(row.filled, filled)
                row.average_price = average_price or row.average_price
                row.fee = fee if fee is not None else row.fee
                row.exchange_order_id = update.exchange_order_id or row.exchange_order_id
                row.updated_at = now
                session.flush()
                return info_from_row(OrderInfo, row)
        except IntegrityError as exc:
            raise refused(f"order {client_order_id}", exc) from exc

    def get(self, client_order_id: str) -> OrderInfo:
        """One order by its client order id.

        Raises:
            DataError: there is no such order.
        """
        with self._database.session() as session:
            return info_from_row(OrderInfo, _order(session, client_order_id))

    def unsent(self, bot_run_id: int) -> list[OrderInfo]:
        """The run's intents never marked sent, oldest first: what a restart must settle."""
        query = (
            sa.select(BotOrder)
            .where(BotOrder.bot_run_id == bot_run_id, BotOrder.sent_at.is_(None))
            .where(BotOrder.status == "intent")
            .order_by(BotOrder.id)
        )
        with self._database.session() as session:
            return [info_from_row(OrderInfo, row) for row in session.scalars(query)]

    def open_orders(self, bot_run_id: int) -> list[OrderInfo]:
        """The run's orders not in a final status (intents included), oldest first."""
        query = (
            sa.select(BotOrder)
            .where(BotOrder.bot_run_id == bot_run_id)
            .where(BotOrder.status.not_in(sorted(FINAL_ORDER_STATUSES)))
            .order_by(BotOrder.id)
        )
        with self._database.session() as session:
            return [info_from_row(OrderInfo, row) for row in session.scalars(query)]

    def events(self, client_order_id: str) -> list[OrderEventInfo]:
        """The order's events in the order they were stored."""
        with self._database.session() as session:
            row = _order(session, client_order_id)
            query = (
                sa.select(BotOrderEvent)
                .where(BotOrderEvent.order_id == row.id)
                .order_by(BotOrderEvent.id)
            )
            return [info_from_row(OrderEventInfo, event) for event in session.scalars(query)]


def _check_intent(intent: OrderIntent) -> None:
    one_of(intent.intent, ORDER_INTENTS, "order intent")
    one_of(intent.side, ORDER_SIDES, "order side")
    one_of(intent.order_type, ORDER_TYPES, "order type")
    text(intent.strategy, "strategy", 100)
    text(intent.symbol, "symbol", 100)
    for name in ("amount", "cost", "price", "stop_price"):
        number(getattr(intent, name), name, positive=True)
    if intent.amount is None and intent.cost is None:
        raise DataError("an order needs an amount (asset units) or a cost (quote currency)")
    if intent.attempt < 1:
        raise DataError(f"attempt={intent.attempt}: must be at least 1")


def _intent_row(intent: OrderIntent, client_order_id: str, now: datetime) -> BotOrder:
    return BotOrder(
        client_order_id=client_order_id,
        bot_run_id=intent.bot_run_id,
        strategy=intent.strategy,
        symbol=intent.symbol,
        intent=intent.intent,
        side=intent.side,
        type=intent.order_type,
        amount=intent.amount,
        cost=intent.cost,
        price=intent.price,
        stop_price=intent.stop_price,
        status="intent",
        filled=0.0,
        fee=0.0,
        bar_time=as_utc(intent.bar_time) if intent.bar_time is not None else None,
        attempt=intent.attempt,
        created_at=now,
        updated_at=now,
    )


def _next_client_order_id(session: Session, run: BotRun) -> str:
    count = session.scalar(
        sa.select(sa.func.count()).select_from(BotOrder).where(BotOrder.bot_run_id == run.id)
    )
    return make_client_order_id(run.run_id, int(count or 0) + 1)


def _order_row(session: Session, client_order_id: str) -> BotOrder | None:
    return session.scalar(sa.select(BotOrder).where(BotOrder.client_order_id == client_order_id))


def _order(session: Session, client_order_id: str) -> BotOrder:
    row = _order_row(session, client_order_id)
    if row is None:
        raise DataError(f"no order with client order id {client_order_id!r}")
    return row
