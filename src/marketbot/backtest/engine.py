"""The backtest front end: load bars, compute signals, run the kernel, measure, judge, save.

``BacktestingEngine(...).run_backtest(strategy, ...)`` is the seed's public API. It backtests
stored bars of a symbol or an OHLCV frame passed as ``data`` (as backtesting.py users expect).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from marketbot.backtest.config import BacktestConfig, ExitRules, SizingMode, parse_duration_seconds
from marketbot.backtest.kernel import KernelSignals, simulate
from marketbot.backtest.result import BacktestResult, trades_frame
from marketbot.core.bars import bar_times, normalize_ohlcv
from marketbot.core.errors import ConfigError, DataError
from marketbot.core.metrics import compute_metrics
from marketbot.core.recommendation import RecommendationThresholds, recommend
from marketbot.core.risk_limits import RiskLimits
from marketbot.core.timeframes import find_gaps, infer_bar_seconds, seconds_to_timeframe
from marketbot.risk.limits_nb import DENIAL_NAMES
from marketbot.strategies.base import Signals, Strategy
from marketbot.strategies.loader import StrategySpec, load_strategy

if TYPE_CHECKING:
    from marketbot.store.database import Database

DateLike = str | date | datetime | pd.Timestamp | None


@dataclass(frozen=True, slots=True)
class PreparedSignals:
    """A strategy's signals for a frame, with the warm-up masked, ready for the kernel."""

    kernel: KernelSignals
    tag_names: tuple[str, ...]
    allow_short: bool


