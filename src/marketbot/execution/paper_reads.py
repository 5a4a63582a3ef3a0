"""What the paper venue answers: markets, prices, balances, orders, trades and positions.

:class:`PaperVenueReads` is the read side of :class:`~marketbot.execution.paper.PaperExchange`:
every method here reads the books in memory under the venue's lock and changes nothing;
the venue's events (orders placed, edited, canceled; bars and tickers) and its ledger
writes are :mod:`marketbot.execution.paper`'s.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime

from marketbot.core.clock import Clock, as_utc
from marketbot.core.errors import ExchangeError
from marketbot.execution.exchange import OrderNotFoundError
from marketbot.execution.models import (
    AssetBalance,
    Balance,
    Candle,
    Fee,
    Market,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Ticker,
    Trade,
)
from marketbot.execution.paper_ledger_rows import BarRow, FillRow, OrderRow, PositionRow, SymbolRow
from marketbot.execution.paper_records import PaperPosition, base_asset, paper_position
from marketbot.net.rate_limiter import PRIORITY_NORMAL

__all__ = ["PaperVenueReads"]


class PaperVenueReads:
    """The read side of the paper venue.

    :class:`~marketbot.execution.paper.PaperExchange` sets the books it reads (see its
    ``__init__`` and ``_load``).
    """

    quote: str
    _clock: Clock
    _lock: threading.RLock
    _cash: float
    _orders: dict[int, OrderRow]
    _open_ids: dict[int, None]
    _fills: list[FillRow]
    _fills_by_order: dict[int, list[FillRow]]
    _positions: dict[str, PositionRow]
    _symbols: dict[str, SymbolRow]
    _bars: dict[str, list[BarRow]]

    # -- the Exchange protocol: markets and prices -----------------------------------------

    def load_markets(self, *, priority: int = PRIORITY_NORMAL) -> Mapping[str, Market]:
        """A market (no minimums) for every symbol the venue has seen."""
        with self._lock:
            return {s: Market(s, base_asset(s), self.quote) for s in sorted(self._symbols)}

    def fetch_ticker(self, symbol: str, *, priority: int = PRIORITY_NORMAL) -> Ticker:
        """The last price seen: the last bar's close in a replay, the last ticker forward."""
        with self._lock:
            info = self._symbols.get(symbol)
            if info is None or info.last_price is None or info.last_time is None:
                raise ExchangeError(f"paper exchange: no price for {symbol} yet")
            at = max(as_utc(self._clock.now()), info.last_time)
            return Ticker(symbol, at, info.last_price, info.bid, info.ask)

    def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str,
        *,
        since: datetime | None = None,
        limit: int | None = None,
        priority: int = PRIORITY_NORMAL,
    ) -> list[Candle]:
        """The bars processed so far (whatever their timeframe), oldest first."""
        with self._lock:
            candles = [
                Candle(bar.time, bar.open, bar.high, bar.low, bar.close, bar.volume)
                for bar in self._bars.get(symbol, [])
                if since is None or bar.time >= as_utc(since)
            ]
            return candles[:limit] if limit is not None else candles

    def fetch_balance(self, *, priority: int = PRIORITY_NORMAL) -> Balance:
        """The quote balance and each base asset seen (``used``: held by open orders)."""
        with self._lock:
            assets = {
                asset: AssetBalance(max(free, 0.0), max(used, 0.0))
                for asset, free, used, _ in self._balance_rows()
            }
            return Balance(assets, at=as_utc(self._clock.now()))

    # -- the Exchange protocol: order queries ----------------------------------------------

    def fetch_order(
        self, order_id: str, symbol: str | None = None, *, priority: int = PRIORITY_NORMAL
    ) -> Order:
        """One order by id.

        Raises:
            OrderNotFoundError: No order has this id.
        """
        with self._lock:
            return self._order(self._row(order_id))

    def fetch_order_by_client_id(
        self, client_order_id: str, symbol: str | None = None, *, priority: int = PRIORITY_NORMAL
    ) -> Order | None:
        """The latest order with this client id (of ``symbol``, if given), or None."""
        with self._lock:
            for row in reversed(self._orders.values()):
                if row.client_order_id == client_order_id and symbol in (None, row.symbol):
                    return self._order(row)
            return None

    def fetch_open_orders(
        self,
        symbol: str | None = None,
        *,
        since: datetime | None = None,
        limit: int | None = None,
        priority: int = PRIORITY_NORMAL,
    ) -> list[Order]:
        """Open orders (bracket carriers included), oldest first."""
        with self._lock:
            return self._select(symbol, since, limit, open_orders=True)

    def fetch_closed_orders(
        self,
        symbol: str | None = None,
        *,
        since: datetime | None = None,
        limit: int | None = None,
        priority: int = PRIORITY_NORMAL,
    ) -> list[Order]:
        """Orders that ended (closed, canceled, rejected), oldest first."""
        with self._lock:
            return self._select(symbol, since, limit, open_orders=False)

    def fetch_my_trades(
        self,
        symbol: str | None = None,
        *,
        since: datetime | None = None,
        limit: int | None = None,
        priority: int = PRIORITY_NORMAL,
    ) -> list[Trade]:
        """Every fill, oldest first, each with its order's client id."""
        with self._lock:
            trades = [
                self._trade(fill)
                for fill in self._fills
                if symbol in (None, fill.symbol)
                and (since is None or fill.timestamp >= as_utc(since))
            ]
            return trades[:limit] if limit is not None else trades

    # -- the venue's own reads ----------------------------------------------------------------

    def open_position(self, symbol: str) -> PaperPosition | None:
        """The position held in ``symbol``, or None when flat."""
        with self._lock:
            held = self._positions.get(symbol)
            return None if held is None else paper_position(held)

    def quote_cash(self) -> float:
        """The quote balance as the step core keeps cash (free and held by orders)."""
        with self._lock:
            return self._cash

    def equity(self, marks: Mapping[str, float]) -> float:
        """Cash plus every position at its mark (``marks``, else the last price seen).

        Raises:
            ExchangeError: A position with neither a mark nor a price seen.
        """
        with self._lock:
            total = self._cash
            for symbol, held in self._positions.items():
                mark = marks.get(symbol, self._symbols[symbol].last_price)
                if mark is None:
                    raise ExchangeError(f"paper exchange: no mark for {symbol}")
                total += held.position.units * mark
            return total

    # -- reading the books ---------------------------------------------------------------------

    def _row(self, order_id: str) -> OrderRow:
        row = self._orders.get(int(order_id)) if str(order_id).isdigit() else None
        if row is None:
            raise OrderNotFoundError(f"paper exchange: no order {order_id!r}")
        return row

    def _open_orders(self) -> list[OrderRow]:
        return [self._orders[order_id] for order_id in self._open_ids]

    def _open_order_with(self, client_order_id: str) -> OrderRow | None:
        return next(
            (row for row in self._open_orders() if row.client_order_id == client_order_id), None
        )

    def _quote_used(self) -> float:
        return sum(row.reserved for row in self._open_orders() if row.side == "buy")

    def _balance_rows(self) -> list[tuple[str, float, float, float]]:
        used = self._quote_used()
        rows = [(self.quote, self._cash - used, used, self._cash)]
        for symbol in sorted(self._symbols):
            held = self._positions.get(symbol)
            units = held.position.units if held is not None else 0.0
            base_used = sum(
                row.reserved
                for row in self._open_orders()
                if row.symbol == symbol and row.side == "sell"
            )
            rows.append((base_asset(symbol), units - base_used, base_used, units))
        return rows

    def _order(self, row: OrderRow) -> Order:
        filled = row.filled
        if row.quote_amount is not None:
            amount, remaining = filled, 0.0  # Binance's origQty of a quoteOrderQty order
        else:
            amount = row.amount or 0.0
            remaining = max(amount - filled, 0.0) if row.is_open else 0.0
        return Order(
            id=str(row.id) if row.id else "", client_order_id=row.client_order_id,
            symbol=row.symbol, side=OrderSide(row.side), type=OrderType(row.type),
            amount=amount, status=OrderStatus(row.status), timestamp=row.timestamp,
            price=row.price, stop_price=row.stop_price, filled=filled, remaining=remaining,
            average=row.cost / filled if filled > 0.0 else None,
            fee=Fee(row.fee, self.quote) if filled > 0.0 else None,
            trades=tuple(self._trade(fill) for fill in self._fills_by_order.get(row.id, ())),
            quote_amount=row.quote_amount, last_trade_timestamp=row.last_trade_timestamp,
            reason=row.reason,
        )  # fmt: skip

    def _trade(self, fill: FillRow) -> Trade:
        return Trade(
            id=str(fill.id), order_id=str(fill.order_id), symbol=fill.symbol,
            side=OrderSide(fill.side), amount=fill.amount, price=fill.price,
            timestamp=fill.timestamp, fee=Fee(fill.fee, self.quote),
            client_order_id=fill.client_order_id,
        )  # fmt: skip

    def _select(
        self, symbol: str | None, since: datetime | None, limit: int | None, *, open_orders: bool
    ) -> list[Order]:
        rows = [
            row
            for row in self._orders.values()
            if row.is_open == open_orders
            and symbol in (None, row.symbol)
            and (since is None or row.timestamp >= as_utc(since))
        ]
        return [self._order(row) for row in (rows[:limit] if limit is not None else rows)]
