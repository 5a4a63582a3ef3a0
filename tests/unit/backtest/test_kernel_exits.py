"""Hand-made price paths with hand-computed answers: the rules of docs/backtesting.md, one each.

Every test runs twice, on the compiled kernel and on the plain-Python reference, so these
worked examples pin both down (the property test then only has to show the two agree).
Unless a test says otherwise: 10,000 cash, no fee, no slippage, all-in sizing, no stops, no
shorts, one bar a minute. A signal at bar t fills at the open of bar t + 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pytest

from marketbot.backtest.kernel import KernelSettings, KernelSignals, simulate
from marketbot.core.codes import (
    EXIT_END_OF_DATA,
    EXIT_MAX_HOLD,
    EXIT_SIGNAL,
    EXIT_STOP_LOSS,
    EXIT_TAKE_PROFIT,
    EXIT_TRAILING_STOP,
    LONG,
    SHORT,
)
from tests.support.reference_backtest import (
    RISK_LIMITS_OFF,
    BacktestOutcome,
    outcome_from_kernel,
    run_reference_backtest,
)

Bar = tuple[float, float, float, float]  # open, high, low, close
MINUTE_NS = 60_000_000_000
HOUR_NS = 60 * MINUTE_NS

DEFAULT_SETTINGS: dict[str, Any] = {
    "initial_cash": 10_000.0,
    "fee_rate": 0.0,
    "slippage_rate": 0.0,
    "stop_loss": math.nan,
    "take_profit": math.nan,
    "trailing_stop": math.nan,
    "trailing_activation": math.nan,
    "max_hold_ns": 0,
    "sizing_mode": 0,
    "sizing_value": 1.0,
    "allow_short": False,
    **RISK_LIMITS_OFF,
}


def flat(price: float) -> Bar:
    """A bar that opens, trades and closes at one price."""
    return (price, price, price, price)


class Backtest(Protocol):
    """Runs one simulation of hand-made bars; signals are given as the bars they occur on."""

    def __call__(
        self,
        bars: Sequence[Bar],
        *,
        entries_long: Sequence[int] = (),
        exits_long: Sequence[int] = (),
        entries_short: Sequence[int] = (),
        exits_short: Sequence[int] = (),
        size_fraction: dict[int, float] | None = None,
        tags: dict[int, int] | None = None,
        times_ns: Sequence[int] | None = None,
        **settings: float | bool,
    ) -> BacktestOutcome: ...


@pytest.fixture(params=["kernel", "reference"])
def backtest(request: pytest.FixtureRequest) -> Backtest:
    """The simulation under test: the compiled kernel, or the reference."""
    engine: str = request.param

    def run(
        bars: Sequence[Bar],
        *,
        entries_long: Sequence[int] = (),
        exits_long: Sequence[int] = (),
        entries_short: Sequence[int] = (),
        exits_short: Sequence[int] = (),
        size_fraction: dict[int, float] | None = None,
        tags: dict[int, int] | None = None,
        times_ns: Sequence[int] | None = None,
        **settings: float | bool,
    ) -> BacktestOutcome:
        n = len(bars)
        prices = np.array(bars, dtype=np.float64).reshape(n, 4)
        open_, high, low, close = (np.ascontiguousarray(prices[:, i]) for i in range(4))
        times = np.arange(n, dtype=np.int64) * MINUTE_NS if times_ns is None else times_ns
        fractions = np.full(n, math.nan)
        for bar, fraction in (size_fraction or {}).items():
            fractions[bar] = fraction
        tag_array = np.zeros(n, dtype=np.int64)
        for bar, tag in (tags or {}).items():
            tag_array[bar] = tag
        signals = KernelSignals(
            _flags(n, entries_long),
            _flags(n, exits_long),
            _flags(n, entries_short),
            _flags(n, exits_short),
            fractions,
            tag_array,
        )
        kernel_settings = KernelSettings(**{**DEFAULT_SETTINGS, **settings})
        times_array = np.asarray(times, dtype=np.int64)
        if engine == "kernel":
            output = simulate(open_, high, low, close, times_array, signals, kernel_settings)
            return outcome_from_kernel(output)
        return run_reference_backtest(
            open_, high, low, close, times_array, signals, kernel_settings
        )

    return run


def _flags(n: int, bars: Sequence[int]) -> np.ndarray:
    values = np.zeros(n, dtype=np.bool_)
    values[list(bars)] = True
    return values


def approx(value: float) -> object:
    """Hand-computed numbers agree to 1e-12 relative (they are decimal, the runs binary)."""
    return pytest.approx(value, rel=1e-12, abs=1e-9)


# -- stop-loss ---------------------------------------------------------------------------


def test_stop_loss_when_low_touches_level_intrabar_exits_at_level_minus_slippage(
    backtest: Backtest,
) -> None:
    # Entry at the open of bar 1: 100 x 1.001 = 100.1; units = 10,000 / 100.1 = 99.9000999...
    # Stop 5 %: 100.1 x 0.95 = 95.095. Bar 2's low 94 reaches it; a sell fills at
    # 95.095 x 0.999 = 94.999905. P&L = (10,000 / 100.1) x -5.100095 = -51,000.95 / 100.1
    # = -509.5 (100.1 x 509.5 = 51,000.95). Equity: bar 1 marked at its close 100,
    # 1,000,000 / 100.1 = 9,990.00999...; after the exit 9,490.5.
    result = backtest(
        [flat(100), (100, 101, 99, 100), (98, 99, 94, 96), flat(96)],
        entries_long=[0],
        slippage_rate=0.001,
        stop_loss=0.05,
    )
    (trade,) = result.trades
    assert (trade.entry_bar, trade.exit_bar, trade.exit_reason) == (1, 2, EXIT_STOP_LOSS)
    assert trade.entry_price == approx(100.1)
    assert trade.exit_price == approx(94.999905)
    assert trade.size == approx(10_000 / 100.1)
    assert trade.pnl == approx(-509.5)
    assert result.equity == [approx(v) for v in (10_000, 1e6 / 100.1, 9_490.5, 9_490.5)]


def test_stop_loss_when_open_gaps_below_level_fills_at_open(backtest: Backtest) -> None:
    # Entry 100, 100 units, stop at 95. Bar 2 opens at 90, below the stop: the exit is at the
    # open (90), not at the level. P&L = 100 x (90 - 100) = -1,000.
    result = backtest([flat(100), flat(100), (90, 92, 88, 91)], entries_long=[0], stop_loss=0.05)
    (trade,) = result.trades
    assert (trade.exit_bar, trade.exit_reason) == (2, EXIT_STOP_LOSS)
    assert trade.exit_price == approx(90)
    assert trade.pnl == approx(-1_000)
    assert result.equity[-1] == approx(9_000)


def test_stop_loss_when_open_sits_exactly_on_level_exits_at_open_as_stop(
    backtest: Backtest,
) -> None:
    # Stop 50 % of 100 is exactly 50 (binary-exact), and bar 2 opens at 50: "low <= level"
    # counts equality, so the open's gap check names the stop, ahead of the pending signal exit.
    result = backtest(
        [flat(100), flat(100), flat(50)], entries_long=[0], exits_long=[1], stop_loss=0.5
    )
    (trade,) = result.trades
    assert (trade.exit_bar, trade.exit_reason) == (2, EXIT_STOP_LOSS)
    assert trade.exit_price == approx(50)


def test_intrabar_exits_when_stop_and_target_hit_in_one_bar_takes_the_stop(
    backtest: Backtest,
) -> None:
    # Entry 100; stop 95, target 105; bar 2 ranges 94..106, touching both: the stop is taken
    # (conservative), at 95. P&L = 100 x -5 = -500.
    result = backtest(
        [flat(100), flat(100), (100, 106, 94, 100)],
        entries_long=[0],
        stop_loss=0.05,
        take_profit=0.05,
    )
    (trade,) = result.trades
    assert (trade.exit_reason, trade.exit_price, trade.pnl) == (
        EXIT_STOP_LOSS,
        approx(95),
        approx(-500),
    )


def test_stop_loss_when_level_is_above_the_entry_bar_open_fills_at_that_open(
    backtest: Backtest,
) -> None:
    # Slippage 1 % puts the fill at 101; a 0.5 % stop is then 101 x 0.995 = 100.495, above the
    # entry bar's open (100). The low (99) reaches it, and a level already beyond the open
    # fills at the open: sell at 100 x 0.99 = 99. Units 10,000 / 101; P&L = units x (99 - 101).
    result = backtest(
        [flat(100), (100, 102, 99, 101), flat(101)],
        entries_long=[0],
        slippage_rate=0.01,
        stop_loss=0.005,
    )
    (trade,) = result.trades
    assert (trade.entry_bar, trade.exit_bar, trade.exit_reason) == (1, 1, EXIT_STOP_LOSS)
    assert trade.exit_price == approx(99)
    assert trade.pnl == approx(10_000 / 101 * -2)
    assert result.exposed_bars == 1


# -- take-profit -------------------------------------------------------------------------


def test_take_profit_when_high_reaches_level_exits_at_level(backtest: Backtest) -> None:
    # Entry 100, target 10 %: 110. Bar 2's high 111 reaches it: exit at 110, P&L +1,000.
    result = backtest(
        [flat(100), flat(100), (102, 111, 101, 108), flat(108)],
        entries_long=[0],
        take_profit=0.1,
    )
    (trade,) = result.trades
    assert (trade.exit_bar, trade.exit_reason) == (2, EXIT_TAKE_PROFIT)
    assert trade.exit_price == approx(110)
    assert trade.pnl == approx(1_000)
    assert result.equity[-1] == approx(11_000)


def test_take_profit_when_open_gaps_above_level_fills_at_the_better_open(
    backtest: Backtest,
) -> None:
    # Target 110; bar 2 opens at 115: exit at the open, 115. P&L = 100 x 15 = 1,500.
    result = backtest(
        [flat(100), flat(100), (115, 116, 112, 113)], entries_long=[0], take_profit=0.1
    )
    (trade,) = result.trades
    assert (trade.exit_reason, trade.exit_price, trade.pnl) == (
        EXIT_TAKE_PROFIT,
        approx(115),
        approx(1_500),
    )


# -- trailing stop -----------------------------------------------------------------------


def test_trailing_stop_when_new_peak_and_old_level_in_one_bar_exits_at_old_level(
    backtest: Backtest,
) -> None:
    # Trailing 10 %, entry 100 at bar 1, extreme 100 after bar 1's close. Bar 2: level 90, low
    # 99, no exit; the close raises the extreme to bar 2's high, 120. Bar 3: level 108; its
    # low 107 reaches it, although its high 125 would have lifted the level to 112.5 had the
    # extreme moved before the check. Exit at 108: P&L = 100 x 8 = 800.
    result = backtest(
        [flat(100), flat(100), (100, 120, 99, 118), (118, 125, 107, 110), flat(110)],
        entries_long=[0],
        trailing_stop=0.1,
    )
    (trade,) = result.trades
    assert (trade.exit_bar, trade.exit_reason) == (3, EXIT_TRAILING_STOP)
    assert trade.exit_price == approx(108)
    assert trade.pnl == approx(800)


def test_trailing_stop_when_not_yet_activated_ignores_lows_below_its_level(
    backtest: Backtest,
) -> None:
    # Trailing 10 % armed at +10 %: once an earlier close has left the extreme at >= 110.
    # Bar 2: extreme 100, unarmed; low 89 (below 90) does nothing; extreme -> 105.
    # Bar 3: extreme 105, unarmed; low 94 (below 94.5) does nothing; extreme -> 109.
    # Bar 4: extreme 109, unarmed; extreme -> 112.
    # Bar 5: armed, level 112 x 0.9 = 100.8; low 100 reaches it: exit at 100.8, P&L 80.
    result = backtest(
        [
            flat(100),
            flat(100),
            (100, 105, 89, 104),
            (104, 109, 94, 100),
            (100, 112, 99, 111),
            (111, 111, 100, 101),
        ],
        entries_long=[0],
        trailing_stop=0.1,
        trailing_activation=0.1,
    )
    (trade,) = result.trades
    assert (trade.exit_bar, trade.exit_reason) == (5, EXIT_TRAILING_STOP)
    assert trade.exit_price == approx(100.8)
    assert trade.pnl == approx(80)


def test_trailing_stop_when_open_gaps_below_level_exits_at_open(backtest: Backtest) -> None:
    # Trailing 10 %: after bar 2 the extreme is 130 and the level 117. Bar 3 opens at 112:
    # exit at the open, 112. P&L = 100 x 12 = 1,200.
    result = backtest(
        [flat(100), flat(100), (100, 130, 100, 125), (112, 113, 111, 112)],
        entries_long=[0],
        trailing_stop=0.1,
    )
    (trade,) = result.trades
    assert (trade.exit_bar, trade.exit_reason) == (3, EXIT_TRAILING_STOP)
    assert trade.exit_price == approx(112)


def test_intrabar_exits_when_target_and_trailing_stop_hit_in_one_bar_takes_the_stop(
    backtest: Backtest,
) -> None:
    # The page: when a stop and the target trigger in one bar the stop is taken; the
    # trailing stop is a stop. Entry 100, target 110, trailing 10 % (level 90, extreme 100);
    # bar 2 ranges 89..111, touching both: the trailing stop exits at 90. P&L = 100 x -10.
    result = backtest(
        [flat(100), flat(100), (100, 111, 89, 100)],
        entries_long=[0],
        take_profit=0.1,
        trailing_stop=0.1,
    )
    (trade,) = result.trades
    assert (trade.exit_reason, trade.exit_price, trade.pnl) == (
        EXIT_TRAILING_STOP,
        approx(90),
        approx(-1_000),
    )


def test_short_intrabar_exits_when_target_and_trailing_stop_hit_in_one_bar_takes_the_stop(
    backtest: Backtest,
) -> None:
    # Short at 100: target 90, trailing 10 % (level 110 from the extreme 100). Bar 2 ranges
    # 89..111: the trailing stop, at 110, is taken. P&L = 100 x (100 - 110) = -1,000.
    result = backtest(
        [flat(100), flat(100), (100, 111, 89, 100)],
        entries_short=[0],
        allow_short=True,
        take_profit=0.1,
        trailing_stop=0.1,
    )
    (trade,) = result.trades
    assert (trade.direction, trade.exit_reason, trade.exit_price) == (
        SHORT,
        EXIT_TRAILING_STOP,
        approx(110),
    )
    assert trade.pnl == approx(-1_000)


def test_intrabar_exits_when_stop_loss_and_trailing_stop_hit_in_one_bar_names_the_stop_loss(
    backtest: Backtest,
) -> None:
    # Entry 100: stop-loss 95, trailing 3 % (level 97). Bar 2's low 94 reaches both: the
    # stop-loss, checked first, exits at its level, 95.
    result = backtest(
        [flat(100), flat(100), (100, 101, 94, 96)],
        entries_long=[0],
        stop_loss=0.05,
        trailing_stop=0.03,
    )
    (trade,) = result.trades
    assert (trade.exit_reason, trade.exit_price) == (EXIT_STOP_LOSS, approx(95))


# -- max hold ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "exit_bar"),
    [
        # Bars every hour; entry at bar 1 (1 h). 4 h - 1 h = 3 h >= 3 h: out at bar 4's open.
        ((0, 1, 2, 3, 4, 5), 4),
        # A gap in time: bar 3 is at 3 h (held 2 h), bar 4 at 7 h (held 6 h): out at bar 4.
        ((0, 1, 2, 3, 7, 8), 4),
    ],
    ids=["exactly-max-hold", "after-a-time-gap"],
)
def test_max_hold_when_held_long_enough_exits_at_open_of_first_bar_at_or_after(
    backtest: Backtest, hours: tuple[int, ...], exit_bar: int
) -> None:
    bars = [flat(100), flat(100), flat(101), flat(102), (103, 104, 102, 104), flat(104)]
    result = backtest(
        bars,
        entries_long=[0],
        times_ns=[hour * HOUR_NS for hour in hours],
        max_hold_ns=3 * HOUR_NS,
    )
    (trade,) = result.trades
    assert (trade.entry_bar, trade.exit_bar, trade.exit_reason) == (1, exit_bar, EXIT_MAX_HOLD)
    assert trade.exit_price == approx(103)
    assert trade.pnl == approx(300)
    # Held after the open's fills on bars 1, 2 and 3 only.
    assert result.exposed_bars == 3


def test_max_hold_when_one_nanosecond_short_waits_for_the_next_bar(backtest: Backtest) -> None:
    # Max hold 3 h + 1 ns; entry at bar 1 (1 h). Bar 4 (4 h) has held exactly 3 h: not yet.
    # Bar 5 (5 h, held 4 h) exits at its open, 105.
    bars = [flat(100), flat(100), flat(101), flat(102), flat(104), flat(105), flat(106)]
    result = backtest(
        bars,
        entries_long=[0],
        times_ns=[hour * HOUR_NS for hour in range(7)],
        max_hold_ns=3 * HOUR_NS + 1,
    )
    (trade,) = result.trades
    assert (trade.exit_bar, trade.exit_reason, trade.exit_price) == (5, EXIT_MAX_HOLD, approx(105))


def test_open_exits_when_gapped_stop_and_max_hold_coincide_names_the_stop(
    backtest: Backtest,
) -> None:
    # Bar 2 is both past the max hold (1 minute) and below the stop (95): the gapped stop
    # comes first at the open. Exit at the open, 90.
    result = backtest(
        [flat(100), flat(100), flat(90)],
        entries_long=[0],
        stop_loss=0.05,
        max_hold_ns=MINUTE_NS,
    )
    (trade,) = result.trades
    assert (trade.exit_reason, trade.exit_price) == (EXIT_STOP_LOSS, approx(90))


# -- end of data -------------------------------------------------------------------------


def test_end_of_data_when_position_still_open_values_it_at_last_close_without_exit_costs(
    backtest: Backtest,
) -> None:
    # Fee 0.2 %, slippage 0.1 %. Entry at 100 x 1.001 = 100.1; units = 10,000 / (100.1 x
    # 1.002) = 10,000 / 100.3002 = 99.7006984...; entry fee = 0.002 x units x 100.1 =
    # 20 / 1.002 = 19.9600798...; cash afterwards 0. Last close 120: exit price 120, no
    # slippage, no exit fee; fees = the entry fee; P&L = units x (120 - 100.1) - 19.96008
    # = 1,964.0838...; equity = units x 120 = 11,964.0838...
    units = 10_000 / 100.3002
    result = backtest(
        [flat(100), flat(100), flat(110), flat(120)],
        entries_long=[0],
        fee_rate=0.002,
        slippage_rate=0.001,
        tags={0: 7},
    )
    (trade,) = result.trades
    assert (trade.entry_bar, trade.exit_bar, trade.exit_reason) == (1, 3, EXIT_END_OF_DATA)
    assert trade.tag == 7
    assert trade.exit_price == approx(120)
    assert trade.fees == approx(20 / 1.002)
    assert trade.pnl == approx(units * 19.9 - 20 / 1.002)
    assert result.equity[-1] == approx(units * 120)
    assert result.total_fees == approx(20 / 1.002)


def test_signal_when_on_the_last_bar_never_fills(backtest: Backtest) -> None:
    result = backtest([flat(100), flat(100)], entries_long=[1])
    assert result.trades == []
    assert result.equity == [10_000, 10_000]
    assert result.exposed_bars == 0


# -- shorts ------------------------------------------------------------------------------


def test_short_stop_loss_when_high_touches_level_exits_at_level_plus_slippage(
    backtest: Backtest,
) -> None:
    # Short entry sells at 100 x 0.999 = 99.9; units = 10,000 / 99.9 = 100.1001...; stop 5 %
    # above: 99.9 x 1.05 = 104.895. Bar 2's high 106 reaches it; the buy-back fills at
    # 104.895 x 1.001 = 104.999895. P&L = units x (99.9 - 104.999895) = -510.5000...
    units = 10_000 / 99.9
    result = backtest(
        [flat(100), flat(100), (101, 106, 100, 104)],
        entries_short=[0],
        allow_short=True,
        slippage_rate=0.001,
        stop_loss=0.05,
    )
    (trade,) = result.trades
    assert (trade.direction, trade.exit_reason) == (SHORT, EXIT_STOP_LOSS)
    assert trade.entry_price == approx(99.9)
    assert trade.exit_price == approx(104.999895)
    assert trade.pnl == approx(units * (99.9 - 104.999895))
    assert result.equity[-1] == approx(10_000 + units * (99.9 - 104.999895))


def test_short_take_profit_when_low_reaches_level_exits_at_level(backtest: Backtest) -> None:
    # Short at 100, 100 units, target 10 % below: 90. Bar 2's low 89 reaches it: buy back at
    # 90, P&L = 100 x (100 - 90) = 1,000. Equity at bar 1's close 102: 20,000 - 100 x 102.
    result = backtest(
        [flat(100), (100, 103, 99, 102), (99, 100, 89, 95)],
        entries_short=[0],
        allow_short=True,
        take_profit=0.1,
    )
    (trade,) = result.trades
    assert (trade.direction, trade.exit_bar, trade.exit_reason) == (SHORT, 2, EXIT_TAKE_PROFIT)
    assert trade.exit_price == approx(90)
    assert trade.pnl == approx(1_000)
    assert result.equity == [approx(10_000), approx(9_800), approx(11_000)]


def test_short_stop_loss_when_open_gaps_above_level_fills_at_open(backtest: Backtest) -> None:
    # Short at 100, stop 105; bar 2 opens at 110: buy back at 110, P&L = -1,000.
    result = backtest(
        [flat(100), flat(100), (110, 112, 108, 111)],
        entries_short=[0],
        allow_short=True,
        stop_loss=0.05,
    )
    (trade,) = result.trades
    assert (trade.exit_reason, trade.exit_price, trade.pnl) == (
        EXIT_STOP_LOSS,
        approx(110),
        approx(-1_000),
    )


def test_short_trailing_stop_when_new_trough_and_old_level_in_one_bar_exits_at_old_level(
    backtest: Backtest,
) -> None:
    # Short at 100, trailing 10 %. After bar 2 the extreme (lowest low) is 80. Bar 3: level
    # 88; its high 89 reaches it although its low 70 would have lowered the level to 77.
    # Buy back at 88: P&L = 100 x 12 = 1,200.
    result = backtest(
        [flat(100), flat(100), (100, 101, 80, 82), (82, 89, 70, 85)],
        entries_short=[0],
        allow_short=True,
        trailing_stop=0.1,
    )
    (trade,) = result.trades
    assert (trade.exit_bar, trade.exit_reason) == (3, EXIT_TRAILING_STOP)
    assert trade.exit_price == approx(88)
    assert trade.pnl == approx(1_200)


def test_short_entry_when_shorts_are_disabled_is_ignored(backtest: Backtest) -> None:
    result = backtest([flat(100), flat(100), flat(90)], entries_short=[0])
    assert result.trades == []
    assert result.exposed_bars == 0


# -- signals -----------------------------------------------------------------------------


def test_reversal_when_short_entry_while_long_closes_long_and_opens_short(
    backtest: Backtest,
) -> None:
    # Long 100 units at 100 (bar 1). The short entry at bar 2 acts at bar 3's open (110):
    # the long closes at 110 (P&L +1,000, reason signal), and a short opens with the equity
    # 11,000: 11,000 / 110 = 100 units. It is still open at the end, last close 100: P&L
    # 100 x (110 - 100) = +1,000; equity 12,000.
    result = backtest(
        [flat(100), flat(100), flat(105), flat(110), flat(100)],
        entries_long=[0],
        entries_short=[2],
        allow_short=True,
        tags={0: 1, 2: 2},
    )
    first, second = result.trades
    assert (first.direction, first.entry_bar, first.exit_bar, first.exit_reason) == (
        LONG,
        1,
        3,
        EXIT_SIGNAL,
    )
    assert (first.pnl, first.tag) == (approx(1_000), 1)
    assert (second.direction, second.entry_bar, second.exit_bar, second.exit_reason) == (
        SHORT,
        3,
        4,
        EXIT_END_OF_DATA,
    )
    assert (second.size, second.pnl, second.tag) == (approx(100), approx(1_000), 2)
    assert result.equity[-1] == approx(12_000)
    # Held after the open's fills on bars 1 to 4; bar 3 counts once.
    assert result.exposed_bars == 4


@pytest.mark.parametrize(
    ("entries_long", "exits_long", "entries_short", "exits_short"),
    [([0], [0], [], []), ([0], [], [0], []), ([], [], [0], [0])],
    ids=["long-entry-and-exit", "long-and-short-entry", "short-entry-and-exit"],
)
def test_entry_when_conflicting_signal_on_same_bar_is_ignored(
    backtest: Backtest,
    entries_long: list[int],
    exits_long: list[int],
    entries_short: list[int],
    exits_short: list[int],
) -> None:
    result = backtest(
        [flat(100), flat(100), flat(100)],
        entries_long=entries_long,
        exits_long=exits_long,
        entries_short=entries_short,
        exits_short=exits_short,
        allow_short=True,
    )
    assert result.trades == []


def test_exit_when_long_entry_and_exit_together_while_long_stands(backtest: Backtest) -> None:
    # Long from bar 1; bar 2 has a long entry and a long exit: the entry is ignored, the exit
    # stands and fills at bar 3's open (104): P&L 100 x 4 = 400. Nothing re-enters.
    result = backtest(
        [flat(100), flat(100), flat(102), flat(104), flat(104)],
        entries_long=[0, 2],
        exits_long=[2],
    )
    (trade,) = result.trades
    assert (trade.exit_bar, trade.exit_reason, trade.pnl) == (3, EXIT_SIGNAL, approx(400))


def test_entry_when_already_long_is_ignored(backtest: Backtest) -> None:
    # Long entries on bars 0 and 2: the second arrives while long and is ignored (no
    # pyramiding); the single trade keeps its 100 units to the end (close 110).
    result = backtest(
        [flat(100), flat(100), flat(105), flat(110)], entries_long=[0, 2], tags={0: 1, 2: 2}
    )
    (trade,) = result.trades
    assert (trade.entry_bar, trade.size, trade.tag) == (1, approx(100), 1)
    assert trade.exit_reason == EXIT_END_OF_DATA


def test_entry_when_long_at_signal_is_ignored_even_if_stopped_at_next_open(
    backtest: Backtest,
) -> None:
    # Long from bar 1, stop 95. The long entry of bar 2 was computed while long; bar 3 gaps
    # to 90 and stops the long out at its open, and the account stays flat.
    result = backtest(
        [flat(100), flat(100), flat(100), flat(90), flat(90)],
        entries_long=[0, 2],
        stop_loss=0.05,
    )
    (trade,) = result.trades
    assert (trade.exit_bar, trade.exit_reason) == (3, EXIT_STOP_LOSS)
    assert result.exposed_bars == 2
    assert result.equity[-1] == approx(9_000)


def test_entry_when_flat_after_intrabar_stop_fills_at_next_open(backtest: Backtest) -> None:
    # Stopped out intrabar at bar 2 (level 95); the long entry computed at bar 2's close sees
    # a flat account and fills at bar 3's open, 96: 9,500 / 96 units.
    result = backtest(
        [flat(100), flat(100), (97, 98, 94, 96), flat(96), flat(96)],
        entries_long=[0, 2],
        stop_loss=0.05,
    )
    first, second = result.trades
    assert (first.exit_bar, first.exit_reason) == (2, EXIT_STOP_LOSS)
    assert (second.entry_bar, second.entry_price) == (3, approx(96))
    assert second.size == approx(9_500 / 96)


# -- costs and sizing --------------------------------------------------------------------


def test_round_trip_when_fee_and_slippage_charges_both_fills(backtest: Backtest) -> None:
    # Cash 10,000, fee 0.2 %, slippage 0.1 %. Entry at bar 1's open 100 -> fill 100.1;
    # units = 10,000 / (100.1 x 1.002) = 99.7006984...; entry fee = 0.002 x units x 100.1
    # = 19.9600798..., so notional plus fee is the 10,000. Exit by signal at bar 3's open
    # 110 -> fill 110 x 0.999 = 109.89; exit fee = 0.002 x units x 109.89 = 21.9122...
    # P&L = units x (109.89 - 100.1) - 19.9600798 - 21.9122... = 934.1829...
    units = 10_000 / (100.1 * 1.002)
    entry_fee = 0.002 * units * 100.1
    exit_fee = 0.002 * units * 109.89
    result = backtest(
        [flat(100), flat(100), flat(105), flat(110), flat(110)],
        entries_long=[0],
        exits_long=[2],
        fee_rate=0.002,
        slippage_rate=0.001,
    )
    (trade,) = result.trades
    assert trade.entry_price == approx(100.1)
    assert trade.exit_price == approx(109.89)
    assert trade.size == approx(units)
    assert trade.fees == approx(entry_fee + exit_fee)
    assert trade.pnl == approx(units * 9.79 - entry_fee - exit_fee)
    assert trade.pnl_pct == approx(100 * trade.pnl / 10_000 * 1.002)
    assert result.total_fees == approx(entry_fee + exit_fee)
    # Marked at the closes: bar 1 at 100, bar 2 at 105, then cash.
    assert result.equity[1] == approx(10_000 - units * 0.1 - entry_fee)
    assert result.equity[2] == approx(10_000 + units * 4.9 - entry_fee)
    assert result.equity[4] == approx(10_000 + units * 9.79 - entry_fee - exit_fee)


@pytest.mark.parametrize(
    ("sizing_mode", "sizing_value", "size_fraction", "expected_units"),
    [
        # Fraction of equity: 50 % of 10,000 at 100 = 50 units.
        (1, 0.5, None, 50),
        # Fixed cash 2,000 at 100 = 20 units.
        (2, 2_000.0, None, 20),
        # Fixed cash above the equity is capped at it: 100 units.
        (2, 50_000.0, None, 100),
        # The signal's size fraction overrides the mode: 25 % of 10,000 = 25 units.
        (2, 2_000.0, {0: 0.25}, 25),
        # A size fraction of 0 sizes to nothing: no entry.
        (0, 1.0, {0: 0.0}, None),
    ],
    ids=["fraction", "fixed-cash", "fixed-cash-capped", "signal-fraction", "zero-fraction"],
)
def test_sizing_when_mode_or_signal_fraction_given_buys_that_share_of_equity(
    backtest: Backtest,
    sizing_mode: int,
    sizing_value: float,
    size_fraction: dict[int, float] | None,
    expected_units: float | None,
) -> None:
    # The rest stays in cash: equity at the close of 110 = 10,000 + units x 10.
    result = backtest(
        [flat(100), flat(100), flat(110)],
        entries_long=[0],
        size_fraction=size_fraction,
        sizing_mode=sizing_mode,
        sizing_value=sizing_value,
    )
    if expected_units is None:
        assert result.trades == []
        assert result.equity[-1] == 10_000
        return
    (trade,) = result.trades
    assert trade.size == approx(expected_units)
    assert result.equity[-1] == approx(10_000 + expected_units * 10)


def test_sizing_when_fraction_and_fee_given_fits_notional_plus_fee_in_the_share(
    backtest: Backtest,
) -> None:
    # 50 % of 10,000 with a 1 % fee at 100: units = 5,000 / (100 x 1.01) = 49.504950...;
    # notional 4,950.495 plus fee 49.50495 is 5,000, so 5,000 stays in cash.
    result = backtest(
        [flat(100), flat(100)],
        entries_long=[0],
        fee_rate=0.01,
        sizing_mode=1,
        sizing_value=0.5,
    )
    (trade,) = result.trades
    assert trade.size == approx(5_000 / 101)
    assert result.equity[-1] == approx(5_000 + 5_000 / 101 * 100)


# -- exposure ----------------------------------------------------------------------------


def test_exposure_when_position_held_after_open_counts_those_bars(backtest: Backtest) -> None:
    # Long entered at bar 1's open, signalled out at bar 3's open: exposed on bars 1 and 2
    # (bar 3 is flat after its open). Re-entered at bar 4's open and stopped intrabar on that
    # same bar (low 90 below the stop 95): bar 4 counts, as the position was held after the
    # open. Total 3.
    result = backtest(
        [flat(100), flat(100), flat(100), flat(100), (100, 100, 90, 92), flat(92)],
        entries_long=[0, 3],
        exits_long=[2],
        stop_loss=0.05,
    )
    assert [trade.exit_reason for trade in result.trades] == [EXIT_SIGNAL, EXIT_STOP_LOSS]
    assert result.exposed_bars == 3
