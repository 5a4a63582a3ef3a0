"""The compiled portfolio kernel against the plain-Python portfolio reference.

The reference (tests/support/reference_portfolio.py) is written from docs/backtesting.md,
docs/portfolio.md and docs/risk.md. Both get the same random panels (bars x symbols, with
holes where a symbol has no bar, symbols that start late, gaps and jumps), signals, ranks and
settings (shared cash, slots, the exposure cap, the portfolio stop, exits, sizing, shorts and
the risk limits), and must give the same trades, equity, exposure, cash, refusals and
breaker trips. Half the panels are "lattice" paths made of the settings' own fills and
levels, so that opens, lows and highs sit exactly on stops, targets and trailing levels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from hypothesis import event, given
from hypothesis import strategies as st

from marketbot.backtest.kernel import KernelSettings, KernelSignals
from marketbot.backtest.portfolio_kernel import PortfolioSettings, simulate_portfolio
from tests.support.reference_portfolio import (
    PortfolioOutcome,
    outcome_from_portfolio_kernel,
    run_reference_portfolio,
)

RTOL = 1e-9
MINUTE_NS = 60_000_000_000
HOUR_NS = 60 * MINUTE_NS
MAX_BARS = 80
MAX_SYMBOLS = 5
EXIT_NAMES = (
    "signal",
    "stop_loss",
    "take_profit",
    "trailing_stop",
    "max_hold",
    "end_of_data",
    "portfolio_stop",
)


@dataclass(frozen=True)
class Panel:
    """Bars x symbols prices (NaN: no bar), bar times, signals and ranks."""

    open_: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    times_ns: np.ndarray
    signals: KernelSignals
    priority: np.ndarray


@dataclass(frozen=True)
class Scenario:
    panel: Panel
    settings: KernelSettings
    portfolio: PortfolioSettings


def _optional(values: st.SearchStrategy[float]) -> st.SearchStrategy[float]:
    return st.one_of(st.just(math.nan), values)


_rates = st.sampled_from([0.05, 0.1, 0.002]) | st.floats(0.0005, 0.3)


@st.composite
def kernel_settings(draw: st.DrawFn, cash: float) -> KernelSettings:
    """Exits, costs, sizing and shorts at random; the risk limits on in half the draws."""
    sizing_mode = draw(st.sampled_from([0, 0, 1, 2]))
    sizing_value = {0: 1.0, 1: draw(st.floats(0.05, 1.0)), 2: draw(st.floats(10.0, cash))}
    limits_on = draw(st.booleans())
    limit = _optional if limits_on else (lambda _: st.just(math.nan))
    return KernelSettings(
        initial_cash=cash,
        fee_rate=draw(st.sampled_from([0.0, 0.002]) | st.floats(0.0, 0.01)),
        slippage_rate=draw(st.sampled_from([0.0, 0.001]) | st.floats(0.0, 0.01)),
        stop_loss=draw(_optional(_rates)),
        take_profit=draw(_optional(st.sampled_from([0.05, 0.1]) | st.floats(0.0005, 0.5))),
        trailing_stop=draw(_optional(_rates)),
        trailing_activation=draw(_optional(st.sampled_from([0.0, 0.05]) | st.floats(0.0, 0.3))),
        max_hold_ns=draw(st.sampled_from([0, 0, 3 * HOUR_NS, 20 * HOUR_NS])),
        sizing_mode=sizing_mode,
        sizing_value=sizing_value[sizing_mode],
        allow_short=draw(st.booleans()),
        max_position_size=draw(limit(st.floats(0.05 * cash, cash))),
        max_total_exposure=draw(limit(st.floats(0.1 * cash, 2.0 * cash))),
        max_positions=draw(limit(st.sampled_from([1.0, 2.0, 3.0]))),
        max_daily_loss=draw(limit(st.floats(0.005 * cash, 0.2 * cash))),
        max_drawdown_pct=draw(limit(st.floats(1.0, 30.0))),
        daily_reset_offset_ns=draw(st.integers(0, 23)) * HOUR_NS,
    )


@st.composite
def portfolio_settings(draw: st.DrawFn, symbols: int) -> PortfolioSettings:
    return PortfolioSettings(
        max_open_positions=draw(st.integers(1, symbols + 1)),
        max_exposure_fraction=draw(_optional(st.sampled_from([0.3, 0.5, 1.0, 1.5]))),
        portfolio_stop=draw(_optional(st.sampled_from([0.02, 0.05, 0.2]))),
    )


def _bytes(draw: st.DrawFn, count: int) -> np.ndarray:
    return np.frombuffer(draw(st.binary(min_size=count, max_size=count)), dtype=np.uint8)


def _flags(draw: st.DrawFn, shape: tuple[int, int]) -> np.ndarray:
    density = draw(st.sampled_from([0.0, 0.05, 0.3, 0.6]))
    raw = _bytes(draw, shape[0] * shape[1]).reshape(shape)
    return raw >= round(256 * (1.0 - density)) if density else np.zeros(shape, np.bool_)


@st.composite
def signals_and_ranks(draw: st.DrawFn, n: int, k: int) -> tuple[KernelSignals, np.ndarray]:
    """Random signals, size fractions, tags and ranks (NaN, ties, or all different)."""
    entries_long = _flags(draw, (n, k))
    exits_long = ~entries_long if draw(st.booleans()) else _flags(draw, (n, k))
    raw = _bytes(draw, n * k).reshape(n, k)
    if draw(st.booleans()):
        fractions = np.full((n, k), math.nan)
    else:
        fractions = np.where(raw < 128, math.nan, raw / 255.0)
    rank_kind = draw(st.sampled_from(["none", "ties", "distinct"]))
    ranks = {
        "none": np.full((n, k), math.nan),
        "ties": np.where(raw % 3 == 0, math.nan, (raw % 4).astype(np.float64)),
        "distinct": raw.astype(np.float64) + np.arange(k) / (k + 1.0),
    }[rank_kind]
    signals = KernelSignals(
        entries_long=entries_long,
        exits_long=exits_long,
        entries_short=_flags(draw, (n, k)),
        exits_short=_flags(draw, (n, k)),
        size_fraction=fractions,
        tag=(raw % 5).astype(np.int64) - 1,
    )
    return signals, ranks


_JUMPS = (-0.5, -0.2, -0.08, 0.08, 0.2, 0.6)


def _random_prices(draw: st.DrawFn, n: int) -> np.ndarray:
    """One symbol's OHLC rows: flat bars, small moves, and jumps that gap through levels."""
    price = draw(st.sampled_from([100.0, 1.0, 30_000.0]))
    moves = _bytes(draw, 4 * n).reshape(n, 4) / 255.0
    rows = np.empty((n, 4))
    for bar, (gap, body, up, down) in enumerate(moves):
        jump = _JUMPS[int(gap * 5.999)] if gap > 0.9 else 0.04 * (gap - 0.45)
        open_ = price * (1.0 + jump)
        close = open_ * (1.0 + 0.1 * (body - 0.5))
        rows[bar] = (
            open_,
            max(open_, close) * (1 + 0.08 * up),
            min(open_, close) * (1 - 0.08 * down),
            close,
        )
        price = close
    return rows


