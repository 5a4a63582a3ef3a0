"""Walk-forward validation: optimise on a past window, trade the winner on the next one.

``walk_forward(optimizer, strategy, param_ranges, metric, data=... or symbol=..., in_sample=...,
out_of_sample=...)`` cuts the bars into windows on their times: in-sample (IS) bars
``[s, s + IS)`` choose the parameters, out-of-sample (OOS) bars ``[s + IS, s + IS + OOS)``
test them. Rolling windows step ``s`` by OOS; anchored windows keep the IS start fixed and
grow the IS by OOS each step. Only complete windows are used: a remainder at the end shorter
than one OOS window is not tested.

The optimiser for window i receives only the bars before its OOS start. Each OOS test signals
on every bar up to the OOS end (the earlier ones are warm-up) and trades only inside the OOS
window. Its account starts from the previous OOS window's ending equity, so the stitched
curve is the OOS curves chained end to start: with all-in sizing that is each window's curve
scaled by the equity the earlier windows left. A position still open at an OOS window's end is
closed at its last close without exit costs (``end_of_data``), as at the end of any backtest.
docs/optimizer.md has the details and how to read the result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Unpack

import numpy as np
import pandas as pd

from marketbot.backtest.config import BacktestConfig
from marketbot.backtest.engine import parse_date_range
from marketbot.backtest.options import BACKTEST_KEYS, BacktestOptions, DateLike, build_config
from marketbot.backtest.result import BacktestResult
from marketbot.core.bars import bar_times, normalize_ohlcv
from marketbot.core.errors import ConfigError, DataError
from marketbot.core.metrics import METRIC_KEYS, ClosedTrades, compute_metrics
from marketbot.core.recommendation import Recommendation, recommend
from marketbot.optimize.grid import is_minimised
from marketbot.optimize.optimizer import OptimizationResult, StrategyOptimizer
from marketbot.optimize.walk_forward_windows import (
    WindowLength,
    WindowPlan,
    WindowScheme,
    plan_windows,
)
from marketbot.strategies.base import Strategy
from marketbot.strategies.loader import StrategySpec, load_strategy

__all__ = [
    "WalkForwardResult",
    "WalkForwardWindow",
    "WindowLength",
    "WindowPlan",
    "plan_windows",
    "walk_forward",
]

_WINDOW_TIMES: Final = (
    "in_sample_start",
    "in_sample_end",
    "out_of_sample_start",
    "out_of_sample_end",
)
_RESERVED_SEARCH_KEYS: Final = frozenset(
    {"data", "symbol", "symbols", "start_date", "end_date", "min_trades", "save", "config"}
    | BACKTEST_KEYS
)


@dataclass(frozen=True)
class WalkForwardWindow:
    """One walk-forward step's outcome (bar times are bar opens, both ends inclusive).

    Attributes:
        number: 1 for the first window.
        in_sample_start: First in-sample bar.
        in_sample_end: Last in-sample bar.
        out_of_sample_start: First out-of-sample bar.
        out_of_sample_end: Last out-of-sample bar.
        params: The parameters the in-sample optimisation chose.
        in_sample_metrics: Their metrics on the in-sample window.
        out_of_sample_metrics: Their metrics on the out-of-sample window.
        efficiency: OOS metric / IS metric (NaN when the IS metric is not positive).
        optimization: The in-sample optimisation, every row included.
    """

    number: int
    in_sample_start: pd.Timestamp
    in_sample_end: pd.Timestamp
    out_of_sample_start: pd.Timestamp
    out_of_sample_end: pd.Timestamp
    params: dict[str, Any]
    in_sample_metrics: dict[str, float | int]
    out_of_sample_metrics: dict[str, float | int]
    efficiency: float
    optimization: OptimizationResult = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (ISO times; inf and NaN as null); the optimisation is left out."""
        times = {name: getattr(self, name).isoformat() for name in _WINDOW_TIMES}
        return {"window": self.number, **times, "params": _json_dict(self.params)} | {
            "in_sample_metrics": _json_dict(self.in_sample_metrics),
            "out_of_sample_metrics": _json_dict(self.out_of_sample_metrics),
            "efficiency": _json(self.efficiency),
        }


