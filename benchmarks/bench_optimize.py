"""How fast is a grid optimisation, and how does it compare with backtesting.py and vectorbt?

Run by hand (not a test), from the repository root:

    .venv/bin/python benchmarks/bench_optimize.py                  # everything, ~3 minutes
    .venv/bin/python benchmarks/bench_optimize.py --no-peers       # marketbot only
    .venv/bin/python benchmarks/bench_optimize.py --json /tmp/bench_optimize.json

What it measures (docs/performance.md, section "Optimiser", has the figures):

- data: the hourly GBM bars of bench_engine.py (same seed), 100,000 bars; fee 5 bp, no
  slippage, 10,000 cash, all in, long only, no stops;
- the grid: ``sma_crossover`` with fast 5..50 step 5 and slow 60..240 step 20, 100
  combinations, best by Sharpe;
- marketbot: the fast path alone (``evaluate_fast`` on a ``TradingWindow``); the whole
  ``StrategyOptimizer(jobs=2).optimize_strategy`` call on the frame (its ``evaluate`` takes
  the fast path on the thread executor) with its default overfitting diagnostics (DSR and
  PBO from the daily sums the grid pass keeps) and with ``diagnostics=False``, timed in
  interleaved rounds (one of each per round), best of N each, and their ratio (target: the
  default within 20 % of ``diagnostics=False``); and the generic path
  (``evaluate_in_chunks`` on ``ThreadExecutor(2)``: one backtest per combination, what the
  optimiser does without the fast path); warm, best of N. The first call in a fresh
  process, with an empty numba cache (compile) and with it filled (load);
- the other built-ins through their grid hooks: 100-combination grids of ``momentum`` and
  ``mean_reversion`` on the same bars, the fast path against the generic path (identical
  metrics checked);
- 10,000 combinations (fast 2..101, slow 110..1,100 step 10) on the same bars: time, and in a
  fresh process the peak RSS that the grid adds, against the 100-combination grid's;
- peers, each in a fresh process: backtesting.py ``Backtest.optimize`` (grid, its process
  pool, ``FractionalBacktest`` as in bench_engine.py), and vectorbt's broadcast
  (``vbt.MA.run`` over both window lists, crossings shifted one bar, one
  ``Portfolio.from_signals`` over the 100 columns with ``price=open``, its Sharpe and total
  return), with the numba and the Rust engines; and a bare numba ``prange`` loop over the
  grid (all in, next-open fills, running sums), the floor for this machine;
- the check: every tool's best combination. The Sharpe ratios are defined differently
  (docs/performance.md explains), so each peer is also judged by marketbot's Sharpe computed
  from its own equity curve (vectorbt, the bare loop) and by total return (all);
- the target against vectorbt: ``optimize_strategy`` with its default diagnostics at least
  50x faster than vectorbt's broadcast grid in the same run, with the same best parameters.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import (  # the shared data and helpers of the engine benchmark
    CASH,
    FEE,
    FRACTIONAL_UNIT,
    REPO,
    best_of,
    bytecode_env,
    make_bars,
    proc_status_kib,
    release_free_heap,
    rolling_mean,
    vectorbt_engines,
)

BARS: Final = 100_000
FAST: Final = tuple(range(5, 51, 5))
SLOW: Final = tuple(range(60, 241, 20))
BIG_FAST: Final = tuple(range(2, 102))
BIG_SLOW: Final = tuple(range(110, 1_101, 10))
HOURS_PER_YEAR: Final = 8_760
Pair = tuple[int, int]


# -- helpers -----------------------------------------------------------------------------------


def cpu_seconds(function: Callable[[], object], repeats: int) -> float:
    """The least CPU time (all threads of this process) of ``repeats`` calls: what the work
    costs in core-seconds, whatever else the shared machine runs."""
    best = math.inf
    for _ in range(repeats):
        gc.collect()
        started = time.process_time()
        function()
        best = min(best, time.process_time() - started)
    return best


def pairs(fast: Sequence[int], slow: Sequence[int]) -> list[Pair]:
    """The grid in marketbot's order: fast varies slowest."""
    return [(f, s) for f in fast for s in slow if f < s]


