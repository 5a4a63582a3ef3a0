"""The compiled kernel against the plain-Python reference, on random bars, signals and settings.

The reference (tests/support/reference_backtest.py) is written from docs/backtesting.md alone,
so agreement here is what lets the page call its rules exact. Two kinds of path: random walks
with gaps between bars, flat bars, jumps big enough to gap through every stop and, for some,
prices on a coarse grid; and "lattice" paths made only of the settings' own entry fills and
levels, so that opens, lows and highs sit exactly on stops, targets and activation levels
(the ``<=`` / ``>=`` cases). Example counts come from the hypothesis profile (tests/conftest.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from marketbot.backtest.kernel import KernelSettings, KernelSignals, simulate
from marketbot.core.codes import EXIT_REASON_NAMES
from tests.support.reference_backtest import (
    RISK_LIMITS_OFF,
    BacktestOutcome,
    outcome_from_kernel,
    run_reference_backtest,
)

MINUTE_NS = 60_000_000_000
RTOL = 1e-9
MAX_BARS = 300


@dataclass(frozen=True)
class Market:
    """One random price path with bar open times, as arrays the kernel takes."""

    open_: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    times_ns: np.ndarray
    spacing_ns: int


# -- strategies ------------------------------------------------------------------------------
#
# Per-bar values are decoded from one byte string per array rather than drawn one by one: it
# keeps generating 300 bars cheap, and hypothesis shrinks bytes towards 0, which decodes to
# "nothing happens" (a flat bar, no signal), so failures shrink to short, quiet examples.

# A byte below the first threshold means no move, up to the second a small one, above it a
# jump from the table (big enough to gap through any stop or target in use).
_GAP_JUMPS = (-0.5, -0.3, -0.15, -0.06, 0.06, 0.15, 0.5, 1.0)
_BODY_JUMPS = (-0.4, -0.2, -0.1, 0.1, 0.2, 0.4, 0.6, 1.0)
_WICK_JUMPS = (0.1, 0.15, 0.2, 0.3)


def _move(byte: int, flat_below: int, small: float, jumps: tuple[float, ...]) -> float:
    """Decode one byte into a relative move: none, small (within +-small) or a table jump."""
    first_jump = 256 - len(jumps)
    if byte < flat_below:
        return 0.0
    if byte >= first_jump:
        return jumps[byte - first_jump]
    return small * (2.0 * (byte - flat_below) / (first_jump - 1 - flat_below) - 1.0)


def _wick(byte: int) -> float:
    return abs(_move(byte, 96, 0.04, _WICK_JUMPS))


@st.composite
def markets(draw: st.DrawFn, num_bars: int) -> Market:
    """A consistent OHLC path: 0 < low <= min(open, close) <= max(open, close) <= high.

    Gaps between bars, flat bars and jumps all occur; a third of the paths are on a coarse
    price grid, so that a stop such as 100 x 0.95 can land exactly on a bar's low.
    """
    price = draw(st.sampled_from([100.0, 1.0, 30_000.0]))
    tick = draw(st.sampled_from([0.0, price / 100.0, price / 20.0]))
    moves = draw(st.binary(min_size=4 * num_bars, max_size=4 * num_bars))
    rows: list[tuple[float, float, float, float]] = []
    for bar in range(num_bars):
        gap_byte, body_byte, upper_byte, lower_byte = moves[4 * bar : 4 * bar + 4]
        open_ = price * (1.0 + _move(gap_byte, 160, 0.02, _GAP_JUMPS))
        close = open_ * (1.0 + _move(body_byte, 64, 0.05, _BODY_JUMPS))
        high = max(open_, close) * (1.0 + _wick(upper_byte))
        low = min(open_, close) * (1.0 - min(_wick(lower_byte), 0.9))
        if tick > 0.0:
            open_, close = _on_grid(open_, tick), _on_grid(close, tick)
            high = max(_on_grid(high, tick), open_, close)
            low = min(_on_grid(low, tick), open_, close)
        rows.append((open_, high, low, close))
        price = close
    spacing = draw(st.sampled_from([MINUTE_NS, 3_600 * 1_000_000_000]))
    # Gaps in time: most bars follow at one spacing, a few after up to 25 spacings.
    step_bytes = draw(st.binary(min_size=num_bars, max_size=num_bars))
    steps = np.array([1 if byte < 200 else byte - 230 if byte > 231 else 2 for byte in step_bytes])
    times = 1_700_000_000 * 1_000_000_000 + spacing * np.cumsum(steps.astype(np.int64))
    columns = np.array(rows, dtype=np.float64).reshape(num_bars, 4)
    return Market(
        open_=np.ascontiguousarray(columns[:, 0]),
        high=np.ascontiguousarray(columns[:, 1]),
        low=np.ascontiguousarray(columns[:, 2]),
        close=np.ascontiguousarray(columns[:, 3]),
        times_ns=times.astype(np.int64),
        spacing_ns=spacing,
    )


def _on_grid(value: float, tick: float) -> float:
    return max(tick, round(value / tick) * tick)


@st.composite
def flags(draw: st.DrawFn, num_bars: int) -> np.ndarray:
    """A boolean signal array: none, sparse (about 3 %), dense (about 50 %) or everywhere."""
    density = draw(st.sampled_from([0.0, 0.03, 0.5, 1.0]))
    if density in {0.0, 1.0}:
        return np.full(num_bars, density == 1.0)
    raw = draw(st.binary(min_size=num_bars, max_size=num_bars))
    return np.frombuffer(raw, dtype=np.uint8) >= round(256 * (1.0 - density))


@st.composite
def size_fractions(draw: st.DrawFn, num_bars: int) -> np.ndarray:
    """Per-signal size fractions: NaN (use the sizing mode) or a fraction in [0, 1].

    Half the arrays are all NaN; otherwise a zero byte is NaN and byte b is b / 255 (1/255
    to 1), plus tiny fractions (1e-6) that leave the account almost all in cash and zero (a
    signal that sizes to nothing and so does not enter).
    """
    if draw(st.booleans()):
        return np.full(num_bars, math.nan)
    raw = np.frombuffer(draw(st.binary(min_size=num_bars, max_size=num_bars)), dtype=np.uint8)
    fractions = np.where(raw == 0, math.nan, raw / 255.0)
    fractions[raw == 1] = 1e-6
    fractions[raw == 2] = 0.0
    return fractions


@st.composite
def kernel_signals(draw: st.DrawFn, num_bars: int) -> KernelSignals:
    """Random signals; half the time long exits are exactly the bars without a long entry."""
    entries_long = draw(flags(num_bars))
    exits_long = ~entries_long if draw(st.booleans()) else draw(flags(num_bars))
    tags = np.frombuffer(draw(st.binary(min_size=num_bars, max_size=num_bars)), dtype=np.uint8)
    return KernelSignals(
        entries_long=entries_long,
        exits_long=exits_long,
        entries_short=draw(flags(num_bars)),
        exits_short=draw(flags(num_bars)),
        size_fraction=draw(size_fractions(num_bars)),
        tag=tags.astype(np.int64),
    )


def _optional(rate: st.SearchStrategy[float]) -> st.SearchStrategy[float]:
    return st.one_of(st.just(math.nan), rate)


# Round rates make prices land exactly on levels; rates below the slippage put a level beyond
# the open on the entry bar.
_stop_rates = st.sampled_from([0.05, 0.1, 0.002]) | st.floats(0.0005, 0.3)


@st.composite
def kernel_settings(draw: st.DrawFn, spacing_ns: int) -> KernelSettings:
    """Random settings: each exit rule on or off, shorts on or off, every sizing mode."""
    initial_cash = draw(st.sampled_from([10_000.0, 1_000.0, 123_456.78]))
    sizing_mode = draw(st.sampled_from([0, 1, 2]))
    if sizing_mode == 1:
        sizing_value = draw(st.floats(0.01, 1.0))
    elif sizing_mode == 2:
        sizing_value = draw(st.floats(1.0, 2.0 * initial_cash))
    else:
        sizing_value = 1.0
    # Whole numbers of bar spacings (and one nanosecond either side) probe the ">=".
    max_hold_ns = draw(
        st.one_of(
            st.just(0),
            st.builds(
                lambda bars, nudge: bars * spacing_ns + nudge,
                st.integers(1, 20),
                st.sampled_from([0, 0, -1, 1]),
            ),
            st.integers(1, 30 * spacing_ns),
        )
    )
    return KernelSettings(
        initial_cash=initial_cash,
        fee_rate=draw(st.sampled_from([0.0, 0.002]) | st.floats(0.0, 0.01)),
        slippage_rate=draw(st.sampled_from([0.0, 0.001, 0.005]) | st.floats(0.0, 0.01)),
        stop_loss=draw(_optional(_stop_rates)),
        take_profit=draw(_optional(st.sampled_from([0.05, 0.1]) | st.floats(0.0005, 0.5))),
        trailing_stop=draw(_optional(_stop_rates)),
        trailing_activation=draw(_optional(st.sampled_from([0.0, 0.05]) | st.floats(0.0005, 0.3))),
        max_hold_ns=max_hold_ns,
        sizing_mode=sizing_mode,
        sizing_value=sizing_value,
        allow_short=draw(st.booleans()),
        **RISK_LIMITS_OFF,
    )


def _level_lattice(base: float, settings: KernelSettings) -> list[float]:
    """Prices at which a position entered at ``base`` meets its rules exactly.

    The entry fills and every level the page defines from them, computed with the page's
    formulas (so in the same floating-point values the simulation will compare), then the
    trailing levels of each of those prices as a possible extreme.
    """
    slippage = settings.slippage_rate
    fills = [base * (1.0 + slippage), base * (1.0 - slippage)]
    rates = [settings.stop_loss, settings.take_profit, settings.trailing_activation]
    prices = {base, *fills}
    for fill in fills:
        for rate in rates:
            if not math.isnan(rate):
                prices.update((fill * (1.0 - rate), fill * (1.0 + rate)))
    if not math.isnan(settings.trailing_stop):
        for extreme in list(prices):
            d = settings.trailing_stop
            prices.update((extreme * (1.0 - d), extreme * (1.0 + d)))
    return sorted(price for price in prices if price > 0.0)


@st.composite
def lattice_markets(draw: st.DrawFn, num_bars: int, settings: KernelSettings) -> Market:
    """A path whose every price is an entry fill or a level: ties with ``<=`` on every rule.

    Opens, highs, lows and closes are picked from ``_level_lattice``; positions entered at
    the base price then see opens, lows and highs exactly at their stops, targets,
    activation and trailing levels.
    """
    lattice = _level_lattice(draw(st.sampled_from([100.0, 1.0, 37.7])), settings)
    picks = draw(st.binary(min_size=4 * num_bars, max_size=4 * num_bars))
    rows = []
    for bar in range(num_bars):
        open_, close, high, low = (lattice[b % len(lattice)] for b in picks[4 * bar : 4 * bar + 4])
        rows.append((open_, max(open_, close, high), min(open_, close, low), close))
    columns = np.array(rows, dtype=np.float64).reshape(num_bars, 4)
    times = 1_700_000_000 * 1_000_000_000 + MINUTE_NS * np.arange(num_bars, dtype=np.int64)
    return Market(
        open_=np.ascontiguousarray(columns[:, 0]),
        high=np.ascontiguousarray(columns[:, 1]),
        low=np.ascontiguousarray(columns[:, 2]),
        close=np.ascontiguousarray(columns[:, 3]),
        times_ns=times,
        spacing_ns=MINUTE_NS,
    )


@dataclass(frozen=True)
class Scenario:
    """Everything one simulation takes."""

    market: Market
    signals: KernelSignals
    settings: KernelSettings


_bar_counts = st.integers(1, MAX_BARS) | st.integers(MAX_BARS // 2, MAX_BARS)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """Random bars (gaps, flat bars, jumps), signals and settings, 1 to MAX_BARS bars."""
    num_bars = draw(_bar_counts)
    market = draw(markets(num_bars))
    settings = draw(kernel_settings(market.spacing_ns))
    return Scenario(market, draw(kernel_signals(num_bars)), settings)


@st.composite
def lattice_scenarios(draw: st.DrawFn) -> Scenario:
    """Like ``scenarios``, on a path made of the settings' own levels (see lattice_markets)."""
    num_bars = draw(_bar_counts)
    settings = draw(kernel_settings(MINUTE_NS))
    market = draw(lattice_markets(num_bars, settings))
    return Scenario(market, draw(kernel_signals(num_bars)), settings)


