"""The optimiser's fast path: a whole SMA-crossover grid in one compiled, parallel pass.

``evaluate_fast(window, strategy, combinations, config)`` returns, for each combination, the
same metrics dict as ``window.run(strategy, params, config).metrics``, bit for bit, or None
when the strategy or the settings have no fast path (the optimiser then backtests the
combinations one by one). The fast path covers the built-in ``SmaCrossover`` long only
(``short`` off), with any costs, sizing, stops, take-profit, trailing stop and max hold, and
no risk limits.

How the grid shares work: each distinct moving-average window is computed once (on the
whole frame, warm-up included), then every combination runs on all cores in one numba
``prange`` loop that crosses two cached averages, simulates with the backtest kernel's rules
and reduces the equity curve and the trades to a row of sums; the metrics are finished from
those rows with ``core.metrics``' own helpers. Nothing is copied per combination and no
equity curve is kept: memory is the bars, the cached averages (bounded by
``max_cache_bytes``: larger grids are cut into tiles of windows), one trade buffer per
thread, and the results.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numba
import numpy as np
import numpy.typing as npt

from marketbot.backtest.config import BacktestConfig
from marketbot.backtest.engine import TradingWindow
from marketbot.backtest.step_nb import TRADE_DTYPE
from marketbot.core.errors import DataError
from marketbot.core.metrics import (
    RunStatistics,
    metrics_from_statistics,
    time_scale,
    trade_stats_from_sums,
)
from marketbot.optimize import fast_grid_nb
from marketbot.optimize import grid_stats_nb as nb
from marketbot.strategies.base import Strategy
from marketbot.strategies.builtin.sma_crossover import SmaCrossover

__all__ = ["DEFAULT_MAX_CACHE_BYTES", "evaluate_fast"]

Metrics = dict[str, float | int]
ProgressCallback = Callable[[int, int], None]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

DEFAULT_MAX_CACHE_BYTES: Final = 64 * 2**20
_LAUNCH_LOCK: Final = threading.Lock()
# Combinations per kernel launch: progress is reported between launches.
_BLOCK_SIZE: Final = 2048


@dataclass(frozen=True, slots=True)
class _Plan:
    """The grid as arrays: each combination's two windows and the row its signals start."""

    fast: IntArray
    slow: IntArray
    signal_start: IntArray


@dataclass(frozen=True, slots=True)
class _Bars:
    """The traded bars as the kernel reads them, and the metrics that do not vary."""

    open_: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    times_ns: IntArray
    frame_close: FloatArray
    first: int
    annualiser: float
    span_days: float
    buy_hold_return_pct: float


def evaluate_fast(
    window: TradingWindow,
    strategy: Strategy,
    combinations: Sequence[Mapping[str, Any]],
    config: BacktestConfig,
    *,
    progress: ProgressCallback | None = None,
    threads: int | None = None,
    max_cache_bytes: int = DEFAULT_MAX_CACHE_BYTES,
) -> list[Metrics] | None:
    """Metrics of every combination, as ``window.run(...).metrics`` gives them; or None.

    Args:
        window: The validated bars and the row where trading starts.
        strategy: The strategy; only ``SmaCrossover`` itself has a fast path.
        combinations: Full parameter sets (defaults filled in), in the order to return.
        config: Costs, sizing and exits, shared by every combination.
        progress: Called as ``progress(done, total)`` after each block of combinations.
        threads: Cores to use (default: numba's thread count, all cores unless
            ``NUMBA_NUM_THREADS`` says otherwise).
        max_cache_bytes: Memory for cached moving averages; a grid needing more is run in
            tiles that each cache part of the windows (some averages are then recomputed).

    Returns:
        One metrics dict per combination, in order; None when there is no fast path for this
        strategy, these parameters or these settings (short selling, risk limits, a subclass
        of the strategy, a window below 1), or when a combination's results would not be
        finite (the one-by-one path then raises the usual error).
    """
    plan = _plan(strategy, combinations, config, len(window.frame))
    if plan is None:
        return None
    bars = _bars(window)
    if bars is None:
        return None
    previous_threads = numba.get_num_threads()
    if threads is not None:
        most = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]  # set at import
        numba.set_num_threads(max(1, min(threads, most)))
    try:
        # One grid at a time: numba's fallback threading layer (workqueue) aborts the process
        # when two threads launch parallel kernels at once, and two grids would share the
        # same cores anyway.
        with _LAUNCH_LOCK:
            stats = _run_grid(bars, plan, config, progress, max_cache_bytes)
    finally:
        numba.set_num_threads(previous_threads)
    # compute_metrics raises on a non-finite equity, trade or fee total: leave it to do so.
    if not (np.all(stats[:, nb.STAT_FINITE] == 1.0) and np.isfinite(stats).all()):
        return None
    n = len(bars.close)
    return [_metrics(row, bars, n, config.initial_cash) for row in stats.tolist()]


