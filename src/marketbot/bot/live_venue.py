"""The bot's venue on a real exchange: its own position, and its exits checked on tickers.

The paper exchange keeps a bracket (stop, trailing, target, max hold) resting with each
position and fills it from bars and tickers. A real spot exchange does not, so
:class:`LiveVenue` keeps the bot's position itself, built from its own orders' fills (a fee in
the base asset shrinks it; any fee is booked in the quote asset), and checks the same levels
with the step core's rules (``backtest.step_nb``) on every ticker between bars: a stop, a
trailing stop or a target the price has reached, or max hold, sends a market sell at
priority 1, labelled with the rule that fired. The trailing anchor follows the bid at each
ticker and the high of each bar opened after the entry. The exchange's fills are the truth:
live exits fill where the market is when the ticker shows the level crossed, not at the level
(docs/live.md compares them with the kernel's).

It answers the loop what the paper exchange answers (``process_bar``, ``process_ticker``,
``open_position``, ``quote_cash``, ``equity``, ``create_order``...), so the loop, the
recorder, recovery and ``status`` are the paper bot's. Orders and balances that are not the
bot's are never touched.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

from marketbot.backtest.step_nb import (
    close_step_nb,
    enter_position_nb,
    open_exit_reason_nb,
)
from marketbot.backtest.step_state_nb import Account, KernelSettings, Orders, Position
from marketbot.bot.recorder import OpenTrade
from marketbot.core.clock import Clock, epoch_ns
from marketbot.core.codes import EXIT_NONE, EXIT_REASON_NAMES, FLAT, LONG
from marketbot.execution.ccxt_exchange import CcxtExchange
from marketbot.execution.client_ids import CLIENT_ORDER_ID_PREFIX, client_id_of
from marketbot.execution.models import (
    Candle,
    Fee,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Ticker,
)
from marketbot.execution.order_rules import (
    FillOutcome,
    require_live_quote,
    size_entry,
    size_exit,
)
from marketbot.execution.paper_market import PaperBar
from marketbot.net.rate_limiter import PRIORITY_EMERGENCY, PRIORITY_NORMAL

_log = logging.getLogger("marketbot.bot")
_NO_ORDERS: Final = Orders(FLAT, False, False)


@dataclass(frozen=True)
class LivePosition:
    """What the bot holds: units (net of base fees) and the trailing anchor."""

    units: float
    extreme: float


@dataclass
class _Pending:
    """An order of the bot's not yet reported final to the loop."""

    order: Order
    protect_client_order_id: str | None = None
    reason: str = ""