def _lattice(base: float, settings: KernelSettings) -> list[float]:
    """Entry fills of ``base`` and every level computed from them (as in the page)."""
    slippage = settings.slippage_rate
    fills = [base * (1.0 + slippage), base * (1.0 - slippage)]
    prices = {base, *fills}
    for fill in fills:
        for rate in (settings.stop_loss, settings.take_profit, settings.trailing_activation):
            if not math.isnan(rate):
                prices.update((fill * (1.0 - rate), fill * (1.0 + rate)))
    if not math.isnan(settings.trailing_stop):
        distance = settings.trailing_stop
        for extreme in list(prices):
            prices.update((extreme * (1.0 - distance), extreme * (1.0 + distance)))
    return sorted(price for price in prices if price > 0.0)


def _lattice_prices(draw: st.DrawFn, n: int, settings: KernelSettings) -> np.ndarray:
    lattice = _lattice(draw(st.sampled_from([100.0, 1.0, 37.7])), settings)
    picks = _bytes(draw, 4 * n).reshape(n, 4)
    rows = np.empty((n, 4))
    for bar, (a, b, c, d) in enumerate(picks):
        open_, close, high, low = (lattice[int(x) % len(lattice)] for x in (a, b, c, d))
        rows[bar] = (open_, max(open_, close, high), min(open_, close, low), close)
    return rows


