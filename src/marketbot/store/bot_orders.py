"""Orders of a bot run: the intent (committed before sending), the send, exchange events.

An order's row is written with status ``intent`` and ``sent_at`` null before the order goes
to the exchange; :meth:`OrderRepository.mark_sent` records that it was sent and
:meth:`OrderRepository.apply_update` every later report. Each call is one transaction, the
event row and the order's new values together. A crash between the intent and the send
leaves a row that :meth:`OrderRepository.unsent` returns; the restarted bot settles it by
asking the exchange for its client order id.

Client order ids come from the caller (``marketbot.execution.client_order_id``: one
deterministic id per decision), statuses are ccxt's (``open``, ``closed`` = fully filled,
``canceled``, ``expired``, ``rejected``) plus ``intent``, and event kinds are the execution
layer's (``order_submitted``, ``order_filled``...); the store checks values, not meanings.
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
    utc_now,
)

FINAL_ORDER_STATUSES: Final = frozenset({"closed", "canceled", "expired", "rejected"})
CLIENT_ORDER_ID_MAX_LENGTH: Final = 64  # the column; exchanges allow 36 and less


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order the bot decided to send; stored (status ``intent``) before it is sent.

    Attributes:
        client_order_id: The decision's id (``marketbot.execution.client_order_id``).
        bot_run_id: The run's database id (:attr:`BotRunInfo.id`).
        strategy: Strategy name.
        symbol: The asset traded.
        intent: ``entry``, ``exit``, ``protect``, ``force_entry`` or ``force_exit``.
        side: ``buy`` or ``sell``.
        order_type: ``market``, ``limit`` or ``stop``.
        amount: Units of the asset; None for a market entry sized by ``cost``.
        cost: Quote currency to spend (a quote-sized market entry); None otherwise.
        price: Limit price (quote currency), for limit orders.
        stop_price: Trigger price, for stop orders.
        bar_time: Open time of the bar whose close decided the order (UTC).
        attempt: 0 for the first order of a decision, 1 for its first re-placement...
    """

    client_order_id: str
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
    attempt: int = 0


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
        kind: The event's name (``order_filled``, ``order_canceled``...).
        at: When it happened (UTC); None means now.
        status: The order's new status (one of ``ORDER_STATUSES``).
        filled: Units filled so far (cumulative).
        average_price: Average fill price so far.
        fee: Fees paid so far (quote currency, cumulative).
        exchange_order_id: The exchange's id, when first learnt from this event.
        details: The event's other fields (JSON-compatible values).
    """

    kind: str
    at: datetime | None = None
    status: str | None = None
    filled: float | None = None
    average_price: float | None = None
    fee: float | None = None
    exchange_order_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OrderEventInfo:
    """One stored order event; ``order_id`` is None for an order that has no row."""

    id: int
    client_order_id: str
    order_id: int | None
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
                that is already stored (ids are unique: a re-placement is a new attempt).
        """
        _check_intent(intent)
        now = as_utc(self._clock())
        cid = intent.client_order_id
        try:
            with self._database.session() as session, session.begin():
                run_row(session, intent.bot_run_id)
                if _order_row(session, cid) is not None:
                    raise DataError(
                        f"order {cid} is already stored: client order ids are unique (a "
                        "re-placement is a new attempt with a new id); nothing was stored"
                    )
                row = _intent_row(intent, now)
                session.add(row)
                session.flush()
                info = info_from_row(OrderInfo, row)
        except IntegrityError as exc:
            raise refused(f"order {cid}", exc) from exc
        # Pinned choice 2: the intent is durable before the order is sent, batch or not.
        self._database.commit_batch()
        return info

    def mark_sent(
        self,
        client_order_id: str,
        *,
        exchange_order_id: str | None = None,
        at: datetime | None = None,
        kind: str = "order_submitted",
        details: Mapping[str, Any] | None = None,
    ) -> OrderInfo:
        """Record that the order was sent: ``sent_at``, status ``open``, and an event.

        Raises:
            DataError: no such order, or it was marked sent already.
        """
        when = as_utc(at or self._clock())
        event_details = json_object(details or {}, "details")
        with self._database.session() as session, session.begin():
            row = _order(session, client_order_id)
            if row.sent_at is not None:
                raise DataError(
                    f"order {client_order_id} was marked sent already ({row.sent_at.isoformat()})"
                )
            row.sent_at = row.updated_at = when
            row.exchange_order_id = exchange_order_id or row.exchange_order_id
            if row.status == "intent":
                row.status = "open"
            session.add(_event(row.client_order_id, row.id, kind, when, event_details))
            return info_from_row(OrderInfo, row)

    def apply_update(self, client_order_id: str, update: OrderUpdate) -> OrderInfo:
        """Store an exchange event and bring the order up to date with it, in one transaction.

        The event is always kept (it is history). The order's fields follow it, except that
        a final status (closed, canceled, expired, rejected) is never left and ``filled``
        never goes down: exchanges deliver reports out of order.

        Raises:
            DataError: no such order, an unknown status, a non-finite number, or values the
                table refuses (a negative fee); nothing is stored then, not even the event.
        """
        when = as_utc(update.at or self._clock())
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
                session.add(_event(row.client_order_id, row.id, update.kind, when, details))
                if update.status is not None and row.status not in FINAL_ORDER_STATUSES:
                    row.status = update.status
                if filled is not None:
                    row.filled = max(row.filled, filled)
                row.average_price = average_price or row.average_price
                row.fee = row.fee if fee is None else fee
                row.exchange_order_id = update.exchange_order_id or row.exchange_order_id
                row.updated_at = when
                session.flush()
                return info_from_row(OrderInfo, row)
        except IntegrityError as exc:
            raise refused(f"order {client_order_id}", exc) from exc

    def record_event(
        self, client_order_id: str, kind: str, at: datetime, details: Mapping[str, Any]
    ) -> int:
        """Store an event that changes no order (an ``order_denied`` before any intent row).

        The event is linked to the order when one has this client order id. Returns its id.
        """
        text(client_order_id, "client order id", CLIENT_ORDER_ID_MAX_LENGTH)
        text(kind, "order event kind", 32)
        encoded = json_object(details, "details")
        with self._database.session() as session, session.begin():
            row = _order_row(session, client_order_id)
            event = _event(client_order_id, None if row is None else row.id, kind, at, encoded)
            session.add(event)
            session.flush()
            return int(event.id)

    def get(self, client_order_id: str) -> OrderInfo:
        """One order by its client order id.

        Raises:
            DataError: there is no such order.
        """
        with self._database.session() as session:
            return info_from_row(OrderInfo, _order(session, client_order_id))

    def find(self, client_order_id: str) -> OrderInfo | None:
        """One order by its client order id, or None when there is none."""
        with self._database.session() as session:
            row = _order_row(session, client_order_id)
            return None if row is None else info_from_row(OrderInfo, row)

    def exists(self, client_order_id: str) -> bool:
        """Whether an order with this client order id is stored."""
        return self.find(client_order_id) is not None

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
        """The events of one client order id in the order they were stored."""
        query = (
            sa.select(BotOrderEvent)
            .where(BotOrderEvent.client_order_id == client_order_id)
            .order_by(BotOrderEvent.id)
        )
        with self._database.session() as session:
            return [info_from_row(OrderEventInfo, event) for event in session.scalars(query)]