def _run_grid(
    bars: _Bars,
    plan: _Plan,
    config: BacktestConfig,
    progress: ProgressCallback | None,
    max_cache_bytes: int,
) -> FloatArray:
    """Every combination's statistics row, tile by tile and block by block."""
    total = len(plan.fast)
    stats = np.empty((total, nb.NUM_STATS), dtype=np.float64)
    done = 0
    for combos, windows in _tiles(plan, len(bars.frame_close), max_cache_bytes):
        means = fast_grid_nb.rolling_means_nb(bars.frame_close, windows)
        for start in range(0, len(combos), _BLOCK_SIZE):
            block = combos[start : start + _BLOCK_SIZE]
            stats[block] = _run_block(bars, plan, block, windows, means, config)
            done += len(block)
            if progress is not None:
                progress(done, total)
        del means  # before the next tile's averages are allocated
    return stats


def _plan(
    strategy: Strategy,
    combinations: Sequence[Mapping[str, Any]],
    config: BacktestConfig,
    length: int,
) -> _Plan | None:
    """Each combination's windows and warm-up, or None when there is no fast path."""
    if type(strategy) is not SmaCrossover or config.risk is not None or not combinations:
        return None
    fast = np.empty(len(combinations), dtype=np.int64)
    slow = np.empty(len(combinations), dtype=np.int64)
    signal_start = np.empty(len(combinations), dtype=np.int64)
    for position, params in enumerate(combinations):
        try:
            if params["short"]:
                return None
            fast[position] = int(params["fast"])
            slow[position] = int(params["slow"])
            warmup = int(strategy.warmup_bars(params))
        except (KeyError, TypeError, ValueError, OverflowError):
            return None
        # prepare_signals masks rows before the warm-up; the first row never crosses.
        signal_start[position] = max(1, min(warmup, length))
    if fast.min() < 1 or slow.min() < 1:
        return None
    return _Plan(fast, slow, signal_start)


def _bars(window: TradingWindow) -> _Bars | None:
    """The kernel's arrays and the metrics every combination shares, as compute_metrics has them.

    None when compute_metrics would refuse the bars (the slow path then raises its error).
    """
    bars = window.bars
    times_ns = _readonly(window.index.asi8, np.int64)
    close = _readonly(bars["close"].to_numpy(), np.float64)
    if not (math.isfinite(close[0]) and close[0] > 0.0 and math.isfinite(close[-1])):
        return None
    try:
        annualiser, span_days = time_scale(times_ns)
    except DataError:
        return None
    return _Bars(
        open_=_readonly(bars["open"].to_numpy(), np.float64),
        high=_readonly(bars["high"].to_numpy(), np.float64),
        low=_readonly(bars["low"].to_numpy(), np.float64),
        close=close,
        times_ns=times_ns,
        frame_close=_readonly(window.frame["close"].to_numpy(dtype=np.float64), np.float64),
        first=window.first,
        annualiser=annualiser,
        span_days=span_days,
        buy_hold_return_pct=(float(close[-1]) / float(close[0]) - 1.0) * 100.0,
    )


def _readonly(values: npt.ArrayLike, dtype: type[np.generic]) -> Any:
    """A contiguous, read-only view (a copy only if the layout or dtype needs one).

    Read-only always, so that numba compiles (and caches) one signature whatever the frame.
    """
    array = np.ascontiguousarray(values, dtype=dtype).view()
    array.flags.writeable = False
    return array


