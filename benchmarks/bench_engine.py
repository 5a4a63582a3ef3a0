"""How fast is a marketbot backtest, and how does it compare with backtesting.py and vectorbt?

Run by hand (not a test), from the repository root:

    .venv/bin/python benchmarks/bench_engine.py                 # everything, ~10 minutes
    .venv/bin/python benchmarks/bench_engine.py --sizes 10000 --no-peers --no-cli   # quick look
    .venv/bin/python benchmarks/bench_engine.py --json /tmp/bench.json              # keep figures
    .venv/bin/python benchmarks/bench_engine.py --ab $BEFORE/src $AFTER/src --sizes 1000000 \
        --repeats 60                               # two exported trees, taking turns

What it measures (benchmarks/README.md and docs/performance.md say more):

- data: synthetic hourly bars, a driftless geometric Brownian motion (40 % a year) with a fixed
  seed; open = previous close, wicks beyond open and close, so every bar is consistent OHLC;
- marketbot: ``BacktestingEngine().run_backtest(SmaCrossover, data=frame, ...)`` with fast 10,
  slow 50, fee 0.05 %, no slippage, all in: signals, kernel, metrics and the result objects.
  "stops on" adds ``stop_loss=0.05, trailing_stop=0.1``. Warm: best of N in this process.
  First call: in a fresh subprocess, once with an empty numba cache (compile) and once with
  that cache filled (load), the way a user meets it;
- the kernel alone: ``simulate`` on precomputed signals, stops on;
- memory: a fresh subprocess, after imports, data, one small warm-up run and handing freed
  heap pages back to the OS: the peak RSS during the run minus the RSS before it (the
  kernel's arrays come from numba's allocator, which tracemalloc does not see), the RSS still
  held with the result alive, and tracemalloc's peak (Python and numpy allocations only);
- peers, without stops, against marketbot without stops: backtesting.py (``FractionalBacktest``
  with a power-of-two unit, ``trade_on_close=False``, ``exclusive_orders=True``, the same fee,
  pandas rolling means and marketbot's crossing rule) and vectorbt ``Portfolio.from_signals``
  (``vbt.MA`` crossings shifted by one bar, ``price=open``, tz-naive index) with its numba and
  Rust engines. Each peer's trades (count and entry bars) are checked against marketbot's;
- the CLI: ``marketbot --help`` and ``marketbot backtest`` of the bundled daily BTC after
  ``marketbot demo`` (warm compile cache), wall time of a subprocess, best of 5.

The machine is shared and noisy: every figure is the best of several repeats.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

# backtesting.py reports progress through tqdm when it is installed; tqdm reads this at import.
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np
import pandas as pd

REPO: Final = Path(__file__).resolve().parents[1]
SEED: Final = 20_240_601
FAST: Final = 10
SLOW: Final = 50
# 5 bp: with the 0.2 % default, ~14,000 round trips on 1M bars take the account to 1e-26 of
# its cash, and vectorbt stops trading once sizes fall below its 1e-12 tolerance.
FEE: Final = 0.0005
CASH: Final = 10_000.0
STOP_LOSS: Final = 0.05
TRAILING_STOP: Final = 0.1
ANNUAL_VOLATILITY: Final = 0.4
HOURS_PER_YEAR: Final = 8760
# A power of two, so that backtesting.py's price scaling is exact (see the cross-check test).
FRACTIONAL_UNIT: Final = 2.0**-40
DEFAULT_SIZES: Final = (10_000, 100_000, 1_000_000)
TARGET_BARS: Final = 1_000_000

T = TypeVar("T")


# -- data --------------------------------------------------------------------------------------


def make_bars(num_bars: int, seed: int = SEED) -> pd.DataFrame:
    """Hourly OHLCV bars from a driftless GBM: low <= min(open, close) <= max <= high."""
    rng = np.random.default_rng(seed)
    sigma = ANNUAL_VOLATILITY / math.sqrt(HOURS_PER_YEAR)
    # Zero drift in log price, so 1M bars neither explode nor decay to nothing.
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, sigma, num_bars)))
    open_ = np.empty(num_bars)
    open_[0] = 100.0
    open_[1:] = close[:-1]
    upper_wick, lower_wick = np.abs(rng.normal(0.0, sigma / 2.0, (2, num_bars)))
    high = np.maximum(open_, close) * np.exp(upper_wick)
    low = np.minimum(open_, close) * np.exp(-lower_wick)
    volume = rng.lognormal(3.0, 1.0, num_bars)
    index = pd.date_range(
        "2000-01-01", periods=num_bars, freq="h", tz="UTC", unit="ns", name="timestamp"
    )
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


# -- timing helpers ----------------------------------------------------------------------------


def best_of(function: Callable[[], T], repeats: int) -> tuple[float, T]:
    """The shortest wall time of ``repeats`` calls, in seconds, and the last call's value."""
    best = math.inf
    value: T | None = None
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        value = function()
        best = min(best, time.perf_counter() - started)
    assert value is not None
    return best, value


