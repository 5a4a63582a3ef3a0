"""The fake Binance's account: balances, orders, fills and the filters Binance checks.

Pure bookkeeping, no HTTP: :mod:`tests.support.fake_binance` turns requests into calls here
and the results (or a :class:`BinanceError`) into Binance's JSON. Numbers are Decimals, so
the lot size and notional filters decide exactly as the exchange does.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

STEP = Decimal("0.00001")
MIN_QTY = Decimal("0.00001")
TICK = Decimal("0.01")
MIN_NOTIONAL = Decimal("5")


class BinanceError(Exception):
    """A refusal as Binance sends it: HTTP status, error code and message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def text(value: Decimal) -> str:
    """A number as Binance writes it: a string with 8 decimals."""
    return f"{value:.8f}"


@dataclass
class FakeOrder:
    """One order as the fake keeps it."""

    order_id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    quantity: Decimal
    quote_quantity: Decimal
    price: Decimal
    stop_price: Decimal
    time_ms: int
    status: str = "NEW"
    executed: Decimal = Decimal(0)
    cumulative_quote: Decimal = Decimal(0)
    update_ms: int = 0
    fills: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """GET /api/v3/order's format."""
        return {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            "price": text(self.price),
            "origQty": text(self.quantity if self.quantity else self.executed),
            "executedQty": text(self.executed),
            "cummulativeQuoteQty": text(self.cumulative_quote),
            "status": self.status,
            "timeInForce": "GTC",
            "type": self.type,
            "side": self.side,
            "stopPrice": text(self.stop_price),
            "icebergQty": text(Decimal(0)),
            "time": self.time_ms,
            "updateTime": self.update_ms or self.time_ms,
            "isWorking": self.status != "NEW" or self.type != "STOP_LOSS",
            "workingTime": self.time_ms,
            "origQuoteOrderQty": text(self.quote_quantity),
            "selfTradePreventionMode": "NONE",
        }


