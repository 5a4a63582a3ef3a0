"""The optimiser's fast path: a grid of any strategy with a grid hook, in one parallel pass.

``evaluate_fast(window, strategy, combinations, config)`` returns, for each combination, the
same metrics dict as ``window.run(strategy, params, config).metrics``, bit for bit, or None
when the strategy or the settings have no fast path (the optimiser then backtests the
combinations one by one). :func:`run_fast_grid` also keeps each combination's daily-return
sums for the overfitting diagnostics, in the same pass. The fast path covers every strategy
whose :meth:`~marketbot.strategies.base.Strategy.grid_signals` hook answers for the
combinations (the built-ins, long only), with any costs, sizing, stops, take-profit,
trailing stop and max hold, and no risk limits.

How the grid shares work: the hook names, per combination, the indicator of each of its
slots and a parameter value (a moving average of 20 bars...); each distinct one is computed
once, on the whole frame, warm-up included. Then every combination runs on all cores in one
numba ``prange`` loop: the hook's compiled kernel fills its signals from the cached rows,
the account is simulated with the backtest kernel's rules, and the equity curve and the
trades are reduced to a row of sums (and the daily returns to a few sums per block); the
metrics are finished from those rows with ``core.metrics``' own helpers. No equity curve
is kept: memory is the bars, the cached indicator rows (bounded by ``max_cache_bytes``:
larger grids are cut into tiles), one signal and trade buffer per thread, and the results.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numba
import numpy as np
import numpy.typing as npt

from marketbot.backtest.config import BacktestConfig
from marketbot.backtest.engine import TradingWindow
from marketbot.backtest.step_nb import TRADE_DTYPE
from marketbot.core.errors import DataError, StrategyError
from marketbot.core.metrics import (
    RunStatistics,
    metrics_from_statistics,
    time_scale,
    trade_stats_from_sums,
)
from marketbot.optimize import fast_grid_nb
from marketbot.optimize import grid_stats_nb as nb
from marketbot.optimize.diagnostics import DailySums, daily_layout
from marketbot.strategies.base import GridIndicator, GridSignals, Strategy
from marketbot.strategies.indicators import GRID_SIGNALS_SIGNATURE

__all__ = ["DEFAULT_MAX_CACHE_BYTES", "FastGrid", "evaluate_fast", "run_fast_grid"]

Metrics = dict[str, float | int]
ProgressCallback = Callable[[int, int], None]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

DEFAULT_MAX_CACHE_BYTES: Final = 64 * 2**20
_LAUNCH_LOCK: Final = threading.Lock()
# Combinations per kernel launch: progress is reported between launches.
_BLOCK_SIZE: Final = 2048


@dataclass(frozen=True, slots=True)
class FastGrid:
    """What one grid pass gives.

    Attributes:
        metrics: One metrics dict per combination, in order.
        daily: Each combination's daily-return sums for the overfitting diagnostics, or None
            when they were not asked for.
    """

    metrics: list[Metrics]
    daily: DailySums | None


@dataclass(frozen=True, slots=True)
class _Plan:
    """The grid as the hook gives it, each combination's signal start, the slot groups."""

    label: str
    hook: GridSignals
    signal_start: IntArray
    # Slots that share an indicator function share its rows: (function, their slots).
    groups: tuple[tuple[GridIndicator, tuple[int, ...]], ...]