# -- comparison ------------------------------------------------------------------------------


def _run_both(scenario: Scenario) -> tuple[BacktestOutcome, BacktestOutcome]:
    market = scenario.market
    arrays = (market.open_, market.high, market.low, market.close, market.times_ns)
    kernel = outcome_from_kernel(simulate(*arrays, scenario.signals, scenario.settings))
    reference = run_reference_backtest(*arrays, scenario.signals, scenario.settings)
    return kernel, reference


def _assert_close(name: str, kernel: float, reference: float, scale: float) -> None:
    # Relative agreement, with an absolute floor at RTOL x the account's size: cash after an
    # all-in entry, or the equity of a blown-up short, is a difference of large numbers and
    # the two implementations may round it differently in the last bits.
    assert math.isclose(kernel, reference, rel_tol=RTOL, abs_tol=RTOL * scale), (
        f"{name}: kernel {kernel!r} != reference {reference!r}"
    )


def assert_same_outcome(
    kernel: BacktestOutcome, reference: BacktestOutcome, initial_cash: float
) -> None:
    """Same trades (exact bars, sides, reasons, tags; numbers to RTOL) and the same equity."""
    assert len(kernel.trades) == len(reference.trades), (
        f"{len(kernel.trades)} kernel trades != {len(reference.trades)} reference trades:\n"
        f"kernel {kernel.trades}\nreference {reference.trades}"
    )
    for number, (ours, theirs) in enumerate(zip(kernel.trades, reference.trades, strict=True)):
        where = f"trade {number}"
        assert (ours.entry_bar, ours.exit_bar, ours.direction, ours.exit_reason, ours.tag) == (
            theirs.entry_bar,
            theirs.exit_bar,
            theirs.direction,
            theirs.exit_reason,
            theirs.tag,
        ), f"{where}: kernel {ours} != reference {theirs}"
        for field in ("size", "entry_price", "exit_price"):
            _assert_close(f"{where} {field}", getattr(ours, field), getattr(theirs, field), 0.0)
        _assert_close(f"{where} pnl", ours.pnl, theirs.pnl, initial_cash)
        _assert_close(f"{where} fees", ours.fees, theirs.fees, initial_cash)
        # pnl_pct is pnl over the entry notional, so its floor is in percent of that notional.
        _assert_close(f"{where} pnl_pct", ours.pnl_pct, theirs.pnl_pct, 100.0)
    assert len(kernel.equity) == len(reference.equity)
    for bar, (ours_equity, theirs_equity) in enumerate(
        zip(kernel.equity, reference.equity, strict=True)
    ):
        _assert_close(f"equity at bar {bar}", ours_equity, theirs_equity, initial_cash)
    assert kernel.exposed_bars == reference.exposed_bars
    _assert_close("total_fees", kernel.total_fees, reference.total_fees, initial_cash)