def bytecode_env(cache_dir: str | None) -> dict[str, str]:
    """The environment for child processes: with a ``.pyc`` cache in ``cache_dir`` if given.

    Python caches compiled bytecode in ``__pycache__`` unless PYTHONDONTWRITEBYTECODE is set;
    with it set and no ``.pyc`` shipped (uv installs without compiling bytecode), every start
    recompiles pandas, numba and SQLAlchemy from source, seconds of work a normal install never
    repeats. A private PYTHONPYCACHEPREFIX keeps that cache out of the venv and the repository.
    """
    env = dict(os.environ)
    if cache_dir is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = cache_dir
    return env


CHILD_ENV: dict[str, str] = dict(os.environ)


def run_child(mode: str, num_bars: int, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run this script in a fresh interpreter in ``mode`` and return the JSON it prints."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--bars"]
    completed = subprocess.run(
        [*command, str(num_bars)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={**CHILD_ENV, **(env or {})},
    )
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def subprocess_wall(command: Sequence[str], repeats: int, env: dict[str, str]) -> float:
    """Best wall time of running ``command`` to completion (it must succeed)."""
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True, env=env, cwd=REPO)
        best = min(best, time.perf_counter() - started)
    return best


# -- marketbot ---------------------------------------------------------------------------------


def marketbot_backtest(frame: pd.DataFrame, *, stops: bool) -> Any:
    """One whole backtest through the public API (returns the BacktestResult)."""
    from marketbot.backtest.engine import BacktestingEngine
    from marketbot.strategies.builtin.sma_crossover import SmaCrossover

    return BacktestingEngine().run_backtest(
        SmaCrossover,
        data=frame,
        params={"fast": FAST, "slow": SLOW},
        fee=FEE,
        slippage=0.0,
        cash=CASH,
        stop_loss=STOP_LOSS if stops else None,
        trailing_stop=TRAILING_STOP if stops else None,
    )


@dataclass
class KernelInputs:
    """Everything ``simulate`` takes, prepared once."""

    open_: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    times_ns: np.ndarray
    signals: Any
    settings: Any


def kernel_inputs(frame: pd.DataFrame, *, stops: bool) -> KernelInputs:
    from marketbot.backtest.config import BacktestConfig, ExitRules
    from marketbot.backtest.signals import prepare_signals
    from marketbot.core.bars import normalize_ohlcv
    from marketbot.strategies.builtin.sma_crossover import SmaCrossover

    exits = ExitRules(stop_loss=STOP_LOSS, trailing_stop=TRAILING_STOP) if stops else ExitRules()
    config = BacktestConfig(fee_rate=FEE, slippage_rate=0.0, initial_cash=CASH, exits=exits)
    strategy = SmaCrossover()
    params = strategy.resolve_params({"fast": FAST, "slow": SLOW})
    bars = normalize_ohlcv(frame)
    prepared = prepare_signals(strategy, bars, params, config)
    return KernelInputs(
        open_=bars["open"].to_numpy(),
        high=bars["high"].to_numpy(),
        low=bars["low"].to_numpy(),
        close=bars["close"].to_numpy(),
        times_ns=pd.DatetimeIndex(bars.index).asi8,
        signals=prepared.kernel,
        settings=config.kernel_settings(allow_short=prepared.allow_short),
    )


def run_kernel(inputs: KernelInputs) -> Any:
    from marketbot.backtest.kernel import simulate

    return simulate(
        inputs.open_,
        inputs.high,
        inputs.low,
        inputs.close,
        inputs.times_ns,
        inputs.signals,
        inputs.settings,
    )


