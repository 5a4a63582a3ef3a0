"""Order events: what happened to an order, in the past tense, as rows for ``order_events``.

Each event is a frozen record named for a fact (:class:`OrderAccepted`,
:class:`OrderFilled`...), with the client order id it concerns and when it happened.
:meth:`OrderEvent.to_row` turns one into the ``order_events`` table's row::

    {"kind": "order_filled", "client_order_id": "mb-...", "at": datetime(...),
     "details": {"order_id": "17", "amount": 0.5, "price": 101.0, ...}}

``kind`` is the class name in snake case; ``details`` holds the event's other fields as a
JSON-ready dict (datetimes as ISO 8601 text, enumerations as their values, non-finite
floats as None), so ``json.dumps(row["details"], allow_nan=False)`` always succeeds.

:func:`order_events` derives the events between two reports of the same order, so that
whoever polls an exchange records facts rather than snapshots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar

from marketbot.core.clock import as_utc
from marketbot.execution.models import Order, OrderSide, OrderStatus, OrderType

__all__ = [
    "OrderAccepted",
    "OrderCanceled",
    "OrderDenied",
    "OrderEvent",
    "OrderExpired",
    "OrderFilled",
    "OrderRejected",
    "OrderSubmitted",
    "OrderUpdated",
    "order_events",
]

# Fields every row has as a column of its own; the rest go to ``details``.
_COLUMNS = frozenset({"client_order_id", "at"})
# Relative change in a cumulative fill below which two reports count as equal.
_FILL_TOLERANCE = 1e-12


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderEvent:
    """Something that happened to one order.

    Attributes:
        client_order_id: The order's client id.
        at: When it happened (UTC); naive times are taken as UTC.
    """

    kind: ClassVar[str] = "order_event"

    client_order_id: str
    at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", as_utc(self.at))

    def details(self) -> dict[str, Any]:
        """The event's fields other than the client id and time, JSON-ready."""
        return {
            item.name: _json_ready(getattr(self, item.name))
            for item in fields(self)
            if item.name not in _COLUMNS
        }

    def to_row(self) -> dict[str, Any]:
        """The ``order_events`` row: ``kind``, ``client_order_id``, ``at``, ``details``."""
        return {
            "kind": self.kind,
            "client_order_id": self.client_order_id,
            "at": self.at,
            "details": self.details(),
        }


def _json_ready(value: object) -> object:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderDenied(OrderEvent):
    """The risk gate refused the order before it was sent; nothing reached the exchange."""

    kind: ClassVar[str] = "order_denied"

    symbol: str
    side: OrderSide
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderSubmitted(OrderEvent):
    """The order was sent to the exchange (its answer is a later event)."""

    kind: ClassVar[str] = "order_submitted"

    symbol: str
    side: OrderSide
    type: OrderType
    amount: float | None = None
    cost: float | None = None
    price: float | None = None
    stop_price: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAccepted(OrderEvent):
    """The exchange took the order and gave it ``order_id``."""

    kind: ClassVar[str] = "order_accepted"

    order_id: str
    symbol: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRejected(OrderEvent):
    """The exchange refused the order; ``reason`` says why when it told."""

    kind: ClassVar[str] = "order_rejected"

    order_id: str
    symbol: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderUpdated(OrderEvent):
    """An edit of the open order took effect: these are its new amount and prices."""

    kind: ClassVar[str] = "order_updated"

    order_id: str
    amount: float
    price: float | None
    stop_price: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFilled(OrderEvent):
    """Part or all of the order filled.

    Attributes:
        order_id: The exchange's order id.
        symbol: The pair.
        side: Buy or sell.
        trade_id: The exchange's trade id, or ``""`` when the fill was seen only as a
            change of the order's cumulative ``filled``.
        amount: Base units this fill added.
        price: Its price.
        filled: The order's cumulative filled amount after it.
        remaining: What is left to fill after it.
        fee_cost: The fee of this fill (0 when unknown).
        fee_currency: The fee's currency, or ``""``.
    """

    kind: ClassVar[str] = "order_filled"

    order_id: str
    symbol: str
    side: OrderSide
    trade_id: str
    amount: float
    price: float
    filled: float
    remaining: float
    fee_cost: float = 0.0
    fee_currency: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCanceled(OrderEvent):
    """The rest of the order was cancelled; ``filled`` had filled before that."""

    kind: ClassVar[str] = "order_canceled"

    order_id: str
    filled: float
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderExpired(OrderEvent):
    """The exchange ended the order by its time in force; ``filled`` had filled before."""

    kind: ClassVar[str] = "order_expired"

    order_id: str
    filled: float
    reason: str = ""