# -- properties ------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _compiled_kernel() -> None:
    """Compile (or load) the kernel once, outside the timed hypothesis examples."""
    one = np.ones(2)
    signals = KernelSignals(
        np.zeros(2, np.bool_),
        np.zeros(2, np.bool_),
        np.zeros(2, np.bool_),
        np.zeros(2, np.bool_),
        np.full(2, math.nan),
        np.zeros(2, np.int64),
    )
    settings = KernelSettings(
        initial_cash=1.0,
        fee_rate=0.0,
        slippage_rate=0.0,
        stop_loss=math.nan,
        take_profit=math.nan,
        trailing_stop=math.nan,
        trailing_activation=math.nan,
        max_hold_ns=0,
        sizing_mode=0,
        sizing_value=1.0,
        allow_short=True,
        **RISK_LIMITS_OFF,
    )
    simulate(one, one, one, one, np.arange(2, dtype=np.int64), signals, settings)


def assert_accounting_identities(outcome: BacktestOutcome, initial_cash: float) -> None:
    """The trades explain the equity: P&L sums to its change, fees to the total paid."""
    equity_change = outcome.equity[-1] - initial_cash
    _assert_close("equity change", equity_change, sum(t.pnl for t in outcome.trades), initial_cash)
    _assert_close("fees", outcome.total_fees, sum(t.fees for t in outcome.trades), initial_cash)
    for earlier, later in zip(outcome.trades, outcome.trades[1:], strict=False):
        assert earlier.exit_bar <= later.entry_bar, "trades overlap"


