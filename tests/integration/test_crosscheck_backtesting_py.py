"""sma_crossover in marketbot against the same strategy in backtesting.py, on the bundled BTC data.

Both sides run under one set of conventions, matched explicitly:

- fills at the next bar's open (backtesting.py ``trade_on_close=False``; marketbot always);
- a fee of 0.2 % of each fill's value, on entry and on exit (backtesting.py ``commission``;
  marketbot ``fee``), and no slippage (marketbot ``slippage=0``; backtesting.py ``spread=0``);
- long only, one position at a time (``exclusive_orders=True``; the strategy buys only when
  flat, as marketbot ignores an entry while long);
- all-in sizing. backtesting.py 0.6.6 sizes a relative market order in ``_process_orders`` as
  ``int(margin_available * size // (price + commission(size, price) / size))``, that is
  ``floor(equity x (1 - eps) / (open x (1 + fee)))`` whole units; marketbot buys
  ``equity / (open x (1 + fee))`` fractional units. ``FractionalBacktest`` trades whole
  multiples of ``fractional_unit`` instead. We pick a power of two (2**-40, about 9.1e-13) so
  that scaling the prices by it is exact: the scaled SMAs, their crossings and the fill prices
  are bit-for-bit those of the unscaled data. The one remaining difference is the floor: the
  backtesting.py position is smaller by less than one unit, a relative
  ``unit x open x (1 + fee) / equity`` <= 2e-11 on this data (hourly, with equity down to
  about 5,000 at a price of about 60,000, 9e10 units); over up to 685 trades the final
  equities differ by about 1e-12 relative. Hence the tolerance ``RTOL = 1e-9`` on sizes,
  P&L, equity and return: 100x that, yet a million times smaller than any real convention
  difference (a fee charged once or twice, a fee left out of the sizing, a fill at the close
  instead of the open each move results by about 1e-3 per trade). Prices are compared to
  1e-9 too, though they match exactly.
- the same crossing rule: up when ``fast[t-1] <= slow[t-1] and fast[t] > slow[t]`` (and down
  mirrored), written out here rather than ``backtesting.lib.crossover``, whose rule is
  ``a[-2] < b[-2] and a[-1] > b[-1]`` (strict on the previous bar);
- the same warm-up: marketbot drops signals before bar ``slow``; backtesting.py first calls
  ``next`` at bar ``slow`` (1 + the slow SMA's slow - 1 NaNs); the strategy also checks it.

SMAs here are exactly rounded window means (``math.fsum``), computed independently of
marketbot's compensated running sum; a crossing decided differently by one ulp would show up
as a trade difference, which is what a cross-check should catch.

End of data: a position still open after the last bar is marketbot's ``end_of_data`` trade,
valued at the last close without exit costs. backtesting.py (``finalize_trades=False``)
leaves it open, out of its trade list, and also values it at the last close without an exit
commission, so the closed trades are compared one to one, the open one separately, and the
final equities directly.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from marketbot.backtest.engine import BacktestingEngine
from marketbot.backtest.result import BacktestResult
from marketbot.strategies.builtin.sma_crossover import SmaCrossover

backtesting = pytest.importorskip("backtesting")
from backtesting import Strategy  # noqa: E402 - only after the importorskip
from backtesting.lib import FractionalBacktest  # noqa: E402

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "sample"
CASH = 10_000.0
FEE = 0.002
# A power of two, so that prices x unit and back are exact (see the module docstring).
FRACTIONAL_UNIT = 2.0**-40
RTOL = 1e-9

# backtesting.py's own statistics code uses a pandas name deprecated in pandas 3.
pytestmark = pytest.mark.filterwarnings("ignore:DatetimeIndex.dayofweek is deprecated")


def exact_sma(values: np.ndarray, window: int) -> np.ndarray:
    """Exactly rounded mean of each ``window`` values (NaN before the window is full)."""
    array = np.asarray(values, dtype=np.float64)
    out = np.full(array.shape[0], np.nan)
    if array.shape[0] >= window:
        windows = np.lib.stride_tricks.sliding_window_view(array, window)
        out[window - 1 :] = [math.fsum(row) / window for row in windows]
    return out


class SmaCrossoverBt(Strategy):  # type: ignore[misc]  # backtesting.py is untyped
    """marketbot's sma_crossover written for backtesting.py, with marketbot's crossing rule."""

    fast = 10
    slow = 30

    def init(self) -> None:
        self.fast_sma = self.I(exact_sma, self.data.Close, self.fast)
        self.slow_sma = self.I(exact_sma, self.data.Close, self.slow)

    def next(self) -> None:
        if len(self.data) - 1 < self.slow:  # marketbot's warm-up: no signal before bar slow
            return
        fast_now, fast_before = self.fast_sma[-1], self.fast_sma[-2]
        slow_now, slow_before = self.slow_sma[-1], self.slow_sma[-2]
        crossed_up = fast_before <= slow_before and fast_now > slow_now
        crossed_down = fast_before >= slow_before and fast_now < slow_now
        if crossed_down and self.position:
            self.position.close()
        elif crossed_up and not self.position:
            self.buy()  # all in: size defaults to 1 - eps of the available equity


def load_bars(name: str) -> pd.DataFrame:
    """A bundled sample CSV as a frame with a UTC DatetimeIndex and lowercase OHLCV columns."""
    raw = pd.read_csv(DATA_DIR / name)
    index = pd.DatetimeIndex(pd.to_datetime(raw["timestamp"], utc=True), name="timestamp")
    return raw.drop(columns="timestamp").set_index(index)


def run_marketbot(frame: pd.DataFrame, fast: int, slow: int) -> BacktestResult:
    return BacktestingEngine().run_backtest(
        SmaCrossover,
        data=frame,
        params={"fast": fast, "slow": slow},
        fee=FEE,
        slippage=0.0,
        cash=CASH,
    )


def run_backtesting_py(frame: pd.DataFrame, fast: int, slow: int) -> pd.Series:
    bars = frame.rename(columns=str.capitalize).tz_localize(None)  # UTC wall times
    backtest = FractionalBacktest(
        bars,
        SmaCrossoverBt,
        cash=CASH,
        commission=FEE,
        spread=0.0,
        trade_on_close=False,
        exclusive_orders=True,
        hedging=False,
        finalize_trades=False,
        fractional_unit=FRACTIONAL_UNIT,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Some trades remain open")
        stats: pd.Series = backtest.run(fast=fast, slow=slow)
    return stats


CASES = [
    pytest.param("btc_usd_1d_bitstamp.csv", 10, 30, id="daily-10-30"),
    pytest.param("btc_usd_1d_bitstamp.csv", 20, 50, id="daily-20-50"),
    pytest.param("btc_usd_1d_bitstamp.csv", 50, 200, id="daily-50-200"),
    pytest.param("btc_usd_1h_bitstamp.csv", 10, 30, id="hourly-10-30"),
    pytest.param("btc_usd_1h_bitstamp.csv", 24, 96, id="hourly-24-96"),
]


@pytest.mark.parametrize(("file_name", "fast", "slow"), CASES)
def test_sma_crossover_when_run_in_backtesting_py_makes_the_same_trades_and_return(
    file_name: str, fast: int, slow: int
) -> None:
    frame = load_bars(file_name)
    ours = run_marketbot(frame, fast, slow)
    theirs = run_backtesting_py(frame, fast, slow)

    trades = ours.trades
    closed = trades[trades["exit_reason"] != "end_of_data"].reset_index(drop=True)
    still_open = trades[trades["exit_reason"] == "end_of_data"]
    assert (closed["exit_reason"] == "signal").all()
    peer: pd.DataFrame = theirs["_trades"]
    assert len(closed) >= 5, "too few trades for the check to mean much"
    assert len(peer) == len(closed), f"{len(peer)} trades in backtesting.py, {len(closed)} here"

    naive_utc = "datetime64[ns]"
    entry_times = closed["entry_time"].dt.tz_localize(None).to_numpy(naive_utc)
    exit_times = closed["exit_time"].dt.tz_localize(None).to_numpy(naive_utc)
    mismatch = np.flatnonzero(entry_times != peer["EntryTime"].to_numpy(naive_utc))
    assert mismatch.size == 0, f"first entry mismatch at trade {mismatch[:1]}"
    mismatch = np.flatnonzero(exit_times != peer["ExitTime"].to_numpy(naive_utc))
    assert mismatch.size == 0, f"first exit mismatch at trade {mismatch[:1]}"
    np.testing.assert_allclose(closed["entry_price"], peer["EntryPrice"], rtol=RTOL, atol=0)
    np.testing.assert_allclose(closed["exit_price"], peer["ExitPrice"], rtol=RTOL, atol=0)
    np.testing.assert_allclose(closed["size"], peer["Size"], rtol=RTOL, atol=0)
    # From the same starting cash, backtesting.py's floor makes its first position smaller by
    # under one unit. (Later ones may be larger: less invested in a loser leaves more equity.)
    first_size = float(closed["size"].iloc[0])
    assert 0 <= first_size - float(peer["Size"].iloc[0]) <= FRACTIONAL_UNIT * (1 + 1e-9)
    np.testing.assert_allclose(closed["pnl"], peer["PnL"], rtol=RTOL, atol=RTOL * CASH)

    _assert_same_open_trade(still_open, theirs)

    final_equity = float(ours.equity_curve.iloc[-1])
    assert final_equity == pytest.approx(theirs["Equity Final [$]"], rel=RTOL, abs=0)
    # Returns near zero make a relative tolerance meaningless: allow RTOL of the final equity.
    assert ours.metrics["return_pct"] == pytest.approx(
        theirs["Return [%]"], rel=0, abs=RTOL * 100 * final_equity / CASH
    )
    np.testing.assert_allclose(
        ours.equity_curve.to_numpy(),
        theirs["_equity_curve"]["Equity"].to_numpy(),
        rtol=RTOL,
        atol=0,
    )


def _assert_same_open_trade(still_open: pd.DataFrame, theirs: pd.Series) -> None:
    """marketbot's end_of_data trade is the one backtesting.py leaves open, at the same price."""
    strategy: Any = theirs["_strategy"]
    open_trades = list(strategy.trades)
    assert len(open_trades) == len(still_open)
    if not open_trades:
        return
    (trade,) = open_trades
    row = still_open.iloc[0]
    assert pd.Timestamp(trade.entry_time).tz_localize("UTC") == pd.Timestamp(row["entry_time"])
    entry_price = trade.entry_price / FRACTIONAL_UNIT
    assert entry_price == pytest.approx(float(row["entry_price"]), rel=RTOL, abs=0)
    assert trade.size * FRACTIONAL_UNIT == pytest.approx(float(row["size"]), rel=RTOL, abs=0)