def _check_intent(intent: OrderIntent) -> None:
    text(intent.client_order_id, "client order id", CLIENT_ORDER_ID_MAX_LENGTH)
    one_of(intent.intent, ORDER_INTENTS, "order intent")
    one_of(intent.side, ORDER_SIDES, "order side")
    one_of(intent.order_type, ORDER_TYPES, "order type")
    text(intent.strategy, "strategy", 100)
    text(intent.symbol, "symbol", 100)
    for name in ("amount", "cost", "price", "stop_price"):
        number(getattr(intent, name), name, positive=True)
    if intent.amount is None and intent.cost is None:
        raise DataError("an order needs an amount (asset units) or a cost (quote currency)")
    if isinstance(intent.attempt, bool) or not isinstance(intent.attempt, int):
        raise DataError(f"attempt={intent.attempt!r}: must be a whole number")
    if intent.attempt < 0:
        raise DataError(f"attempt={intent.attempt}: must be 0 or more")


def _intent_row(intent: OrderIntent, now: datetime) -> BotOrder:
    return BotOrder(
        client_order_id=intent.client_order_id,
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


def _event(
    client_order_id: str, order_id: int | None, kind: str, at: datetime, details: dict[str, Any]
) -> BotOrderEvent:
    return BotOrderEvent(
        client_order_id=client_order_id, order_id=order_id, kind=kind, at=as_utc(at),
        details=details,
    )  # fmt: skip


def _order_row(session: Session, client_order_id: str) -> BotOrder | None:
    return session.scalar(sa.select(BotOrder).where(BotOrder.client_order_id == client_order_id))


def _order(session: Session, client_order_id: str) -> BotOrder:
    row = _order_row(session, client_order_id)
    if row is None:
        raise DataError(f"no order with client order id {client_order_id!r}")
    return row