@dataclass(frozen=True, slots=True)
class _Bars:
    """The traded bars as the kernel reads them, and the metrics that do not vary."""

    arrays: fast_grid_nb.GridBars
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

    :func:`run_fast_grid` without the daily sums; the arguments are its own.
    """
    grid = run_fast_grid(
        window, strategy, combinations, config,
        progress=progress, threads=threads, max_cache_bytes=max_cache_bytes,
    )  # fmt: skip
    return None if grid is None else grid.metrics


def run_fast_grid(  # noqa: PLR0913 - evaluate_fast's keywords plus keep_daily
    window: TradingWindow,
    strategy: Strategy,
    combinations: Sequence[Mapping[str, Any]],
    config: BacktestConfig,
    *,
    keep_daily: bool = False,
    progress: ProgressCallback | None = None,
    threads: int | None = None,
    max_cache_bytes: int = DEFAULT_MAX_CACHE_BYTES,
) -> FastGrid | None:
    """Every combination's metrics (and daily sums) in one pass; or None.

    Args:
        window: The validated bars and the row where trading starts.
        strategy: The strategy; it needs a grid hook (``Strategy.grid_signals``).
        combinations: Full parameter sets (defaults filled in), in the order to return.
        config: Costs, sizing and exits, shared by every combination.
        keep_daily: Also keep each combination's daily-return sums (``FastGrid.daily``).
        progress: Called as ``progress(done, total)`` after each block of combinations.
        threads: Cores to use (default: numba's thread count, all cores unless
            ``NUMBA_NUM_THREADS`` says otherwise).
        max_cache_bytes: Memory for cached indicator rows; a grid needing more is run in
            tiles that each cache part of them (some rows are then computed again).

    Returns:
        The metrics, as ``window.run(...).metrics`` gives them, in order; None when there
        is no fast path for this strategy, these parameters or these settings (no grid
        hook, or the hook declines them; risk limits), or when a combination's results
        would not be finite (the one-by-one path then raises the usual error).

    Raises:
        StrategyError: the grid hook crashed or broke its contract.
    """
    plan = _plan(strategy, combinations, config, len(window.frame))
    if plan is None:
        return None
    bars = _bars(window)
    if bars is None:
        return None
    layout, daily = daily_layout(bars.arrays.times_ns if keep_daily else None)
    previous_threads = numba.get_num_threads()
    if threads is not None:
        most = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]  # set at import
        numba.set_num_threads(max(1, min(threads, most)))
    try:
        # One grid at a time: numba's fallback threading layer (workqueue) aborts the process
        # when two threads launch parallel kernels at once, and two grids would share the
        # same cores anyway.
        with _LAUNCH_LOCK:
            stats, rows = _run_grid(window, bars, plan, config, layout, progress, max_cache_bytes)
    finally:
        numba.set_num_threads(previous_threads)
    # compute_metrics raises on a non-finite equity, trade or fee total: leave it to do so.
    if not (np.all(stats[:, nb.STAT_FINITE] == 1.0) and np.isfinite(stats).all()):
        return None
    n = len(bars.arrays.close)
    metrics = [_metrics(row, bars, n, config.initial_cash) for row in stats.tolist()]
    kept = DailySums(rows, daily.block_counts, daily.num_returns, daily.num_splits)
    return FastGrid(metrics, kept if keep_daily else None)


def _run_grid(
    window: TradingWindow,
    bars: _Bars,
    plan: _Plan,
    config: BacktestConfig,
    layout: nb.DailyLayout,
    progress: ProgressCallback | None,
    max_cache_bytes: int,
) -> tuple[FloatArray, FloatArray]:
    """Every combination's statistics row and daily row, tile by tile and block by block."""
    total = len(plan.signal_start)
    stats = np.empty((total, nb.NUM_STATS), dtype=np.float64)
    daily = np.empty((total, nb.DAILY_BLOCKS + 2 * layout.num_blocks), dtype=np.float64)
    settings = config.kernel_settings(allow_short=False)
    values = np.require(plan.hook.values, np.float64, ["C"])
    done = 0
    for combos in _tiles(plan, len(window.frame), max_cache_bytes):
        tile = _run_tile(window, bars, plan, combos, (settings, values, layout), (stats, daily))
        for count in tile:
            done += count
            if progress is not None:
                progress(done, total)
    return stats, daily


