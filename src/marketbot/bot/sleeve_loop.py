"""One sleeve's loop in a multi-strategy run, and the account's risk book over all sleeves.

:class:`SleeveLoop` is the single run's :class:`~marketbot.bot.loop.BotLoop` split at the
account mark: :meth:`SleeveLoop.venue_bar` shows the sleeve's bar to the shared paper
exchange and records its fills; the multi runner then marks the account once with every
sleeve's close; :meth:`SleeveLoop.close_bar` decides (the loop's own signals, exits and
entries, client order ids and intents). Entries are sized as in a single run, then cut to
the sleeve's capital (its weight of the equity, less what it holds) and to the room the
account's exposure limit leaves; a cut or skipped entry is a ``sleeve_cap`` risk event.

:class:`AccountRiskBook` asks the limits about an entry with the account's exposure and
open positions, every symbol's, where a single run (one position at most) passes none.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from marketbot.backtest.step_nb import limits_on_nb
from marketbot.bot.loop import BotLoop, LoopParts, LoopState
from marketbot.bot.recorder import BarPrices
from marketbot.bot.risk_book import RiskBook
from marketbot.bot.sleeve_capital import SleeveCapital
from marketbot.core.clock import Clock, epoch_ns
from marketbot.core.risk_limits import RiskLimits
from marketbot.execution.paper import PaperBar
from marketbot.risk.circuit_breaker import RiskEvent
from marketbot.risk.enforcer import RiskDecision
from marketbot.risk.limits_nb import cap_entry_notional_nb

# The account's exposure: (notional held in every symbol, open positions).
ExposureReader = Callable[[], tuple[float, int]]


class AccountRiskBook(RiskBook):
    """The risk book of an account several sleeves trade in (see the module docstring).

    Args:
        limits: The account's limits; None means none (only a manual halt stops entries).
        initial_cash: The account's starting equity.
        clock: The bot's clock (bar time in a replay).
        exposure: Reads the account's exposure and open positions now.
    """

    def __init__(
        self,
        limits: RiskLimits | None,
        initial_cash: float,
        clock: Clock,
        exposure: ExposureReader,
    ) -> None:
        super().__init__(limits, initial_cash, clock)
        self.exposure = exposure

    def entry_verdict(self, notional: float, next_open: datetime) -> RiskDecision:
        """May an entry of ``notional`` fill at ``next_open``, given what the account holds?"""
        if not self.limits_on:
            return super().entry_verdict(notional, next_open)
        held, positions = self.exposure()
        next_ns = epoch_ns(next_open)
        new_day = self.next_reset_ns is not None and next_ns >= self.next_reset_ns
        day_start = self.last_equity if new_day else self.day_start_equity
        return self.enforcer.check_trade_allowed(
            notional, held, self.last_equity - day_start, positions, equity=self.last_equity,
            now=next_open,
        )  # fmt: skip


class SleeveLoop(BotLoop):
    """A sleeve's loop: its bars at the shared venue, its decisions under its capital.

    Args:
        parts: The loop's parts; ``plan`` and ``run`` are the sleeve's (the run record's id
            and run id, the sleeve's strategy and symbol), the rest the account's.
        state: The sleeve's open trade, pause and denials.
        key: The sleeve's key (``strategy@symbol``).
        capital: The sleeves' weights.
        exposure: Reads the account's exposure, for the total exposure limit.
        marks: The last close of every symbol (the multi runner keeps it).
    """

    def __init__(
        self,
        parts: LoopParts,
        state: LoopState,
        *,
        key: str,
        capital: SleeveCapital,
        exposure: ExposureReader,
        marks: dict[str, float],
    ) -> None:
        super().__init__(parts, state)
        self.key = key
        self.capital = capital
        self.exposure = exposure
        self.marks = marks

    @property
    def symbol(self) -> str:
        """What the sleeve trades."""
        return self.parts.plan.symbol

    def venue_bar(self, row: int) -> PaperBar:
        """Show bar ``row`` to the venue (once: not a bar it processed before a crash)."""
        parts, plan = self.parts, self.parts.plan
        time = self._times[row].to_pydatetime()
        bar = plan.frame.iloc[row]
        window_bar = PaperBar(
            index=row - plan.first, time=time, open=float(bar["open"]), high=float(bar["high"]),
            low=float(bar["low"]), close=float(bar["close"]), volume=float(bar["volume"]),
        )  # fmt: skip
        prices = BarPrices(window_bar.index, time, window_bar.open)
        if self._venue_last is None or time > self._venue_last:
            for order in parts.exchange.process_bar(plan.symbol, window_bar):
                trade = self.state.open_trade
                self.state.open_trade = parts.recorder.record(order, prices, trade)
        self.marks[plan.symbol] = window_bar.close
        return window_bar

    def close_bar(self, row: int, bar: PaperBar, *, decide: bool = True) -> None:
        """After the account's mark: the sleeve's decision at this close, then its alerts."""
        plan = self.parts.plan
        if decide:
            self._decide(row, bar)
        previous = float(plan.frame["close"].iloc[row - 1]) if row > 0 else None
        self._evaluate_alerts(bar.time, bar.close, previous, is_ticker=False)

    def held_value(self) -> float:
        """The sleeve's position at its last close (0 when flat)."""
        position = self.parts.exchange.open_position(self.symbol)
        if position is None:
            return 0.0
        return position.units * self.marks.get(self.symbol, 0.0)

    def _entry_cost(self, cash: float, size_fraction: float, at: datetime) -> tuple[float, float]:
        """The single run's entry, then cut to the sleeve's capital and the exposure room."""
        cost, notional = super()._entry_cost(cash, size_fraction, at)
        if cost <= 0.0:
            return cost, notional
        settings = self.parts.settings
        fee_factor = 1.0 + settings.fee_rate
        wanted = cost
        if limits_on_nb(settings):
            held, _ = self.exposure()
            room = float(
                cap_entry_notional_nb(
                    notional, held, settings.max_position_size, settings.max_total_exposure
                )
            )
            cost = min(cost, room * fee_factor)
        equity = self.parts.risk.last_equity
        capital = self.capital.capital(self.key, equity, self.held_value())
        if cost <= capital:
            return (cost, cost / fee_factor) if cost > 0.0 else (0.0, 0.0)
        cost = capital
        weight = self.capital.weights[self.key]
        what = f"cut to {cost:,.2f}" if cost > 0.0 else "skipped"
        self.parts.recorder.record_risk_events([
            RiskEvent(
                "sleeve_cap", at,
                f"{self.key}: entry of {wanted:,.2f} {what}: the sleeve's capital is "
                f"{100.0 * weight:.1f} % of the equity {equity:,.2f} less "
                f"{self.held_value():,.2f} held",
                details={"sleeve": self.key, "strategy": self.parts.plan.strategy.name,
                         "symbol": self.symbol, "wanted": wanted, "allowed": cost,
                         "weight": weight, "equity": equity, "skipped": cost <= 0.0},
            )
        ])  # fmt: skip
        return (cost, cost / fee_factor) if cost > 0.0 else (0.0, 0.0)