class BacktestingEngine:
    """Runs backtests of strategies on stored or given price data.

    Args:
        database: Where stored bars come from and runs are saved. When None, one is opened
            from the settings (``MARKETBOT_DATABASE_URL`` / ``MARKETBOT_DATA_DIR``) the first
            time it is needed; a run on ``data=`` without ``save=True`` never opens it.
        thresholds: Recommendation thresholds (docs/metrics.md has the defaults).
    """

    def __init__(
        self,
        database: Database | None = None,
        *,
        thresholds: RecommendationThresholds | None = None,
    ) -> None:
        self._database = database
        self.thresholds = thresholds or RecommendationThresholds()

    @property
    def database(self) -> Database:
        """The store, opened (and migrated) on first use."""
        if self._database is None:
            from marketbot.config import load_settings
            from marketbot.store.database import Database

            self._database = Database.from_settings(load_settings())
            self._database.migrate()
        return self._database

    def run_backtest(
        self,
        strategy: StrategySpec,
        start_date: DateLike = None,
        end_date: DateLike = None,
        *,
        symbol: str | None = None,
        data: pd.DataFrame | None = None,
        params: Mapping[str, object] | None = None,
        fee: float = 0.002,
        slippage: float = 0.001,
        cash: float = 10_000,
        timeframe: str | None = None,
        source: str | None = None,
        sizing: SizingMode = "all_in",
        size: float | None = None,
        allow_short: bool | None = None,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        trailing_stop: float | None = None,
        trailing_activation: float | None = None,
        max_hold: float | str | timedelta | None = None,
        risk: RiskLimits | None = None,
        save: bool | None = None,
    ) -> BacktestResult:
        """Backtest ``strategy`` on stored bars of ``symbol`` or on the frame ``data``.

        Args:
            strategy: A built-in name, a Strategy class or instance, or ``file.py:Class``.
            start_date: First bar to trade (inclusive, UTC); earlier bars feed the warm-up.
            end_date: Last bar to trade (inclusive, UTC).
            symbol: Stored series to use (e.g. ``bitcoin``); exactly one of symbol and data.
            data: OHLCV frame (any column capitalisation; DatetimeIndex or timestamp column).
            params: Strategy parameters; the rest take their defaults.
            fee: Fee per fill as a fraction of notional.
            slippage: Adverse price move per market fill, as a fraction.
            cash: Starting cash in quote currency.
            timeframe: Which stored timeframe of ``symbol`` (default: 1d, else the only one).
            source: Which stored source of ``symbol``, when several have it.
            sizing: ``all_in``, ``fraction`` or ``fixed_cash``.
            size: The fraction or cash amount of the sizing mode.
            allow_short: Take short entries (default: when the strategy emits them).
            stop_loss: Stop-loss fraction (off by default).
            take_profit: Take-profit fraction (off by default).
            trailing_stop: Trailing-stop fraction (off by default).
            trailing_activation: Favourable move that arms the trailing stop.
            max_hold: Longest hold: seconds, a timedelta, or text such as ``24h``.
            risk: Hard risk limits and circuit breaker, applied as the live bot applies them
                (off by default in a backtest).
            save: Store the run; default: stored-data runs are saved, ``data=`` runs are not.

        Raises:
            ConfigError: bad settings or parameters, or start after end.
            DataError: no usable bars.
            StrategyError: the strategy is unknown or failed.
        """
        config = BacktestConfig(
            fee_rate=fee,
            slippage_rate=slippage,
            initial_cash=cash,
            sizing=sizing,
            size=size,
            allow_short=allow_short,
            exits=ExitRules(
                stop_loss=stop_loss,
                take_profit=take_profit,
                trailing_stop=trailing_stop,
                trailing_activation=trailing_activation,
                max_hold_seconds=parse_duration_seconds(max_hold, name="max_hold"),
            ),
            risk=risk,
        )
        instance = load_strategy(strategy)
        resolved = instance.resolve_params(params)
        start, end = _parse_range(start_date, end_date)
        if (symbol is None) == (data is None):
            raise ConfigError("give exactly one of symbol= (stored data) or data= (a frame)")
        if symbol is not None:
            source, timeframe, frame = self._load_stored(
                symbol, timeframe=timeframe, source=source, end=end
            )
            label = symbol
        else:
            frame = normalize_ohlcv(data, where="data")  # type: ignore[arg-type]
            label = "data"
        result = self.backtest_frame(
            instance, frame, resolved, config, start=start, end=end, symbol=label
        )
        if save if save is not None else data is None:
            self._save(result, timeframe=timeframe, source=source)
        return result

    def backtest_frame(
        self,
        strategy: Strategy,
        frame: pd.DataFrame,
        params: dict[str, Any],
        config: BacktestConfig,
        *,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        symbol: str = "data",
    ) -> BacktestResult:
        """Backtest a validated frame with validated parameters (no I/O).

        Signals are computed on the whole frame up to ``end``, so bars before ``start`` serve
        as warm-up; trading and metrics cover ``start``..``end`` only.
        """
        if end is not None:
            frame = frame.loc[:end]
        first = 0 if start is None else int(frame.index.searchsorted(start, side="left"))
        if first >= len(frame):
            raise DataError(f"{symbol}: no bars in the requested date range")
        prepared = prepare_signals(strategy, frame, params, config)
        window = frame.iloc[first:] if first else frame
        signals = _slice_signals(prepared.kernel, first) if first else prepared.kernel
        index = bar_times(window)
        times_ns = index.asi8
        close = window["close"].to_numpy()
        output = simulate(
            window["open"].to_numpy(),
            window["high"].to_numpy(),
            window["low"].to_numpy(),
            close,
            times_ns,
            signals,
            config.kernel_settings(allow_short=prepared.allow_short),
        )
        count = output.num_trades
        metrics = compute_metrics(
            output.equity,
            times_ns,
            close,
            output.pnl[:count],
            output.pnl_pct[:count],
            output.exit_bar[:count] - output.entry_bar[:count],
            exposed_bars=output.exposed_bars,
            total_fees=output.total_fees,
            initial_cash=config.initial_cash,
        )
        return BacktestResult(
            strategy=strategy.name,
            symbol=symbol,
            params=dict(params),
            settings=config.to_dict(),
            metrics=metrics,
            recommendation=recommend(metrics, self.thresholds),
            trades=trades_frame(output, index, prepared.tag_names),
            equity_curve=pd.Series(output.equity, index=index, name="equity", copy=False),
            bars=window,
            notes=_data_notes(window)
            + _risk_notes(output.entry_denials, output.breaker_trips, index),
        )

    def _load_stored(
        self, symbol: str, *, timeframe: str | None, source: str | None, end: pd.Timestamp | None
    ) -> tuple[str, str, pd.DataFrame]:
        """The stored series' source and timeframe, and its bars up to ``end``."""
        from marketbot.store.prices import PriceRepository

        prices = PriceRepository(self.database)
        source, timeframe = prices.resolve_series(symbol, timeframe=timeframe, source=source)
        frame = prices.load_bars(symbol, timeframe=timeframe, source=source, end=end)
        if frame.empty:
            raise DataError(f"{symbol}: no stored {timeframe} bars up to {end}")
        return source, timeframe, frame

    def _save(self, result: BacktestResult, *, timeframe: str | None, source: str | None) -> None:
        from marketbot.store.runs import BacktestRunRepository, record_from_result

        BacktestRunRepository(self.database).save(
            record_from_result(result, timeframe=timeframe, source=source)
        )


