"""The paper exchange: an ``Exchange`` that fills with the backtest's step core.

``PaperExchange(ledger_path, settings, clock=...)`` keeps its books in its own SQLite ledger
(:mod:`marketbot.execution.paper_ledger`: one transaction per event, so it survives a SIGKILL
as a venue would) and fills orders with the bar-step core
(:mod:`marketbot.execution.paper_market`), so that replaying bars through the bot gives the
backtest's trades. A replay hands it each bar with :meth:`PaperExchange.process_bar`; forward
paper trading hands it tickers with :meth:`PaperExchange.process_ticker`. docs/execution.md
("Paper exchange") has the rules.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from marketbot.backtest.step_nb import KernelSettings
from marketbot.core.clock import Clock, as_utc
from marketbot.core.errors import DataError, ExchangeError
from marketbot.execution.models import Order, OrderSide, OrderType, Ticker
from marketbot.execution.paper_ledger import (
    BarRow,
    FillRow,
    LedgerChanges,
    OrderRow,
    PaperLedger,
    PositionRow,
    SymbolRow,
    paper_ledger_path,
)
from marketbot.execution.paper_market import (
    IdSource,
    PaperBar,
    PaperKnobs,
    PaperPosition,
    SymbolBook,
    base_asset,
    check_bar,
)
from marketbot.execution.paper_reads import PaperVenueReads
from marketbot.execution.paper_requests import checked_params, checked_request, is_positive_number
from marketbot.execution.paper_settings import PaperSettings
from marketbot.net.rate_limiter import PRIORITY_EMERGENCY, PRIORITY_NORMAL

__all__ = [
    "PaperBar",
    "PaperExchange",
    "PaperKnobs",
    "PaperPosition",
    "PaperSettings",
    "paper_ledger_path",
]

# Amounts within this relative distance of a balance count as that balance (float noise in
# what the bot read back and sends).
_TOLERANCE = 1e-9


class PaperExchange(PaperVenueReads):
    """A paper venue: the ``Exchange`` protocol over its own ledger, filling with the step core.

    Args:
        ledger_path: The ledger file (``paper_ledger_path(data_dir)`` by convention). A new
            file opens a new account with ``settings.config.initial_cash``; an existing one
            is resumed (balances, open orders, positions and their brackets).
        settings: Costs, starting cash and bracket rules.
        clock: Gives the time of accepted, edited and canceled orders (fills carry the
            bar's or the ticker's time).
        knobs: Partial fills, rejections and latency; none by default.

    Raises:
        ConfigError: The ledger was made with other settings (the message names both).
    """

    def __init__(
        self,
        ledger_path: Path,
        settings: PaperSettings,
        *,
        clock: Clock,
        knobs: PaperKnobs | None = None,
    ) -> None:
        self.settings = settings
        self.knobs = knobs or PaperKnobs()
        self.quote = settings.quote
        self._clock = clock
        self._kernel: KernelSettings = settings.kernel_settings()
        self._lock = threading.RLock()
        cash = float(settings.config.initial_cash)
        self._ledger = PaperLedger(
            Path(ledger_path),
            settings_json=settings.to_json(),
            settings_hash=settings.digest(),
            opening_balances=[(settings.quote, cash, 0.0, cash)],
        )
        self._creates = 0
        self._load()

    @property
    def ledger_path(self) -> Path:
        """The ledger file."""
        return self._ledger.path

    def close(self) -> None:
        """Close the ledger (every event is already committed)."""
        with self._lock:
            self._ledger.close()

    def __enter__(self) -> PaperExchange:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the Exchange protocol: orders -----------------------------------------------------

    def create_order(  # noqa: PLR0913 - the Exchange protocol's create_order
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
        """Accept an order (it fills at a later bar or ticker) or refuse it with a reason.

        A client id is refused while an order with it is open (and that refusal is not
        stored, as on Binance); any other refusal is stored as a rejected order.

        Raises:
            ExchangeError: A malformed request: an unknown type or side, not exactly one of
                ``amount`` and ``cost``, a limit order without a price, a size or price that
                is not a positive number, or ``params`` of the wrong kind.
        """
        with self._event():
            self._creates += 1
            order_type, order_side = checked_request(type, side, amount, price, stop_price, cost)
            if not isinstance(client_order_id, str) or not client_order_id:
                raise ExchangeError("paper exchange: client_order_id must be a non-empty string")
            row = OrderRow(
                id=0, client_order_id=client_order_id, symbol=symbol, side=order_side.value,
                type=order_type.value, status="open", timestamp=as_utc(self._clock.now()),
                amount=None if amount is None else float(amount),
                quote_amount=None if cost is None else float(cost),
                price=None if price is None or order_type is not OrderType.LIMIT else float(price),
                stop_price=None if stop_price is None else float(stop_price),
                active_from_step=self._symbol(symbol).steps + 1 + self.knobs.latency_bars,
                priority=priority, params=checked_params(params),
            )  # fmt: skip
            duplicate = self._open_order_with(client_order_id)
            if duplicate is not None:
                row.status = "rejected"
                row.reason = f"duplicate client order id: order {duplicate.id} with it is open"
                return self._order(row)
            row.id = self._ids.next_order()
            refusal = self._refusal(row)
            if refusal:
                row.status, row.reason, row.reserved = "rejected", refusal, 0.0
            self._orders[row.id] = row
            if row.is_open:
                self._open_ids[row.id] = None
            self._write(LedgerChanges(orders=[row], balances=self._balance_rows(),
                                      symbols=[self._symbol(symbol)]))  # fmt: skip
            return self._order(row)

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
        """Move a carrier's shown stop, or a limit order's price or amount.

        A carrier's ``stop_price`` is what it shows (the loop moves the trailing level); the
        venue fills its legs by the step core whatever it shows.

        Raises:
            OrderNotFoundError: No order has this id.
            ExchangeError: The order ended, is a market order, a carrier edit other than its
                stop price, a non-positive value, or a limit buy the free quote cannot hold.
        """
        with self._event():
            row = self._row(order_id)
            if not row.is_open:
                raise ExchangeError(f"paper exchange: order {order_id} is {row.status}")
            for name, value in (("amount", amount), ("price", price), ("stop_price", stop_price)):
                if value is not None and not is_positive_number(value):
                    raise ExchangeError(f"paper exchange: {name}={value!r} must be positive")
            if row.is_carrier:
                if amount is not None or price is not None or stop_price is None:
                    raise ExchangeError(
                        "paper exchange: a carrier follows its position; only its "
                        "stop_price can be edited"
                    )
                row.type, row.stop_price, row.price = "stop", float(stop_price), None
            elif row.type == "limit":
                self._edit_limit(row, amount, price)
            else:
                raise ExchangeError(f"paper exchange: {row.type} orders cannot be edited")
            self._write(LedgerChanges(orders=[row], balances=self._balance_rows()))
            return self._order(row)

    def cancel_order(
        self, order_id: str, symbol: str | None = None, *, priority: int = PRIORITY_EMERGENCY
    ) -> Order:
        """Cancel an open order; an ended one is returned unchanged.

        Canceling a carrier takes the position's bracket off: no leg fires any more.

        Raises:
            OrderNotFoundError: No order has this id.
        """
        with self._event():
            row = self._row(order_id)
            if not row.is_open:
                return self._order(row)
            row.status, row.reason, row.reserved = "canceled", "canceled by request", 0.0
            positions: dict[str, PositionRow | None] = {}
            held = self._positions.get(row.symbol)
            if held is not None and held.carrier_order_id == row.id:
                held.carrier_order_id = None
                positions[row.symbol] = held
            self._open_ids.pop(row.id, None)
            self._write(LedgerChanges(orders=[row], balances=self._balance_rows(),
                                      positions=positions))  # fmt: skip
            return self._order(row)

    # -- driving the venue -----------------------------------------------------------------

    def process_bar(self, symbol: str, bar: PaperBar) -> list[Order]:
        """Fill what ``bar`` fills, in the kernel's order; every order it changed.

        One ledger transaction: the bar, its fills and cancels, the position and balances.

        Raises:
            DataError: A price that is not a positive number, a high below a price or a low
                above one, or a bar not after the last one of ``symbol``.
        """
        with self._event():
            time = as_utc(bar.time)
            check_bar(symbol, bar)
            bars = self._bars.setdefault(symbol, [])
            if bars and time <= bars[-1].time:
                raise DataError(
                    f"paper exchange: {symbol} bar at {time.isoformat()} is not after the "
                    f"last bar processed ({bars[-1].time.isoformat()})"
                )
            book = self._book(symbol, time, bar.index)
            book.run_bar(replace(bar, time=time))
            info = self._symbols[symbol]
            info.last_price, info.bid, info.ask, info.last_time = bar.close, None, None, time
            row = BarRow(symbol, time, bar.index, bar.open, bar.high, bar.low, bar.close,
                         bar.volume)  # fmt: skip
            bars.append(row)
            return self._settle(book, [row])

    def process_ticker(self, symbol: str, ticker: Ticker) -> list[Order]:
        """Forward paper trading: fill what this ticker fills; every order it changed.

        Market and stop-like exits fill at the bid (the last price without one), buys at the
        ask (or the last price), each plus slippage against the order; limit orders fill
        when the ticker reaches them, at the ticker, without slippage. The trailing extreme
        follows the bid.

        Raises:
            DataError: A ticker older than the last one seen for ``symbol``.
        """
        with self._event():
            info = self._symbol(symbol)
            time = as_utc(ticker.at)
            if info.last_time is not None and time < info.last_time:
                raise DataError(f"paper exchange: {symbol} ticker at {time} is out of order")
            book = self._book(symbol, time, -1)
            sell_price = ticker.bid if ticker.bid is not None else ticker.last
            book.run_ticker(sell_price, ticker.ask if ticker.ask is not None else ticker.last)
            info.last_price, info.bid, info.ask, info.last_time = (
                ticker.last, ticker.bid, ticker.ask, time
            )  # fmt: skip
            return self._settle(book, [])

    # -- internals -------------------------------------------------------------------------

    def _load(self) -> None:
        contents = self._ledger.load()
        self._cash = contents.cash
        self._orders: dict[int, OrderRow] = {row.id: row for row in contents.orders}
        self._open_ids: dict[int, None] = {row.id: None for row in contents.orders if row.is_open}
        self._fills: list[FillRow] = contents.fills
        self._fills_by_order: dict[int, list[FillRow]] = {}
        for fill in contents.fills:
            self._fills_by_order.setdefault(fill.order_id, []).append(fill)
        self._positions = {row.symbol: row for row in contents.positions}
        self._symbols = {row.symbol: row for row in contents.symbols}
        self._bars: dict[str, list[BarRow]] = {}
        for bar in contents.bars:
            self._bars.setdefault(bar.symbol, []).append(bar)
        self._ids = IdSource(
            max(self._orders, default=0), max((f.id for f in contents.fills), default=0)
        )

    @contextmanager
    def _event(self) -> Iterator[None]:
        """One event, under the lock.

        If anything fails (the ledger's write included), the books are reloaded as the
        ledger has them, so that memory never runs ahead of the file.
        """
        with self._lock:
            try:
                yield
            except BaseException:
                self._load()
                raise

    def _write(self, changes: LedgerChanges) -> None:
        self._ledger.write(changes)

    def _symbol(self, symbol: str) -> SymbolRow:
        return self._symbols.setdefault(symbol, SymbolRow(symbol))

    def _open_order_with(self, client_order_id: str) -> OrderRow | None:
        return next(
            (row for row in self._open_orders() if row.client_order_id == client_order_id), None
        )

    def _book(self, symbol: str, time: datetime, bar_index: int) -> SymbolBook:
        info = self._symbol(symbol)
        info.steps += 1
        held = self._positions.get(symbol)
        carrier = None
        if held is not None and held.carrier_order_id is not None:
            carrier = self._orders[held.carrier_order_id]
        orders = [row for row in self._open_orders() if row.symbol == symbol and not row.is_carrier]
        return SymbolBook(
            symbol, self._kernel, self._cash, self._quote_used(), held, carrier, orders,
            self._ids, info.steps, time, bar_index, self.knobs.partial_fill_fraction,
        )  # fmt: skip

    def _settle(self, book: SymbolBook, bars: list[BarRow]) -> list[Order]:
        """Take a step's outcome into the books and commit it as one event."""
        self._cash = book.cash
        for row in book.changed.values():
            self._orders[row.id] = row
            if row.is_open:
                self._open_ids[row.id] = None
            else:
                self._open_ids.pop(row.id, None)
        for fill in book.fills:
            self._fills.append(fill)
            self._fills_by_order.setdefault(fill.order_id, []).append(fill)
        if book.position is None:
            self._positions.pop(book.symbol, None)
        else:
            self._positions[book.symbol] = book.position
        self._write(
            LedgerChanges(
                orders=list(book.changed.values()), fills=book.fills,
                balances=self._balance_rows(), positions={book.symbol: book.position},
                symbols=[self._symbols[book.symbol]], bars=bars,
            )
        )  # fmt: skip
        return [self._order(row) for row in book.changed.values()]

    # -- orders: requests, refusals, records -----------------------------------------------

    def _refusal(self, row: OrderRow) -> str:
        """Why the venue refuses an accepted-looking order, or ``""``; sets its reservation."""
        knobs = self.knobs
        if row.client_order_id in knobs.reject_client_order_ids:
            return "rejected by the paper exchange's knob reject_client_order_ids"
        if knobs.reject_every_nth is not None and self._creates % knobs.reject_every_nth == 0:
            return (
                f"rejected by the paper exchange's knob reject_every_nth={knobs.reject_every_nth}"
            )
        if row.type == "stop":
            return (
                "stop orders are the paper exchange's own: a position's bracket comes with its "
                "entry (params protect_client_order_id)"
            )
        if row.quote_amount is not None and (row.side == "sell" or row.type == "limit"):
            return "cost is for market buys only: give a limit or sell order an amount"
        if row.side == "buy":
            return self._buy_refusal(row)
        return self._sell_refusal(row)

    def _buy_refusal(self, row: OrderRow) -> str:
        free = self._cash - self._quote_used()
        needed = row.quote_amount or 0.0
        if row.type == "limit" and row.amount is not None and row.price is not None:
            needed = row.amount * row.price * (1.0 + self._kernel.fee_rate)
        if free <= 0.0 or needed > free * (1.0 + _TOLERANCE):
            return (
                f"insufficient funds: the order needs {needed:,.2f} {self.quote}, "
                f"{max(free, 0.0):,.2f} {self.quote} is free"
            )
        row.reserved = needed if row.type == "limit" else 0.0
        return ""

    def _sell_refusal(self, row: OrderRow) -> str:
        base = base_asset(row.symbol)
        held = self._positions.get(row.symbol)
        units = held.position.units if held is not None else 0.0
        amount = row.amount or 0.0
        if amount > units * (1.0 + _TOLERANCE):
            return f"long only: selling {amount:g} {base} with {units:g} held would open a short"
        used = sum(
            other.reserved
            for other in self._open_orders()
            if other.symbol == row.symbol and other.side == "sell"
        )
        free = units - used
        if amount > free * (1.0 + _TOLERANCE):
            return f"insufficient funds: {free:g} {base} free, {used:g} held by open orders"
        row.amount = min(amount, free)  # float noise in what the bot read back
        row.reserved = row.amount
        return ""

    def _edit_limit(self, row: OrderRow, amount: float | None, price: float | None) -> None:
        new_amount = row.amount if amount is None else float(amount)
        new_price = row.price if price is None else float(price)
        assert new_amount is not None and new_price is not None
        if new_amount < row.filled:
            raise ExchangeError(f"paper exchange: amount {new_amount:g} is below what filled")
        if row.side == "buy":
            needed = (new_amount - row.filled) * new_price * (1.0 + self._kernel.fee_rate)
            free = self._cash - self._quote_used() + row.reserved
            if needed > free * (1.0 + _TOLERANCE):
                raise ExchangeError(f"paper exchange: insufficient funds for {needed:,.2f}")
            row.reserved = needed
        else:
            held = self._positions.get(row.symbol)
            others = sum(
                other.reserved
                for other in self._open_orders()
                if other.symbol == row.symbol and other.side == "sell" and other is not row
            )
            units = held.position.units if held is not None else 0.0
            if new_amount - row.filled > units - others:
                raise ExchangeError("paper exchange: insufficient funds for the new amount")
            row.reserved = new_amount - row.filled
        row.amount, row.price = new_amount, new_price