def _check_against_reference(scenario: Scenario) -> None:
    kernel, reference = _run_both(scenario)
    for trade in reference.trades:
        side = "long" if trade.direction > 0 else "short"
        event(f"{side} exit: {EXIT_REASON_NAMES[trade.exit_reason]}")
    assert_accounting_identities(reference, scenario.settings.initial_cash)
    assert_same_outcome(kernel, reference, scenario.settings.initial_cash)


@given(scenarios())
def test_kernel_when_random_bars_signals_and_settings_matches_reference(
    scenario: Scenario,
) -> None:
    _check_against_reference(scenario)


@given(lattice_scenarios())
def test_kernel_when_prices_sit_exactly_on_levels_matches_reference(scenario: Scenario) -> None:
    _check_against_reference(scenario)


def test_reference_when_a_risk_limit_is_on_refuses_to_run() -> None:
    # The reference models docs/backtesting.md only; a silent run without the limit would
    # make a kernel/reference comparison meaningless.
    no = np.zeros(1, np.bool_)
    signals = KernelSignals(no, no, no, no, np.full(1, math.nan), np.zeros(1, np.int64))
    settings = KernelSettings(
        10_000.0, 0.0, 0.0, math.nan, math.nan, math.nan, math.nan, 0, 0, 1.0, False,
        **{**RISK_LIMITS_OFF, "max_daily_loss": 100.0},
    )  # fmt: skip
    with pytest.raises(ValueError, match="max_daily_loss"):
        run_reference_backtest([1.0], [1.0], [1.0], [1.0], [0], signals, settings)