@st.composite
def scenarios(draw: st.DrawFn, lattice: bool) -> Scenario:
    n = draw(st.integers(2, MAX_BARS))
    k = draw(st.integers(1, MAX_SYMBOLS))
    cash = draw(st.sampled_from([10_000.0, 1_000.0, 123_456.78]))
    settings = draw(kernel_settings(cash))
    prices = np.full((4, n, k), math.nan)
    holes = draw(st.sampled_from([0.0, 0.1, 0.4]))
    for symbol in range(k):
        rows = _lattice_prices(draw, n, settings) if lattice else _random_prices(draw, n)
        missing = _bytes(draw, n) < 256 * holes
        missing[: draw(st.integers(0, n // 3))] = True  # some symbols start late
        rows[missing] = math.nan
        prices[:, :, symbol] = rows.T
    steps = np.where(_bytes(draw, n) > 230, 7, 1).astype(np.int64)  # gaps in time
    times = 1_700_000_000 * 1_000_000_000 + HOUR_NS * np.cumsum(steps)
    signals, ranks = draw(signals_and_ranks(n, k))
    panel = Panel(*(np.ascontiguousarray(p) for p in prices), times, signals, ranks)
    return Scenario(panel, settings, draw(portfolio_settings(k)))


def _close(name: str, ours: float, theirs: float, scale: float) -> None:
    assert math.isclose(ours, theirs, rel_tol=RTOL, abs_tol=RTOL * scale), (
        f"{name}: kernel {ours!r} != reference {theirs!r}"
    )


def assert_same_outcome(kernel: PortfolioOutcome, reference: PortfolioOutcome, cash: float) -> None:
    """Same trades (exact bars, symbols, sides, reasons, tags; numbers to RTOL), same curves."""
    assert len(kernel.trades) == len(reference.trades), (
        f"{len(kernel.trades)} kernel trades != {len(reference.trades)} reference trades:\n"
        f"kernel {kernel.trades}\nreference {reference.trades}"
    )
    for number, (ours, theirs) in enumerate(zip(kernel.trades, reference.trades, strict=True)):
        exact = ("symbol", "entry_bar", "exit_bar", "direction", "exit_reason", "tag")
        assert [getattr(ours, f) for f in exact] == [getattr(theirs, f) for f in exact], (
            f"trade {number}: kernel {ours} != reference {theirs}"
        )
        for name in ("size", "entry_price", "exit_price"):
            _close(f"trade {number} {name}", getattr(ours, name), getattr(theirs, name), 0.0)
        _close(f"trade {number} pnl", ours.pnl, theirs.pnl, cash)
        _close(f"trade {number} fees", ours.fees, theirs.fees, cash)
        _close(f"trade {number} pnl_pct", ours.pnl_pct, theirs.pnl_pct, 100.0)
    for curve in ("equity", "exposure", "cash"):
        ours_curve, theirs_curve = getattr(kernel, curve), getattr(reference, curve)
        assert len(ours_curve) == len(theirs_curve)
        for bar, (ours, theirs) in enumerate(zip(ours_curve, theirs_curve, strict=True)):
            _close(f"{curve} at bar {bar}", ours, theirs, cash)
    assert kernel.entry_denials == reference.entry_denials
    assert kernel.breaker_trips == reference.breaker_trips
    assert kernel.exposed_bars == reference.exposed_bars
    _close("total_fees", kernel.total_fees, reference.total_fees, cash)


def _check(scenario: Scenario) -> None:
    panel = scenario.panel
    arrays = (panel.open_, panel.high, panel.low, panel.close, panel.times_ns)
    args = (*arrays, panel.signals, panel.priority, scenario.settings, scenario.portfolio)
    kernel = outcome_from_portfolio_kernel(simulate_portfolio(*args))
    reference = run_reference_portfolio(*args)
    for trade in reference.trades:
        event(f"exit: {EXIT_NAMES[trade.exit_reason]}")
    if reference.entry_denials:
        event("an entry refused by a risk limit")
    assert_same_outcome(kernel, reference, scenario.settings.initial_cash)


@given(scenarios(lattice=False))
def test_portfolio_kernel_when_random_panels_matches_reference(scenario: Scenario) -> None:
    _check(scenario)


@given(scenarios(lattice=True))
def test_portfolio_kernel_when_prices_sit_exactly_on_levels_matches_reference(
    scenario: Scenario,
) -> None:
    _check(scenario)