def first_best(values: Mapping[Pair, float], order: Sequence[Pair]) -> Pair:
    """The best combination, ties to the first in grid order (as the optimiser breaks them)."""
    top = max(values[pair] for pair in order)
    return next(pair for pair in order if values[pair] == top)


def run_child(mode: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run this script in a fresh interpreter in ``mode`` and return the JSON it prints."""
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", mode],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**bytecode_env(None), **(env or {})},
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"child {mode} failed: {completed.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def sharpe_of_equity(equity: np.ndarray, times_ns: np.ndarray, close: np.ndarray) -> float:
    """marketbot's Sharpe (docs/metrics.md) of an equity curve from any tool."""
    from marketbot.core.metrics import ClosedTrades, compute_metrics

    empty = np.empty(0)
    metrics = compute_metrics(
        np.ascontiguousarray(equity, dtype=np.float64), times_ns, close, ClosedTrades(empty, empty,
        np.empty(0, dtype=np.int64)), exposed_bars=0, total_fees=0.0, initial_cash=CASH,
    )  # fmt: skip
    return float(metrics["sharpe"])


# -- marketbot ---------------------------------------------------------------------------------


def grid_setup(fast: Sequence[int], slow: Sequence[int]) -> tuple[Any, Any, list[dict[str, Any]]]:
    """The window, the strategy and the combinations, as the optimiser builds them."""
    from marketbot.backtest.engine import TradingWindow
    from marketbot.core.bars import normalize_ohlcv
    from marketbot.optimize.grid import expand_grid
    from marketbot.strategies.builtin.sma_crossover import SmaCrossover

    strategy = SmaCrossover()
    grid = expand_grid(strategy, {"fast": list(fast), "slow": list(slow)})
    window = TradingWindow.of(normalize_ohlcv(make_bars(BARS)))
    return window, strategy, list(grid.combinations)


def backtest_config() -> Any:
    from marketbot.backtest.config import BacktestConfig

    return BacktestConfig(fee_rate=FEE, slippage_rate=0.0, initial_cash=CASH)


def fast_path(
    window: Any, strategy: Any, combinations: list[dict[str, Any]], **options: Any
) -> list[Any]:
    from marketbot.optimize.fast_grid import evaluate_fast

    rows = evaluate_fast(window, strategy, combinations, backtest_config(), **options)
    if rows is None:
        raise RuntimeError("no fast path for this grid")
    return rows


def generic_path(window: Any, strategy: Any, combinations: list[dict[str, Any]]) -> list[Any]:
    """One backtest per combination, in chunks on 2 threads: the optimiser's generic path."""
    from marketbot.optimize.executors import ThreadExecutor, evaluate_in_chunks
    from marketbot.optimize.optimizer import Evaluation

    evaluation = Evaluation(strategy, backtest_config(), window=window)
    return evaluate_in_chunks(ThreadExecutor(2), evaluation, combinations)


def optimize_whole(
    frame: pd.DataFrame, fast: Sequence[int], slow: Sequence[int], *, diagnostics: bool = False
) -> Any:
    """The public call on a frame, with or without the overfitting diagnostics (on by
    default: from the daily sums the grid pass keeps)."""
    from marketbot.optimize.optimizer import StrategyOptimizer

    return StrategyOptimizer(jobs=2).optimize_strategy(
        "sma_crossover", {"fast": list(fast), "slow": list(slow)}, "sharpe", data=frame,
        fee=FEE, slippage=0.0, cash=CASH, diagnostics=diagnostics,
    )  # fmt: skip


def measure_marketbot(repeats: int) -> dict[str, Any]:
    window, strategy, combinations = grid_setup(FAST, SLOW)
    frame = make_bars(BARS)
    fast_path(window, strategy, combinations)  # load the compiled code
    figures: dict[str, Any] = {"combinations": len(combinations)}
    figures["fast_s"], rows = best_of(lambda: fast_path(window, strategy, combinations), repeats)
    figures["fast_cpu_s"] = cpu_seconds(lambda: fast_path(window, strategy, combinations), repeats)
    off, on = interleaved(
        lambda: optimize_whole(frame, FAST, SLOW),
        lambda: optimize_whole(frame, FAST, SLOW, diagnostics=True),
        repeats,
    )
    figures["optimize_s"], result = off
    figures["optimize_label"] = "optimize_strategy, diagnostics=False"
    figures["optimize_diagnostics_s"], with_diagnostics = on
    figures["diagnostics_ratio"] = figures["optimize_diagnostics_s"] / figures["optimize_s"]
    figures["diagnostics"] = {
        "days": with_diagnostics.diagnostics["days"],
        "top_k": with_diagnostics.diagnostics["top_k"],
        "deflated_sharpe": with_diagnostics.diagnostics["deflated_sharpe"]["deflated_sharpe"],
        "pbo": with_diagnostics.diagnostics["pbo"]["pbo"],
    }
    figures["generic_s"], generic_rows = best_of(
        lambda: generic_path(window, strategy, combinations), max(2, repeats // 3)
    )
    figures["identical_to_generic"] = rows == generic_rows
    order = [(int(p["fast"]), int(p["slow"])) for p in combinations]
    figures["sharpe"] = {f"{f},{s}": row["sharpe"] for (f, s), row in zip(order, rows, strict=True)}
    figures["return_pct"] = {
        f"{f},{s}": row["return_pct"] for (f, s), row in zip(order, rows, strict=True)
    }
    figures["optimize_best"] = [int(result.best_params["fast"]), int(result.best_params["slow"])]
    figures["optimize_diagnostics_best"] = [
        int(with_diagnostics.best_params["fast"]),
        int(with_diagnostics.best_params["slow"]),
    ]
    return figures


def interleaved(
    first: Callable[[], Any], second: Callable[[], Any], repeats: int
) -> tuple[tuple[float, Any], tuple[float, Any]]:
    """Best times of two calls timed in alternation (a busy spell slows both alike)."""
    first(), second()  # warm
    best = [math.inf, math.inf]
    values: list[Any] = [None, None]
    for _ in range(repeats):
        for slot, function in enumerate((first, second)):
            gc.collect()
            started = time.perf_counter()
            values[slot] = function()
            best[slot] = min(best[slot], time.perf_counter() - started)
    return (best[0], values[0]), (best[1], values[1])


OTHER_GRIDS: Final = {
    "momentum": {
        "lookback": [5, 10, 20, 40, 80],
        "entry_pct": [1.0, 2.0, 4.0, 8.0, 16.0],
        "exit_pct": [-2.0, 0.0],
        "breakout": [False, True],
    },
    "mean_reversion": {
        "window": [10, 20, 30, 40, 60, 80, 100, 150, 200, 300],
        "num_std": [1.0, 1.5, 2.0, 2.5, 3.0],
        "exit_std": [0.0, 0.5],
    },
}


def measure_other_strategies(repeats: int) -> dict[str, Any]:
    """The other built-ins' 100-combination grids: the fast path (their grid hooks) against
    one backtest per combination."""
    from marketbot.backtest.engine import TradingWindow
    from marketbot.core.bars import normalize_ohlcv
    from marketbot.optimize.grid import expand_grid
    from marketbot.strategies.loader import load_strategy

    window = TradingWindow.of(normalize_ohlcv(make_bars(BARS)))
    figures: dict[str, Any] = {}
    for name, axes in OTHER_GRIDS.items():
        strategy = load_strategy(name)
        combinations = list(expand_grid(strategy, axes).combinations)
        figures[name] = time_one_grid(window, strategy, combinations, repeats)
    return figures


def time_one_grid(
    window: Any, strategy: Any, combinations: list[dict[str, Any]], repeats: int
) -> dict[str, Any]:
    fast_path(window, strategy, combinations)
    fast_s, rows = best_of(lambda: fast_path(window, strategy, combinations), repeats)
    generic_s, generic_rows = best_of(
        lambda: generic_path(window, strategy, combinations), max(2, repeats // 4)
    )
    return {
        "combinations": len(combinations),
        "fast_s": fast_s,
        "generic_s": generic_s,
        "identical_to_generic": rows == generic_rows,
    }


def measure_big(repeats: int) -> dict[str, Any]:
    window, strategy, combinations = grid_setup(BIG_FAST, BIG_SLOW)
    frame = make_bars(BARS)
    fast_path(window, strategy, combinations[:10])
    figures: dict[str, Any] = {"combinations": len(combinations)}
    figures["fast_s"], _ = best_of(lambda: fast_path(window, strategy, combinations), repeats)
    figures["optimize_s"], _ = best_of(lambda: optimize_whole(frame, BIG_FAST, BIG_SLOW), repeats)
    return figures


# -- children: first call and memory -----------------------------------------------------------


def child_first_call() -> dict[str, float]:
    window, strategy, combinations = grid_setup(FAST, SLOW)
    started = time.perf_counter()
    import marketbot.optimize.fast_grid  # noqa: F401

    imported = time.perf_counter()
    fast_path(window, strategy, combinations)
    return {"import_s": imported - started, "first_call_s": time.perf_counter() - imported}


def child_memory(size: str) -> dict[str, float]:
    """Peak RSS added by one grid, after the code is loaded and the bars are built.

    ``size``: ``100``, ``10k`` (the default 64 MiB cache for the averages: the grid's 200
    windows, 160 MB, are cut into tiles) or ``10k-256mib`` (a 256 MiB cache: one tile).
    """
    fast, slow = (FAST, SLOW) if size == "100" else (BIG_FAST, BIG_SLOW)
    options = {"max_cache_bytes": 256 * 2**20} if size.endswith("256mib") else {}
    window, strategy, combinations = grid_setup(fast, slow)
    fast_path(window, strategy, combinations[:4])
    gc.collect()
    release_free_heap()
    before = proc_status_kib("VmRSS") / 1024.0
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    started = time.perf_counter()
    rows = fast_path(window, strategy, combinations, **options)
    seconds = time.perf_counter() - started
    peak = proc_status_kib("VmHWM") / 1024.0
    kept = proc_status_kib("VmRSS") / 1024.0
    return {
        "combinations": float(len(rows)),
        "seconds": seconds,
        "rss_before_mib": before,
        "peak_added_mib": peak - before,
        "kept_mib": kept - before,
    }


# -- peers -------------------------------------------------------------------------------------


def backtesting_strategy() -> type:
    """sma_crossover for backtesting.py, as in bench_engine.py, picklable for its pool."""
    from backtesting import Strategy

    class SmaCrossoverBt(Strategy):  # type: ignore[misc]  # backtesting.py is untyped
        fast = FAST[0]
        slow = SLOW[0]

        def init(self) -> None:
            self.fast_sma = self.I(rolling_mean, self.data.Close, self.fast)
            self.slow_sma = self.I(rolling_mean, self.data.Close, self.slow)

        def next(self) -> None:
            fast_now, fast_before = self.fast_sma[-1], self.fast_sma[-2]
            slow_now, slow_before = self.slow_sma[-1], self.slow_sma[-2]
            if fast_before >= slow_before and fast_now < slow_now and self.position:
                self.position.close()
            elif fast_before <= slow_before and fast_now > slow_now and not self.position:
                self.buy()

    # The pool pickles the class by name: make it findable in this (forked) __main__.
    SmaCrossoverBt.__qualname__ = SmaCrossoverBt.__name__
    globals()[SmaCrossoverBt.__name__] = SmaCrossoverBt
    return SmaCrossoverBt


def child_backtesting_py() -> dict[str, Any]:
    from backtesting.lib import FractionalBacktest

    bars = make_bars(BARS).rename(columns=str.capitalize).tz_localize(None)
    backtest = FractionalBacktest(
        bars, backtesting_strategy(), cash=CASH, commission=FEE, trade_on_close=False,
        exclusive_orders=True, finalize_trades=False, fractional_unit=FRACTIONAL_UNIT,
    )  # fmt: skip
    seen: list[tuple[float, float]] = []

    def sharpe_recording_return(stats: pd.Series) -> float:
        # Called in this process, once per combination in grid order.
        seen.append((float(stats["Return [%]"]), float(stats["Sharpe Ratio"])))
        return float(stats["Sharpe Ratio"])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        _, heatmap = backtest.optimize(
            fast=list(FAST), slow=list(SLOW), maximize=sharpe_recording_return,
            return_heatmap=True,
        )  # fmt: skip
        seconds = time.perf_counter() - started
    order = [(int(f), int(s)) for f, s in heatmap.index]
    return {
        "seconds": seconds,
        "order": order,
        "return_pct": [value for value, _ in seen],
        "native_sharpe": [value for _, value in seen],
        "native_name": "Sharpe Ratio (daily equity, annualised return / volatility)",
    }


def child_vectorbt(engine: str) -> dict[str, Any]:
    import vectorbt as vbt

    frame = make_bars(BARS)
    index = pd.DatetimeIndex(frame.index).tz_localize(None)  # vectorbt wants a tz-naive index
    close = pd.Series(frame["close"].to_numpy(), index=index, name="close")
    open_ = pd.Series(frame["open"].to_numpy(), index=index, name="open")
    order = pairs(FAST, SLOW)
    fast_windows = [f for f, _ in order]
    slow_windows = [s for _, s in order]

    def grid() -> Any:
        # vbt.MA caches each distinct window; the 100 columns pair fast[i] with slow[i].
        fast = vbt.MA.run(close, fast_windows, short_name="fast")
        slow = vbt.MA.run(close, slow_windows, short_name="slow")
        entries = fast.ma_crossed_above(slow).shift(1, fill_value=False)
        exits = fast.ma_crossed_below(slow).shift(1, fill_value=False)
        portfolio = vbt.Portfolio.from_signals(
            close, entries, exits, price=open_, fees=FEE, init_cash=CASH, freq="1h",
            engine=engine,
        )  # fmt: skip
        return portfolio, portfolio.sharpe_ratio(), portfolio.total_return()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grid()  # compile / load before timing
        seconds, (portfolio, native_sharpe, total_return) = best_of(grid, 3)
        values = portfolio.value().to_numpy()
    times_ns = pd.DatetimeIndex(frame.index).asi8
    close_values = frame["close"].to_numpy()
    sharpe = [sharpe_of_equity(values[:, k], times_ns, close_values) for k in range(len(order))]
    return {
        "seconds": seconds,
        "order": order,
        "return_pct": (100.0 * total_return.to_numpy()).tolist(),
        "native_sharpe": native_sharpe.to_numpy().tolist(),
        "native_name": "sharpe_ratio() (per-bar returns incl. the first from init_cash)",
        "marketbot_sharpe": sharpe,
    }


def bare_loop(repeats: int) -> dict[str, Any]:
    """A bare numba loop over the grid: the floor of what 2 cores can do here."""
    from numba import njit, prange

    from marketbot.strategies.indicators_nb import rolling_means_nb

    @njit(parallel=True)
    def grid_nb(  # type: ignore[no-untyped-def]  # a local kernel
        open_, close, means, fast_rows, slow_rows, starts, fee, cash, equity_out, sharpe_out
    ):
        n = close.shape[0]
        for k in prange(fast_rows.shape[0]):
            fast = means[fast_rows[k]]
            slow = means[slow_rows[k]]
            money, units, previous, total, squares = cash, 0.0, cash, 0.0, 0.0
            for t in range(1, n):
                row = t - 1
                if row >= starts[k]:
                    up = (fast[row - 1] <= slow[row - 1]) & (fast[row] > slow[row])
                    down = (slow[row - 1] <= fast[row - 1]) & (slow[row] > fast[row])
                    if units > 0.0 and down:
                        money = units * open_[t] * (1.0 - fee)
                        units = 0.0
                    elif units == 0.0 and up:
                        units = money / (open_[t] * (1.0 + fee))
                        money = 0.0
                value = money + units * close[t]
                ret = value / previous - 1.0
                total += ret
                squares += ret * ret
                previous = value
            count = n - 1
            mean = total / count
            std = math.sqrt((squares - total * total / count) / (count - 1))
            equity_out[k] = previous
            sharpe_out[k] = mean / std * math.sqrt(HOURS_PER_YEAR) if std > 0.0 else 0.0

    frame = make_bars(BARS)
    open_ = frame["open"].to_numpy()
    close = frame["close"].to_numpy()
    order = pairs(FAST, SLOW)
    windows = np.union1d([f for f, _ in order], [s for _, s in order])
    fast_rows = np.searchsorted(windows, [f for f, _ in order])
    slow_rows = np.searchsorted(windows, [s for _, s in order])
    starts = np.array([s for _, s in order], dtype=np.int64)
    equity = np.empty(len(order))
    sharpe = np.empty(len(order))

    def run() -> np.ndarray:
        means = rolling_means_nb(close, windows)
        grid_nb(open_, close, means, fast_rows, slow_rows, starts, FEE, CASH, equity, sharpe)
        return equity

    run()
    seconds, _ = best_of(run, repeats)
    return {
        "seconds": seconds,
        "order": order,
        "return_pct": (100.0 * (equity / CASH - 1.0)).tolist(),
        "native_sharpe": sharpe.tolist(),
        "native_name": "marketbot's definition, plain running sums",
        "marketbot_sharpe": sharpe.tolist(),
    }


def measure_peers(repeats: int) -> dict[str, dict[str, Any]]:
    peers: dict[str, dict[str, Any]] = {}
    try:
        import backtesting  # noqa: F401
    except ImportError:
        print("backtesting.py not installed: skipped", file=sys.stderr)
    else:
        print("measuring backtesting.py (about a minute) ...", file=sys.stderr, flush=True)
        peers["backtesting.py"] = run_child("backtesting")
    for engine in vectorbt_engines():
        print(f"measuring vectorbt ({engine}) ...", file=sys.stderr, flush=True)
        peers[f"vectorbt ({engine})"] = run_child(f"vectorbt-{engine}")
    peers["bare numba loop"] = bare_loop(repeats)
    return peers


# -- report ------------------------------------------------------------------------------------


def check_best(marketbot: dict[str, Any], peer: dict[str, Any]) -> dict[str, Any]:
    """Which combination each measure picks, for the peer and for marketbot."""
    order = [tuple(pair) for pair in peer["order"]]
    ours_sharpe = {tuple(map(int, k.split(","))): v for k, v in marketbot["sharpe"].items()}
    ours_return = {tuple(map(int, k.split(","))): v for k, v in marketbot["return_pct"].items()}
    theirs_return = dict(zip(order, peer["return_pct"], strict=True))
    theirs_native = dict(zip(order, peer["native_sharpe"], strict=True))
    check = {
        "best_by_native_sharpe": first_best(theirs_native, order),
        "best_by_return": first_best(theirs_return, order),
        "marketbot_best_by_sharpe": first_best(ours_sharpe, order),
        "marketbot_best_by_return": first_best(ours_return, order),
        "max_return_diff_pct_points": max(
            abs(theirs_return[pair] - ours_return[pair]) for pair in order
        ),
    }
    if "marketbot_sharpe" in peer:
        theirs = dict(zip(order, peer["marketbot_sharpe"], strict=True))
        check["best_by_marketbot_sharpe"] = first_best(theirs, order)
        check["max_sharpe_diff"] = max(abs(theirs[pair] - ours_sharpe[pair]) for pair in order)
    return check


def report(figures: dict[str, Any]) -> None:
    ours = figures["marketbot"]
    count = ours["combinations"]
    print(f"\n100-combination grid on {BARS:,} hourly bars (best of {figures['repeats']})")
    rows = [
        ("marketbot fast path (evaluate_fast)", ours["fast_s"]),
        (ours["optimize_label"], ours["optimize_s"]),
        (
            "optimize_strategy with its default diagnostics (DSR, PBO)",
            ours["optimize_diagnostics_s"],
        ),
        ("generic path (evaluate_in_chunks, ThreadExecutor(2))", ours["generic_s"]),
    ]
    for name, peer in figures.get("peers", {}).items():
        rows.append((name, peer["seconds"]))
    for name, seconds in rows:
        ratio = seconds / ours["fast_s"]
        print(
            f"  {name:<70} {seconds * 1e3:>10,.1f} ms  {count / seconds:>10,.0f} comb/s"
            f"  {ratio:>7,.1f}x the fast path's time"
        )
    print(f"  fast path CPU time (all threads): {ours['fast_cpu_s'] * 1e3:.1f} ms")
    print(f"  fast path identical to the generic path: {ours['identical_to_generic']}")
    ratio = ours["diagnostics_ratio"]
    verdict = "met" if ratio <= 1.2 else "NOT met"
    print(
        f"  default diagnostics / diagnostics=False: {ratio:.3f} (target <= 1.20: {verdict});"
        f" {ours['diagnostics']}"
    )
    print(
        f"  optimize_strategy best (sharpe): {ours['optimize_best']}, with diagnostics "
        f"{ours['optimize_diagnostics_best']}"
    )
    for name, peer in figures.get("peers", {}).items():
        print(f"  {name}: {check_best(ours, peer)}")
        if name.startswith("vectorbt"):
            times = peer["seconds"] / ours["optimize_diagnostics_s"]
            best = check_best(ours, peer)
            same = (
                list(best["best_by_native_sharpe"]) == ours["optimize_diagnostics_best"]
                and list(best.get("best_by_marketbot_sharpe", ())) == ours["optimize_best"]
            )
            met = "met" if times >= 50 and same else "NOT met"
            print(
                f"    optimize_strategy (default diagnostics) {times:,.1f}x {name}'s time, "
                f"same best: {same} (target >= 50x and the same best: {met})"
            )
    for name, other in figures.get("others", {}).items():
        print(
            f"\n{name}, {other['combinations']} combinations on {BARS:,} bars: fast path "
            f"{other['fast_s'] * 1e3:,.1f} ms, generic path {other['generic_s'] * 1e3:,.1f} ms "
            f"({other['generic_s'] / other['fast_s']:.1f}x), identical: "
            f"{other['identical_to_generic']}"
        )
    big = figures.get("big")
    if big:
        print(f"\n{big['combinations']:,} combinations on {BARS:,} bars")
        print(f"  fast path {big['fast_s']:.3f} s ({big['combinations'] / big['fast_s']:,.0f}/s)")
        print(f"  optimize_strategy, diagnostics off {big['optimize_s']:.3f} s")
    for label in ("first_call", "memory_100", "memory_10k", "memory_10k_256mib"):
        if label in figures:
            print(f"\n{label}: {figures[label]}")


# -- main --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=11, help="warm repeats (best of)")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--no-big", action="store_true", help="skip the 10,000-combination grid")
    parser.add_argument("--no-children", action="store_true", help="skip first call and memory")
    parser.add_argument("--no-others", action="store_true", help="skip momentum, mean_reversion")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run_as_child(mode: str) -> dict[str, Any]:
    if mode == "first-call":
        return child_first_call()
    if mode.startswith("memory-"):
        return child_memory(mode.removeprefix("memory-"))
    if mode == "backtesting":
        return child_backtesting_py()
    if mode.startswith("vectorbt-"):
        return child_vectorbt(mode.removeprefix("vectorbt-"))
    raise SystemExit(f"unknown child mode {mode!r}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(run_as_child(args.child)))
        return 0
    figures: dict[str, Any] = {"repeats": args.repeats, "bars": BARS}
    if not args.no_children:
        with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache_dir:
            env = {"NUMBA_CACHE_DIR": cache_dir}
            compiled = run_child("first-call", env)
            cached = min(
                (run_child("first-call", env) for _ in range(3)), key=lambda c: c["first_call_s"]
            )
        figures["first_call"] = {"compile_s": compiled["first_call_s"], **cached}
    print("measuring marketbot ...", file=sys.stderr, flush=True)
    figures["marketbot"] = measure_marketbot(args.repeats)
    if not args.no_others:
        print("measuring momentum and mean_reversion ...", file=sys.stderr, flush=True)
        figures["others"] = measure_other_strategies(max(2, args.repeats // 3))
    if not args.no_big:
        print("measuring 10,000 combinations ...", file=sys.stderr, flush=True)
        figures["big"] = measure_big(max(2, args.repeats // 4))
    if not args.no_children:
        figures["memory_100"] = run_child("memory-100")
        if not args.no_big:
            figures["memory_10k"] = run_child("memory-10k")
            figures["memory_10k_256mib"] = run_child("memory-10k-256mib")
    if not args.no_peers:
        figures["peers"] = measure_peers(args.repeats)
    report(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