class Ledger:
    """Balances and orders of one fake account on BTCUSDT-like markets.

    Args:
        balances: Free balance per asset.
        prices: Last price per Binance symbol (``BTCUSDT``).
        bases: The base and quote asset of each symbol.
        fee_rate: Commission per fill, a fraction.
        fee_asset: ``received`` (the asset received, Binance's default) or an asset such as
            ``BNB`` valued at the ``BNBUSDT`` price.
    """

    def __init__(
        self,
        balances: dict[str, Decimal],
        prices: dict[str, Decimal],
        bases: dict[str, tuple[str, str]],
        *,
        fee_rate: Decimal = Decimal("0.001"),
        fee_asset: str = "received",
    ) -> None:
        self.free = dict(balances)
        self.locked: dict[str, Decimal] = {}
        self.prices = dict(prices)
        self.bases = bases
        self.fee_rate = fee_rate
        self.fee_asset = fee_asset
        self.orders: list[FakeOrder] = []
        self.trades: list[dict[str, Any]] = []
        self._order_ids = itertools.count(1000)
        self._trade_ids = itertools.count(5000)

    # -- orders -------------------------------------------------------------------------

    def place(self, params: dict[str, str], now_ms: int) -> FakeOrder:
        """POST /api/v3/order: check the filters and the balance, fill a market order."""
        symbol = params.get("symbol", "")
        if symbol not in self.bases:
            raise BinanceError(400, -1121, "Invalid symbol.")
        client_id = params.get("newClientOrderId") or f"fake-{next(self._order_ids)}"
        if any(o.client_order_id == client_id and o.status == "NEW" for o in self.orders):
            raise BinanceError(400, -2010, "Duplicate order sent.")
        side, kind = params.get("side", ""), params.get("type", "")
        if side not in ("BUY", "SELL") or kind not in ("MARKET", "LIMIT", "STOP_LOSS"):
            raise BinanceError(400, -1100, "Illegal characters found in parameter 'type'.")
        price = self.prices[symbol]
        quantity = Decimal(params.get("quantity", "0"))
        quote_quantity = Decimal(params.get("quoteOrderQty", "0"))
        if kind == "MARKET" and quote_quantity > 0:
            fill_quantity = (quote_quantity / price).quantize(STEP, rounding=ROUND_DOWN)
        else:
            self._check_lot(quantity)
            fill_quantity = quantity
        limit_price = Decimal(params.get("price", "0"))
        stop_price = Decimal(params.get("stopPrice", "0"))
        notional_price = limit_price if kind == "LIMIT" else (stop_price or price)
        if fill_quantity < MIN_QTY or fill_quantity * notional_price < MIN_NOTIONAL:
            raise BinanceError(400, -1013, "Filter failure: NOTIONAL")
        self._check_funds(symbol, side, fill_quantity, notional_price)
        order = FakeOrder(
            order_id=next(self._order_ids), client_order_id=client_id, symbol=symbol,
            side=side, type=kind, quantity=quantity, quote_quantity=quote_quantity,
            price=limit_price, stop_price=stop_price, time_ms=now_ms,
        )  # fmt: skip
        self.orders.append(order)
        if kind == "MARKET":
            self._fill(order, fill_quantity, price, now_ms)
        else:
            self._lock(order, fill_quantity, notional_price)
        return order

    def _check_lot(self, quantity: Decimal) -> None:
        if quantity < MIN_QTY or quantity % STEP != 0:
            raise BinanceError(400, -1013, "Filter failure: LOT_SIZE")

    def _check_funds(self, symbol: str, side: str, quantity: Decimal, price: Decimal) -> None:
        base, quote = self.bases[symbol]
        asset, needed = (quote, quantity * price) if side == "BUY" else (base, quantity)
        if self.free.get(asset, Decimal(0)) < needed:
            raise BinanceError(400, -2010, "Account has insufficient balance for requested action.")

    def _lock(self, order: FakeOrder, quantity: Decimal, price: Decimal) -> None:
        base, quote = self.bases[order.symbol]
        asset, amount = (quote, quantity * price) if order.side == "BUY" else (base, quantity)
        self.free[asset] -= amount
        self.locked[asset] = self.locked.get(asset, Decimal(0)) + amount

    def _unlock(self, order: FakeOrder) -> None:
        base, quote = self.bases[order.symbol]
        left = order.quantity - order.executed
        price = order.price if order.type == "LIMIT" else order.stop_price
        asset, amount = (quote, left * price) if order.side == "BUY" else (base, left)
        self.locked[asset] -= amount
        self.free[asset] += amount

    def _fill(self, order: FakeOrder, quantity: Decimal, price: Decimal, now_ms: int) -> None:
        base, quote = self.bases[order.symbol]
        cost = quantity * price
        if order.side == "BUY":
            received, paid, got, spent = base, quote, quantity, cost
        else:
            received, paid, got, spent = quote, base, cost, quantity
        if self.fee_asset == "received":
            fee_asset, fee = received, got * self.fee_rate
            got -= fee
        else:
            fee_asset = self.fee_asset
            fee = (cost * self.fee_rate / self.prices[f"{fee_asset}{quote}"]).quantize(
                Decimal("0.00000001")
            )
            self.free[fee_asset] = self.free.get(fee_asset, Decimal(0)) - fee
        self.free[paid] = self.free.get(paid, Decimal(0)) - spent
        self.free[received] = self.free.get(received, Decimal(0)) + got
        trade_id = next(self._trade_ids)
        order.fills.append(
            {"price": text(price), "qty": text(quantity), "commission": text(fee),
             "commissionAsset": fee_asset, "tradeId": trade_id}
        )  # fmt: skip
        self.trades.append(
            {"symbol": order.symbol, "id": trade_id, "orderId": order.order_id,
             "orderListId": -1, "price": text(price), "qty": text(quantity),
             "quoteQty": text(cost), "commission": text(fee), "commissionAsset": fee_asset,
             "time": now_ms, "isBuyer": order.side == "BUY", "isMaker": order.type == "LIMIT",
             "isBestMatch": True}
        )  # fmt: skip
        order.executed += quantity
        order.cumulative_quote += cost
        order.status = "FILLED"
        order.update_ms = now_ms

    def set_price(self, symbol: str, price: Decimal, now_ms: int) -> None:
        """Move the market: resting stops at or above the price and crossed limits fill."""
        self.prices[symbol] = price
        for order in self.orders:
            if order.symbol != symbol or order.status != "NEW":
                continue
            if order.type == "STOP_LOSS" and (
                (order.side == "SELL" and price <= order.stop_price)
                or (order.side == "BUY" and price >= order.stop_price)
            ):
                self._unlock(order)
                self._fill(order, order.quantity, price, now_ms)
            elif order.type == "LIMIT" and (
                (order.side == "BUY" and price <= order.price)
                or (order.side == "SELL" and price >= order.price)
            ):
                self._unlock(order)
                self._fill(order, order.quantity, order.price, now_ms)

    def find(self, params: dict[str, str]) -> FakeOrder:
        """The order named by ``orderId`` or ``origClientOrderId`` (-2013 when none)."""
        for order in self.orders:
            if order.symbol != params.get("symbol"):
                continue
            if str(order.order_id) == params.get("orderId") or (
                order.client_order_id == params.get("origClientOrderId")
            ):
                return order
        raise BinanceError(400, -2013, "Order does not exist.")

    def cancel(self, params: dict[str, str], now_ms: int) -> FakeOrder:
        """DELETE /api/v3/order: cancel an open order (-2011 for an unknown or ended one)."""
        try:
            order = self.find(params)
        except BinanceError:
            raise BinanceError(400, -2011, "Unknown order sent.") from None
        if order.status != "NEW":
            raise BinanceError(400, -2011, "Unknown order sent.")
        self._unlock(order)
        order.status = "CANCELED"
        order.update_ms = now_ms
        return order

    def balances(self) -> list[dict[str, str]]:
        """/api/v3/account's ``balances``."""
        assets = sorted(set(self.free) | set(self.locked))
        return [
            {"asset": asset, "free": text(self.free.get(asset, Decimal(0))),
             "locked": text(self.locked.get(asset, Decimal(0)))}
            for asset in assets
        ]  # fmt: skip
