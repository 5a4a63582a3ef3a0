"""One symbol's step at the paper venue: the bar-step core's fourth caller.

The single kernel, the portfolio kernel and the fast grid run the steps of
:mod:`marketbot.backtest.step_nb` over arrays; the paper venue runs the same steps over the
orders it holds, one bar (replay) or one ticker (forward) at a time, so that a replay gives
the backtest's trades. Nothing here re-implements a rule: fills, fees, sizing, levels, the
exit due at an open, the intrabar exit and the trailing extreme all come from the step core.

A bar, for one symbol, in the kernel's order (docs/backtesting.md):

1. at the open: a leg of the position's bracket the open gapped through (stop-loss, trailing
   stop, take-profit), then max hold, then the bot's market sells (``open_exit_reason_nb``;
   a leg or max hold fills the bracket's carrier order and cancels the sells); then market
   buys (``entry_direction_nb``, ``size_entry_nb``, ``enter_position_nb``); then limit orders
   the open gapped through, at the open;
2. intrabar: the bracket (``intrabar_step_nb``: stop-loss, then trailing stop, then
   take-profit, at the level); then limit orders the bar traded through, at the limit;
3. at the close: the trailing extreme raised (``close_step_nb``).

A ticker (forward paper trading) is an open without a bar: the bracket and market orders are
judged at the ticker (sells at the bid, buys at the ask, either falling back to the last
price), limit orders fill when the ticker reaches them, and the extreme follows the bid.

The records the venue is built from (knobs, bars, the position it reports) are in
:mod:`marketbot.execution.paper_records`; :mod:`marketbot.execution.paper` holds the API
and the ledger writes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from marketbot.backtest.step_nb import (
    TRADE_DTYPE,
    Account,
    Book,
    KernelSettings,
    Orders,
    Position,
    RiskState,
    close_step_nb,
    enter_position_nb,
    entry_direction_nb,
    exit_position_nb,
    intrabar_step_nb,
    open_exit_reason_nb,
    size_entry_nb,
)
from marketbot.core.codes import (
    EXIT_NONE,
    EXIT_REASON_NAMES,
    EXIT_SIGNAL,
    FLAT,
    LONG,
    SIZING_ALL_IN,
    SIZING_FIXED_CASH,
)
from marketbot.core.costs_nb import fee_nb
from marketbot.execution.paper_ledger import FillRow, OrderRow, PositionRow
from marketbot.execution.paper_order_terms import (
    amount_left,
    limit_crossed,
    limit_price,
    ordered_amount,
    position_at_signal,
)
from marketbot.execution.paper_records import (
    EPOCH,
    IdSource,
    PaperBar,
    PaperKnobs,
    PaperPosition,
    base_asset,
    check_bar,
    paper_position,
)
from marketbot.net.rate_limiter import PRIORITY_EMERGENCY

__all__ = [
    "IdSource",
    "PaperBar",
    "PaperKnobs",
    "PaperPosition",
    "SymbolBook",
    "base_asset",
    "check_bar",
    "paper_position",
]

# A fill within this relative distance of what is left completes the order (float sums).
_COMPLETE = 1e-12
_NO_RISK = RiskState(0.0, 0.0, 0.0, 0, False, False)


@dataclass(slots=True)
class SymbolBook:
    """One symbol at the venue during one step; the step changes it in place.

    Attributes:
        cash: The account's quote balance (every symbol's), as the step core keeps cash.
        quote_used: Quote held by open limit buys (every symbol's).
        position: The open position, or None.
        carrier: The position's bracket carrier while it is open, or None.
        orders: The symbol's open orders other than the carrier, oldest first.
        step: This step's number for the symbol (bars and tickers counted together).
        time: The bar's open time or the ticker's time: the time of the fills.
        bar_index: The bar's index; -1 for a ticker.
        partial_fill_fraction: The knob of the same name.
        changed: Orders whose state changed (out), in the order they changed.
        fills: New fills (out).
    """

    symbol: str
    settings: KernelSettings
    cash: float
    quote_used: float
    position: PositionRow | None
    carrier: OrderRow | None
    orders: list[OrderRow]
    ids: IdSource
    step: int
    time: datetime
    bar_index: int
    partial_fill_fraction: float | None = None
    changed: dict[int, OrderRow] = field(default_factory=dict)
    fills: list[FillRow] = field(default_factory=list)

    @property
    def now_ns(self) -> int:
        """``time`` in nanoseconds since the epoch (the step core's times)."""
        delta = self.time - EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000

    def run_bar(self, bar: PaperBar) -> None:
        """Fill and cancel what this bar decides, in the kernel's order (module docstring)."""
        due = self._due()
        # (1) at the open
        self._exits_at(self._market(due, "sell"), bar.open)
        for order in self._market(due, "buy"):
            self._enter_at(order, bar.open)
        limits = [order for order in due if order.type == "limit"]
        for order in limits:
            if order.is_open and limit_crossed(order, bar.open, bar.open, gap=True):
                self._limit_fill(order, bar.open, intrabar=False)
        # (2) intrabar
        self._intrabar(bar)
        for order in limits:
            if order.is_open and limit_crossed(order, bar.low, bar.high, gap=False):
                self._limit_fill(order, limit_price(order), intrabar=True)
        # (3) at the close
        self._close(bar.high, bar.low, bar.close)

    def run_ticker(self, sell_price: float, buy_price: float) -> None:
        """A ticker as an open: the bracket and sells at ``sell_price``, buys at ``buy_price``."""
        due = self._due()
        self._exits_at(self._market(due, "sell"), sell_price)
        for order in self._market(due, "buy"):
            self._enter_at(order, buy_price)
        for order in due:
            if order.type == "limit" and order.is_open:
                price = buy_price if order.side == "buy" else sell_price
                if limit_crossed(order, price, price, gap=True):
                    self._limit_fill(order, price, intrabar=False)
        self._close(sell_price, sell_price, sell_price)

    # -- which orders ----------------------------------------------------------------------

    def _due(self) -> list[OrderRow]:
        return [order for order in self.orders if order.active_from_step <= self.step]

    @staticmethod
    def _market(orders: Iterable[OrderRow], side: str) -> list[OrderRow]:
        return [o for o in orders if o.type == "market" and o.side == side and o.is_open]

    # -- (1) at the open -------------------------------------------------------------------

    def _exits_at(self, sells: list[OrderRow], price: float) -> None:
        held = self.position
        if held is None:
            for order in sells:
                self._cancel(order, "no position to sell: it closed before this order filled")
            return
        if held.carrier_order_id is not None:
            orders = Orders(FLAT, bool(sells), False)
            reason = open_exit_reason_nb(held.position, price, self.now_ns, orders, self.settings)
        else:  # the bracket was canceled: only the bot's sells close the position
            reason = EXIT_SIGNAL if sells else EXIT_NONE
        if reason == EXIT_NONE:
            return
        if reason != EXIT_SIGNAL:
            trades = np.empty(1, dtype=TRADE_DTYPE)
            account, _ = exit_position_nb(
                self._account(), held.position, price, self.bar_index, reason, 0, trades,
                self.settings,
            )  # fmt: skip
            self._carrier_filled(account, float(trades[0]["exit_price"]), reason)
            return
        for order in sells:
            if self.position is None:
                self._cancel(order, "position already closed by the signal exit")
            else:
                self._sell(order, price, self.settings, self.partial_fill_fraction)

    def _enter_at(self, order: OrderRow, price: float) -> None:
        held = self.position
        if order.filled > 0.0:  # the rest of a partly filled entry adds to its position
            if held is None:
                self._cancel(order, "position closed before the rest of the order filled")
                return
            fill, units = self._size(order, price, self.settings)
            if units > 0.0:
                account, part = enter_position_nb(
                    self._account(), LONG, fill, units, self.bar_index, self.now_ns,
                    held.position.tag, self.settings,
                )  # fmt: skip
                self.cash = account.cash
                held.position = _merged(held.position, part, self.settings)
                self._entry_filled(order, part)
                self._refresh_carrier()
            if order.is_open and units <= 0.0:
                self._cancel(order, "insufficient funds for the rest of the order")
            return
        if entry_direction_nb(Orders(LONG, False, False), position_at_signal(order)) == FLAT:
            self._cancel(order, "long when the signal was computed: no pyramiding")
            return
        if held is not None:
            self._cancel(order, f"a position on {self.symbol} is already open: one per symbol")
            return
        fill, units = self._size(order, price, self.settings)
        if units <= 0.0:
            self._cancel(order, "insufficient funds: the quote balance buys nothing")
            return
        self._open_position(order, fill, units, self.settings, intrabar=False)

    def _size(self, order: OrderRow, price: float, settings: KernelSettings) -> tuple[float, float]:
        """The fill and units of a buy at ``price``, as ``size_entry_nb`` sizes an entry.

        A quote-amount buy allots what is left of its quote amount (a fixed-cash allotment);
        an amount buy takes its amount, at most what the free quote pays for. Either way a
        long never spends more than the free quote.
        """
        free = self.cash - self.quote_used
        fraction = self.partial_fill_fraction if order.type == "market" else None
        book = Book(free, free, 0.0, 0)
        if order.quote_amount is not None:
            budget = order.quote_amount - order.spent
            if fraction is not None:
                budget = min(budget, fraction * order.quote_amount)
            sizing = settings._replace(sizing_mode=SIZING_FIXED_CASH, sizing_value=budget)
            fill, units, _ = size_entry_nb(
                LONG, price, math.nan, book, _NO_RISK, math.nan, False, sizing
            )
            return float(fill), float(units)
        wanted = amount_left(order)
        if fraction is not None:
            wanted = min(wanted, fraction * ordered_amount(order))
        sizing = settings._replace(sizing_mode=SIZING_ALL_IN, sizing_value=1.0)
        fill, most, _ = size_entry_nb(
            LONG, price, math.nan, book, _NO_RISK, math.nan, False, sizing
        )
        return float(fill), min(wanted, float(most))

    def _open_position(
        self,
        order: OrderRow,
        fill: float,
        units: float,
        settings: KernelSettings,
        *,
        intrabar: bool,
    ) -> None:
        tag = order.params.get("tag")
        account, position = enter_position_nb(
            self._account(), LONG, fill, units, self.bar_index, self.now_ns,
            tag if isinstance(tag, int) and not isinstance(tag, bool) else -1, settings,
        )  # fmt: skip
        self.cash = account.cash
        protect_id = order.params.get("protect_client_order_id") or f"paper-protect-{order.id}"
        carrier = OrderRow(
            id=self.ids.next_order(), client_order_id=str(protect_id), symbol=self.symbol,
            side="sell", type="market", status="open", timestamp=self.time,
            amount=position.units, is_carrier=True, active_from_step=self.step,
            priority=PRIORITY_EMERGENCY, params={"entry_client_order_id": order.client_order_id},
        )  # fmt: skip
        self.position = PositionRow(
            self.symbol, position, carrier.id, carrier.client_order_id, order.id,
            self.step if intrabar else -1,
        )  # fmt: skip
        self._entry_filled(order, position)
        self.carrier = carrier
        self._refresh_carrier()

    def _entry_filled(self, order: OrderRow, part: Position) -> None:
        """Record a buy's fill; the order ends unless a partial-fill knob leaves a rest."""
        self._record_fill(order, part.units, part.entry_price, part.entry_fee, "")
        order.spent += part.units * part.entry_price + part.entry_fee
        one_fill = order.type == "limit" or self.partial_fill_fraction is None
        if order.quote_amount is not None:
            # It spends what the balance allows in one fill, or its quote amount in several.
            if one_fill or order.quote_amount - order.spent <= order.quote_amount * 1e-9:
                self._complete(order)
        elif amount_left(order) <= ordered_amount(order) * _COMPLETE:
            self._complete(order)
        elif one_fill:
            self._cancel(order, "insufficient funds for the rest of the order")

    # -- limit orders ----------------------------------------------------------------------

    def _limit_fill(self, order: OrderRow, price: float, *, intrabar: bool) -> None:
        """A limit order fills at ``price`` as a maker: no slippage, the fee on notional."""
        maker = self.settings._replace(slippage_rate=0.0)
        if order.side == "sell":
            if self.position is None:
                self._cancel(order, "no position to sell: it closed before this order filled")
            else:
                self._sell(order, price, maker, None)
            return
        self._release(order)
        if self.position is not None:
            self._cancel(order, f"a position on {self.symbol} is already open: one per symbol")
            return
        fill, units = self._size(order, price, maker)
        if units <= 0.0:
            self._cancel(order, "insufficient funds: the quote balance buys nothing")
            return
        self._open_position(order, fill, units, maker, intrabar=intrabar)

    # -- selling ---------------------------------------------------------------------------

    def _sell(
        self, order: OrderRow, price: float, settings: KernelSettings, fraction: float | None
    ) -> None:
        """The bot's sell of (part of) the position at ``price`` (slippage as ``settings``)."""
        held = self.position
        assert held is not None
        position = held.position
        wanted = (
            amount_left(order)
            if fraction is None
            else min(amount_left(order), fraction * ordered_amount(order))
        )
        units = min(wanted, position.units)
        whole = position.units - units <= position.units * _COMPLETE
        part = position
        if not whole:
            part_fee = position.entry_fee * (units / position.units)
            part = position._replace(units=units, entry_fee=part_fee)
        trades = np.empty(1, dtype=TRADE_DTYPE)
        account, _ = exit_position_nb(
            self._account(), part, price, self.bar_index, EXIT_SIGNAL, 0, trades, settings
        )
        exit_fill = float(trades[0]["exit_price"])
        self.cash = account.cash
        order.reserved = max(order.reserved - part.units, 0.0)
        fee = float(fee_nb(part.units, exit_fill, settings.fee_rate))
        self._record_fill(order, part.units, exit_fill, fee, EXIT_REASON_NAMES[EXIT_SIGNAL])
        order.reason = EXIT_REASON_NAMES[EXIT_SIGNAL]
        if amount_left(order) <= ordered_amount(order) * _COMPLETE:
            self._complete(order)
        elif whole:
            self._cancel(order, "position already closed: nothing left to sell")
        if not whole:
            held.position = position._replace(
                units=position.units - units, entry_fee=position.entry_fee - part.entry_fee
            )
            self._refresh_carrier()
            return
        self.position = None
        closed_by = f"order {order.client_order_id}"
        if self.carrier is not None:
            self._cancel(self.carrier, f"position closed by the signal exit ({closed_by})")
            self.carrier = None
        self._cancel_sells(f"position already closed by {closed_by}")

    # -- (2) intrabar and (3) the close ----------------------------------------------------

    def _intrabar(self, bar: PaperBar) -> None:
        held = self.position
        if held is None or held.carrier_order_id is None or held.opened_intrabar_step == self.step:
            return
        trades = np.empty(1, dtype=TRADE_DTYPE)
        account, after = intrabar_step_nb(
            self._account(), held.position, bar.open, bar.high, bar.low, bar.index, 0, trades,
            self.settings,
        )  # fmt: skip
        if after.direction == FLAT:
            reason = int(trades[0]["exit_reason"])
            self._carrier_filled(account, float(trades[0]["exit_price"]), reason)

    def _close(self, high: float, low: float, close: float) -> None:
        held = self.position
        if held is None or held.opened_intrabar_step == self.step:
            return  # a position a limit opened inside this bar is first raised at the next
        held.position, _ = close_step_nb(held.position, high, low, close, self.settings)

    # -- the carrier -----------------------------------------------------------------------

    def _carrier_filled(self, account: Account, exit_fill: float, reason: int) -> None:
        """A leg fired: the carrier sells the whole position at the leg's exit fill."""
        held, carrier = self.position, self.carrier
        assert held is not None and carrier is not None
        units = held.position.units
        self.cash = account.cash
        fee = float(fee_nb(units, exit_fill, self.settings.fee_rate))
        name = EXIT_REASON_NAMES[reason]
        carrier.amount = units
        self._record_fill(carrier, units, exit_fill, fee, name)
        self._complete(carrier)
        carrier.reason = name
        self.position, self.carrier = None, None
        self._cancel_sells(f"position already closed by {name}")

    def _refresh_carrier(self) -> None:
        """The carrier shows the position: its amount, and its stop (or target) level.

        A stop order at the stop-loss level, or at the trailing level when there is no
        stop-loss; a limit order at the take-profit level when neither is set; a market
        order when the bracket has only max hold (or no leg at all). The loop may move the
        shown stop with ``edit_order``; the venue fills by the step core either way.
        """
        held, carrier = self.position, self.carrier
        if held is None or carrier is None:
            return
        position = held.position
        carrier.amount = position.units
        stop = position.stop_level if not math.isnan(position.stop_level) else position.trail_level
        carrier.price, carrier.stop_price, carrier.type = None, None, "market"
        if not math.isnan(stop):
            carrier.type, carrier.stop_price = "stop", float(stop)
        elif not math.isnan(position.target_level):
            carrier.type, carrier.price = "limit", float(position.target_level)
        self.changed[carrier.id] = carrier

    # -- bookkeeping -----------------------------------------------------------------------

    def _account(self) -> Account:
        return Account(self.cash, 0.0, 0)

    def _record_fill(
        self, order: OrderRow, amount: float, price: float, fee: float, reason: str
    ) -> None:
        fill = FillRow(
            self.ids.next_fill(), order.id, order.client_order_id, self.symbol, order.side,
            amount, price, fee, self.time, self.bar_index, reason,
        )  # fmt: skip
        self.fills.append(fill)
        order.filled += amount
        order.cost += amount * price
        order.fee += fee
        order.last_trade_timestamp = self.time
        self.changed[order.id] = order

    def _complete(self, order: OrderRow) -> None:
        self._release(order)
        if order.amount is not None and not order.is_carrier:
            order.filled = order.amount
        order.status = "closed"
        self.changed[order.id] = order

    def _cancel(self, order: OrderRow, reason: str) -> None:
        if not order.is_open:
            return
        self._release(order)
        order.status, order.reason = "canceled", reason
        self.changed[order.id] = order

    def _release(self, order: OrderRow) -> None:
        if order.side == "buy":
            self.quote_used -= order.reserved
        order.reserved = 0.0

    def _cancel_sells(self, reason: str) -> None:
        for order in self.orders:
            if order.side == "sell" and order.is_open:
                self._cancel(order, reason)


def _merged(position: Position, part: Position, settings: KernelSettings) -> Position:
    """A position with a later fill added: units summed, the entry at their average.

    The levels are the step core's for the average entry (``enter_position_nb``), the fees
    add up, and the trailing extreme keeps the higher of the two (``close_step_nb``).
    """
    units = position.units + part.units
    average = (position.units * position.entry_price + part.units * part.entry_price) / units
    _, fresh = enter_position_nb(
        Account(0.0, 0.0, 0), LONG, average, units, position.entry_bar, position.entry_time_ns,
        position.tag, settings,
    )  # fmt: skip
    fresh = fresh._replace(entry_fee=position.entry_fee + part.entry_fee)
    merged, _ = close_step_nb(fresh, position.extreme, position.extreme, average, settings)
    return Position(*merged)
