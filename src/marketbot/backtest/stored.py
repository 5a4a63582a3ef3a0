"""A saved backtest run brought back as a :class:`BacktestResult`, for its report and details.

The store keeps a run's settings, metrics, verdict, equity curve and trades, but not its
bars: prices are stored once, as series, and a run on a CSV file keeps only the file's name
and sha256. :func:`stored_bars` reloads the bars of the run's period from the price store;
:func:`file_bars` reads a run's CSV file again and checks it is the same content. Both refuse,
in one line, when the bars no longer match the run: a report whose price chart and buy and hold
curve came from other bars would mislead.

What a saved run does not keep comes back empty: the data notes, why a run made no trade, and
a portfolio's exposure curve. The warnings are computed again from the metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from marketbot.backtest.portfolio import per_symbol_breakdown
from marketbot.backtest.result import (
    EXTRA_TRADE_COLUMNS,
    TRADE_COLUMNS,
    BacktestResult,
    result_warnings,
)
from marketbot.core.errors import DataError
from marketbot.core.recommendation import Recommendation
from marketbot.sources.csv_file import read_ohlcv_csv
from marketbot.store.prices import PriceRepository
from marketbot.store.runs import UNSPECIFIED_SOURCE, BacktestRecord, file_sha256

__all__ = ["file_bars", "is_portfolio", "result_from_record", "run_symbols", "stored_bars"]

_OHLCV: Final = ("open", "high", "low", "close", "volume")
_TIME_COLUMNS: Final = ("entry_time", "exit_time")
_TEXT_COLUMNS: Final = ("exit_reason", "direction", "tag", "symbol")
# What record_from_result writes for a run on a frame that has no symbol of its own.
_FRAME_SYMBOL: Final = "data"
_SHORTENED_MARK: Final = "…"


def is_portfolio(record: BacktestRecord) -> bool:
    """Whether the run traded several symbols with one account (its settings have rules)."""
    return isinstance(record.settings.get("portfolio"), Mapping)


def run_symbols(record: BacktestRecord) -> tuple[str, ...]:
    """The symbols a run traded: the one symbol, or every symbol of a portfolio.

    A portfolio of very many symbols is saved with a shortened label (``a,b,… (+98)``); then
    the named ones come first and the others only as far as the trades name them.
    """
    if not is_portfolio(record):
        return (record.symbol,)
    names = [name for name in record.symbol.split(",") if _SHORTENED_MARK not in name]
    traded = (str(trade["symbol"]) for trade in record.trades if "symbol" in trade)
    return tuple(dict.fromkeys([*names, *traded]))


def result_from_record(
    record: BacktestRecord,
    bars: pd.DataFrame | None = None,
    *,
    prices: Mapping[str, pd.DataFrame] | None = None,
) -> BacktestResult:
    """The :class:`BacktestResult` of a saved run.

    Args:
        record: The saved run (``BacktestRunRepository.get(run_id).record``).
        bars: The bars the run traded on (a portfolio: the first symbol's); None leaves them
            empty, which is enough for everything but the report's price chart.
        prices: A portfolio run: each symbol's bars, for the report's price chart.

    Raises:
        DataError: the record's verdict is not one marketbot knows.
    """
    try:
        recommendation = Recommendation(record.recommendation)
    except ValueError:
        raise DataError(
            f"saved run: unknown verdict {record.recommendation!r} "
            f"(known: {', '.join(Recommendation)})"
        ) from None
    metrics: dict[str, float | int] = dict(record.metrics)
    trades = _trades_frame(record.trades)
    portfolio = is_portfolio(record)
    symbols = run_symbols(record) if portfolio else ()
    cash = float(record.settings.get("initial_cash", 0.0) or 0.0)
    return BacktestResult(
        strategy=record.strategy,
        symbol=record.symbol,
        params=dict(record.params),
        settings=dict(record.settings),
        metrics=metrics,
        recommendation=recommendation,
        trades=trades,
        equity_curve=record.equity_curve,
        bars=_empty_bars() if bars is None else bars,
        symbols=symbols,
        per_symbol=per_symbol_breakdown(trades, symbols, cash) if portfolio and cash else None,
        prices=prices if portfolio else None,
        warnings=result_warnings(metrics),
    )


def stored_bars(
    record: BacktestRecord, repository: PriceRepository, *, run_id: int
) -> dict[str, pd.DataFrame]:
    """Each symbol's stored bars over the run's period, as they were when it ran.

    Args:
        record: The saved run.
        repository: The price store.
        run_id: The run's id, for the messages.

    Returns:
        Symbol to bars, in the run's symbol order.

    Raises:
        DataError: the run was on a file or a frame (its bars were never stored), or its
            series is no longer stored, or no longer has a bar at every time of the run.
    """
    if record.data_file is not None:
        raise DataError(
            f"run {run_id} was on the data file {record.data_file}, whose bars are not stored"
        )
    if record.symbol == _FRAME_SYMBOL and record.source == UNSPECIFIED_SOURCE:
        raise DataError(
            f"run {run_id} was on a data frame given in Python: its bars are not stored"
        )
    times = pd.DatetimeIndex(record.equity_curve.index)
    start, end = (times[0], times[-1]) if len(times) else (record.start, record.end)
    source = None if record.source == UNSPECIFIED_SOURCE else record.source
    frames: dict[str, pd.DataFrame] = {}
    for symbol in run_symbols(record):
        try:
            frames[symbol] = repository.load_bars(
                symbol, timeframe=record.timeframe, source=source, start=start, end=end
            )
        except DataError as exc:
            raise DataError(f"run {run_id}: its bars are no longer stored ({exc})") from None
    if not is_portfolio(record):
        # A portfolio's time axis is the union of its symbols': no one series covers it.
        _check_covers(frames[record.symbol], times, f"run {run_id}: the stored {record.symbol}")
    return frames


def file_bars(record: BacktestRecord, path: str | Path, *, run_id: int) -> pd.DataFrame:
    """The bars of a run on a CSV file, read again from ``path``.

    Raises:
        DataError: the run was not on a file, the file's content differs from what the run
            traded on (another sha256), or the file cannot be read.
    """
    file = Path(path)
    if record.data_file is None or record.data_sha256 is None:
        raise DataError(
            f"run {run_id} was on stored bars ({record.symbol}), not on a data file: "
            "leave out the file"
        )
    digest = file_sha256(file)
    if digest != record.data_sha256:
        raise DataError(
            f"{file.name}: not the file run {run_id} traded on (its sha256 is "
            f"{digest[:12]}…, the run's file {record.data_file} had {record.data_sha256[:12]}…)"
        )
    frame = read_ohlcv_csv(file)
    _check_covers(frame, pd.DatetimeIndex(record.equity_curve.index), f"{file.name}")
    return frame


def _check_covers(frame: pd.DataFrame, times: pd.DatetimeIndex, what: str) -> None:
    missing = int((~times.isin(frame.index)).sum())
    if missing:
        raise DataError(
            f"{what} bars lack {missing:,} of the run's {len(times):,} bar times "
            f"({times[0]:%Y-%m-%d} .. {times[-1]:%Y-%m-%d}): they changed since the run"
        )


def _trades_frame(trades: Any) -> pd.DataFrame:
    """The saved trades (mappings, times as ISO text) as ``BacktestResult.trades``."""
    frame = pd.DataFrame([dict(trade) for trade in trades])
    for column in (*TRADE_COLUMNS, *EXTRA_TRADE_COLUMNS):
        if column not in frame:
            frame[column] = None if column in _TEXT_COLUMNS else np.nan
    for column in _TIME_COLUMNS:
        # Nanoseconds, as every bar time in marketbot, so trades line up with the bars.
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601").dt.as_unit("ns")
    return frame


def _empty_bars() -> pd.DataFrame:
    index = pd.DatetimeIndex([], tz="UTC", name="timestamp")
    return pd.DataFrame({column: np.empty(0) for column in _OHLCV}, index=index)