def _run_tile(
    window: TradingWindow,
    bars: _Bars,
    plan: _Plan,
    combos: IntArray,
    shared: tuple[Any, FloatArray, nb.DailyLayout],
    out: tuple[FloatArray, FloatArray],
) -> Iterator[int]:
    """One tile: its indicator rows, then its combinations block by block, each block's size.

    The rows are referenced from here only, so they are freed when the tile is done, before
    the next tile's are computed.
    """
    settings, values, layout = shared
    stats, daily = out
    tables, rows = _tables(window, plan, combos)
    for start in range(0, len(combos), _BLOCK_SIZE):
        local = slice(start, start + _BLOCK_SIZE)
        block = combos[local]
        inputs = fast_grid_nb.GridInputs(
            tables, rows[local], values[block], plan.signal_start[block], bars.first
        )
        stats[block], daily[block] = _run_block(plan.hook.kernel, bars, inputs, settings, layout)
        yield len(block)


def _plan(
    strategy: Strategy,
    combinations: Sequence[Mapping[str, Any]],
    config: BacktestConfig,
    length: int,
) -> _Plan | None:
    """The hook's plan and each combination's warm-up, or None when there is no fast path."""
    if config.risk is not None or not combinations:
        return None
    hook = strategy.compute_grid_signals(combinations)
    if hook is None:
        return None
    _check_hook(strategy.label, hook, len(combinations))
    signal_start = np.array(
        [min(strategy.compute_warmup(params), length) for params in combinations], dtype=np.int64
    )
    groups: dict[GridIndicator, list[int]] = {}
    for slot, function in enumerate(hook.indicators):
        groups.setdefault(function, []).append(slot)
    shared = tuple((function, tuple(slots)) for function, slots in groups.items())
    return _Plan(strategy.label, hook, signal_start, shared)


def _check_hook(label: str, hook: object, count: int) -> None:
    """Hold the hook's answer to its contract, naming what is wrong."""
    where = f"{label}: grid_signals()"
    if not isinstance(hook, GridSignals):
        raise StrategyError(f"{where} returned {type(hook).__name__}, expected GridSignals")
    keys, values = np.asarray(hook.keys), np.asarray(hook.values)
    slots = len(hook.indicators)
    if keys.shape != (count, slots) or keys.dtype.kind not in "iu":
        raise StrategyError(
            f"{where} returned keys of shape {keys.shape} ({keys.dtype}), expected integers of "
            f"shape ({count}, {slots}): one per combination and slot"
        )
    if values.ndim != 2 or values.shape[0] != count:
        raise StrategyError(
            f"{where} returned values of shape {values.shape}, expected ({count}, numbers)"
        )
    if not _is_grid_kernel(hook.kernel):
        raise StrategyError(
            f"{where} returned a kernel of {type(hook.kernel).__name__}, expected a cfunc of "
            "GRID_SIGNALS_SIGNATURE (make it with strategies.indicators.grid_kernel)"
        )


