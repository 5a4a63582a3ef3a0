"""One decision core: the live-side objects, replayed bar by bar, decide as the kernel does.

A small paper loop drives ``ExitManager`` and ``RiskEnforcer`` the way the bot will: at each
open, exits due at the open, then the pending signal exit, then the pending entry (sized,
capped and checked by the enforcer); at each close, the intrabar exit check and the account
update. The kernel runs the same bars and signals. Trades and refused entries must match.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from marketbot.backtest.kernel import KernelSettings, KernelSignals, simulate
from marketbot.core.clock import ManualClock
from marketbot.core.codes import EXIT_REASON_NAMES, SIZING_ALL_IN
from marketbot.core.costs_nb import fee_nb, fill_price_nb
from marketbot.core.risk_limits import RiskLimits
from marketbot.risk.enforcer import RiskEnforcer
from marketbot.risk.exit_manager import Bar, ExitDecision, ExitManager, ExitRuleSet, Position
from marketbot.risk.limits_nb import DENIAL_NAMES, cap_entry_notional_nb
from marketbot.risk.sizing_nb import position_units_nb

FEE, SLIPPAGE, CASH = 0.002, 0.001, 10_000.0


@dataclass
class Case:
    open_: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    times: list[datetime]
    entries: np.ndarray
    exits: np.ndarray
    rules: ExitRuleSet
    limits: RiskLimits


def replay_live(case: Case) -> tuple[list[tuple[int, int, str, float]], dict[int, str]]:
    """The bot's loop on paper: (entry bar, exit bar, reason, exit fill) and refusals."""
    enforcer = RiskEnforcer(case.limits, clock=ManualClock(case.times[0]))
    exit_manager = ExitManager(case.rules)
    cash, last_equity, day_start = CASH, CASH, CASH
    position: Position | None = None
    entry_bar = 0
    trades: list[tuple[int, int, str, float]] = []
    refused: dict[int, str] = {}
    enforcer.update_account(CASH, 0.0, case.times[0])
    day = enforcer.daily_reset_boundary(case.times[0])

    def close_position(bar: int, decision: ExitDecision) -> None:
        nonlocal cash, position
        assert position is not None
        fill = fill_price_nb(decision.price, -1, SLIPPAGE)
        cash += position.size * fill - fee_nb(position.size, fill, FEE)
        trades.append((entry_bar, bar, decision.reason, fill))
        position = None

    for bar, now in enumerate(case.times):
        if enforcer.daily_reset_boundary(now) != day:
            day, day_start = enforcer.daily_reset_boundary(now), last_equity
        open_price = float(case.open_[bar])
        if bar > 0:
            entry = bool(case.entries[bar - 1]) and not case.exits[bar - 1]
            held_at_signal = position is not None
            if position is not None:
                decision = exit_manager.check_open(position, open_price, now)
                if decision is None and case.exits[bar - 1]:
                    decision = ExitDecision("signal", open_price)
                if decision is not None:
                    close_position(bar, decision)
            if entry and not held_at_signal and position is None:
                fill = fill_price_nb(open_price, 1, SLIPPAGE)
                units = position_units_nb(cash, fill, FEE, SIZING_ALL_IN, 1.0, math.nan)
                notional = cap_entry_notional_nb(
                    units * fill,
                    0.0,
                    case.limits.max_position_size_usd,
                    case.limits.max_total_exposure_usd,
                )
                verdict = enforcer.check_trade_allowed(
                    notional, 0.0, last_equity - day_start, 0, equity=last_equity, now=now
                )
                if not verdict.allowed:
                    refused[bar] = verdict.limit
                elif notional > 0:
                    size = notional / fill
                    cash -= size * fill + fee_nb(size, fill, FEE)
                    position = Position("p", "x", 1, fill, now, size)
                    entry_bar = bar
        if position is not None:
            candle = Bar(open_price, case.high[bar], case.low[bar], case.close[bar], now)
            decision = exit_manager.check_exit_conditions(position, candle, now)
            if decision is not None:
                close_position(bar, decision)
        held = 0.0 if position is None else position.size * case.close[bar]
        last_equity = cash + held
        enforcer.update_account(last_equity, last_equity - day_start, now)
    return trades, refused