class StageClock:
    """Times consecutive stages of one run: ``lap(name)`` ends the stage begun at the last lap."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + now - self._last
        self._last = now


def replayed_run(frame: pd.DataFrame, clock: StageClock) -> Any:
    """``run_backtest`` of the benchmark (stops on), step by step, with a lap after each step.

    Mirrors ``BacktestingEngine.run_backtest`` -> ``backtest_frame`` -> ``TradingWindow.run``
    as of this writing (a frame, no dates, not saved); it calls private helpers
    (``_data_notes``, ``_risk_notes``), so it may need updating when the engine changes. On a
    tree from before ``TradingWindow.bar_spacing_ns`` (the median spacing measured once for
    the metrics and the notes) it replays that tree's run, which measures it in each.
    """
    from marketbot.backtest import engine
    from marketbot.backtest.kernel import simulate
    from marketbot.backtest.options import build_config, build_rules
    from marketbot.backtest.result import BacktestResult, result_warnings, trades_frame
    from marketbot.backtest.signals import prepare_signals
    from marketbot.core.bars import normalize_ohlcv
    from marketbot.core.metrics import ClosedTrades, compute_metrics
    from marketbot.core.recommendation import RecommendationThresholds, recommend
    from marketbot.strategies.builtin.sma_crossover import SmaCrossover
    from marketbot.strategies.loader import load_strategy

    options: Any = {"fee": FEE, "slippage": 0.0, "cash": CASH}
    options |= {"stop_loss": STOP_LOSS, "trailing_stop": TRAILING_STOP}
    config = build_config(None, options)
    build_rules(None, options)
    strategy = load_strategy(SmaCrossover)
    params = strategy.resolve_params({"fast": FAST, "slow": SLOW})
    start, end = engine.parse_date_range(None, None)
    clock.lap("set-up (config, strategy, params)")
    bars = normalize_ohlcv(frame, where="data")
    clock.lap("normalize_ohlcv (validation)")
    window = engine.TradingWindow.of(bars, start=start, end=end)
    prepared = prepare_signals(strategy, window.frame, params, config)
    clock.lap("signals (prepare_signals)")
    times_ns = window.index.asi8
    close = window.bars["close"].to_numpy()
    output = simulate(
        window.bars["open"].to_numpy(),
        window.bars["high"].to_numpy(),
        window.bars["low"].to_numpy(),
        close,
        times_ns,
        prepared.kernel,
        config.kernel_settings(allow_short=prepared.allow_short),
    )
    clock.lap("kernel (simulate)")
    trades = output.trades
    spacing: dict[str, Any] = {}
    if hasattr(engine.TradingWindow, "bar_spacing_ns"):
        spacing["bar_spacing_ns"] = window.bar_spacing_ns
    metrics = compute_metrics(
        output.equity,
        times_ns,
        close,
        ClosedTrades(trades["pnl"], trades["pnl_pct"], trades["exit_bar"] - trades["entry_bar"]),
        exposed_bars=output.exposed_bars,
        total_fees=output.total_fees,
        initial_cash=config.initial_cash,
        **spacing,
    )
    clock.lap("compute_metrics")
    strategy.warmup_bars(params)
    recommendation = recommend(metrics, RecommendationThresholds())
    clock.lap("recommend")
    table = trades_frame(output, window.index, prepared.tag_names)
    clock.lap("trades_frame")
    equity = pd.Series(output.equity, index=window.index, name="equity", copy=False)
    clock.lap("equity Series")
    notes = engine._data_notes(window.bars, *spacing.values())
    clock.lap("gap notes (_data_notes)")
    notes += engine._risk_notes(output.entry_denials, output.breaker_trips, window.index)
    clock.lap("risk notes (_risk_notes)")
    result = BacktestResult(
        strategy=strategy.name,
        symbol="data",
        params=dict(params),
        settings=config.to_dict(),
        metrics=metrics,
        recommendation=recommendation,
        trades=table,
        equity_curve=equity,
        bars=window.bars,
        notes=notes,
        warnings=result_warnings(metrics),
        no_trade_reason=None,  # the benchmark's run trades; the reason is built only without
    )
    clock.lap("warnings, settings, result")
    return result


def stage_breakdown(frame: pd.DataFrame, repeats: int) -> dict[str, float]:
    """Best time of each stage within whole replayed runs (stops on), and of the whole replay.

    Each repeat replays one whole run (``replayed_run``), so every stage meets the caches and
    the heap as a real run leaves them, which timing a stage in a loop of its own does not.
    """
    best: dict[str, float] = {}
    replayed_run(frame, StageClock())  # warm up
    for _ in range(repeats):
        gc.collect()
        clock = StageClock()
        started = time.perf_counter()
        replayed_run(frame, clock)
        clock.laps["whole replay"] = time.perf_counter() - started
        for stage, seconds in clock.laps.items():
            best[stage] = min(best.get(stage, math.inf), seconds)
    return best


# -- peers -------------------------------------------------------------------------------------


@dataclass
class Contender:
    """One timed thing in the interleaved peer rounds.

    Attributes:
        name: Row label.
        run: One whole run; its value goes to ``outcome``.
        outcome: The entry bars of every trade (open ones too) and the final equity.
        rounds: How many rounds it takes part in (the first ``rounds``).
        baseline: The marketbot contender it is compared with.
        note: What exactly it runs.
    """

    name: str
    run: Callable[[], Any]
    outcome: Callable[[Any], tuple[list[int], float]]
    rounds: int
    baseline: str = ""
    note: str = ""


def rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    return pd.Series(values).rolling(window).mean().to_numpy()


def backtesting_py_strategy() -> type:
    """sma_crossover for backtesting.py: pandas rolling means, marketbot's crossing rule."""
    from backtesting import Strategy

    class SmaCrossoverBt(Strategy):  # type: ignore[misc]  # backtesting.py is untyped
        fast = FAST
        slow = SLOW

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

    return SmaCrossoverBt


