"""The execution layer's records: markets, tickers, candles, balances, orders and trades.

They follow ccxt's unified structures (``fetch_markets``, ``fetch_ticker``, ``fetch_ohlcv``,
``fetch_balance``, ``create_order``, ``fetch_my_trades``) with three deliberate differences:
times are tz-aware UTC datetimes instead of epoch milliseconds, enumerations are
:class:`~enum.StrEnum` s whose values are ccxt's strings, and every record is a frozen
dataclass read by attribute. Amounts are in base units (BTC of BTC/USDT), prices and costs
in quote units (USDT).

An exchange hands these out; a record that cannot be right (a negative amount, a limit order
without a price, a naive time) is refused when built, with a
:class:`~marketbot.core.errors.DataError` that names the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple

from marketbot.core.clock import as_utc
from marketbot.core.errors import DataError

__all__ = [
    "AssetBalance",
    "Balance",
    "Candle",
    "Fee",
    "Market",
    "Order",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "Ticker",
    "Trade",
]


class OrderSide(StrEnum):
    """Which way an order trades the base asset."""

    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    """How an order is priced: at market, at a limit, or at market once a stop triggers."""

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"


class OrderStatus(StrEnum):
    """ccxt's order statuses.

    ``closed`` means fully filled; the last three end unfilled or partly filled (``filled``
    says how much).
    """

    OPEN = "open"
    CLOSED = "closed"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        """True once the order can no longer fill: every status but ``open``."""
        return self is not OrderStatus.OPEN


def _require_amount(owner: str, name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise DataError(f"{owner}: `{name}` must be a finite number >= 0, got {value!r}")


def _require_price(owner: str, name: str, value: float | None, *, required: bool) -> None:
    if value is None:
        if required:
            raise DataError(f"{owner}: `{name}` is required")
        return
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise DataError(f"{owner}: `{name}` must be a finite number > 0, got {value!r}")


def _utc(owner: str, name: str, moment: datetime) -> datetime:
    if not isinstance(moment, datetime):
        raise DataError(f"{owner}: `{name}` must be a datetime, got {moment!r}")
    return as_utc(moment)


@dataclass(frozen=True, slots=True)
class Market:
    """One tradable pair and the exchange's rules for orders on it.

    Attributes:
        symbol: The unified pair, ``BASE/QUOTE`` (``BTC/USDT``).
        base: The asset bought and sold (``BTC``); amounts are in it.
        quote: The asset prices and costs are in (``USDT``).
        amount_step: ccxt's ``precision.amount`` (tick-size mode): amounts are whole
            multiples of it; None when the exchange does not say.
        price_tick: ccxt's ``precision.price``: prices are whole multiples of it; or None.
        min_amount: ccxt's ``limits.amount.min`` in base units; or None.
        min_cost: ccxt's ``limits.cost.min`` (amount x price) in quote units; or None.
    """

    symbol: str
    base: str
    quote: str
    amount_step: float | None = None
    price_tick: float | None = None
    min_amount: float | None = None
    min_cost: float | None = None

    def __post_init__(self) -> None:
        owner = f"market {self.symbol!r}"
        for name in ("amount_step", "price_tick"):
            _require_price(owner, name, getattr(self, name), required=False)
        for name in ("min_amount", "min_cost"):
            value = getattr(self, name)
            if value is not None:
                _require_amount(owner, name, value)

    def amount_to_precision(self, amount: float) -> float:
        """``amount`` rounded down to a whole number of ``amount_step`` (never buys more).

        Decimal arithmetic, so that 0.3 with a step of 0.1 stays 0.3 (float division
        gives 2.9999... steps).
        """
        return _to_step(amount, self.amount_step, ROUND_FLOOR)

    def price_to_precision(self, price: float) -> float:
        """``price`` rounded to the nearest whole number of ``price_tick``."""
        return _to_step(price, self.price_tick, ROUND_HALF_EVEN)

    def refusal(self, amount: float, price: float) -> str:
        """Why an order of ``amount`` at ``price`` breaks the minimums, or ``""`` if none."""
        if self.min_amount is not None and amount < self.min_amount:
            return f"amount {amount:g} {self.base} is below the minimum {self.min_amount:g}"
        cost = amount * price
        if self.min_cost is not None and cost < self.min_cost:
            return f"cost {cost:g} {self.quote} is below the minimum {self.min_cost:g}"
        return ""


def _to_step(value: float, step: float | None, rounding: str) -> float:
    if step is None:
        return value
    exact_step = Decimal(repr(step))
    steps = (Decimal(repr(value)) / exact_step).to_integral_value(rounding=rounding)
    return float(steps * exact_step)


@dataclass(frozen=True, slots=True)
class Ticker:
    """The latest prices of one pair (ccxt's ``fetch_ticker``).

    Attributes:
        symbol: The pair.
        at: When the exchange quoted these prices (UTC).
        last: The last traded price.
        bid: The best bid, or None when the exchange gave none.
        ask: The best ask, or None.
    """

    symbol: str
    at: datetime
    last: float
    bid: float | None = None
    ask: float | None = None

    def __post_init__(self) -> None:
        owner = f"ticker {self.symbol!r}"
        object.__setattr__(self, "at", _utc(owner, "at", self.at))
        _require_price(owner, "last", self.last, required=True)
        _require_price(owner, "bid", self.bid, required=False)
        _require_price(owner, "ask", self.ask, required=False)


class Candle(NamedTuple):
    """One OHLCV bar, in ccxt's ``fetch_ohlcv`` order; ``opened_at`` is the bar's open (UTC)."""

    opened_at: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True)
class AssetBalance:
    """How much of one asset the account holds: ``free`` to trade, ``used`` in open orders."""

    free: float
    used: float = 0.0

    @property
    def total(self) -> float:
        """``free + used``."""
        return self.free + self.used


@dataclass(frozen=True, slots=True)
class Balance:
    """The account's balances by asset (ccxt's ``fetch_balance``); absent assets are zero.

    Attributes:
        assets: Asset code (``USDT``) to its balance; stored read-only.
        at: When the exchange reported them (UTC), or None.
    """

    assets: Mapping[str, AssetBalance] = field(default_factory=dict)
    at: datetime | None = None

    def __post_init__(self) -> None:
        for code, asset in self.assets.items():
            _require_amount(f"balance of {code}", "free", asset.free)
            _require_amount(f"balance of {code}", "used", asset.used)
        object.__setattr__(self, "assets", MappingProxyType(dict(self.assets)))
        if self.at is not None:
            object.__setattr__(self, "at", _utc("balance", "at", self.at))

    def free(self, asset: str) -> float:
        """How much of ``asset`` is free to trade (0 when none is held)."""
        held = self.assets.get(asset)
        return held.free if held is not None else 0.0

    def total(self, asset: str) -> float:
        """How much of ``asset`` is held, free or in open orders (0 when none)."""
        held = self.assets.get(asset)
        return held.total if held is not None else 0.0


@dataclass(frozen=True, slots=True)
class Fee:
    """A fee: ``cost`` in ``currency`` (ccxt's ``{cost, currency}``)."""

    cost: float
    currency: str


@dataclass(frozen=True, slots=True)
class Trade:
    """One fill of one order (ccxt's ``fetch_my_trades`` entry).

    Attributes:
        id: The exchange's trade id.
        order_id: The exchange id of the order it filled.
        symbol: The pair.
        side: The order's side.
        amount: Base units filled by this trade.
        price: The price it filled at (quote per base).
        timestamp: When it filled (UTC).
        fee: The fee it paid, or None.
        client_order_id: The order's client id when the exchange reports it, else ``""``.
    """

    id: str
    order_id: str
    symbol: str
    side: OrderSide
    amount: float
    price: float
    timestamp: datetime
    fee: Fee | None = None
    client_order_id: str = ""

    def __post_init__(self) -> None:
        owner = f"trade {self.id!r}"
        _require_amount(owner, "amount", self.amount)
        _require_price(owner, "price", self.price, required=True)
        object.__setattr__(self, "timestamp", _utc(owner, "timestamp", self.timestamp))

    @property
    def cost(self) -> float:
        """``amount x price`` in quote units."""
        return self.amount * self.price


@dataclass(frozen=True, slots=True)
class Order:
    """One order as the exchange last reported it (ccxt's unified order).

    Attributes:
        id: The exchange's order id; ``""`` for an order rejected before it was given one.
        client_order_id: Our id for it (see :func:`~marketbot.execution.client_order_id`).
        symbol: The pair.
        side: Buy or sell.
        type: Market, limit, or stop (a market order once ``stop_price`` trades).
        amount: Base units ordered. For a quote-amount market buy (``quote_amount``) the
            base amount is not known in advance: it is what has filled so far, as Binance
            reports ``origQty`` for a ``quoteOrderQty`` order.
        status: See :class:`OrderStatus`; ``closed`` means fully filled.
        timestamp: When the exchange accepted (or refused) it, UTC.
        price: The limit price (limit orders); None otherwise.
        stop_price: The trigger price (stop orders); None otherwise.
        filled: Base units filled so far.
        remaining: Base units still to fill (0 once the order ended).
        average: The average fill price, or None before any fill.
        fee: The fees paid so far, or None.
        trades: The fills, oldest first, when the exchange reports them.
        quote_amount: The quote units a quote-amount market buy spends (``cost=``), or None.
        last_trade_timestamp: When the last fill happened (UTC), or None.
        reason: Why it was rejected, canceled or expired, when the exchange said; else ``""``.
    """

    id: str
    client_order_id: str
    symbol: str
    side: OrderSide
    type: OrderType
    amount: float
    status: OrderStatus
    timestamp: datetime
    price: float | None = None
    stop_price: float | None = None
    filled: float = 0.0
    remaining: float = 0.0
    average: float | None = None
    fee: Fee | None = None
    trades: tuple[Trade, ...] = ()
    quote_amount: float | None = None
    last_trade_timestamp: datetime | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        owner = f"order {self.client_order_id or self.id!r}"
        for name in ("amount", "filled", "remaining"):
            _require_amount(owner, name, getattr(self, name))
        _require_price(owner, "price", self.price, required=self.type is OrderType.LIMIT)
        _require_price(owner, "stop_price", self.stop_price, required=self.type is OrderType.STOP)
        _require_price(owner, "average", self.average, required=False)
        _require_price(owner, "quote_amount", self.quote_amount, required=False)
        if self.filled > 0 and self.average is None:
            raise DataError(f"{owner}: filled {self.filled:g} but no `average` price")
        if self.status is OrderStatus.CLOSED and not (self.filled > 0 and self.remaining == 0):
            raise DataError(
                f"{owner}: `closed` means fully filled, but filled is {self.filled:g} "
                f"and remaining {self.remaining:g}"
            )
        object.__setattr__(self, "timestamp", _utc(owner, "timestamp", self.timestamp))
        if self.last_trade_timestamp is not None:
            moment = _utc(owner, "last_trade_timestamp", self.last_trade_timestamp)
            object.__setattr__(self, "last_trade_timestamp", moment)
        object.__setattr__(self, "trades", tuple(self.trades))

    @property
    def is_fully_filled(self) -> bool:
        """True when the order is ``closed``: everything ordered has filled."""
        return self.status is OrderStatus.CLOSED

    @property
    def is_open(self) -> bool:
        """True while the order may still fill."""
        return self.status is OrderStatus.OPEN

    @property
    def cost(self) -> float:
        """Quote units spent or received so far: ``filled x average`` (0 before a fill)."""
        return self.filled * self.average if self.average is not None else 0.0