def _is_grid_kernel(kernel: object) -> bool:
    """Whether ``kernel`` is a first-class function of the grid's signal signature."""
    try:
        kind = numba.typeof(kernel)  # type: ignore[no-untyped-call]  # numba is untyped
    except ValueError:
        return False
    return bool(kind == numba.types.FunctionType(GRID_SIGNALS_SIGNATURE))


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
        annualiser, span_days = time_scale(times_ns, window.bar_spacing_ns)
    except DataError:
        return None
    arrays = fast_grid_nb.GridBars(
        _readonly(bars["open"].to_numpy(), np.float64),
        _readonly(bars["high"].to_numpy(), np.float64),
        _readonly(bars["low"].to_numpy(), np.float64),
        close,
        times_ns,
    )
    return _Bars(
        arrays=arrays,
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


def _tiles(plan: _Plan, length: int, max_cache_bytes: int) -> list[IntArray]:
    """Groups of combinations whose indicator rows fit the cache budget together.

    One group when every distinct row fits. Otherwise each slot's distinct parameter values
    are cut into runs (the budget shared equally between the slots), and each group is the
    combinations of one run of every slot: for a fast x slow grid of averages, a run of fast
    windows by a run of slow ones, which recomputes the fewest rows.
    """
    keys = np.asarray(plan.hook.keys, dtype=np.int64)
    count, slots = keys.shape
    everything = np.arange(count, dtype=np.int64)
    capacity = max(slots, max_cache_bytes // (8 * max(length, 1)))
    if _rows_needed(plan, keys) <= capacity:
        return [everything]
    run = max(1, capacity // max(slots, 1))
    runs = np.column_stack(
        [np.unique(column, return_inverse=True)[1].reshape(-1) // run for column in keys.T]
    )
    _, tile = np.unique(runs, axis=0, return_inverse=True)
    order = np.argsort(tile.reshape(-1), kind="stable")
    boundaries = np.flatnonzero(np.diff(tile.reshape(-1)[order])) + 1
    return [part.astype(np.int64) for part in np.split(order, boundaries)]


def _rows_needed(plan: _Plan, keys: IntArray) -> int:
    """How many indicator rows the combinations of ``keys`` read, each counted once."""
    return sum(len(_distinct(keys[:, list(slots)])) for _, slots in plan.groups)


def _distinct(keys: IntArray) -> IntArray:
    """The parameter values a group of slots reads (-1: none), ascending."""
    return np.unique(keys[keys >= 0])


def _tables(window: TradingWindow, plan: _Plan, combos: IntArray) -> tuple[FloatArray, IntArray]:
    """The indicator rows ``combos`` read, and per combination the row of each slot."""
    keys = np.asarray(plan.hook.keys, dtype=np.int64)[combos]
    length = len(window.frame)
    rows = np.full(keys.shape, -1, dtype=np.int64)
    parts: list[FloatArray] = []
    offset = 0
    for function, slots in plan.groups:
        group_keys = keys[:, list(slots)]
        distinct = _distinct(group_keys)
        if len(distinct) == 0:
            continue
        part = np.asarray(function(window.frame, distinct))
        if part.shape != (len(distinct), length) or part.dtype != np.float64:
            raise StrategyError(
                f"{plan.label}: a grid indicator returned {part.dtype} rows of shape "
                f"{part.shape}, expected float64 of shape ({len(distinct)}, {length})"
            )
        found = offset + np.searchsorted(distinct, group_keys)
        rows[:, list(slots)] = np.where(group_keys >= 0, found, -1)
        parts.append(part)
        offset += len(distinct)
    if not parts:
        tables = np.zeros((1, length), dtype=np.float64)
    else:
        tables = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return np.require(tables, np.float64, ["C", "W"]), rows


def _run_block(
    kernel: Any,
    bars: _Bars,
    inputs: fast_grid_nb.GridInputs,
    settings: Any,
    layout: nb.DailyLayout,
) -> tuple[FloatArray, FloatArray]:
    """The statistics and daily rows of one block of combinations, on all numba threads."""
    frame_length = inputs.tables.shape[1]
    count = len(inputs.rows)
    workers = max(1, min(numba.get_num_threads(), count))
    # np.empty: a page is only touched when it is written to.
    buffers = fast_grid_nb.GridBuffers(
        np.empty((workers, frame_length), dtype=np.bool_),
        np.empty((workers, frame_length), dtype=np.bool_),
        np.empty((workers, len(bars.arrays.close) + 1), dtype=TRADE_DTYPE),
        np.empty((workers, len(layout.day_ends)), dtype=np.float64),
    )
    stats = np.empty((count, nb.NUM_STATS), dtype=np.float64)
    daily = np.empty((count, nb.DAILY_BLOCKS + 2 * layout.num_blocks), dtype=np.float64)
    fast_grid_nb.grid_nb(kernel, bars.arrays, inputs, settings, buffers, layout, stats, daily)
    return stats, daily


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