def prepare_signals(
    strategy: Strategy, frame: pd.DataFrame, params: Mapping[str, Any], config: BacktestConfig
) -> PreparedSignals:
    """Compute the strategy's signals and shape them for the kernel, warm-up masked."""
    raw = strategy.compute_signals(frame, params)
    length = len(frame)
    warmup = max(0, min(int(strategy.warmup_bars(params)), length))
    has_short = raw.entries_short is not None
    allow_short = has_short if config.allow_short is None else config.allow_short and has_short
    kernel = KernelSignals(
        entries_long=_bool_array(raw.entries_long, warmup),
        exits_long=_bool_array(raw.exits_long, warmup),
        entries_short=_bool_array(raw.entries_short, warmup, length),
        exits_short=_bool_array(raw.exits_short, warmup, length),
        size_fraction=_float_array(raw.size_fraction, length),
        tag=_tag_array(raw, length),
    )
    return PreparedSignals(kernel=kernel, tag_names=raw.tag_names, allow_short=allow_short)


def _bool_array(values: np.ndarray | None, warmup: int, length: int = 0) -> np.ndarray:
    if values is None:
        return np.zeros(length, dtype=np.bool_)
    array = np.array(values, dtype=np.bool_, copy=True)
    array[:warmup] = False
    return array


def _float_array(values: np.ndarray | None, length: int) -> np.ndarray:
    if values is None:
        return np.full(length, np.nan)
    return np.ascontiguousarray(values, dtype=np.float64)


def _tag_array(signals: Signals, length: int) -> np.ndarray:
    if signals.tag is None:
        return np.full(length, -1, dtype=np.int64)
    return np.ascontiguousarray(signals.tag, dtype=np.int64)


def _slice_signals(signals: KernelSignals, first: int) -> KernelSignals:
    return KernelSignals(*(array[first:] for array in signals))


def _parse_range(
    start_date: DateLike, end_date: DateLike
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    start = _parse_date(start_date, "start_date")
    end = _parse_date(end_date, "end_date")
    if end is not None and _is_date_only(end_date):
        # A bare date as the end means the whole of that day.
        end = end + pd.Timedelta(days=1) - pd.Timedelta(1, unit="ns")
    if start is not None and end is not None and start > end:
        raise ConfigError(f"start date {start.date()} is after end date {end.date()}")
    return start, end


def _parse_date(value: DateLike, name: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{name}={value!r}: not a date (use YYYY-MM-DD)") from exc
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _risk_notes(
    entry_denials: np.ndarray, breaker_trips: np.ndarray, index: pd.DatetimeIndex
) -> tuple[str, ...]:
    notes = [
        f"circuit breaker tripped ({DENIAL_NAMES[int(breaker_trips[bar])]}) at the close of "
        f"the bar opening {index[bar].isoformat()}"
        for bar in np.flatnonzero(breaker_trips).tolist()[:5]
    ]
    codes, counts = np.unique(entry_denials[entry_denials > 0], return_counts=True)
    if len(codes):
        parts = ", ".join(
            f"{DENIAL_NAMES[int(code)]}: {int(count)}"
            for code, count in zip(codes, counts, strict=True)
        )
        notes.append(f"risk limits refused {int(counts.sum())} entries ({parts})")
    return tuple(notes)


def _is_date_only(value: DateLike) -> bool:
    if isinstance(value, str):
        return len(value.strip()) == 10
    return isinstance(value, date) and not isinstance(value, datetime)


def _data_notes(frame: pd.DataFrame) -> tuple[str, ...]:
    index = bar_times(frame)
    bar_seconds = infer_bar_seconds(index.asi8)
    gaps = find_gaps(index, bar_seconds)
    if not gaps:
        return ()
    missing = sum(gap.missing_bars for gap in gaps)
    return (
        f"{len(gaps)} gap(s) in the {seconds_to_timeframe(bar_seconds)} bars, "
        f"{missing} bar(s) missing; the first after {gaps[0].after.isoformat()}",
    )
