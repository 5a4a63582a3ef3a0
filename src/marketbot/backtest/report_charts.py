"""The chart data of the backtest report: decimated curves and trade markers, ready for JSON.

A report must stay small and fast on a 1,000,000-bar run, so the curves are decimated before
they reach the page: the bars are split into equal buckets and each curve keeps, per bucket,
its lowest and its highest point (plus the very first and last point). Every chart uses the
same kept bars, so the charts share one time axis (zoom and crosshair stay in step), and each
curve keeps its global extremes exactly: the equity peak, the deepest drawdown and the price
range are drawn where they happened. Runs of up to ``MAX_CHART_POINTS`` bars are not decimated.

A portfolio run adds a gross-exposure curve and the closes of up to ``MAX_CHARTED_SYMBOLS``
symbols (those with the most trades) for the price chart's symbol selector. All of them share
the one time axis, so the points per curve shrink as symbols are added: the page gets at most
``MAX_PORTFOLIO_CHART_VALUES`` numbers of curves, and every curve still keeps its extremes.
Trade markers of a portfolio are sent compactly (a time and an index into ``marker_styles``).

Everything here is pure numpy/pandas; :mod:`marketbot.backtest.report` turns the result into
HTML and inlines this data for the vendored TradingView Lightweight Charts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from marketbot.backtest.portfolio import equal_weight_benchmark
from marketbot.core.bars import parse_timestamps
from marketbot.core.errors import DataError

if TYPE_CHECKING:
    from marketbot.backtest.result import BacktestResult

__all__ = [
    "CANDLE_MAX_BARS",
    "EXIT_REASON_COLORS",
    "MAX_CHARTED_SYMBOLS",
    "MAX_CHART_POINTS",
    "MAX_MARKER_TRADES",
    "MAX_PORTFOLIO_CHART_VALUES",
    "MAX_PORTFOLIO_MARKER_TRADES",
    "build_chart_data",
    "charted_symbols",
    "drawdown_pct",
    "min_max_indices",
    "portfolio_closes",
]

MAX_CHART_POINTS: Final = 6000
"""Most points one chart series gets; longer runs are decimated down to this."""
CANDLE_MAX_BARS: Final = 1000
"""Runs with at most this many bars draw candles; longer ones draw the close as a line."""
MAX_MARKER_TRADES: Final = 2000
"""Most trades marked on the price chart; beyond this the markers would be a smear."""
MAX_CHARTED_SYMBOLS: Final = 20
"""Most symbols of a portfolio the price chart offers: those with the most trades."""
MAX_PORTFOLIO_CHART_VALUES: Final = 50_000
"""Most numbers a portfolio report's curves hold together (times included)."""
MAX_PORTFOLIO_MARKER_TRADES: Final = 10_000
"""Most trades marked over all charted symbols of a portfolio."""
_NANOSECONDS_PER_SECOND: Final = 1_000_000_000
_LOG_SCALE_MIN_RATIO: Final = 10.0

LONG_ENTRY_COLOR: Final = "#16a34a"
SHORT_ENTRY_COLOR: Final = "#e11d48"
EXIT_REASON_COLORS: Final = {
    "signal": "#2563eb",
    "stop_loss": "#dc2626",
    "take_profit": "#059669",
    "trailing_stop": "#d97706",
    "max_hold": "#7c3aed",
    "end_of_data": "#64748b",
}
"""Marker colour of each exit reason (other reasons get the end_of_data slate)."""
_OTHER_EXIT_COLOR: Final = "#64748b"


