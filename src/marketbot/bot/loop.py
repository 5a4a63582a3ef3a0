"""One iteration of the bot per closed bar, in the order of DESIGN.md's live/paper flow.

Per bar: operator commands; the new bar at the exchange (a paper venue fills the orders
pending from the last close, in the kernel's order, with the step core); the fills recorded
(orders, trades, verification); the account marked (the risk book); the strategy's signals on
every bar loaded so far; an exit or a sized, risk-checked entry sent for the next open (the
intent committed before it is sent); order deadlines; the run's progress and the state file.

Replaying stored bars through this loop with the paper exchange gives the backtest's trades
for the same configuration (tests/integration/test_bot_parity.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from marketbot.backtest.signals import prepare_signals
from marketbot.backtest.step_nb import KernelSettings, bar_orders_nb, entry_direction_nb
from marketbot.bot.commands import CommandHandler
from marketbot.bot.faults import fault_point
from marketbot.bot.loop_alerts import BarReading, LoopAlerts
from marketbot.bot.plan import BotPlan
from marketbot.bot.recorder import BarPrices, FillRecorder, OpenTrade
from marketbot.bot.risk_book import RiskBook
from marketbot.bot.sizing import entry_cost
from marketbot.bot.venue import Venue
from marketbot.core.clock import ManualClock
from marketbot.core.codes import FLAT, LONG
from marketbot.execution.client_ids import client_order_id
from marketbot.execution.models import Order, OrderSide, OrderType, Ticker
from marketbot.execution.paper import PaperBar
from marketbot.execution.timeouts import OrderTimeoutHandler
from marketbot.net.rate_limiter import PRIORITY_EMERGENCY, PRIORITY_NORMAL
from marketbot.store.bot import BotRecordRepository, BotRunInfo, OrderIntent, OrderRepository

_log = logging.getLogger("marketbot.bot")
# The name the order timeout handler knows the loop's venue by (paper or live alike).
VENUE_NAME = "venue"


@dataclass
class LoopState:
    """What the loop carries from bar to bar besides the exchange and the database.

    Attributes:
        open_trade: The position the bot holds, as its entry filled (None: flat).
        paused: An operator paused new entries (exits still run).
        stop_requested: An operator asked the bot to stop after this bar.
        denials: Entries the risk limits refused, by reason.
        entry_signal: The strategy's entry signal at the last close (alerts read it).
        size_fraction: The size it asked for there (NaN: the run's sizing).
    """

    open_trade: OpenTrade | None = None
    paused: bool = False
    stop_requested: bool = False
    denials: dict[str, int] = field(default_factory=dict)
    entry_signal: bool | None = None
    size_fraction: float | None = None


@dataclass(frozen=True)
class LoopParts:
    """The objects one loop works with (built and wired by the runner)."""

    plan: BotPlan
    run: BotRunInfo
    exchange: Venue
    orders: OrderRepository
    records: BotRecordRepository
    risk: RiskBook
    clock: ManualClock
    recorder: FillRecorder
    commands: CommandHandler
    timeouts: OrderTimeoutHandler
    settings: KernelSettings
    alerts: LoopAlerts | None = None


class BotLoop:
    """Runs the bot bar by bar over a plan's bars (a replay) on one exchange."""

    def __init__(self, parts: LoopParts, state: LoopState) -> None:
        self.parts = parts
        self.state = state
        plan = parts.plan
        self._times = plan.bar_times
        seen = parts.exchange.fetch_ohlcv(plan.symbol, plan.timeframe)
        # A bar the venue processed before a crash is not processed again: its fills were
        # recovered by client id at the start (bot.recovery).
        self._venue_last: datetime | None = seen[-1].opened_at if seen else None

    def extend(self, plan: BotPlan) -> None:
        """Forward trading: the plan now holds bars that closed since (the same run)."""
        self.parts = replace(self.parts, plan=plan)
        self._times = plan.bar_times

    def run_bar(self, row: int, *, decide: bool = True) -> None:
        """Process bar ``row`` of the plan's frame (``plan.first`` <= row).

        ``decide=False`` (forward trading catching up on bars that closed while it was
        down) shows the bar to the venue and marks the account, but sends nothing.
        """
        parts, plan = self.parts, self.parts.plan
        time = self._times[row].to_pydatetime()
        bar = plan.frame.iloc[row]
        parts.clock.set(time)
        parts.commands.apply_pending(self, time)
        parts.risk.open_bar(time)
        window_bar = PaperBar(
            index=row - plan.first, time=time, open=float(bar["open"]), high=float(bar["high"]),
            low=float(bar["low"]), close=float(bar["close"]), volume=float(bar["volume"]),
        )  # fmt: skip
        prices = BarPrices(window_bar.index, time, window_bar.open)
        if self._venue_last is None or time > self._venue_last:
            for order in parts.exchange.process_bar(plan.symbol, window_bar):
                trade = self.state.open_trade
                self.state.open_trade = parts.recorder.record(order, prices, trade)
        parts.timeouts.poll()
        equity = parts.exchange.equity({plan.symbol: window_bar.close})
        parts.risk.mark(equity, time)
        parts.recorder.record_risk_events(parts.risk.drain_events())
        if decide:
            self._decide(row, window_bar)
        parts.recorder.record_risk_events(parts.risk.drain_events())
        previous = float(plan.frame["close"].iloc[row - 1]) if row > 0 else None
        self._evaluate_alerts(time, window_bar.close, previous, is_ticker=False)

    def on_ticker(self, ticker: Ticker) -> None:
        """Forward trading: the venue fills what this ticker fills; the account is marked.

        A market order fills at the ticker (buys at the ask, sells at the bid), so the
        verifier expects those prices.
        """
        parts, plan = self.parts, self.parts.plan
        parts.clock.set(max(ticker.at, parts.clock.now()))
        buys = BarPrices(-1, ticker.at, ticker.ask if ticker.ask is not None else ticker.last)
        sells = BarPrices(-1, ticker.at, ticker.bid if ticker.bid is not None else ticker.last)
        for order in parts.exchange.process_ticker(plan.symbol, ticker):
            prices = buys if order.side is OrderSide.BUY else sells
            self.state.open_trade = parts.recorder.record(order, prices, self.state.open_trade)
        parts.timeouts.poll()
        parts.risk.mark(parts.exchange.equity({plan.symbol: ticker.last}), ticker.at)
        parts.recorder.record_risk_events(parts.risk.drain_events())
        self._evaluate_alerts(ticker.at, ticker.last, None, is_ticker=True)

    def _evaluate_alerts(
        self, at: datetime, price: float, previous_close: float | None, *, is_ticker: bool
    ) -> None:
        """The stored alerts on this mark of the account (none when the run has no alerts)."""
        parts = self.parts
        if parts.alerts is None or not parts.alerts.any_enabled():
            return
        position = parts.exchange.open_position(parts.plan.symbol)
        units = 0.0 if position is None else position.units
        reading = BarReading(
            at=at, price=price, previous_close=previous_close, is_ticker=is_ticker,
            entry_signal=self.state.entry_signal, size_fraction=self.state.size_fraction,
            equity=parts.risk.last_equity, day_start_equity=parts.risk.day_start_equity,
            peak_equity=parts.risk.peak_equity, exposure_usd=units * price,
            open_positions=0 if position is None else 1,
            trade_pnls=tuple(t.pnl for t in parts.records.trades(parts.run.id)),
        )  # fmt: skip
        parts.alerts.evaluate(reading)

    def _decide(self, row: int, bar: PaperBar) -> None:
        """The strategy's signals at this close: an exit or an entry for the next open."""
        parts, plan = self.parts, self.parts.plan
        signals = prepare_signals(
            plan.strategy, plan.frame.iloc[: row + 1], plan.params, plan.config
        )
        kernel = signals.kernel
        orders = bar_orders_nb(
            bool(kernel.entries_long[row]), bool(kernel.exits_long[row]),
            bool(kernel.entries_short[row]), bool(kernel.exits_short[row]), False,
        )  # fmt: skip
        self.state.entry_signal = bool(kernel.entries_long[row])
        self.state.size_fraction = float(kernel.size_fraction[row])
        position = parts.exchange.open_position(plan.symbol)
        held = LONG if position is not None else FLAT
        if position is not None and orders.exit_long:
            self._send_exit(bar.time, position.units, intent="exit")
        if entry_direction_nb(orders, held) != LONG or self.state.paused:
            return
        cash = parts.exchange.quote_cash()
        size_fraction = float(kernel.size_fraction[row])
        cost, notional = self._entry_cost(cash, size_fraction, bar.time)
        if cost <= 0.0:
            return
        next_open = self._next_open(row)
        verdict = parts.risk.entry_verdict(notional, next_open)
        if not verdict.allowed:
            self.state.denials[verdict.limit] = self.state.denials.get(verdict.limit, 0) + 1
            parts.recorder.record_denial(verdict, bar.time, notional)
            return
        tag = _tag_name(signals.tag_names, int(kernel.tag[row]))
        self._send_entry(bar, cost, tag)

    def _entry_cost(self, cash: float, size_fraction: float, at: datetime) -> tuple[float, float]:
        """An entry's quote amount and notional (``bot.sizing.entry_cost``; a sleeve caps it)."""
        return entry_cost(cash, size_fraction, self.parts.settings)

    def _next_open(self, row: int) -> datetime:
        """When the order decided at this close fills: the next bar's open.

        At END there is no next bar yet: the order waits at the venue for the bar one
        spacing later, which a run with a later END (or the live feed) brings; deciding only
        when the next bar is loaded would lose this close's decision when END grows.
        """
        if row + 1 < len(self._times):
            return self._times[row + 1].to_pydatetime()
        return self._times[row].to_pydatetime() + timedelta(seconds=self.parts.plan.bar_seconds)

    def _send_entry(self, bar: PaperBar, cost: float, tag: str | None) -> Order | None:
        parts, plan = self.parts, self.parts.plan
        entry_id = self._client_id(bar.time, "entry")
        protect_id = self._client_id(bar.time, "protect")
        intent = OrderIntent(
            client_order_id=entry_id, bot_run_id=parts.run.id, strategy=plan.strategy.name,
            symbol=plan.symbol, intent="entry", side="buy", order_type="market", cost=cost,
            bar_time=bar.time,
        )  # fmt: skip
        parts.recorder.remember_tag(entry_id, tag)
        return self._send(intent, bar.time, lambda: parts.exchange.create_order(
            plan.symbol, OrderType.MARKET, OrderSide.BUY, cost=cost, client_order_id=entry_id,
            params={"protect_client_order_id": protect_id, "tag": tag,
                    "position_at_signal": "flat"},
            priority=PRIORITY_NORMAL,
        ))  # fmt: skip

    def _send_exit(self, bar_time: datetime, units: float, *, intent: str) -> Order | None:
        parts, plan = self.parts, self.parts.plan
        exit_id = self._client_id(bar_time, intent)
        row = OrderIntent(
            client_order_id=exit_id, bot_run_id=parts.run.id, strategy=plan.strategy.name,
            symbol=plan.symbol, intent=intent, side="sell", order_type="market", amount=units,
            bar_time=bar_time,
        )  # fmt: skip
        return self._send(row, bar_time, lambda: parts.exchange.create_order(
            plan.symbol, OrderType.MARKET, OrderSide.SELL, units, client_order_id=exit_id,
            priority=PRIORITY_EMERGENCY,
        ))  # fmt: skip

    def _send(self, intent: OrderIntent, at: datetime, send: Callable[[], Order]) -> Order | None:
        """Commit the intent, then send it; an intent already stored is sent under its id.

        The decision's id is fixed by its bar (pinned choice 2), so a bar redone after a
        crash finds its intent: sent already (the exchange has it: nothing to do), or never
        sent (sent now, under the same id).
        """
        parts = self.parts
        cid = intent.client_order_id
        stored = parts.orders.find(cid)
        if stored is None:
            parts.orders.insert_intent(intent)
            fault_point("after_intent_commit")
        elif stored.sent_at is not None:
            return None
        else:
            known = parts.exchange.fetch_order_by_client_id(cid, intent.symbol)
            if known is not None:
                parts.recorder.sent(known, at)
                return known
        order = send()
        fault_point("after_send")
        parts.recorder.sent(order, at)
        self._watch(order)
        return order

    def force_exit(self, time: datetime) -> bool:
        """An operator's exit of the position at the next open; False when flat."""
        position = self.parts.exchange.open_position(self.parts.plan.symbol)
        if position is None:
            return False
        self._send_exit(time, position.units, intent="force_exit")
        return True

    def force_entry(self, time: datetime) -> tuple[bool, str]:
        """An operator's entry at the next open, without a signal; (sent?, why or what).

        Sized as a signal's entry would be and held to the hard limits and the breaker; a
        pause, being the operator's own, does not block it.
        """
        parts, plan = self.parts, self.parts.plan
        if parts.exchange.open_position(plan.symbol) is not None:
            return False, f"{plan.symbol}: a position is already open (one per symbol)"
        if any(o.side is OrderSide.BUY for o in parts.exchange.fetch_open_orders(plan.symbol)):
            return False, f"{plan.symbol}: an entry is already pending"
        cost, notional = self._entry_cost(parts.exchange.quote_cash(), float("nan"), time)
        if cost <= 0.0:
            return False, "the free cash buys nothing"
        verdict = parts.risk.entry_verdict(notional, time)
        if not verdict.allowed:
            return False, f"refused by the risk limits: {verdict.reason}"
        entry_id = self._client_id(time, "force_entry")
        intent = OrderIntent(
            client_order_id=entry_id, bot_run_id=parts.run.id, strategy=plan.strategy.name,
            symbol=plan.symbol, intent="force_entry", side="buy", order_type="market",
            cost=cost, bar_time=time,
        )  # fmt: skip
        parts.recorder.remember_tag(entry_id, "force_entry")
        self._send(intent, time, lambda: parts.exchange.create_order(
            plan.symbol, OrderType.MARKET, OrderSide.BUY, cost=cost, client_order_id=entry_id,
            params={"protect_client_order_id": self._client_id(time, "protect"),
                    "tag": "force_entry", "position_at_signal": "flat"},
            priority=PRIORITY_NORMAL,
        ))  # fmt: skip
        return True, f"entry of {cost:,.2f} in {plan.symbol} sent for the next open"

    def _watch(self, order: Order) -> None:
        timeout = self.parts.plan.run_config.order_timeout_seconds
        if timeout > 0 and not order.status.is_terminal:
            self.parts.timeouts.watch(order.id, VENUE_NAME, timeout, symbol=order.symbol)

    def _client_id(self, bar_time: datetime, intent: str) -> str:
        plan = self.parts.plan
        return client_order_id(
            self.parts.run.run_id, plan.strategy.name, plan.symbol, bar_time, intent, 0
        )


def _tag_name(names: tuple[str, ...], tag: int) -> str | None:
    return names[tag] if 0 <= tag < len(names) else None


def replay_rows(plan: BotPlan, after: datetime | None) -> range:
    """The rows still to replay: from START, or from the bar after ``after``."""
    if after is None:
        return range(plan.first, len(plan.frame))
    index = plan.bar_times
    next_row = int(index.searchsorted(after, side="right"))
    return range(max(next_row, plan.first), len(plan.frame))