def run_kernel(case: Case) -> tuple[list[tuple[int, int, str, float]], dict[int, str]]:
    n = len(case.times)
    rules, limits = case.rules, case.limits
    settings = KernelSettings(
        initial_cash=CASH,
        fee_rate=FEE,
        slippage_rate=SLIPPAGE,
        stop_loss=math.nan if rules.stop_loss is None else rules.stop_loss,
        take_profit=math.nan if rules.take_profit is None else rules.take_profit,
        trailing_stop=math.nan if rules.trailing_stop is None else rules.trailing_stop,
        trailing_activation=math.nan,
        max_hold_ns=0 if rules.max_hold is None else int(rules.max_hold.total_seconds() * 1e9),
        sizing_mode=SIZING_ALL_IN,
        sizing_value=1.0,
        allow_short=False,
        max_position_size=limits.max_position_size_usd,
        max_total_exposure=limits.max_total_exposure_usd,
        max_positions=float(limits.max_positions),
        max_daily_loss=limits.max_daily_loss_usd,
        max_drawdown_pct=limits.max_drawdown_pct,
        daily_reset_offset_ns=limits.daily_reset_hour_utc * 3_600 * 1_000_000_000,
    )
    signals = KernelSignals(
        case.entries,
        case.exits,
        np.zeros(n, np.bool_),
        np.zeros(n, np.bool_),
        np.full(n, np.nan),
        np.full(n, -1, np.int64),
    )
    times_ns = np.array([int(t.timestamp()) * 1_000_000_000 for t in case.times], np.int64)
    out = simulate(case.open_, case.high, case.low, case.close, times_ns, signals, settings)
    trades = [
        (
            int(trade["entry_bar"]),
            int(trade["exit_bar"]),
            EXIT_REASON_NAMES[trade["exit_reason"]],
            float(trade["exit_price"]),
        )
        for trade in out.trades
        if EXIT_REASON_NAMES[trade["exit_reason"]] != "end_of_data"
    ]
    refused = {
        int(b): DENIAL_NAMES[out.entry_denials[b]] for b in np.flatnonzero(out.entry_denials)
    }
    return trades, refused


@st.composite
def cases(draw: st.DrawFn) -> Case:
    n = draw(st.integers(30, 160))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    volatility = draw(st.sampled_from([0.005, 0.02, 0.05]))
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, volatility, n)))
    open_ = np.r_[100.0, close[:-1] * np.exp(rng.normal(0.0, volatility / 2, n - 1))]
    spread = np.abs(rng.normal(0.0, volatility, n))
    high = np.maximum(open_, close) * (1 + spread)
    low = np.minimum(open_, close) * (1 - spread)
    start = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=draw(st.integers(0, 23)))
    step = timedelta(hours=draw(st.sampled_from([1, 4, 24])))
    density = draw(st.sampled_from([0.05, 0.2, 0.5]))
    position_size = draw(st.floats(500.0, 20_000.0))
    rules = ExitRuleSet(
        stop_loss=draw(st.sampled_from([None, 0.01, 0.03])),
        take_profit=draw(st.sampled_from([None, 0.02, 0.08])),
        trailing_stop=draw(st.sampled_from([None, 0.015, 0.05])),
        max_hold=draw(st.sampled_from([None, timedelta(hours=6), timedelta(days=2)])),
    )
    limits = RiskLimits(
        max_position_size_usd=position_size,
        max_total_exposure_usd=position_size * draw(st.floats(1.0, 3.0)),
        max_daily_loss_usd=draw(st.floats(20.0, 2_000.0)),
        max_drawdown_pct=draw(st.floats(1.0, 40.0)),
        daily_reset_hour_utc=draw(st.integers(0, 23)),
    )
    return Case(
        open_, high, low, close, [start + i * step for i in range(n)],
        rng.random(n) < density, rng.random(n) < density, rules, limits,
    )  # fmt: skip


@given(case=cases())
def test_live_side_when_replayed_bar_by_bar_decides_as_the_kernel(case: Case) -> None:
    live_trades, live_refused = replay_live(case)
    kernel_trades, kernel_refused = run_kernel(case)
    assert [t[:3] for t in live_trades] == [t[:3] for t in kernel_trades]
    np.testing.assert_allclose(
        [t[3] for t in live_trades], [t[3] for t in kernel_trades], rtol=1e-12
    )
    assert live_refused == kernel_refused