def backtesting_py_contender(frame: pd.DataFrame, rounds: int) -> Contender:
    from backtesting.lib import FractionalBacktest

    bars = frame.rename(columns=str.capitalize).tz_localize(None)
    strategy = backtesting_py_strategy()

    def run() -> pd.Series:
        backtest = FractionalBacktest(
            bars,
            strategy,
            cash=CASH,
            commission=FEE,
            trade_on_close=False,
            exclusive_orders=True,
            finalize_trades=False,
            fractional_unit=FRACTIONAL_UNIT,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stats: pd.Series = backtest.run()
        return stats

    def outcome(stats: pd.Series) -> tuple[list[int], float]:
        closed = stats["_trades"]["EntryBar"].tolist()
        still_open = [trade.entry_bar for trade in stats["_strategy"].trades]
        return [int(bar) for bar in closed + still_open], float(stats["Equity Final [$]"])

    note = "FractionalBacktest, run() incl. its stats"
    return Contender("backtesting.py", run, outcome, rounds, "marketbot", note)


def vectorbt_contenders(frame: pd.DataFrame, engine: str, rounds: int) -> list[Contender]:
    """vectorbt end to end (signals, simulation, trades, metrics), signals and simulation, and
    the simulation alone."""
    import vectorbt as vbt

    index = pd.DatetimeIndex(frame.index).tz_localize(None)  # vectorbt wants a tz-naive index
    close = pd.Series(frame["close"].to_numpy(), index=index, name="close")
    open_ = pd.Series(frame["open"].to_numpy(), index=index, name="open")

    def signals() -> tuple[pd.Series, pd.Series]:
        fast = vbt.MA.run(close, FAST, short_name="fast")
        slow = vbt.MA.run(close, SLOW, short_name="slow")
        # A cross at the close of bar t fills at the open of t + 1, as in marketbot.
        entries = fast.ma_crossed_above(slow).shift(1, fill_value=False)
        exits = fast.ma_crossed_below(slow).shift(1, fill_value=False)
        return entries, exits

    def simulate(entries: pd.Series, exits: pd.Series) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return vbt.Portfolio.from_signals(
                close,
                entries,
                exits,
                price=open_,
                fees=FEE,
                init_cash=CASH,
                freq="1h",
                engine=engine,
            )

    def end_to_end() -> Any:
        portfolio = simulate(*signals())
        trades = portfolio.trades
        # Roughly marketbot's outputs: the trade table, the equity curve and headline metrics.
        # The raw records, not records_readable: that takes 3.5 s for 14,000 trades.
        _ = trades.records, portfolio.value()
        _ = (
            portfolio.total_return(),
            portfolio.sharpe_ratio(),
            portfolio.sortino_ratio(),
            portfolio.max_drawdown(),
            trades.win_rate(),
            trades.profit_factor(),
            trades.expectancy(),
        )
        return portfolio

    def outcome(portfolio: Any) -> tuple[list[int], float]:
        entry_bars = portfolio.trades.records_arr["entry_idx"].tolist()
        return entry_bars, float(portfolio.final_value())

    entries, exits = signals()
    simulate(entries, exits)  # compile or load before timing
    label = f"vectorbt ({engine})"
    return [
        Contender(
            label,
            end_to_end,
            outcome,
            rounds,
            "marketbot",
            "vbt.MA crossings, from_signals, trades.records, value() and 7 metrics",
        ),
        Contender(
            f"{label} signals + from_signals",
            lambda: simulate(*signals()),
            outcome,
            rounds,
            "marketbot",
            "vbt.MA crossings and from_signals, no trades table or metrics (issue 11's peer)",
        ),
        Contender(
            f"{label} from_signals only",
            lambda: simulate(entries, exits),
            outcome,
            rounds,
            "kernel",
            "from_signals on precomputed shifted signals",
        ),
    ]


def vectorbt_engines() -> list[str]:
    try:
        from vectorbt._engine import is_rust_available
    except ImportError:
        return []
    return ["numba", "rust"] if is_rust_available() else ["numba"]


def same_trades(entry_bars: list[int], reference: list[int]) -> str:
    if entry_bars == reference:
        return f"same {len(reference)} trades"
    count = f"{len(entry_bars)} vs {len(reference)} trades"
    for position, (theirs, ours) in enumerate(zip(entry_bars, reference, strict=False)):
        if theirs != ours:
            return f"DIFFERENT: {count}; trade {position} enters at bar {theirs} vs {ours}"
    return f"DIFFERENT: {count}"


# -- children (fresh interpreters) -------------------------------------------------------------


def child_first_call(num_bars: int) -> dict[str, float]:
    frame = make_bars(num_bars)
    started = time.perf_counter()
    import marketbot.backtest.engine
    import marketbot.strategies.builtin.sma_crossover  # noqa: F401

    imported = time.perf_counter()
    marketbot_backtest(frame, stops=True)
    finished = time.perf_counter()
    return {"import_s": imported - started, "first_call_s": finished - imported}


def proc_status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def release_free_heap() -> None:
    """Hand freed heap pages back to the OS, so the run cannot reuse them unseen by RSS."""
    # Not glibc: nothing to trim, and the RSS delta may understate a little.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def run_memory(run: Callable[[], Any]) -> tuple[dict[str, float], Any]:
    """RSS figures of one ``run()`` (warmed up already) and its result.

    The peak and retained RSS come from one call, the tracemalloc peak from a second.
    """
    mib = 1024.0
    gc.collect()
    release_free_heap()
    before = proc_status_kib("VmRSS") / mib
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    result = run()
    peak = proc_status_kib("VmHWM") / mib
    retained = proc_status_kib("VmRSS") / mib
    del result
    gc.collect()
    tracemalloc.start()
    result = run()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    figures = {
        "rss_before_run_mib": before,
        "peak_added_mib": peak - before,
        "retained_mib": retained - before,
        "tracemalloc_peak_mib": traced_peak / 2**20,
    }
    return figures, result


def child_memory(num_bars: int) -> dict[str, float]:
    import marketbot.backtest.engine
    import marketbot.strategies.builtin.sma_crossover  # noqa: F401

    after_imports = proc_status_kib("VmRSS") / 1024.0
    frame = make_bars(num_bars)
    marketbot_backtest(make_bars(1_000), stops=True)  # load the compiled code first
    figures, result = run_memory(lambda: marketbot_backtest(frame, stops=True))
    return {
        "rss_after_imports_mib": after_imports,
        "rss_before_run_mib": figures["rss_before_run_mib"],
        "frame_mib": frame.memory_usage(index=True, deep=True).sum() / 2**20,
        "peak_added_mib": figures["peak_added_mib"],
        "retained_mib": figures["retained_mib"],
        "tracemalloc_peak_mib": figures["tracemalloc_peak_mib"],
        "num_trades": float(result.metrics["num_trades"]),
    }


# -- A/B: source trees taking turns ------------------------------------------------------------

AB_RUNS: Final = ("stops", "no stops", "kernel")


def child_worker(num_bars: int) -> None:
    """Serve timed runs: a line on stdin names one of ``AB_RUNS``, a line out gives its seconds."""
    import marketbot

    frame = make_bars(num_bars)
    inputs = kernel_inputs(frame, stops=True)
    runs: dict[str, Callable[[], Any]] = {
        "stops": lambda: marketbot_backtest(frame, stops=True),
        "no stops": lambda: marketbot_backtest(frame, stops=False),
        "kernel": lambda: run_kernel(inputs),
    }
    for run in runs.values():
        run()  # compile or load first
    print(json.dumps(str(Path(marketbot.__file__).resolve().parent)), flush=True)
    for line in sys.stdin:
        seconds, _ = best_of(runs[line.strip()], 1)
        print(json.dumps(seconds), flush=True)


def measure_ab(sources: list[Path], num_bars: int, rounds: int) -> list[list[str]]:
    """Whole runs and the kernel of each source tree, the trees taking turns run by run.

    One worker process per tree (``PYTHONPATH`` set to it) is fed one run at a time, every
    tree once per run kind and round, so a busy spell of the shared machine slows all of
    them alike; each keeps its own heap, as a user's process would.
    """
    workers: list[tuple[Path, subprocess.Popen[str]]] = []
    for source in sources:
        command = [sys.executable, str(Path(__file__).resolve()), "--child", "worker"]
        worker = subprocess.Popen(
            [*command, "--bars", str(num_bars)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**CHILD_ENV, "PYTHONPATH": str(source.resolve())},
        )
        assert worker.stdin is not None and worker.stdout is not None
        package = Path(json.loads(worker.stdout.readline()))
        if not package.is_relative_to(source.resolve()):
            raise SystemExit(f"{source}: the worker imported marketbot from {package}")
        workers.append((source, worker))
    times: dict[tuple[Path, str], list[float]] = {}
    for _ in range(rounds):
        for kind in AB_RUNS:
            for source, worker in workers:
                assert worker.stdin is not None and worker.stdout is not None
                worker.stdin.write(kind + "\n")
                worker.stdin.flush()
                times.setdefault((source, kind), []).append(json.loads(worker.stdout.readline()))
    for _, worker in workers:
        assert worker.stdin is not None
        worker.stdin.close()
        worker.wait()
    rows = []
    for (source, kind), seconds in times.items():
        ordered = sorted(seconds)
        rows.append(
            [f"{num_bars:,}", str(source), kind, ms(ordered[0], 2),
             ms(ordered[len(ordered) // 10], 2), ms(ordered[len(ordered) // 2], 2)]
        )  # fmt: skip
    return rows


# -- the main run ------------------------------------------------------------------------------


@dataclass
class SizeFigures:
    """Everything measured for one number of bars."""

    bars: int
    first_call_compile_s: float = math.nan
    first_call_cached_s: float = math.nan
    import_s: float = math.nan
    warm_s: float = math.nan
    warm_no_stops_s: float = math.nan
    kernel_s: float = math.nan
    kernel_no_stops_s: float = math.nan
    num_trades: int = 0
    exit_reasons: dict[str, int] = field(default_factory=dict)
    memory: dict[str, float] = field(default_factory=dict)
    peers: list[dict[str, Any]] = field(default_factory=list)
    breakdown: dict[str, float] = field(default_factory=dict)


def measure_size(num_bars: int, args: argparse.Namespace) -> SizeFigures:
    figures = SizeFigures(bars=num_bars)
    repeats = args.repeats
    if not args.no_first_call:
        with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache_dir:
            env = {"NUMBA_CACHE_DIR": cache_dir}
            figures.first_call_compile_s = run_child("first-call", num_bars, env)["first_call_s"]
            cached = min(
                (run_child("first-call", num_bars, env) for _ in range(3)),
                key=lambda child: child["first_call_s"],
            )
            figures.first_call_cached_s = cached["first_call_s"]
            figures.import_s = cached["import_s"]
    frame = make_bars(num_bars)
    marketbot_backtest(frame, stops=True)  # warm up in this process
    figures.warm_s, result = best_of(lambda: marketbot_backtest(frame, stops=True), repeats)
    figures.num_trades = int(result.metrics["num_trades"])
    figures.exit_reasons = {
        str(k): int(v) for k, v in result.trades["exit_reason"].value_counts().items()
    }
    figures.warm_no_stops_s, plain = best_of(
        lambda: marketbot_backtest(frame, stops=False), repeats
    )
    inputs = kernel_inputs(frame, stops=True)
    run_kernel(inputs)
    figures.kernel_s, _ = best_of(lambda: run_kernel(inputs), repeats * 3)
    plain_inputs = kernel_inputs(frame, stops=False)
    figures.kernel_no_stops_s, _ = best_of(lambda: run_kernel(plain_inputs), repeats * 3)
    if not args.no_memory:
        figures.memory = run_child("memory", num_bars)
    if not args.no_breakdown:
        figures.breakdown = stage_breakdown(frame, repeats)
    if not args.no_peers:
        figures.peers = measure_peers(frame, plain, args)
    return figures


def measure_peers(
    frame: pd.DataFrame, plain: Any, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Time marketbot and the peers in interleaved rounds, best of each; check their trades.

    Each round runs every contender once, so a busy spell on the shared machine slows all of
    them alike instead of one engine's whole series.
    """
    rounds = args.repeats
    bt_rounds = args.bt_repeats if len(frame) >= 1_000_000 else min(rounds, 3)
    plain_inputs = kernel_inputs(frame, stops=False)
    contenders = [
        Contender("marketbot", lambda: marketbot_backtest(frame, stops=False), _no_outcome, rounds),
        Contender("kernel", lambda: run_kernel(plain_inputs), _no_outcome, rounds),
    ]
    if len(frame) <= args.bt_max_bars:
        contenders.append(backtesting_py_contender(frame, bt_rounds))
    for engine in vectorbt_engines():
        contenders.extend(vectorbt_contenders(frame, engine, rounds))
    best = dict.fromkeys((c.name for c in contenders), math.inf)
    values: dict[str, Any] = {}
    for round_number in range(rounds):
        for contender in contenders:
            if round_number < contender.rounds:
                seconds, values[contender.name] = best_of(contender.run, 1)
                best[contender.name] = min(best[contender.name], seconds)
    reference = [int(bar) for bar in plain.trades["entry_bar"]]
    final_equity = float(plain.equity_curve.iloc[-1])
    rows = []
    for contender in contenders:
        if not contender.baseline:
            continue
        entry_bars, peer_equity = contender.outcome(values[contender.name])
        baseline_s = best[contender.baseline]
        rows.append(
            {
                "name": contender.name,
                "seconds": best[contender.name],
                "rounds": contender.rounds,
                "note": contender.note,
                "marketbot_s": baseline_s,
                "ratio": best[contender.name] / baseline_s,
                "trades_check": same_trades(entry_bars, reference),
                "final_equity_rel_diff": abs(peer_equity / final_equity - 1.0),
            }
        )
    return rows


def _no_outcome(_: Any) -> tuple[list[int], float]:
    return [], math.nan


def measure_cli(repeats: int, bytecode_cache: str) -> dict[str, float]:
    """``--help`` and a backtest of stored daily BTC, as the environment is and with .pyc."""
    binary = str(Path(sys.executable).with_name("marketbot"))
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="marketbot-bench-") as data_dir:
        for label, cache in (("", bytecode_cache), ("_as_is", None)):
            env = {**bytecode_env(cache), "MARKETBOT_DATA_DIR": data_dir}
            figures["help" + label + "_s"] = subprocess_wall([binary, "--help"], repeats, env)
            # The demo loads the bundled data and, once, fills the numba and bytecode caches.
            subprocess.run([binary, "demo"], capture_output=True, check=True, env=env, cwd=REPO)
            command = [binary, "backtest", "--strategy", "sma_crossover", "--symbol", "bitcoin"]
            subprocess.run(command, capture_output=True, check=True, env=env, cwd=REPO)
            figures["backtest" + label + "_s"] = subprocess_wall(command, repeats, env)
    return figures


# -- report ------------------------------------------------------------------------------------


Table = tuple[str, list[str], list[list[str]]]
TARGET_RATIOS: Final = {
    "backtesting.py": 250.0,
    "vectorbt (rust)": 3.5,
    "vectorbt (rust) signals + from_signals": 3.5,
}
# Issue 11: a warm 1M-bar run_backtest (stops on) of at most 20 ms, aiming at 17 ms.
TARGET_WARM_S: Final = 0.020
AIM_WARM_S: Final = 0.017


def _rate(bars: int, seconds: float) -> str:
    return f"{bars / seconds / 1e6:,.1f}M" if seconds > 0 else "-"


def ms(seconds: float, digits: int = 1) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1e3:,.{digits}f}"


def marketbot_table(sizes: list[SizeFigures], repeats: int) -> Table:
    header = [
        "bars", "trades", "import ms", "1st call, compile ms", "1st call, cached ms",
        "warm ms", "bars/s", "no stops ms", "kernel ms", "kernel bars/s",
    ]  # fmt: skip
    rows = [
        [
            f"{s.bars:,}", f"{s.num_trades:,}", ms(s.import_s), ms(s.first_call_compile_s),
            ms(s.first_call_cached_s), ms(s.warm_s), _rate(s.bars, s.warm_s),
            ms(s.warm_no_stops_s), ms(s.kernel_s, 2), _rate(s.bars, s.kernel_s),
        ]
        for s in sizes
    ]  # fmt: skip
    title = f"marketbot sma_crossover {FAST}/{SLOW}, stops on unless said (best of {repeats})"
    return title, header, rows


def memory_table(sizes: list[SizeFigures]) -> Table:
    header = ["bars", "RSS before", "input frame", "peak RSS added", "RSS kept", "tracemalloc"]
    keys = (
        "rss_before_run_mib",
        "frame_mib",
        "peak_added_mib",
        "retained_mib",
        "tracemalloc_peak_mib",
    )
    rows = [[f"{s.bars:,}", *(f"{s.memory[key]:.1f}" for key in keys)] for s in sizes if s.memory]
    return "memory of one backtest, stops on (MiB, fresh process)", header, rows


def peers_table(sizes: list[SizeFigures]) -> Table:
    header = ["bars", "peer", "peer ms", "marketbot ms", "marketbot faster", "trades"]
    rows = [
        [
            f"{s.bars:,}", peer["name"], ms(peer["seconds"]), ms(peer["marketbot_s"], 2),
            f"{peer['ratio']:,.1f}x", peer["trades_check"],
        ]
        for s in sizes
        for peer in s.peers
    ]  # fmt: skip
    title = "peers, no stops, vs marketbot no stops ('from_signals only': vs the kernel alone)"
    return title, header, rows


def breakdown_table(figures: SizeFigures) -> Table:
    total = figures.warm_s
    rows = [
        [stage, ms(seconds, 2), f"{100 * seconds / total:.0f} %"]
        for stage, seconds in figures.breakdown.items()
    ]
    stages = sum(v for k, v in figures.breakdown.items() if k != "whole replay")
    rows.append(["sum of the stages' bests", ms(stages, 2), f"{100 * stages / total:.0f} %"])
    rows.append(["whole run_backtest (best, timed apart)", ms(total, 2), "100 %"])
    title = (
        f"where the time goes, {figures.bars:,} bars, stops on "
        "(best of each stage within whole replayed runs)"
    )
    return title, ["stage", "ms", "share"], rows


def cli_table(cli: dict[str, float]) -> Table:
    backtest = "marketbot backtest --strategy sma_crossover --symbol bitcoin"
    rows = [
        ["marketbot --help", f"{cli['help_s']:.3f}", f"{cli['help_as_is_s']:.3f}"],
        [backtest, f"{cli['backtest_s']:.3f}", f"{cli['backtest_as_is_s']:.3f}"],
    ]
    header = ["command", "s, with .pyc cache", "s, environment as is"]
    return "CLI, subprocess wall time, best of 5, warm numba cache", header, rows


def target_rows(sizes: list[SizeFigures], cli: dict[str, float]) -> list[list[str]]:
    rows: list[list[str]] = []

    def add(name: str, text: str, met: bool) -> None:
        rows.append([name, text, "yes" if met else "NO"])

    big = next((s for s in sizes if s.bars == TARGET_BARS), None)
    if big is not None:
        rate = big.bars / big.kernel_s
        add("kernel alone, stops on: >= 100M bars/s", f"{rate / 1e6:,.0f}M bars/s", rate >= 1e8)
        warm = f"{big.warm_s * 1e3:.1f} ms"
        add("1M bars, warm run_backtest: <= 20 ms", warm, big.warm_s <= TARGET_WARM_S)
        add("1M bars, warm run_backtest: <= 17 ms (aim)", warm, big.warm_s <= AIM_WARM_S)
        for peer in big.peers:
            need = TARGET_RATIOS.get(peer["name"])
            if need is not None:
                text = f"{peer['ratio']:,.1f}x"
                add(f"1M bars vs {peer['name']}: >= {need:g}x", text, peer["ratio"] >= need)
        if big.memory:
            added_mb = big.memory["peak_added_mib"] * 2**20 / 1e6
            add("1M bars, memory added: < 300 MB", f"{added_mb:,.0f} MB peak RSS", added_mb < 300)
    if cli:
        for suffix, label in (("", "with .pyc"), ("_as_is", "env as is")):
            seconds = cli[f"help{suffix}_s"]
            add(f"marketbot --help ({label}): < 0.5 s", f"{seconds:.3f} s", seconds < 0.5)
            seconds = cli[f"backtest{suffix}_s"]
            add(f"CLI backtest daily BTC ({label}): < 2 s", f"{seconds:.3f} s", seconds < 2.0)
    return rows


def report(sizes: list[SizeFigures], cli: dict[str, float], repeats: int) -> None:
    tables = [marketbot_table(sizes, repeats)]
    if any(s.memory for s in sizes):
        tables.append(memory_table(sizes))
    if any(s.peers for s in sizes):
        tables.append(peers_table(sizes))
    tables.extend(breakdown_table(s) for s in sizes if s.breakdown)
    if cli:
        tables.append(cli_table(cli))
    tables.append(("targets", ["target", "measured", "met"], target_rows(sizes, cli)))
    print_tables(tables)


def print_tables(tables: list[Table]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        for title, header, rows in tables:
            print(f"\n{title}")
            print(" | ".join(header))
            for row in rows:
                print(" | ".join(row))
        return
    # Wide enough for every table when the output is a file or a pipe.
    console = Console(width=max(120, shutil.get_terminal_size((120, 40)).columns))
    for title, header, rows in tables:
        table = Table(title=title, title_justify="left")
        for position, name in enumerate(header):
            table.add_column(name, justify="left" if position == 0 else "right")
        for row in rows:
            table.add_row(*row)
        console.print(table)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--repeats", type=int, default=7, help="warm repeats (best of)")
    parser.add_argument("--bt-repeats", type=int, default=3, help="backtesting.py, 1M bars")
    parser.add_argument("--bt-max-bars", type=int, default=1_000_000)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--no-cli", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-first-call", action="store_true")
    parser.add_argument("--no-breakdown", action="store_true")
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="run child processes in the environment as is (see bytecode_env)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--ab",
        type=Path,
        nargs="+",
        metavar="SRC",
        help="only compare source trees (e.g. exports' src folders): whole runs and kernel, "
        "the trees taking turns, --repeats rounds, at each of --sizes",
    )
    parser.add_argument(
        "--child", choices=["first-call", "memory", "worker"], help=argparse.SUPPRESS
    )
    parser.add_argument("--bars", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child == "first-call":
        print(json.dumps(child_first_call(args.bars)))
        return 0
    if args.child == "memory":
        print(json.dumps(child_memory(args.bars)))
        return 0
    if args.child == "worker":
        child_worker(args.bars)
        return 0
    if args.ab:
        rows = [row for bars in args.sizes for row in measure_ab(args.ab, bars, args.repeats)]
        header = ["bars", "source", "run", "best ms", "p10 ms", "median ms"]
        print_tables([(f"A/B, {args.repeats} rounds, taking turns", header, rows)])
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as bytecode_cache:
        CHILD_ENV.clear()
        CHILD_ENV.update(bytecode_env(None if args.no_bytecode_cache else bytecode_cache))
        with tempfile.TemporaryDirectory(prefix="numba-cache-") as numba_cache:
            # Fill the bytecode cache before anything is timed.
            run_child("first-call", 1_000, {"NUMBA_CACHE_DIR": numba_cache})
        sizes, cli = measure_all(args, bytecode_cache)
    report(sizes, cli, args.repeats)
    if args.json:
        figures = {"sizes": [asdict(s) for s in sizes], "cli": cli, "python": sys.version}
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


def measure_all(
    args: argparse.Namespace, bytecode_cache: str
) -> tuple[list[SizeFigures], dict[str, float]]:
    sizes = []
    for num_bars in args.sizes:
        print(f"measuring {num_bars:,} bars ...", file=sys.stderr, flush=True)
        sizes.append(measure_size(num_bars, args))
    cli: dict[str, float] = {}
    if not args.no_cli:
        print("measuring the CLI ...", file=sys.stderr, flush=True)
        try:
            cli = measure_cli(5, bytecode_cache)
        except subprocess.CalledProcessError as exc:
            print(f"CLI not measured: {exc} {exc.stderr!r}", file=sys.stderr)
    return sizes, cli


if __name__ == "__main__":
    sys.exit(main())
