"""What CcxtExchange needs to place an order safely: arguments, refusals, ids.

An order to place is one :class:`OrderRequest`; :func:`ccxt_order_arguments` turns it into
ccxt's ``create_order`` arguments (a quote-amount buy as ``cost``, a stop as a market order
with ``stopPrice``, our id as ``clientOrderId``). After a failure, the ccxt exception that
caused it (the ``__cause__`` of the client's translated error) tells a refusal of the order
(returned as a ``rejected`` order) from a lost request (looked up by client id) or another
error (raised).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from marketbot.core.errors import ConfigError, ExchangeError
from marketbot.execution.client_ids import client_id_of
from marketbot.execution.exchange import OrderNotFoundError
from marketbot.execution.models import Order, OrderSide, OrderStatus, OrderType
from marketbot.sources.exchange_client import strip_query_strings

__all__ = [
    "OrderRequest",
    "ccxt_order_arguments",
    "edited_client_id",
    "is_duplicate",
    "is_not_found",
    "is_refusal",
    "rejected_order",
    "with_quote_amount",
]


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One order to place, as the Exchange protocol's ``create_order`` takes it."""

    symbol: str
    type: OrderType
    side: OrderSide
    amount: float | None
    price: float | None
    client_order_id: str
    stop_price: float | None = None
    cost: float | None = None

    def __post_init__(self) -> None:
        if (self.amount is None) == (self.cost is None):
            raise ConfigError("give exactly one of `amount` and `cost`")
        if self.cost is not None and not (
            self.type is OrderType.MARKET and self.side is OrderSide.BUY
        ):
            raise ConfigError("`cost` (a quote amount) is for market buys only")
        if self.type is OrderType.LIMIT and self.price is None:
            raise ConfigError("a limit order needs `price`")
        if self.type is OrderType.STOP and self.stop_price is None:
            raise ConfigError("a stop order needs `stop_price`")

    def describe(self, exchange_id: str) -> str:
        """``binance: buy market BTC/USDT mb-...``, for messages."""
        return (
            f"{exchange_id}: {self.side.value} {self.type.value} {self.symbol} "
            f"{self.client_order_id}"
        )


def ccxt_order_arguments(request: OrderRequest) -> tuple[Any, ...]:
    """Ccxt's ``create_order(symbol, type, side, amount, price, params)`` arguments."""
    params: dict[str, Any] = {"clientOrderId": request.client_order_id}
    if request.cost is not None:
        params["cost"] = request.cost
    if request.type is OrderType.STOP:
        params["stopPrice"] = request.stop_price
    kind = "limit" if request.type is OrderType.LIMIT else "market"
    return (request.symbol, kind, request.side.value, request.amount, request.price, params)


def rejected_order(request: OrderRequest, exc: ExchangeError, now: datetime) -> Order:
    """The order the exchange refused, with its reason (the exchange's own words)."""
    return Order(
        id="",
        client_order_id=request.client_order_id,
        symbol=request.symbol,
        side=request.side,
        type=request.type,
        amount=request.amount or 0.0,
        status=OrderStatus.REJECTED,
        timestamp=now,
        quote_amount=request.cost,
        reason=strip_query_strings(str(exc.__cause__ or exc)),
    )


def is_not_found(exc: ExchangeError) -> bool:
    """The exchange knows no such order (ccxt's ``OrderNotFound``)."""
    import ccxt

    return isinstance(exc, OrderNotFoundError) or isinstance(exc.__cause__, ccxt.OrderNotFound)


def is_refusal(exc: ExchangeError) -> bool:
    """The exchange refused the order itself (a filter, the funds, a price), not the request.

    ccxt reads Binance's -1013 filter failures as ``BadRequest``; an unknown symbol, also a
    BadRequest, never gets here (the client raises it as a ConfigError).
    """
    import ccxt

    cause = exc.__cause__
    refusals = ccxt.InvalidOrder | ccxt.InsufficientFunds | ccxt.BadRequest
    return isinstance(cause, refusals) and not isinstance(cause, ccxt.OrderNotFound)


def is_duplicate(exc: ExchangeError) -> bool:
    """The exchange already holds an open order with this client id (Binance's -2010)."""
    return "duplicate order" in str(exc.__cause__ or exc).lower()


def with_quote_amount(order: Order, cost: float | None) -> Order:
    """The order with the quote amount it was placed with, when the exchange omits it."""
    if cost is None or order.quote_amount is not None:
        return order
    return replace(order, quote_amount=cost)


def edited_client_id(
    client_order_id: str, amount: float, price: float | None, stop_price: float | None
) -> str:
    """The client id of an order's replacement: ``mb-`` and 29 hex digits.

    They are a sha256 of the old id and the new levels, so a restart finds the replacement
    instead of placing it twice.
    """
    payload = f"{client_order_id}\x1fedit\x1f{amount!r}\x1f{price!r}\x1f{stop_price!r}"
    return client_id_of(payload)