class LiveVenue:
    """One pair on one exchange, as the bot's loop sees a venue (see the module doc)."""

    def __init__(
        self,
        exchange: CcxtExchange,
        symbol: str,
        settings: KernelSettings,
        clock: Clock,
        *,
        stop_on_exchange: bool = False,
    ) -> None:
        self.exchange = exchange
        self.stop_on_exchange = stop_on_exchange
        self.symbol = symbol
        self.settings = settings
        self.clock = clock
        self.market = exchange.market(symbol)
        require_live_quote(self.market)
        self._position: Position | None = None
        self._protect_id: str | None = None
        self._exit_attempts = 0
        self._pending: dict[str, _Pending] = {}
        self._balance_cache: tuple[datetime, float] | None = None
        self._resting: Order | None = None  # the stop resting on the exchange (stop_on_exchange)

    # -- what the loop reads ---------------------------------------------------------------

    def fetch_ohlcv(self, symbol: str, timeframe: str) -> list[Candle]:
        """No bars are kept here: the exchange's fills are recovered by client id instead."""
        return []

    def open_position(self, symbol: str) -> LivePosition | None:
        """The bot's position in ``symbol``, or None when flat."""
        held = self._position
        if held is None or symbol != self.symbol:
            return None
        return LivePosition(units=held.units, extreme=held.extreme)

    def quote_cash(self) -> float:
        """The quote asset's balance (free and held by orders), read once per moment."""
        now = self.clock.now()
        if self._balance_cache is not None and self._balance_cache[0] == now:
            return self._balance_cache[1]
        balance = self.exchange.fetch_balance(priority=PRIORITY_NORMAL)
        cash = balance.total(self.market.quote)
        self._balance_cache = (now, cash)
        return cash

    def equity(self, marks: Mapping[str, float]) -> float:
        """Quote cash plus the bot's position at its mark (other balances are not counted)."""
        held = self._position
        value = 0.0 if held is None else held.units * marks.get(self.symbol, held.extreme)
        return self.quote_cash() + value

    def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        """The exchange's open orders of the pair, and the bot's orders not yet reported."""
        orders = {o.client_order_id: o for o in self.exchange.fetch_open_orders(self.symbol)}
        for cid, pending in self._pending.items():
            orders.setdefault(cid, pending.order)
        return list(orders.values())

    def fetch_closed_orders(self, symbol: str | None = None) -> list[Order]:
        """The exchange's closed orders of the pair (recovery resolves them by client id).

        The bot's filled ones come as the loop books them: net units, fees in the quote.
        """
        return [
            _booked(order, self.exchange.net_fill(order), self.market.quote)
            if order.client_order_id.startswith(CLIENT_ORDER_ID_PREFIX)
            and order.status is OrderStatus.CLOSED
            and order.filled > 0.0
            else order
            for order in self.exchange.fetch_closed_orders(self.symbol)
        ]

    def fetch_order_by_client_id(
        self, client_order_id: str, symbol: str | None = None
    ) -> Order | None:
        """The exchange's order with this client id, or None."""
        return self.exchange.fetch_order_by_client_id(client_order_id, symbol or self.symbol)

    # -- what the loop sends ---------------------------------------------------------------

    def create_order(  # noqa: PLR0913 - the loop's call, as on the paper exchange
        self,
        symbol: str,
        type: OrderType,
        side: OrderSide,
        amount: float | None = None,
        *,
        client_order_id: str,
        cost: float | None = None,
        params: Mapping[str, object] | None = None,
        priority: int = PRIORITY_NORMAL,
    ) -> Order:
        """A market entry (quote amount) or exit, after the market's lot and notional rules.

        An entry that rounds below the exchange's minimum is not sent: it comes back as a
        rejected order with the reason, which the loop records.
        """
        ticker_priority = PRIORITY_NORMAL if side is OrderSide.BUY else PRIORITY_EMERGENCY
        ticker = self.exchange.fetch_ticker(symbol, priority=ticker_priority)
        if side is OrderSide.BUY:
            price = ticker.ask if ticker.ask is not None else ticker.last
            sized = size_entry(self.market, float(cost or 0.0), price)
            if sized.skipped:
                return self._refused(symbol, side, client_order_id, sized.skipped_reason)
            order = self.exchange.create_order(
                symbol, OrderType.MARKET, side, client_order_id=client_order_id,
                cost=sized.quote_amount, priority=priority,
            )  # fmt: skip
            protect = None if params is None else params.get("protect_client_order_id")
            self._track(order, protect_client_order_id=None if protect is None else str(protect))
            return order
        price = ticker.bid if ticker.bid is not None else ticker.last
        self._cancel_resting()  # it holds the units this sell needs
        sized = size_exit(self.market, float(amount or 0.0), price)
        if sized.skipped:
            return self._refused(symbol, side, client_order_id, sized.skipped_reason)
        order = self.exchange.create_order(
            symbol, OrderType.MARKET, side, sized.amount, client_order_id=client_order_id,
            priority=priority,
        )  # fmt: skip
        self._track(order)
        return order

    def cancel_resting_stop(self) -> str | None:
        """Shutdown with ``--cancel-all-on-exit``: cancel the resting stop; its id."""
        resting = self._resting
        self._cancel_resting()
        return None if resting is None else resting.client_order_id

    def cancel_open_entries(self) -> list[str]:
        """Shutdown: cancel the bot's entry orders still open, at priority 1; their ids."""
        canceled = []
        for cid, pending in list(self._pending.items()):
            order = pending.order
            if order.side is OrderSide.BUY and not order.status.is_terminal:
                self.exchange.cancel_order(order.id, self.symbol, priority=PRIORITY_EMERGENCY)
                canceled.append(cid)
        return canceled

    def close(self) -> None:
        """Close the exchange's HTTP session."""
        self.exchange.close()

    # -- what the market does --------------------------------------------------------------

    def process_bar(self, symbol: str, bar: PaperBar) -> list[Order]:
        """A bar closed: what the bot's orders did, max hold, and the anchor raised."""
        changed = self._poll()
        held = self._position
        if held is not None and epoch_ns(bar.time) >= held.entry_time_ns:
            # Only a bar opened after the entry may raise the anchor (live fills mid-bar).
            self._position, _ = close_step_nb(held, bar.high, bar.low, bar.close, self.settings)
        changed += self._check_exits(bar.close)
        self._move_resting()
        return changed

    def process_ticker(self, symbol: str, ticker: Ticker) -> list[Order]:
        """A ticker between bars: the orders' news, then the exits against the bid."""
        changed = self._poll()
        bid = ticker.bid if ticker.bid is not None else ticker.last
        changed += self._check_exits(bid)
        held = self._position
        if held is not None:
            self._position, _ = close_step_nb(held, bid, bid, bid, self.settings)
        self._move_resting()
        return changed

    def recover_position(self) -> None:
        """At start: hold what the bot's own filled orders left, as the exchange reports them.

        The last filled ``mb-`` order decides: a buy whose units the account still holds is
        the position (its fill's price and time), anything else is flat. Recovery then
        records what the database lacks against this.
        """
        filled = sorted(
            (
                order
                for order in self.fetch_closed_orders(self.symbol)
                if order.client_order_id.startswith(CLIENT_ORDER_ID_PREFIX)
                and order.status is OrderStatus.CLOSED
                and order.filled > 0.0
            ),
            key=lambda order: order.last_trade_timestamp or order.timestamp,
        )
        self._position = None
        if not filled or filled[-1].side is not OrderSide.BUY:
            return
        last = filled[-1]
        held = self.exchange.fetch_balance(priority=PRIORITY_NORMAL).total(self.market.base)
        if held < last.filled * (1.0 - 1e-9):
            _log.warning("%s: the last entry's units are no longer held: flat", self.symbol)
            return
        at = last.last_trade_timestamp or last.timestamp
        _, self._position = enter_position_nb(
            Account(0.0, 0.0, 0), LONG, float(last.average or 0.0), last.filled, -1,
            epoch_ns(at), -1, self.settings,
        )  # fmt: skip
        self._protect_id = _derived_id(last.client_order_id, "protect")

    def hold(self, trade: OpenTrade | None) -> None:
        """Recovery: hold the position the database says the bot holds (None: flat).

        The bracket's levels are rebuilt from the entry; the trailing anchor restarts at the
        entry price and rises again with the next tickers and bars.
        """
        if trade is None:
            self._position = None
            self._protect_id = None
            return
        held = self._position
        if held is not None and held.entry_time_ns == epoch_ns(trade.entry_time):
            return
        _, self._position = enter_position_nb(
            Account(0.0, 0.0, 0), LONG, trade.entry_price, trade.size, -1,
            epoch_ns(trade.entry_time), -1, self.settings,
        )  # fmt: skip
        self._protect_id = _derived_id(trade.entry_client_order_id, "protect")

    # -- internals -------------------------------------------------------------------------

    def _check_exits(self, price: float) -> list[Order]:
        """Send the exit a level, or max hold, calls for at ``price``; the order sent."""
        held = self._position
        if held is None or self._exit_pending():
            return []
        now_ns = epoch_ns(self.clock.now())
        reason = open_exit_reason_nb(held, price, now_ns, _NO_ORDERS, self.settings)
        if reason == EXIT_NONE:
            return []
        base = self._protect_id or _derived_id(f"{held.entry_time_ns}", "protect")
        cid = base if self._exit_attempts == 0 else _derived_id(base, str(self._exit_attempts))
        self._exit_attempts += 1
        label = EXIT_REASON_NAMES[reason]
        _log.warning("%s: %s at %g: selling %g at market", self.symbol, label, price, held.units)
        order = self.create_order(
            self.symbol, OrderType.MARKET, OrderSide.SELL, held.units, client_order_id=cid,
            priority=PRIORITY_EMERGENCY,
        )  # fmt: skip
        pending = self._pending.get(cid)
        if pending is not None:
            pending.reason = label
        return [replace(order, reason=label)] if order.status is OrderStatus.REJECTED else []

    def _exit_pending(self) -> bool:
        return any(
            p.order.side is OrderSide.SELL and not p.order.status.is_terminal
            for p in self._pending.values()
        )

    def _track(self, order: Order, *, protect_client_order_id: str | None = None) -> None:
        if order.status is OrderStatus.REJECTED:
            return
        self._pending[order.client_order_id] = _Pending(order, protect_client_order_id)

    def _poll(self) -> list[Order]:
        """Each of the bot's orders not yet reported: its news, applied to the position."""
        changed: list[Order] = self._resting_news()
        for cid, pending in list(self._pending.items()):
            order = self.exchange.fetch_order_by_client_id(cid, self.symbol)
            if order is None:
                continue
            if not order.status.is_terminal:
                pending.order = order
                continue
            del self._pending[cid]
            changed.append(self._applied(order, pending))
        return changed

    def _applied(self, order: Order, pending: _Pending) -> Order:
        """A final order as the recorder books it: net units, the fee in the quote asset."""
        if order.status is not OrderStatus.CLOSED or order.filled <= 0.0:
            return replace(order, reason=pending.reason or order.reason)
        fill = self.exchange.net_fill(order)
        at = order.last_trade_timestamp or order.timestamp
        if order.side is OrderSide.BUY:
            _, self._position = enter_position_nb(
                Account(0.0, 0.0, 0), LONG, fill.average_price, fill.base_amount, -1,
                epoch_ns(at), -1, self.settings,
            )  # fmt: skip
            self._protect_id = pending.protect_client_order_id or _derived_id(
                order.client_order_id, "protect"
            )
            self._exit_attempts = 0
            self._rest_stop()
            return _booked(order, fill, self.market.quote)
        self._position = None
        self._protect_id = None
        return replace(_booked(order, fill, self.market.quote), reason=pending.reason)

    # -- the stop resting on the exchange (stop_on_exchange) ---------------------------------

    def _protective_level(self) -> float | None:
        """The highest protective level of the position (stop-loss or trailing), or None."""
        held = self._position
        if held is None:
            return None
        levels = [
            lvl for lvl in (held.stop_level, held.trail_level) if math.isfinite(lvl) and lvl > 0
        ]
        return max(levels) if levels else None

    def _rest_stop(self) -> None:
        """After an entry fill: rest a stop-market sell of the position at its level."""
        level = self._protective_level()
        held = self._position
        if not self.stop_on_exchange or held is None or level is None:
            return
        amount = self.market.amount_to_precision(held.units)
        cid = _derived_id(self._protect_id or "", "resting")
        self._resting = self.exchange.create_order(
            self.symbol, OrderType.STOP, OrderSide.SELL, amount,
            client_order_id=cid, stop_price=self.market.price_to_precision(level),
            priority=PRIORITY_EMERGENCY,
        )  # fmt: skip
        if self._resting.status is OrderStatus.REJECTED:
            _log.warning("%s: resting stop refused: %s", self.symbol, self._resting.reason)
            self._resting = None

    def _move_resting(self) -> None:
        """Raise the resting stop with the trailing level (cancel and replace, priority 1)."""
        resting, level = self._resting, self._protective_level()
        if resting is None or level is None or resting.stop_price is None:
            return
        level = self.market.price_to_precision(level)
        if level <= resting.stop_price:
            return
        self._resting = self.exchange.edit_order(
            resting.id, self.symbol, stop_price=level, priority=PRIORITY_EMERGENCY
        )

    def _cancel_resting(self) -> None:
        resting, self._resting = self._resting, None
        if resting is not None:
            self.exchange.cancel_order(resting.id, self.symbol, priority=PRIORITY_EMERGENCY)

    def _resting_news(self) -> list[Order]:
        """The resting stop filled (the market fell through it): the position is closed."""
        resting = self._resting
        if resting is None:
            return []
        order = self.exchange.fetch_order_by_client_id(resting.client_order_id, self.symbol)
        if order is None or not order.status.is_terminal:
            return []
        self._resting = None
        held = self._position
        label = "stop_loss"
        if held is not None and math.isfinite(held.trail_level):
            stop = held.stop_level if math.isfinite(held.stop_level) else -math.inf
            label = "trailing_stop" if held.trail_level >= stop else "stop_loss"
        if order.status is not OrderStatus.CLOSED:
            return []
        return [self._applied(order, _Pending(order, reason=label))]

    def _refused(self, symbol: str, side: OrderSide, cid: str, reason: str) -> Order:
        _log.warning("%s %s %s not sent: %s", symbol, side, cid, reason)
        return Order(
            id="", client_order_id=cid, symbol=symbol, side=side, type=OrderType.MARKET,
            amount=0.0, status=OrderStatus.REJECTED, timestamp=self.clock.now(),
            reason=reason,
        )  # fmt: skip


def _booked(order: Order, fill: FillOutcome, quote: str) -> Order:
    """A filled order as the recorder books it: a buy's net units, every fee in ``quote``.

    The step core's P&L is ``units x (exit - entry) - fees``: with the units net of a base
    fee and that fee valued in the quote, it is what the account gained.
    """
    filled = fill.base_amount if order.side is OrderSide.BUY else order.filled
    return replace(order, filled=filled, average=fill.average_price, fee=Fee(fill.fee_quote, quote))


def _derived_id(base: str, salt: str) -> str:
    """Another client id of the ``mb-`` form, fixed by ``base`` and ``salt``."""
    return client_id_of(f"{base}|{salt}")