@dataclass(frozen=True)
class WalkForwardResult:
    """The outcome of a walk-forward validation.

    Attributes:
        strategy: The strategy's name.
        metric: The metric each in-sample optimisation maximised (or minimised).
        minimise: True for drawdown metrics.
        anchored: Whether the in-sample start stayed fixed.
        in_sample: The in-sample length as given.
        out_of_sample: The out-of-sample length as given.
        windows: Every step, in time order.
        equity: The stitched out-of-sample equity curve (quote currency, at each bar close).
        trades: Every out-of-sample trade; ``window`` says which step, ``entry_bar`` and
            ``exit_bar`` are positions in ``equity``.
        out_of_sample_metrics: compute_metrics over the stitched curve and all OOS trades.
        in_sample_metrics: The mean over the windows of each in-sample metric.
        efficiency: The stitched OOS metric / the mean IS metric (NaN when that mean is not
            positive).
        recommendation: The verdict on the out-of-sample metrics.
        notes: Anything the numbers do not say (e.g. the account was wiped out).
    """

    strategy: str
    metric: str
    minimise: bool
    anchored: bool
    in_sample: str
    out_of_sample: str
    windows: tuple[WalkForwardWindow, ...]
    equity: pd.Series
    trades: pd.DataFrame
    out_of_sample_metrics: dict[str, float | int]
    in_sample_metrics: dict[str, float]
    efficiency: float
    recommendation: Recommendation
    notes: tuple[str, ...] = ()

    def table(self) -> pd.DataFrame:
        """One row per window: its ranges, chosen parameters, IS and OOS metric, efficiency."""
        metric = self.metric
        rows = [
            {
                "window": w.number,
                **{name: getattr(w, name) for name in _WINDOW_TIMES},
                **w.params,
                f"in_sample_{metric}": w.in_sample_metrics[metric],
                f"out_of_sample_{metric}": w.out_of_sample_metrics[metric],
                "out_of_sample_return_pct": w.out_of_sample_metrics["return_pct"],
                "out_of_sample_num_trades": w.out_of_sample_metrics["num_trades"],
                "efficiency": w.efficiency,
            }
            for w in self.windows
        ]
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: settings, windows, stitched curve and metrics (inf and NaN as null)."""
        return {
            "strategy": self.strategy,
            "metric": self.metric,
            "minimise": self.minimise,
            "anchored": self.anchored,
            "in_sample": self.in_sample,
            "out_of_sample": self.out_of_sample,
            "recommendation": self.recommendation.value,
            "efficiency": _json(self.efficiency),
            "out_of_sample_metrics": _json_dict(self.out_of_sample_metrics),
            "in_sample_metrics": _json_dict(self.in_sample_metrics),
            "windows": [window.to_dict() for window in self.windows],
            "equity": {
                "times": [stamp.isoformat() for stamp in pd.DatetimeIndex(self.equity.index)],
                "values": [float(value) for value in self.equity.to_numpy()],
            },
            "notes": list(self.notes),
        }


def walk_forward(  # noqa: PLR0913 - public keywords; config= carries the settings
    optimizer: StrategyOptimizer,
    strategy: StrategySpec,
    param_ranges: Mapping[str, Sequence[object]],
    metric: str = "sharpe",
    *,
    in_sample: WindowLength,
    out_of_sample: WindowLength,
    data: pd.DataFrame | None = None,
    symbol: str | None = None,
    anchored: bool = False,
    min_trades: int = 0,
    start_date: DateLike = None,
    end_date: DateLike = None,
    timeframe: str | None = None,
    config: BacktestConfig | None = None,
    search_options: Mapping[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
    **options: Unpack[BacktestOptions],
) -> WalkForwardResult:
    """Optimise on each in-sample window and test the winner on the next out-of-sample one.

    Args:
        optimizer: Runs each in-sample optimisation; its engine loads ``symbol`` and runs the
            out-of-sample tests, and its thresholds give the recommendation.
        strategy: A built-in name, a Strategy class or instance, or ``file.py:Class``.
        param_ranges: Values per parameter, as for ``optimize_strategy``.
        metric: The metric each in-sample optimisation picks the best by.
        in_sample: In-sample length: a bar count (int) or a duration (``'365d'``, timedelta).
        out_of_sample: Out-of-sample length and step, of the same kind as ``in_sample``.
        data: An OHLCV frame (one of data and symbol).
        symbol: A stored symbol.
        anchored: Keep the in-sample start fixed (growing IS) instead of rolling it.
        min_trades: Fewer in-sample trades make a combination ineligible to win.
        start_date: Where the first in-sample window starts (earlier bars are warm-up only).
        end_date: Last bar any window may use.
        timeframe: Stored timeframe of ``symbol``.
        config: Costs, sizing, exits and limits, in-sample and out-of-sample alike; its cash
            starts every in-sample run and the first out-of-sample window (later windows
            start from the equity the previous one ended with).
        search_options: Extra arguments for ``optimize_strategy`` (e.g. a search method).
        progress: Called as ``progress(done, total)`` after each window.
        **options: The settings as keywords instead of ``config``, as ``run_backtest`` takes
            them (fee, slippage, cash, sizing, size, stop_loss, ...).

    Raises:
        ConfigError: bad lengths, windows that do not fit the data, an unknown metric, bad
            ranges or settings; all before any backtest runs.
        DataError: no usable bars, or an in-sample window where no combination made
            ``min_trades`` trades (the message names the window).
    """
    if metric not in METRIC_KEYS:
        raise ConfigError(f"unknown metric {metric!r} (metrics: {', '.join(METRIC_KEYS)})")
    if min_trades < 0:
        raise ConfigError(f"min_trades={min_trades}: must be >= 0")
    run_config = build_config(config, options)
    clashes = sorted(_RESERVED_SEARCH_KEYS & set(search_options or {}))
    if clashes:
        raise ConfigError(f"search_options may not set {', '.join(clashes)}: pass them directly")
    instance = load_strategy(strategy)
    start, end = parse_date_range(start_date, end_date)
    frame = _load_frame(optimizer, data, symbol, timeframe, end)
    index = bar_times(frame)
    first_row = 0 if start is None else int(index.searchsorted(start, side="left"))
    plans = plan_windows(index, in_sample, out_of_sample, anchored=anchored, first_row=first_row)
    search = {"min_trades": min_trades, "config": run_config, **(search_options or {})}
    runs: list[tuple[WalkForwardWindow, BacktestResult]] = []
    notes: list[str] = []
    equity = float(run_config.initial_cash)
    for plan in plans:
        if equity <= 0:
            notes.append(f"the account was wiped out in window {plan.number - 1}; later windows "
                         "were not traded")  # fmt: skip
            break
        window = _optimise_window(optimizer, instance, param_ranges, metric, frame, plan, search)
        oos = optimizer.engine.run_backtest(
            instance, window.out_of_sample_start, data=frame.iloc[: plan.out_of_sample_end],
            params=window.params, config=replace(run_config, initial_cash=equity), save=False,
        )  # fmt: skip
        runs.append((_with_oos(window, oos, metric), oos))
        equity = float(oos.equity_curve.iloc[-1])
        if progress is not None:
            progress(plan.number, len(plans))
    scheme = WindowScheme(in_sample, out_of_sample, anchored)
    return _assemble(
        optimizer, instance, metric, runs, float(run_config.initial_cash), scheme, notes
    )


def _load_frame(
    optimizer: StrategyOptimizer,
    data: pd.DataFrame | None,
    symbol: str | None,
    timeframe: str | None,
    end: pd.Timestamp | None,
) -> pd.DataFrame:
    if (data is None) == (symbol is None):
        raise ConfigError("give exactly one of data= (a frame) or symbol= (stored bars)")
    if symbol is not None:
        return optimizer.engine.load_stored(symbol, timeframe=timeframe, source=None, end=end)[2]
    if isinstance(data, Mapping):
        raise ConfigError("walk-forward runs on one series: give one frame, not a mapping")
    frame = normalize_ohlcv(data, where="data")  # type: ignore[arg-type]  # a frame here
    return frame.loc[:end] if end is not None else frame


def _optimise_window(
    optimizer: StrategyOptimizer,
    strategy: Strategy,
    param_ranges: Mapping[str, Sequence[object]],
    metric: str,
    frame: pd.DataFrame,
    plan: WindowPlan,
    options: Mapping[str, Any],
) -> WalkForwardWindow:
    """The in-sample optimisation of one window, on the bars before its OOS start only."""
    index = bar_times(frame)
    in_sample_start = index[plan.in_sample_first]
    try:
        result = optimizer.optimize_strategy(
            strategy, param_ranges, metric, data=frame.iloc[: plan.out_of_sample_first],
            start_date=in_sample_start, save=False, diagnostics=False, **options,
        )  # fmt: skip
        best_params = result.winner  # no eligible combination fails the window
    except DataError as exc:
        raise DataError(
            f"walk-forward window {plan.number} (in-sample {in_sample_start} to "
            f"{index[plan.out_of_sample_first - 1]}): {exc}"
        ) from exc
    return WalkForwardWindow(
        number=plan.number,
        in_sample_start=in_sample_start,
        in_sample_end=index[plan.out_of_sample_first - 1],
        out_of_sample_start=index[plan.out_of_sample_first],
        out_of_sample_end=index[plan.out_of_sample_end - 1],
        params=dict(best_params),
        in_sample_metrics=_best_row_metrics(result),
        out_of_sample_metrics={},
        efficiency=math.nan,
        optimization=result,
    )


def _with_oos(window: WalkForwardWindow, oos: BacktestResult, metric: str) -> WalkForwardWindow:
    metrics = dict(oos.metrics)
    efficiency = _ratio(float(metrics[metric]), float(window.in_sample_metrics[metric]))
    return replace(window, out_of_sample_metrics=metrics, efficiency=efficiency)


def _assemble(
    optimizer: StrategyOptimizer,
    strategy: Strategy,
    metric: str,
    runs: Sequence[tuple[WalkForwardWindow, BacktestResult]],
    cash: float,
    scheme: WindowScheme,
    notes: Sequence[str],
) -> WalkForwardResult:
    """Stitch the OOS runs into one curve and one trade list, and measure them."""
    equity = pd.concat([oos.equity_curve for _, oos in runs])
    offsets = np.cumsum([0] + [len(oos.equity_curve) for _, oos in runs])
    parts = [
        oos.trades.assign(
            window=window.number,
            entry_bar=oos.trades["entry_bar"] + offset,
            exit_bar=oos.trades["exit_bar"] + offset,
        )
        for (window, oos), offset in zip(runs, offsets.tolist(), strict=False)
    ]
    # Empty parts are left out: pandas warns about their dtypes in a concatenation.
    trades = pd.concat([part for part in parts if len(part)] or parts[:1], ignore_index=True)
    exposed = sum(
        round(float(oos.metrics["exposure_pct"]) * len(oos.equity_curve) / 100.0) for _, oos in runs
    )
    metrics = compute_metrics(
        equity.to_numpy(), pd.DatetimeIndex(equity.index).as_unit("ns").asi8,
        np.concatenate([oos.bars["close"].to_numpy() for _, oos in runs]),
        ClosedTrades(trades["pnl"].to_numpy(), trades["pnl_pct"].to_numpy(),
        (trades["exit_bar"] - trades["entry_bar"]).to_numpy()),
        exposed_bars=exposed, total_fees=sum(float(oos.metrics["total_fees"]) for _, oos in runs),
        initial_cash=cash,
    )  # fmt: skip
    windows = tuple(window for window, _ in runs)
    in_sample = {
        key: float(np.mean([float(w.in_sample_metrics[key]) for w in windows]))
        for key in METRIC_KEYS
    }
    return WalkForwardResult(
        strategy=strategy.name,
        metric=metric,
        minimise=is_minimised(metric),
        anchored=scheme.anchored,
        in_sample=str(scheme.in_sample),
        out_of_sample=str(scheme.out_of_sample),
        windows=windows,
        equity=equity.rename("equity"),
        trades=trades,
        out_of_sample_metrics=metrics,
        in_sample_metrics=in_sample,
        efficiency=_ratio(float(metrics[metric]), in_sample[metric]),
        recommendation=recommend(metrics, optimizer.engine.thresholds),
        notes=tuple(notes),
    )


def _best_row_metrics(result: OptimizationResult) -> dict[str, float | int]:
    """Every metric of the winning combination (first of the ranked rows)."""
    row = result.ranked().iloc[0]
    return {key: row[key].item() if hasattr(row[key], "item") else row[key] for key in METRIC_KEYS}


def _ratio(out_of_sample: float, in_sample: float) -> float:
    """OOS / IS; NaN unless the IS value is positive and both are finite."""
    if not (math.isfinite(in_sample) and in_sample > 0 and math.isfinite(out_of_sample)):
        return math.nan
    return out_of_sample / in_sample


def _json(value: object) -> object:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_dict(values: Mapping[str, object]) -> dict[str, object]:
    return {key: _json(value) for key, value in values.items()}