def min_max_indices(values: npt.ArrayLike, buckets: int) -> npt.NDArray[np.int64]:
    """The positions to keep when drawing ``values`` with about ``2 * buckets`` points.

    The values are cut into ``buckets`` runs of equal length; from each run the position of
    its lowest and of its highest value are kept, and so are the first and the last position.
    The global minimum and maximum therefore always survive. NaNs are never chosen as an
    extreme unless a whole run is NaN.

    Args:
        values: A 1-D series of numbers.
        buckets: How many runs to cut the series into (at least 1).

    Returns:
        Sorted, unique positions: all of them when there are at most ``2 * buckets`` values,
        else at most ``2 * buckets + 2``.

    Raises:
        ValueError: ``buckets`` is below 1 or ``values`` is not 1-D.
    """
    if buckets < 1:
        raise ValueError(f"buckets={buckets}: must be at least 1")
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {array.shape}")
    count = array.size
    if count <= 2 * buckets:
        return np.arange(count, dtype=np.int64)
    size = -(-count // buckets)
    missing = np.isnan(array)
    low = np.where(missing, np.inf, array)
    high = np.where(missing, -np.inf, array)
    padding = size * -(-count // size) - count
    # Pad the last run with values that never win, so every run is one row of a matrix.
    low = np.concatenate([low, np.full(padding, np.inf)]).reshape(-1, size)
    high = np.concatenate([high, np.full(padding, -np.inf)]).reshape(-1, size)
    offsets = np.arange(low.shape[0], dtype=np.int64) * size
    kept = np.concatenate(
        [
            np.array([0, count - 1], dtype=np.int64),
            offsets + low.argmin(axis=1),
            offsets + high.argmax(axis=1),
        ]
    )
    return np.unique(np.minimum(kept, count - 1))


def drawdown_pct(equity: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Percent below the running peak at each bar, as a negative number (0 at a new peak).

    Bars whose running peak is at or below 0 count as 0 %, as in ``max_drawdown_pct``
    (docs/metrics.md), whose value is the magnitude of this curve's minimum.
    """
    values = np.asarray(equity, dtype=np.float64)
    if values.size == 0:
        return np.zeros(0)
    peak = np.maximum.accumulate(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        below = np.where(peak > 0.0, (values / peak - 1.0) * 100.0, 0.0)
    return np.minimum(below, 0.0)


def build_chart_data(
    result: BacktestResult, prices: Mapping[str, pd.DataFrame] | None = None
) -> dict[str, Any]:
    """The data of the report's charts, as JSON-ready lists.

    Args:
        result: A finished backtest.
        prices: Portfolio runs: bars per symbol (any frame with a ``close`` column and a
            DatetimeIndex or ``timestamp`` column), for the price chart and the equal-weight
            buy and hold curve. Without it only the first symbol (``result.bars``) is charted.
            Ignored for a single-symbol run.

    Returns:
        ``time`` (UNIX seconds of the kept bars), ``equity``, ``buy_hold``, ``drawdown``
        (percent, <= 0), ``price`` (``kind`` ``candles`` with open/high/low/close, or ``line``
        with close), ``markers`` (sorted by time), ``log_equity``/``log_price`` (whether a log
        scale suits the curve), ``intraday``, and ``bars``/``points`` (before/after decimation).
        A portfolio run has ``exposure`` (percent of equity), ``exposure_cap`` (percent or
        None), ``symbols`` (per charted symbol: ``name``, ``close``, ``trades``, ``marked``,
        ``marker_time``, ``marker_style``, ``log_price``) and ``marker_styles`` instead of
        ``price``, ``markers`` and ``log_price``.
    """
    if result.symbols:
        return _portfolio_chart_data(result, prices)
    equity = result.equity_curve.to_numpy(dtype=np.float64)
    count = equity.size
    times = unix_seconds(pd.DatetimeIndex(result.equity_curve.index))
    bars = result.bars.reindex(result.equity_curve.index)
    close = bars["close"].to_numpy(dtype=np.float64) if "close" in bars else np.full(count, np.nan)
    drawdown = drawdown_pct(equity)
    buy_hold = _buy_and_hold(close, _initial_cash(result, equity))
    keep = _shared_indices((equity, drawdown, close), MAX_CHART_POINTS)
    kept_times = times[keep]
    candles = count <= CANDLE_MAX_BARS and {"open", "high", "low"} <= set(bars.columns)
    price: dict[str, Any] = {
        "kind": "candles" if candles else "line",
        "close": _numbers(close[keep]),
    }
    if candles:
        for column in ("open", "high", "low"):
            price[column] = _numbers(bars[column].to_numpy(dtype=np.float64)[keep])
    markers = (
        trade_markers(result.trades, kept_times)
        if 0 < len(result.trades) <= MAX_MARKER_TRADES
        else []
    )
    return {
        "time": [int(value) for value in kept_times],
        "equity": _numbers(equity[keep]),
        "buy_hold": _numbers(buy_hold[keep]),
        "drawdown": _numbers(drawdown[keep], digits=5),
        "price": price,
        "markers": markers,
        "log_equity": _suits_log_scale(equity, buy_hold),
        "log_price": _suits_log_scale(close),
        "intraday": bool(count > 1 and np.any(times % 86_400 != 0)),
        "bars": count,
        "points": int(keep.size),
    }


def trade_markers(trades: pd.DataFrame, kept_times: npt.NDArray[np.int64]) -> list[dict[str, Any]]:
    """Entry and exit markers of ``trades``, each moved to the kept bar at or before its time.

    Entries are arrows (up and green for long, down and red for short); exits are circles in
    the colour of their exit reason (:data:`EXIT_REASON_COLORS`). Sorted by time, as the
    chart library requires.
    """
    if len(trades) == 0 or kept_times.size == 0:
        return []
    entry = _snap(unix_seconds(pd.DatetimeIndex(trades["entry_time"])), kept_times)
    exit_ = _snap(unix_seconds(pd.DatetimeIndex(trades["exit_time"])), kept_times)
    short = (
        trades["direction"].astype(str).to_numpy() == "short"
        if "direction" in trades
        else np.zeros(len(trades), dtype=bool)
    )
    reasons = trades["exit_reason"].astype(str).to_numpy()
    markers: list[tuple[int, int, dict[str, Any]]] = []
    for number, (entry_time, exit_time, is_short, reason) in enumerate(
        zip(entry.tolist(), exit_.tolist(), short.tolist(), reasons.tolist(), strict=True)
    ):
        markers.append(
            (
                entry_time,
                2 * number,
                {
                    "time": entry_time,
                    "position": "aboveBar" if is_short else "belowBar",
                    "color": SHORT_ENTRY_COLOR if is_short else LONG_ENTRY_COLOR,
                    "shape": "arrowDown" if is_short else "arrowUp",
                },
            )
        )
        markers.append(
            (
                exit_time,
                2 * number + 1,
                {
                    "time": exit_time,
                    "position": "belowBar" if is_short else "aboveBar",
                    "color": EXIT_REASON_COLORS.get(reason, _OTHER_EXIT_COLOR),
                    "shape": "circle",
                },
            )
        )
    markers.sort(key=lambda item: (item[0], item[1]))
    return [marker for _, _, marker in markers]


def portfolio_closes(
    result: BacktestResult, prices: Mapping[str, pd.DataFrame] | None
) -> dict[str, npt.NDArray[np.float64]]:
    """Each symbol's close on the run's time axis (NaN where it has no bar), in symbol order.

    Symbols come from ``prices`` when it has them; the first symbol falls back on
    ``result.bars``. Symbols of ``prices`` that are not in the run are ignored.

    Raises:
        DataError: a frame of ``prices`` has no ``close`` column, unparseable or duplicate
            times.
    """
    index = pd.DatetimeIndex(result.equity_curve.index)
    available = prices or {}
    closes: dict[str, npt.NDArray[np.float64]] = {}
    for symbol in result.symbols:
        if symbol in available:
            closes[symbol] = _close_on(available[symbol], index, symbol)
        elif symbol == result.symbols[0] and "close" in result.bars:
            closes[symbol] = result.bars["close"].reindex(index).to_numpy(dtype=np.float64)
    return closes


def charted_symbols(result: BacktestResult, available: Sequence[str]) -> list[str]:
    """The portfolio symbols the price chart offers: most trades first, ties in symbol order.

    At most :data:`MAX_CHARTED_SYMBOLS`, and only symbols in ``available`` (those with
    prices).
    """
    counts = _trade_counts(result.trades)
    order = {symbol: position for position, symbol in enumerate(result.symbols)}
    offered = set(available)
    eligible = [symbol for symbol in result.symbols if symbol in offered]
    eligible.sort(key=lambda symbol: (-counts.get(symbol, 0), order[symbol]))
    return eligible[:MAX_CHARTED_SYMBOLS]


def _portfolio_chart_data(
    result: BacktestResult, prices: Mapping[str, pd.DataFrame] | None
) -> dict[str, Any]:
    equity = result.equity_curve.to_numpy(dtype=np.float64)
    times = unix_seconds(pd.DatetimeIndex(result.equity_curve.index))
    closes = portfolio_closes(result, prices)
    charted = charted_symbols(result, list(closes))
    benchmark = _equal_weight_buy_and_hold(result, closes, _initial_cash(result, equity))
    drawdown = drawdown_pct(equity)
    exposure = _exposure_pct(result, equity)
    curves = [equity, drawdown, exposure, benchmark, *(closes[symbol] for symbol in charted)]
    drawn = [curve for curve in curves if np.isfinite(curve).any()] or [equity]
    # Every curve is sent at every kept bar: fewer bars per curve when more symbols are charted.
    keep = _shared_indices(
        drawn, min(MAX_CHART_POINTS, MAX_PORTFOLIO_CHART_VALUES // (len(curves) + 1))
    )
    symbols, marker_styles = _symbol_series(
        result.trades, {s: closes[s] for s in charted}, keep, times
    )
    return {
        "time": [int(value) for value in times[keep]],
        "equity": _numbers(equity[keep]),
        "buy_hold": _numbers(benchmark[keep]),
        "drawdown": _numbers(drawdown[keep], digits=5),
        "exposure": _numbers(exposure[keep], digits=4),
        "exposure_cap": _exposure_cap_pct(result.settings),
        "symbols": symbols,
        "marker_styles": marker_styles,
        "log_equity": _suits_log_scale(equity, benchmark),
        "intraday": bool(equity.size > 1 and np.any(times % 86_400 != 0)),
        "bars": int(equity.size),
        "points": int(keep.size),
    }


def _symbol_series(
    trades: pd.DataFrame,
    closes: Mapping[str, npt.NDArray[np.float64]],
    keep: npt.NDArray[np.int64],
    times: npt.NDArray[np.int64],
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Each charted symbol's kept closes and compact markers, and the marker styles they use.

    A symbol's trades are marked unless it has more than :data:`MAX_MARKER_TRADES` or marking
    them would pass :data:`MAX_PORTFOLIO_MARKER_TRADES` for the page (symbols with the most
    trades come first, so they are marked first).
    """
    kept_times = times[keep]
    names = (
        trades["symbol"].astype(str) if "symbol" in trades else pd.Series("", index=trades.index)
    )
    styles: dict[tuple[str, str, str], int] = {}
    budget = MAX_PORTFOLIO_MARKER_TRADES
    series = []
    for symbol, close in closes.items():
        mine = trades[names == symbol]
        marked = 0 < len(mine) <= min(MAX_MARKER_TRADES, budget)
        budget -= len(mine) if marked else 0
        markers = trade_markers(mine, kept_times) if marked else []
        series.append(
            {
                "name": symbol,
                "close": _numbers(close[keep], digits=6),
                "trades": len(mine),
                "marked": marked,
                "marker_time": [marker["time"] for marker in markers],
                "marker_style": [_style_index(styles, marker) for marker in markers],
                "log_price": _suits_log_scale(close),
            }
        )
    table = [{"position": key[0], "color": key[1], "shape": key[2]} for key in styles]
    return series, table


def _close_on(frame: pd.DataFrame, index: pd.DatetimeIndex, symbol: str) -> npt.NDArray[np.float64]:
    where = f"prices[{symbol!r}]"
    columns = {str(column).strip().lower(): column for column in frame.columns}
    if "close" not in columns:
        raise DataError(f"{where}: needs a 'close' column")
    if "timestamp" in columns:
        times = parse_timestamps(frame[columns["timestamp"]], where=where)
    elif isinstance(frame.index, pd.DatetimeIndex):
        times = parse_timestamps(frame.index, where=where)
    else:
        raise DataError(f"{where}: needs a DatetimeIndex or a 'timestamp' column")
    if times.has_duplicates:
        raise DataError(f"{where}: duplicate timestamps")
    close = pd.Series(frame[columns["close"]].to_numpy(dtype=np.float64), index=times)
    return close.reindex(index).to_numpy(dtype=np.float64)


def _trade_counts(trades: pd.DataFrame) -> dict[str, int]:
    if "symbol" not in trades:
        return {}
    counts = trades["symbol"].astype(str).value_counts()
    return {str(symbol): int(count) for symbol, count in counts.items()}


def _equal_weight_buy_and_hold(
    result: BacktestResult, closes: Mapping[str, npt.NDArray[np.float64]], cash: float
) -> npt.NDArray[np.float64]:
    """Cash times the engine's equal-weight benchmark; NaN unless every symbol has prices."""
    count = result.equity_curve.size
    if count == 0 or any(symbol not in closes for symbol in result.symbols):
        return np.full(count, np.nan)
    matrix = np.column_stack([closes[symbol] for symbol in result.symbols])
    return np.asarray(cash * equal_weight_benchmark(matrix), dtype=np.float64)


def _exposure_pct(
    result: BacktestResult, equity: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Gross exposure in percent of equity at each bar (NaN where equity is not positive)."""
    if result.exposure is None:
        return np.full(equity.size, np.nan)
    exposure = result.exposure.to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(equity > 0.0, 100.0 * exposure / equity, np.nan)


def _exposure_cap_pct(settings: Mapping[str, Any]) -> float | None:
    portfolio = settings.get("portfolio")
    cap = portfolio.get("max_exposure") if isinstance(portfolio, Mapping) else None
    if isinstance(cap, int | float) and not isinstance(cap, bool) and math.isfinite(cap):
        return float(cap) * 100.0
    return None


def _style_index(styles: dict[tuple[str, str, str], int], marker: Mapping[str, Any]) -> int:
    key = (str(marker["position"]), str(marker["color"]), str(marker["shape"]))
    return styles.setdefault(key, len(styles))


def unix_seconds(index: pd.DatetimeIndex) -> npt.NDArray[np.int64]:
    """Whole UNIX seconds of a datetime index (naive times are taken as UTC)."""
    if len(index) == 0:
        return np.zeros(0, dtype=np.int64)
    nanoseconds = index.as_unit("ns").asi8
    return np.floor_divide(nanoseconds, _NANOSECONDS_PER_SECOND).astype(np.int64)


def _shared_indices(
    curves: Sequence[npt.NDArray[np.float64]], max_points: int
) -> npt.NDArray[np.int64]:
    """The bars every chart keeps: the union of each curve's per-bucket lowest and highest."""
    count = curves[0].size
    if count <= max_points:
        return np.arange(count, dtype=np.int64)
    # Each curve keeps at most 2 * buckets + 2 positions, so the union stays within max_points.
    buckets = max(1, (max_points - 2 * len(curves)) // (2 * len(curves)))
    kept = np.unique(np.concatenate([min_max_indices(curve, buckets) for curve in curves]))
    return kept.astype(np.int64)


def _snap(times: npt.NDArray[np.int64], kept_times: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    position = np.searchsorted(kept_times, times, side="right") - 1
    return kept_times[np.clip(position, 0, kept_times.size - 1)]


def _initial_cash(result: BacktestResult, equity: npt.NDArray[np.float64]) -> float:
    cash = result.settings.get("initial_cash")
    if isinstance(cash, int | float) and math.isfinite(cash) and cash > 0:
        return float(cash)
    return float(equity[0]) if equity.size else 1.0


def _buy_and_hold(close: npt.NDArray[np.float64], cash: float) -> npt.NDArray[np.float64]:
    """Equity of buying at the first close and holding, so it ends at buy_hold_return_pct."""
    if close.size == 0 or not (math.isfinite(close[0]) and close[0] > 0):
        return np.full(close.size, np.nan)
    return np.asarray(cash * close / close[0], dtype=np.float64)


def _suits_log_scale(*curves: npt.NDArray[np.float64]) -> bool:
    """Whether the curves are all positive and span at least a factor of ten."""
    values = np.concatenate(curves)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return False
    low = float(finite.min())
    return low > 0.0 and float(finite.max()) / low >= _LOG_SCALE_MIN_RATIO


def _numbers(values: npt.NDArray[np.float64], digits: int = 8) -> list[float | None]:
    """Floats rounded to ``digits`` significant digits (keeps the page small); NaN as None."""
    return [
        float(f"{value:.{digits}g}") if math.isfinite(value) else None for value in values.tolist()
    ]