def _tiles(plan: _Plan, length: int, max_cache_bytes: int) -> list[tuple[IntArray, IntArray]]:
    """Groups of combinations and the windows each group needs, within the cache budget.

    One group when every distinct window fits. Otherwise the distinct fast windows are cut
    into runs of ``a`` and the slow ones into runs of ``b`` (a + b windows fit), and each
    group is the combinations of one run of each: the fewest recomputed averages.
    """
    every_window = np.union1d(plan.fast, plan.slow)
    capacity = max(2, max_cache_bytes // (8 * max(length, 1)))
    if len(every_window) <= capacity:
        return [(np.arange(len(plan.fast), dtype=np.int64), every_window)]
    fast_values, fast_index = np.unique(plan.fast, return_inverse=True)
    slow_values, slow_index = np.unique(plan.slow, return_inverse=True)
    fast_run = max(1, min(len(fast_values), capacity // 2))
    slow_run = max(1, capacity - fast_run)
    tile = (fast_index // fast_run) * (len(slow_values) // slow_run + 1) + slow_index // slow_run
    order = np.argsort(tile, kind="stable")
    boundaries = np.flatnonzero(np.diff(tile[order])) + 1
    groups = []
    for combos in np.split(order, boundaries):
        windows = np.union1d(plan.fast[combos], plan.slow[combos])
        groups.append((combos.astype(np.int64), windows))
    return groups


def _run_block(
    bars: _Bars,
    plan: _Plan,
    combos: IntArray,
    windows: IntArray,
    means: FloatArray,
    config: BacktestConfig,
) -> FloatArray:
    """The kernel's statistics rows of ``combos``, on all of numba's threads."""
    n = len(bars.close)
    workers = max(1, min(numba.get_num_threads(), len(combos)))
    # np.empty: a page is only touched when a trade is written to it.
    trade_buffers = np.empty((workers, n + 1), dtype=TRADE_DTYPE)
    scratch_buffers = np.empty((workers, n + 1), dtype=np.float64)
    stats = np.empty((len(combos), nb.NUM_STATS), dtype=np.float64)
    fast_grid_nb.crossover_grid_nb(
        bars.open_,
        bars.high,
        bars.low,
        bars.close,
        bars.times_ns,
        means,
        np.searchsorted(windows, plan.fast[combos]),
        np.searchsorted(windows, plan.slow[combos]),
        plan.signal_start[combos],
        bars.first,
        config.kernel_settings(allow_short=False),
        trade_buffers,
        scratch_buffers,
        stats,
    )
    return stats


def _metrics(row: list[float], bars: _Bars, n: int, initial_cash: float) -> Metrics:
    """One combination's metrics from its statistics row, as compute_metrics assembles them."""
    run = RunStatistics(
        final_equity=row[nb.STAT_FINAL_EQUITY],
        initial_cash=initial_cash,
        buy_hold_return_pct=bars.buy_hold_return_pct,
        return_mean=row[nb.STAT_RETURN_MEAN],
        return_std=row[nb.STAT_RETURN_STD],
        downside=row[nb.STAT_DOWNSIDE],
        max_depth=row[nb.STAT_MAX_DEPTH],
        longest_drawdown_bars=int(row[nb.STAT_LONGEST_DRAWDOWN]),
        annualiser=bars.annualiser,
        span_days=bars.span_days,
        exposed_bars=int(row[nb.STAT_EXPOSED_BARS]),
        bars=n,
        total_fees=row[nb.STAT_TOTAL_FEES],
        num_trades=int(row[nb.STAT_NUM_TRADES]),
    )
    return metrics_from_statistics(run, _trade_stats(row))


def _trade_stats(row: list[float]) -> dict[str, float]:
    """The trade statistics from the row's trade sums, through compute_metrics' assembly."""
    count = int(row[nb.STAT_NUM_TRADES])
    sums = (
        bool(row[nb.STAT_FINITE]), int(row[nb.STAT_WINS]), row[nb.STAT_GROSS_PROFIT],
        row[nb.STAT_GROSS_LOSS], row[nb.STAT_PNL_MEAN], row[nb.STAT_PNL_STD],
        row[nb.STAT_PNL_PCT_MEAN], row[nb.STAT_PNL_PCT_MAX], row[nb.STAT_PNL_PCT_MIN],
    )  # fmt: skip
    return trade_stats_from_sums(count, sums, row[nb.STAT_HOLD_MEAN])