def order_events(previous: Order | None, current: Order, at: datetime) -> list[OrderEvent]:
    """The events that take an order from ``previous`` (None: never seen) to ``current``.

    In order: accepted or rejected (first sight only), updated (amount or prices changed
    while open), one filled event per new trade (or one for the growth of ``filled`` when
    the exchange lists no trades), then canceled or expired if it ended so.

    Args:
        previous: The order as last reported, or None for the exchange's first answer.
        current: The order as reported now.
        at: When ``current`` was seen; fills with a trade time use that instead.
    """
    client_id, order_id = current.client_order_id, current.id
    events: list[OrderEvent] = []
    if previous is None:
        if current.status is OrderStatus.REJECTED:
            rejected = OrderRejected(
                client_order_id=client_id,
                at=at,
                order_id=order_id,
                symbol=current.symbol,
                reason=current.reason,
            )
            return [rejected]
        events.append(
            OrderAccepted(
                client_order_id=client_id, at=at, order_id=order_id, symbol=current.symbol
            )
        )
    elif _terms(previous) != _terms(current):
        events.append(
            OrderUpdated(
                client_order_id=client_id,
                at=at,
                order_id=order_id,
                amount=current.amount,
                price=current.price,
                stop_price=current.stop_price,
            )
        )
    events.extend(_fills(previous, current, at))
    if previous is None or previous.status is not current.status:
        ending = {OrderStatus.CANCELED: OrderCanceled, OrderStatus.EXPIRED: OrderExpired}
        ended = ending.get(current.status)
        if ended is not None:
            events.append(
                ended(
                    client_order_id=client_id,
                    at=at,
                    order_id=order_id,
                    filled=current.filled,
                    reason=current.reason,
                )
            )
    return events


def _terms(order: Order) -> tuple[float | None, ...]:
    """What an edit can change.

    A quote-amount buy's ``amount`` grows with its fills, so only its prices count.
    """
    amount = order.amount if order.quote_amount is None else None
    return (amount, order.price, order.stop_price)


def _fills(previous: Order | None, current: Order, at: datetime) -> list[OrderEvent]:
    before_filled = previous.filled if previous is not None else 0.0
    before_cost = previous.cost if previous is not None else 0.0
    seen = {trade.id for trade in previous.trades} if previous is not None else set()
    new_trades = [trade for trade in current.trades if trade.id not in seen]
    events: list[OrderEvent] = []
    if new_trades:
        cumulative = before_filled
        for trade in new_trades:
            cumulative += trade.amount
            events.append(
                OrderFilled(
                    client_order_id=current.client_order_id,
                    at=trade.timestamp,
                    order_id=current.id,
                    symbol=current.symbol,
                    side=current.side,
                    trade_id=trade.id,
                    amount=trade.amount,
                    price=trade.price,
                    filled=cumulative,
                    remaining=max(current.amount - cumulative, 0.0),
                    fee_cost=trade.fee.cost if trade.fee is not None else 0.0,
                    fee_currency=trade.fee.currency if trade.fee is not None else "",
                )
            )
        return events
    added = current.filled - before_filled
    if added <= _FILL_TOLERANCE * max(current.filled, 1.0):
        return events
    # Without trades, the fill's price is what the cumulative cost grew by, per unit.
    price = (current.cost - before_cost) / added
    events.append(
        OrderFilled(
            client_order_id=current.client_order_id,
            at=current.last_trade_timestamp or at,
            order_id=current.id,
            symbol=current.symbol,
            side=current.side,
            trade_id="",
            amount=added,
            price=price,
            filled=current.filled,
            remaining=current.remaining,
        )
    )
    return events
