"""A tiny bot that replays bars through a ``PaperExchange``, for the parity tests.

It does what the bot's loop does, and nothing more: per bar, the venue processes the bar;
after its close, the signals of that bar become orders for the next open, with the kernel's
own conflict and pyramiding rules (``bar_orders_nb``, ``entry_direction_nb``):

- long and the exit signal on: a market sell of the units held;
- flat at the close and the entry signal on: a quote-amount market buy of the kernel's
  allotment for the run's sizing mode (``position_units_nb`` at a fill of 1 without fees is
  the allotment itself), with its bracket carrier's client id.

Client ids are ``execution.client_order_id`` of (run, strategy, symbol, bar time, intent, 0),
so a replay killed at any moment resumes where the ledger stands: bars already processed are
skipped (the venue's ``fetch_ohlcv``), and the last bar's decision is sent again only if the
venue has no order with its id. The round trips are read back from the venue's fills, as a
bot would read them: no kernel helper computes them.

``Venue`` and the bar helpers at the end are the unit tests' hand-driven paper exchange.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from marketbot.backtest.config import BacktestConfig, ExitRules
from marketbot.backtest.kernel import KernelSignals
from marketbot.backtest.step_nb import KernelSettings, bar_orders_nb, entry_direction_nb
from marketbot.core.clock import ManualClock
from marketbot.core.codes import FLAT, LONG
from marketbot.execution import (
    PRIORITY_EMERGENCY,
    Intent,
    Order,
    OrderSide,
    OrderType,
    client_order_id,
)
from marketbot.execution.paper import (
    PaperBar,
    PaperExchange,
    PaperKnobs,
    PaperPosition,
    PaperSettings,
)
from marketbot.risk.sizing_nb import position_units_nb

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Bars:
    """One symbol's bars as the kernel takes them (times: bar opens, ns since the epoch)."""

    open_: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    times_ns: np.ndarray

    def __len__(self) -> int:
        return len(self.open_)

    def time(self, bar: int) -> datetime:
        return EPOCH + timedelta(microseconds=int(self.times_ns[bar]) // 1_000)

    def paper_bar(self, bar: int) -> PaperBar:
        return PaperBar(
            index=bar, time=self.time(bar), open=float(self.open_[bar]),
            high=float(self.high[bar]), low=float(self.low[bar]), close=float(self.close[bar]),
            volume=0.0,
        )  # fmt: skip


@dataclass(frozen=True)
class RoundTrip:
    """A position from its entry fill to the fill that closed it, read from the venue."""

    entry_bar: int
    exit_bar: int
    size: float
    entry_price: float
    exit_price: float
    fees: float
    exit_reason: str
    tag: int | None

    @property
    def pnl(self) -> float:
        """The step core's trade P&L (write_trade_nb), long only."""
        return self.size * (self.exit_price - self.entry_price) - self.fees


@dataclass(frozen=True)
class Replay:
    """What a replay left: the closed round trips, the position still open, the account."""

    trades: list[RoundTrip]
    open_position: PaperPosition | None
    cash: float
    equity: float


def entry_cost(cash: float, size_fraction: float, settings: KernelSettings) -> float:
    """The kernel's allotment to an entry from a flat account: the quote amount to send."""
    return float(
        position_units_nb(
            cash, 1.0, 0.0, settings.sizing_mode, settings.sizing_value, size_fraction
        )
    )


class PaperDriver:
    """Replays one symbol's bars and signals through a paper exchange, as a bot would."""

    def __init__(
        self,
        exchange: PaperExchange,
        clock: ManualClock,
        settings: KernelSettings,
        *,
        symbol: str = "bitcoin",
        run_id: str = "replay",
        strategy: str = "parity",
    ) -> None:
        self.exchange = exchange
        self.clock = clock
        self.settings = settings
        self.symbol = symbol
        self.run_id = run_id
        self.strategy = strategy
        self._tags: dict[str, int] = {}

    def replay(
        self,
        bars: Bars,
        signals: KernelSignals,
        *,
        after_bar: Callable[[int], None] | None = None,
    ) -> Replay:
        """Process every bar the venue has not yet processed; what the account ends with."""
        start = len(self.exchange.fetch_ohlcv(self.symbol, "any"))
        if start > 0:
            self._decide(bars, signals, start - 1)  # it may have died before sending
        for bar in range(start, len(bars)):
            self.clock.set(bars.time(bar))
            self.exchange.process_bar(self.symbol, bars.paper_bar(bar))
            if after_bar is not None:
                after_bar(bar)
            self._decide(bars, signals, bar)
        return self.result(bars)

    def _decide(self, bars: Bars, signals: KernelSignals, bar: int) -> None:
        if bar + 1 >= len(bars):
            return  # a signal on the last bar never fills
        orders = bar_orders_nb(
            bool(signals.entries_long[bar]), bool(signals.exits_long[bar]), False, False, False
        )
        position = self.exchange.open_position(self.symbol)
        time = bars.time(bar)
        if position is not None and orders.exit_long:
            exit_id = self._client_id(time, Intent.EXIT)
            if self.exchange.fetch_order_by_client_id(exit_id) is None:
                self.exchange.create_order(
                    self.symbol, OrderType.MARKET, OrderSide.SELL, position.units,
                    client_order_id=exit_id, priority=PRIORITY_EMERGENCY,
                )  # fmt: skip
        if entry_direction_nb(orders, LONG if position is not None else FLAT) != LONG:
            return
        entry_id = self._client_id(time, Intent.ENTRY)
        if self.exchange.fetch_order_by_client_id(entry_id) is not None:
            return
        cost = entry_cost(
            self.exchange.quote_cash(), float(signals.size_fraction[bar]), self.settings
        )
        if cost > 0.0:
            tag = int(signals.tag[bar])
            self._tags[entry_id] = tag
            self.exchange.create_order(
                self.symbol, OrderType.MARKET, OrderSide.BUY, cost=cost,
                client_order_id=entry_id,
                params={"protect_client_order_id": self._client_id(time, Intent.PROTECT),
                        "tag": tag, "position_at_signal": "flat"},
            )  # fmt: skip

    def _client_id(self, time: datetime, intent: Intent) -> str:
        return client_order_id(self.run_id, self.strategy, self.symbol, time, intent, 0)

    def result(self, bars: Bars) -> Replay:
        """The round trips in the venue's fills, the open position and the account."""
        bar_of = {bars.time(bar): bar for bar in range(len(bars))}
        trips: list[RoundTrip] = []
        entry = None
        for fill in self.exchange.fetch_my_trades(self.symbol):
            fee = fill.fee.cost if fill.fee is not None else 0.0
            if fill.side is OrderSide.BUY:
                assert entry is None, f"a buy while long: {fill}"
                entry = (bar_of[fill.timestamp], fill, fee)
                continue
            assert entry is not None, f"a sell while flat: {fill}"
            entry_bar, entry_fill, entry_fee = entry
            exit_order = self.exchange.fetch_order(fill.order_id)
            trips.append(
                RoundTrip(
                    entry_bar=entry_bar, exit_bar=bar_of[fill.timestamp], size=entry_fill.amount,
                    entry_price=entry_fill.price, exit_price=fill.price, fees=entry_fee + fee,
                    exit_reason=exit_order.reason,
                    tag=self._tags.get(entry_fill.client_order_id),
                )
            )  # fmt: skip
            assert fill.amount == entry_fill.amount, "a partial exit"
            entry = None
        last_close = float(bars.close[-1])
        return Replay(
            trades=trips,
            open_position=self.exchange.open_position(self.symbol),
            cash=self.exchange.quote_cash(),
            equity=self.exchange.equity({self.symbol: last_close}),
        )


# -- a hand-driven venue for unit tests --------------------------------------------------------

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SYMBOL = "BTC/USDT"
FEE = 0.002
SLIP = 0.001


def bar(index: int, open_: float, high: float, low: float, close: float) -> PaperBar:
    return PaperBar(index, T0 + timedelta(days=index), open_, high, low, close, 1.0)


def flat_bar(index: int, price: float = 100.0) -> PaperBar:
    return bar(index, price, price, price, price)


class Venue:
    """A paper exchange on a temporary ledger, with its clock and a few shortcuts."""

    def __init__(
        self,
        path: Path,
        *,
        exits: ExitRules | None = None,
        fee: float = FEE,
        slippage: float = SLIP,
        cash: float = 10_000.0,
        knobs: PaperKnobs | None = None,
    ) -> None:
        self.clock = ManualClock(T0)
        config = BacktestConfig(
            fee_rate=fee, slippage_rate=slippage, initial_cash=cash, exits=exits or ExitRules()
        )
        self.settings = PaperSettings(config, quote="USDT")
        self.exchange = PaperExchange(
            path / "paper" / "ledger.db", self.settings, clock=self.clock, knobs=knobs
        )

    def run(self, *bars: PaperBar) -> list[Order]:
        changed: list[Order] = []
        for item in bars:
            self.clock.set(item.time)
            changed += self.exchange.process_bar(SYMBOL, item)
        return changed

    def buy(self, cost: float, cid: str = "entry-1", **params: object) -> Order:
        return self.exchange.create_order(
            SYMBOL, OrderType.MARKET, OrderSide.BUY, cost=cost, client_order_id=cid,
            params={"protect_client_order_id": f"{cid}-protect", **params},
        )  # fmt: skip

    def sell(self, amount: float, cid: str = "exit-1") -> Order:
        return self.exchange.create_order(
            SYMBOL, OrderType.MARKET, OrderSide.SELL, amount, client_order_id=cid,
            priority=PRIORITY_EMERGENCY,
        )  # fmt: skip

    def order(self, cid: str) -> Order:
        order = self.exchange.fetch_order_by_client_id(cid)
        assert order is not None, cid
        return order


def entered(venue: Venue, cost: float = 1_000.0, open_: float = 100.0) -> float:
    """Enter at bar 1's open (bar 0 is the signal bar); the units bought."""
    venue.run(flat_bar(0))
    venue.buy(cost)
    venue.run(bar(1, open_, open_, open_, open_))
    position = venue.exchange.open_position(SYMBOL)
    assert position is not None
    return position.units
