"""An in-memory exchange whose fills the test scripts: a real ``Exchange``, not a mock.

Orders rest open and never fill unless the test says otherwise, by client order id (known
in advance, since client ids are deterministic):

- ``script_fill(cid, price=, amount=, at=)``: fill ``amount`` (default: all that is left) at
  ``price`` once the clock reaches ``at`` (default: at once). Fills are applied lazily, at
  the start of the next call of any method, so a fake sleep that advances the clock makes
  them land on the next poll;
- ``script_fill(..., on_cancel=True)``: the fill lands just before a cancel of the order
  arrives (the race a timeout handler must re-read the order for);
- ``script_rejection(cid, reason)``: ``create_order`` answers with a rejected order;
- ``script_expiry(cid, at=)``: the exchange expires the order at ``at``;
- ``script_error(method, error, times=1)``: the next ``times`` calls of ``method`` raise.

Every call is recorded in ``calls`` with its priority and the clock's time, so tests can
assert that cancels went out at priority 1. Balances are a fixed snapshot: the paper
exchange keeps a ledger, this double does not.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from marketbot.core.clock import Clock
from marketbot.core.errors import ExchangeError, MarketbotError
from marketbot.execution import (
    PRIORITY_EMERGENCY,
    PRIORITY_NORMAL,
    Balance,
    Candle,
    Fee,
    Market,
    Order,
    OrderNotFoundError,
    OrderSide,
    OrderStatus,
    OrderType,
    Ticker,
    Trade,
)

# A cumulative fill this close (relative) to the amount ordered completes the order.
_COMPLETE = 1e-12


@dataclass(frozen=True, slots=True)
class Call:
    """One call the exchange received."""

    method: str
    priority: int
    at: datetime
    args: tuple[Any, ...] = ()


@dataclass(slots=True)
class _Fill:
    price: float
    amount: float | None
    at: datetime | None
    on_cancel: bool


@dataclass(slots=True)
class _Script:
    fills: list[_Fill] = field(default_factory=list)
    rejection: str | None = None
    expires_at: datetime | None = None


class ScriptedExchange:
    """An exchange that does exactly what the test scripted, and records every call.

    Args:
        clock: The test's clock (usually a ManualClock shared with the code under test).
        markets: The pairs it lists; orders breaking their minimums are rejected.
        tickers: The latest prices by symbol.
        candles: Bars by ``(symbol, timeframe)``, oldest first.
        balance: What ``fetch_balance`` answers.
        fee_rate: The fee on each fill's cost, paid in the quote currency.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        markets: Iterable[Market] = (),
        tickers: Mapping[str, Ticker] | None = None,
        candles: Mapping[tuple[str, str], list[Candle]] | None = None,
        balance: Balance | None = None,
        fee_rate: float = 0.0,
    ) -> None:
        self.clock = clock
        self.markets = {market.symbol: market for market in markets}
        self.tickers = dict(tickers or {})
        self.candles = dict(candles or {})
        self.balance = balance or Balance()
        self.fee_rate = fee_rate
        self.calls: list[Call] = []
        # The ``params`` of each create_order call, by client order id (the last call's).
        self.params: dict[str, dict[str, object]] = {}
        self._orders: dict[str, Order] = {}
        self._by_client_id: dict[str, str] = {}
        self._scripts: dict[str, _Script] = {}
        self._errors: dict[str, list[MarketbotError]] = {}
        self._lock = threading.RLock()

    # -- scripting -------------------------------------------------------------------------

    def script_fill(
        self,
        client_order_id: str,
        *,
        price: float,
        amount: float | None = None,
        at: datetime | None = None,
        on_cancel: bool = False,
    ) -> None:
        """Fill the order with this client id (see the module doc)."""
        with self._lock:
            script = self._scripts.setdefault(client_order_id, _Script())
            script.fills.append(_Fill(price, amount, at, on_cancel))

    def script_rejection(self, client_order_id: str, reason: str = "insufficient funds") -> None:
        """Reject the order with this client id when it is created."""
        with self._lock:
            self._scripts.setdefault(client_order_id, _Script()).rejection = reason

    def script_expiry(self, client_order_id: str, *, at: datetime) -> None:
        """Expire what is left of the order with this client id once the clock reaches ``at``."""
        with self._lock:
            self._scripts.setdefault(client_order_id, _Script()).expires_at = at

    def script_error(self, method: str, error: MarketbotError, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` raise ``error``."""
        with self._lock:
            self._errors.setdefault(method, []).extend([error] * times)

    def priorities(self, method: str) -> list[int]:
        """The priority of each call of ``method`` so far."""
        return [call.priority for call in self.calls if call.method == method]

    # -- the Exchange protocol -------------------------------------------------------------

    def load_markets(self, *, priority: int = PRIORITY_NORMAL) -> Mapping[str, Market]:
        self._begin("load_markets", priority)
        return dict(self.markets)

    def fetch_ticker(self, symbol: str, *, priority: int = PRIORITY_NORMAL) -> Ticker:
        self._begin("fetch_ticker", priority, symbol)
        if symbol not in self.tickers:
            raise ExchangeError(f"scripted exchange: no ticker for {symbol}")
        return self.tickers[symbol]

    def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str,
        *,
        since: datetime | None = None,
        limit: int | None = None,
        priority: int = PRIORITY_NORMAL,
    ) -> list[Candle]:
        self._begin("fetch_ohlcv", priority, symbol, timeframe)
        bars = [
            bar
            for bar in self.candles.get((symbol, timeframe), [])
            if since is None or bar.opened_at >= since
        ]
        return bars[:limit] if limit is not None else bars

    def fetch_balance(self, *, priority: int = PRIORITY_NORMAL) -> Balance:
        self._begin("fetch_balance", priority)
        return self.balance

    def create_order(
        self,
        symbol: str,
        type: OrderType,
        side: OrderSide,
        amount: float | None = None,
        price: float | None = None,
        *,
        client_order_id: str,
        stop_price: float | None = None,
        cost: float | None = None,
        params: Mapping[str, object] | None = None,
        priority: int = PRIORITY_NORMAL,
    ) -> Order:
        with self._lock:
            self._begin("create_order", priority, symbol, type, side, amount, price)
            self.params[client_order_id] = dict(params or {})
            if client_order_id in self._by_client_id:  # idempotent, as the protocol says
                return self._orders[self._by_client_id[client_order_id]]
            if (amount is None) == (cost is None):
                raise ExchangeError("scripted exchange: give exactly one of amount and cost")
            order = Order(
                id=str(len(self._orders) + 1),
                client_order_id=client_order_id,
                symbol=symbol,
                side=side,
                type=type,
                amount=amount if amount is not None else 0.0,
                status=OrderStatus.OPEN,
                timestamp=self.clock.now(),
                price=price,
                stop_price=stop_price,
                remaining=amount if amount is not None else 0.0,
                quote_amount=cost,
            )
            reason = self._refusal(order)
            if reason:
                order = replace(order, status=OrderStatus.REJECTED, remaining=0.0, reason=reason)
            self._orders[order.id] = order
            self._by_client_id[client_order_id] = order.id
            self._apply_due()
            return self._orders[order.id]

    def edit_order(
        self,
        order_id: str,
        symbol: str,
        *,
        amount: float | None = None,
        price: float | None = None,
        stop_price: float | None = None,
        priority: int = PRIORITY_NORMAL,
    ) -> Order:
        with self._lock:
            self._begin("edit_order", priority, order_id)
            order = self._get(order_id)
            if not order.is_open:
                raise ExchangeError(f"scripted exchange: order {order_id} is {order.status}")
            new_amount = amount if amount is not None else order.amount
            order = replace(
                order,
                amount=new_amount,
                remaining=max(new_amount - order.filled, 0.0),
                price=price if price is not None else order.price,
                stop_price=stop_price if stop_price is not None else order.stop_price,
            )
            self._orders[order_id] = order
            return order

    def cancel_order(
        self, order_id: str, symbol: str | None = None, *, priority: int = PRIORITY_EMERGENCY
    ) -> Order:
        with self._lock:
            self._begin("cancel_order", priority, order_id)
            order = self._get(order_id)
            for fill in self._script_of(order).fills:
                if fill.on_cancel and self._orders[order_id].is_open:
                    self._apply_fill(order_id, fill)
            order = self._orders[order_id]
            if order.is_open:
                order = replace(
                    order, status=OrderStatus.CANCELED, remaining=0.0, reason="canceled by request"
                )
                self._orders[order_id] = order
            return order

    def fetch_order(
        self, order_id: str, symbol: str | None = None, *, priority: int = PRIORITY_NORMAL
    ) -> Order:
        with self._lock:
            self._begin("fetch_order", priority, order_id)
            return self._get(order_id)

    def fetch_order_by_client_id(
        self, client_order_id: str, symbol: str | None = None, *, priority: int = PRIORITY_NORMAL
    ) -> Order | None:
        with self._lock:
            self._begin("fetch_order_by_client_id", priority, client_order_id)
            order_id = self._by_client_id.get(client_order_id)
            return self._orders[order_id] if order_id is not None else None

    def fetch_open_orders(
        self,
        symbol: str | None = None,
        *,
        since: datetime | None = None,
        limit: int | None = None,
        priority: int = PRIORITY_NORMAL,
    ) -> list[Order]:
        with self._lock:
            self._begin("fetch_open_orders", priority, symbol)
            return self._select(symbol, since, limit, open_orders=True)

    def fetch_closed_orders(
        self,
        symbol: str | None = None,
        *,
        since: datetime | None = None,
        limit: int | None = None,
        priority: int = PRIORITY_NORMAL,
    ) -> list[Order]:
        with self._lock:
            self._begin("fetch_closed_orders", priority, symbol)
            return self._select(symbol, since, limit, open_orders=False)

    def fetch_my_trades(
        self,
        symbol: str | None = None,
        *,
        since: datetime | None = None,
        limit: int | None = None,
        priority: int = PRIORITY_NORMAL,
    ) -> list[Trade]:
        with self._lock:
            self._begin("fetch_my_trades", priority, symbol)
            trades = [
                trade
                for order in self._orders.values()
                for trade in order.trades
                if (symbol is None or trade.symbol == symbol)
                and (since is None or trade.timestamp >= since)
            ]
            trades.sort(key=lambda trade: trade.timestamp)
            return trades[:limit] if limit is not None else trades

    # -- internals -------------------------------------------------------------------------

    def _begin(self, method: str, priority: int, *args: Any) -> None:
        """Record the call, raise a scripted error, and apply what is due by now."""
        with self._lock:
            self.calls.append(Call(method, priority, self.clock.now(), args))
            errors = self._errors.get(method)
            if errors:
                raise errors.pop(0)
            self._apply_due()

    def _get(self, order_id: str) -> Order:
        if order_id not in self._orders:
            raise OrderNotFoundError(f"scripted exchange: no order {order_id!r}")
        return self._orders[order_id]

    def _script_of(self, order: Order) -> _Script:
        return self._scripts.get(order.client_order_id, _Script())

    def _refusal(self, order: Order) -> str:
        script = self._script_of(order)
        if script.rejection is not None:
            return script.rejection
        market = self.markets.get(order.symbol)
        if self.markets and market is None:
            return f"unknown symbol {order.symbol}"
        ticker = self.tickers.get(order.symbol)
        price = order.price or order.stop_price or (ticker.last if ticker else None)
        if market is None or price is None or order.quote_amount is not None:
            return ""
        return market.refusal(order.amount, price)

    def _apply_due(self) -> None:
        now = self.clock.now()
        for order_id, order in list(self._orders.items()):
            if not order.is_open:
                continue
            script = self._script_of(order)
            for fill in list(script.fills):
                if not fill.on_cancel and (fill.at is None or fill.at <= now):
                    script.fills.remove(fill)
                    if self._orders[order_id].is_open:
                        self._apply_fill(order_id, fill)
            if script.expires_at is not None and script.expires_at <= now:
                current = self._orders[order_id]
                if current.is_open:
                    self._orders[order_id] = replace(
                        current, status=OrderStatus.EXPIRED, remaining=0.0, reason="expired"
                    )

    def _apply_fill(self, order_id: str, fill: _Fill) -> None:
        order = self._orders[order_id]
        moment = fill.at if fill.at is not None and not fill.on_cancel else self.clock.now()
        moment = max(moment, order.timestamp)
        if order.quote_amount is not None:
            left_to_spend = order.quote_amount - order.cost
            amount = fill.amount if fill.amount is not None else left_to_spend / fill.price
            amount = min(amount, left_to_spend / fill.price)
        else:
            amount = min(
                fill.amount if fill.amount is not None else order.remaining, order.remaining
            )
        fee_cost = amount * fill.price * self.fee_rate
        trade = Trade(
            id=f"{order.id}-{len(order.trades) + 1}",
            order_id=order.id,
            symbol=order.symbol,
            side=order.side,
            amount=amount,
            price=fill.price,
            timestamp=moment,
            fee=Fee(fee_cost, _quote(order.symbol)),
            client_order_id=order.client_order_id,
        )
        filled = order.filled + amount
        cost = order.cost + amount * fill.price
        if order.quote_amount is not None:
            done = cost >= order.quote_amount * (1 - _COMPLETE)
            ordered, remaining = filled, 0.0
        else:
            done = order.amount - filled <= order.amount * _COMPLETE
            ordered, remaining = order.amount, max(order.amount - filled, 0.0)
        if done:
            filled, remaining = ordered, 0.0
        total_fee = (order.fee.cost if order.fee is not None else 0.0) + fee_cost
        self._orders[order_id] = replace(
            order,
            amount=ordered,
            filled=filled,
            remaining=remaining,
            average=cost / filled,
            status=OrderStatus.CLOSED if done else OrderStatus.OPEN,
            fee=Fee(total_fee, _quote(order.symbol)),
            trades=(*order.trades, trade),
            last_trade_timestamp=moment,
        )

    def _select(
        self, symbol: str | None, since: datetime | None, limit: int | None, *, open_orders: bool
    ) -> list[Order]:
        orders = [
            order
            for order in self._orders.values()
            if order.is_open == open_orders
            and (symbol is None or order.symbol == symbol)
            and (since is None or order.timestamp >= since)
        ]
        return orders[:limit] if limit is not None else orders


def _quote(symbol: str) -> str:
    return symbol.partition("/")[2]
