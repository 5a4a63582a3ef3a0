"""The backtest front end: load bars, compute signals, run the kernel, measure, judge, save.

``BacktestingEngine(...).run_backtest(strategy, ...)`` is the seed's public API. It backtests
stored bars of a symbol or an OHLCV frame passed as ``data`` (as backtesting.py users expect).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Unpack

import numpy as np
import pandas as pd

from marketbot.backtest.config import BacktestConfig
from marketbot.backtest.explain import TradeAttempts, count_entry_signals, no_trade_reason
from marketbot.backtest.kernel import KernelOutput, KernelSignals, simulate
from marketbot.backtest.options import DateLike, RunOptions, build_config, build_rules
from marketbot.backtest.portfolio import (
    PortfolioRules,
    align_portfolio,
    equal_weight_benchmark,
    per_symbol_breakdown,
    portfolio_trades_frame,
    run_aligned,
)
from marketbot.backtest.result import BacktestResult, result_warnings, trades_frame
from marketbot.backtest.signals import prepare_signals
from marketbot.core.bar_panel import normalize_frames
from marketbot.core.bars import bar_times, normalize_ohlcv
from marketbot.core.errors import ConfigError, DataError
from marketbot.core.metrics import ClosedTrades, compute_metrics
from marketbot.core.recommendation import RecommendationThresholds, recommend
from marketbot.core.timeframes import (
    NANOSECONDS_PER_SECOND,
    find_gaps,
    infer_bar_seconds,
    median_spacing_ns,
    seconds_to_timeframe,
)
from marketbot.risk.limits_nb import DENIAL_NAMES
from marketbot.strategies.base import Strategy
from marketbot.strategies.loader import StrategySpec, load_strategy

if TYPE_CHECKING:
    from marketbot.backtest.binary_config import BinaryConfig
    from marketbot.backtest.binary_markets import BinaryMarkets
    from marketbot.store.database import Database


@dataclass(frozen=True, slots=True)
class WindowRun:
    """One simulation of a trading window: the kernel's output and its metrics."""

    output: KernelOutput
    metrics: dict[str, float | int]
    tag_names: tuple[str, ...]
    signals: KernelSignals
    allow_short: bool
    warmup_bars: int


@dataclass(frozen=True)
class TradingWindow:
    """Validated bars up to ``end`` and the row where trading starts; reusable across runs.

    Signals are computed on all the bars (the earlier ones are warm-up), trades and metrics
    cover ``bars`` (from row ``first``). The optimiser builds one and runs it per combination.
    """

    frame: pd.DataFrame
    first: int
    bars: pd.DataFrame
    index: pd.DatetimeIndex
    # The median spacing of the bars' times (ns; None for one bar, or not measured): every
    # run's metrics and the data notes take it from here instead of a pass each.
    bar_spacing_ns: float | None = None

    @classmethod
    def of(
        cls,
        frame: pd.DataFrame,
        *,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        label: str = "data",
    ) -> TradingWindow:
        """Cut ``frame`` at ``end`` and find ``start``; DataError when nothing is left."""
        if end is not None:
            frame = frame.loc[:end]
        first = 0 if start is None else int(frame.index.searchsorted(start, side="left"))
        if first >= len(frame):
            raise DataError(f"{label}: no bars in the requested date range")
        bars = frame.iloc[first:] if first else frame
        index = bar_times(bars)
        # Measured here, while validation has just left the times in the cache: 0.2 ms less
        # for 1M bars than after the signals and the kernel have been through it.
        spacing = median_spacing_ns(index.asi8) if len(index) >= 2 else None
        return cls(frame=frame, first=first, bars=bars, index=index, bar_spacing_ns=spacing)

    def run(
        self, strategy: Strategy, params: Mapping[str, Any], config: BacktestConfig
    ) -> WindowRun:
        """Signals, kernel and metrics for one parameter set (no I/O, no result objects)."""
        prepared = prepare_signals(strategy, self.frame, params, config)
        first = self.first
        signals = _slice_signals(prepared.kernel, first) if first else prepared.kernel
        bars = self.bars
        times_ns = self.index.asi8
        close = bars["close"].to_numpy()
        output = simulate(
            bars["open"].to_numpy(),
            bars["high"].to_numpy(),
            bars["low"].to_numpy(),
            close,
            times_ns,
            signals,
            config.kernel_settings(allow_short=prepared.allow_short),
        )
        trades = output.trades
        metrics = compute_metrics(
            output.equity,
            times_ns,
            close,
            ClosedTrades(
                trades["pnl"], trades["pnl_pct"], trades["exit_bar"] - trades["entry_bar"]
            ),
            exposed_bars=output.exposed_bars,
            total_fees=output.total_fees,
            initial_cash=config.initial_cash,
            bar_spacing_ns=self.bar_spacing_ns,
        )
        warmup = int(strategy.warmup_bars(params))
        return WindowRun(output, metrics, prepared.tag_names, signals, prepared.allow_short, warmup)

    def attempts(self, run: WindowRun) -> TradeAttempts:
        """What ``run`` offered to trade in this window, to explain a run without trades."""
        raw, effective = count_entry_signals(run.signals, run.allow_short)
        return TradeAttempts(
            raw_entries=raw,
            entry_signals=effective,
            denials=run.output.entry_denials,
            warmup_bars=run.warmup_bars,
            loaded_bars=len(self.frame),
        )


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

    def run_backtest(  # noqa: PLR0913 - the seed's keywords; config= carries the settings
        self,
        strategy: StrategySpec,
        start_date: DateLike = None,
        end_date: DateLike = None,
        *,
        symbol: str | None = None,
        symbols: Sequence[str] | None = None,
        data: pd.DataFrame | Mapping[str, pd.DataFrame] | BinaryMarkets | None = None,
        params: Mapping[str, object] | None = None,
        timeframe: str | None = None,
        source: str | None = None,
        config: BacktestConfig | BinaryConfig | None = None,
        rules: PortfolioRules | None = None,
        save: bool | None = None,
        market: str | None = None,
        markets: Sequence[str] | str | BinaryMarkets | None = None,
        **options: Unpack[RunOptions],
    ) -> BacktestResult:
        """Backtest ``strategy`` on stored bars of ``symbol`` or on the frame ``data``.

        Several symbols (``symbols=[...]`` or ``data={symbol: frame}``) make a portfolio run:
        one account, shared cash, each symbol's own signals on a common time axis.

        Args:
            strategy: A built-in name, a Strategy class or instance, or ``file.py:Class``.
            start_date: First bar to trade (inclusive, UTC); earlier bars feed the warm-up.
            end_date: Last bar to trade (inclusive, UTC).
            symbol: Stored series to use (e.g. ``bitcoin``); one of symbol, symbols and data.
            symbols: Stored series of a portfolio run.
            data: OHLCV frame (any column capitalisation; DatetimeIndex or timestamp column),
                or a mapping of symbol to frame for a portfolio run.
            params: Strategy parameters; the rest take their defaults.
            timeframe: Which stored timeframe of ``symbol`` (default: 1d, else the only one).
            source: Which stored source of ``symbol``, when several have it.
            config: Costs, sizing, exits and risk limits (default: ``BacktestConfig()``, fee
                0.2 %, slippage 0.1 %, $10,000, all-in, no exits, no limits).
            rules: Portfolio slots, exposure cap and portfolio stop (portfolio runs).
            save: Store the run; default: stored-data runs are saved, ``data=`` runs are not.
            market: A stored binary market's slug (binary strategies, docs/prediction_markets.md).
            markets: Slugs of stored binary markets, ``"all"``, or ``BinaryMarkets``.
            **options: The same settings as keywords instead of ``config``/``rules`` (see
                :class:`marketbot.backtest.options.RunOptions`): ``fee``, ``slippage``,
                ``cash``, ``sizing``, ``size``, ``allow_short``, ``stop_loss``,
                ``take_profit``, ``trailing_stop``, ``trailing_activation``, ``max_hold``,
                ``risk``, ``max_open_positions``, ``max_exposure``, ``portfolio_stop``.

        Raises:
            ConfigError: bad settings or parameters, or start after end.
            DataError: no usable bars.
            StrategyError: the strategy is unknown or failed.
        """
        # Binary (prediction) markets: market=/markets=, data=BinaryMarkets or a binary strategy.
        from marketbot.backtest.binary_run import is_ohlcv_config, run_binary_backtest, wants_binary

        if wants_binary(strategy, market, markets, data) or not is_ohlcv_config(config):
            return run_binary_backtest(
                self, strategy, market=market, markets=markets, data=data, params=params,
                config=config, ohlcv_given=(start_date, end_date, symbol, symbols, timeframe),
                save=save, options=options,
            )  # fmt: skip
        config = build_config(config, options)  # type: ignore[arg-type]  # an OHLCV config
        portfolio_rules = build_rules(rules, options)
        instance = load_strategy(strategy)
        resolved = instance.resolve_params(params)
        start, end = parse_date_range(start_date, end_date)
        if sum(x is not None for x in (symbol, symbols, data)) != 1:
            raise ConfigError(
                "give exactly one of symbol= (stored data), symbols= (a stored portfolio) "
                "or data= (a frame, or a mapping of symbol to frame)"
            )
        if symbols is not None or isinstance(data, Mapping):
            frames = (
                normalize_frames(data)  # type: ignore[arg-type]  # BinaryMarkets went above
                if isinstance(data, Mapping)
                else {
                    name: self.load_stored(name, timeframe=timeframe, source=source, end=end)[2]
                    for name in _unique_symbols(symbols or ())
                }
            )
            result = self.backtest_portfolio(
                instance, frames, resolved, config, portfolio_rules, start=start, end=end
            )
            if save if save is not None else symbols is not None:
                self._save(result, timeframe=timeframe, source=source)
            return result
        if symbol is not None:
            source, timeframe, frame = self.load_stored(
                symbol, timeframe=timeframe, source=source, end=end
            )
            label = symbol
        else:
            frame = normalize_ohlcv(data, where="data")  # type: ignore[arg-type]  # a frame here
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
        window = TradingWindow.of(frame, start=start, end=end, label=symbol)
        run = window.run(strategy, params, config)
        output, metrics, index = run.output, run.metrics, window.index
        reason = None if output.num_trades else no_trade_reason(window.attempts(run), index)
        return BacktestResult(
            strategy=strategy.name,
            symbol=symbol,
            params=dict(params),
            settings=config.to_dict(),
            metrics=metrics,
            recommendation=recommend(metrics, self.thresholds),
            trades=trades_frame(output, index, run.tag_names),
            equity_curve=pd.Series(output.equity, index=index, name="equity", copy=False),
            bars=window.bars,
            notes=_data_notes(window.bars, window.bar_spacing_ns)
            + _risk_notes(output.entry_denials, output.breaker_trips, index),
            warnings=result_warnings(metrics),
            no_trade_reason=reason,
        )

    def backtest_portfolio(
        self,
        strategy: Strategy,
        frames: Mapping[str, pd.DataFrame],
        params: dict[str, Any],
        config: BacktestConfig,
        rules: PortfolioRules,
        *,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
    ) -> BacktestResult:
        """Backtest validated frames of several symbols as one account (no I/O)."""
        if end is not None:
            frames = {name: frame.loc[:end] for name, frame in frames.items()}
        aligned = align_portfolio(strategy, frames, params, config)
        first = 0 if start is None else int(aligned.index.searchsorted(start, side="left"))
        if first >= len(aligned.index):
            raise DataError("no bars of any symbol in the requested date range")
        output = run_aligned(aligned, config, rules, first)
        index = aligned.index[first:]
        trades = portfolio_trades_frame(output, index, aligned.symbols, aligned.tag_names)
        metrics = compute_metrics(
            output.equity,
            index.asi8,
            equal_weight_benchmark(aligned.close[first:]),
            ClosedTrades(
                trades["pnl"].to_numpy(),
                trades["pnl_pct"].to_numpy(),
                (trades["exit_bar"] - trades["entry_bar"]).to_numpy(),
            ),
            exposed_bars=output.exposed_bars,
            total_fees=output.total_fees,
            initial_cash=config.initial_cash,
        )
        first_symbol = aligned.symbols[0]
        notes: tuple[str, ...] = ()
        # On a shared calendar every symbol has the same gaps: look for them once.
        shared_notes = _data_notes(frames[first_symbol]) if aligned.shared_calendar else None
        for name in aligned.symbols:
            own = _data_notes(frames[name]) if shared_notes is None else shared_notes
            notes += tuple(f"{name}: {note}" for note in own)
        notes += _risk_notes(output.entry_denials, output.breaker_trips, index)
        settings = config.to_dict() | {"portfolio": asdict(rules)}
        reason = None
        if not output.num_trades:
            raw, effective = count_entry_signals(
                _slice_signals(aligned.signals, first), aligned.allow_short
            )
            attempts = TradeAttempts(
                raw_entries=raw,
                entry_signals=effective,
                denials=output.entry_denials,
                warmup_bars=max(int(strategy.warmup_bars(params)), 0),
                loaded_bars=len(aligned.index),
            )
            reason = no_trade_reason(attempts, index)
        return BacktestResult(
            strategy=strategy.name,
            symbol=",".join(aligned.symbols),
            params=dict(params),
            settings=settings,
            metrics=metrics,
            recommendation=recommend(metrics, self.thresholds),
            trades=trades,
            equity_curve=pd.Series(output.equity, index=index, name="equity", copy=False),
            bars=frames[first_symbol].loc[index[0] :],
            notes=notes,
            symbols=aligned.symbols,
            per_symbol=per_symbol_breakdown(trades, aligned.symbols, config.initial_cash),
            exposure=pd.Series(output.exposure, index=index, name="exposure", copy=False),
            prices=frames,
            warnings=result_warnings(metrics),
            no_trade_reason=reason,
        )

    def load_stored(
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


def _slice_signals(signals: KernelSignals, first: int) -> KernelSignals:
    return KernelSignals(*(array[first:] for array in signals))


def parse_date_range(
    start_date: DateLike, end_date: DateLike
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """UTC bounds of a run; a bare end date means the whole of that day.

    Raises:
        ConfigError: a value that is not a date, or a start after the end.
    """
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
    # Usually neither a trip nor a denial: two quick any() instead of masks and a sort.
    notes = [
        f"circuit breaker tripped ({DENIAL_NAMES[int(breaker_trips[bar])]}) at the close of "
        f"the bar opening {index[bar].isoformat()}"
        for bar in (np.flatnonzero(breaker_trips).tolist()[:5] if breaker_trips.any() else ())
    ]
    if not entry_denials.any():
        return tuple(notes)
    codes, counts = np.unique(entry_denials[entry_denials > 0], return_counts=True)
    if len(codes):
        parts = ", ".join(
            f"{DENIAL_NAMES[int(code)]}: {int(count)}"
            for code, count in zip(codes, counts, strict=True)
        )
        notes.append(f"risk limits refused {int(counts.sum())} entries ({parts})")
    return tuple(notes)


def _unique_symbols(symbols: Sequence[str]) -> list[str]:
    unique = list(dict.fromkeys(s.strip() for s in symbols if s.strip()))
    if not unique:
        raise ConfigError("symbols= is empty: name at least one stored symbol")
    return unique


def _is_date_only(value: DateLike) -> bool:
    if isinstance(value, str):
        return len(value.strip()) == 10
    return isinstance(value, date) and not isinstance(value, datetime)


def _data_notes(frame: pd.DataFrame, bar_spacing_ns: float | None = None) -> tuple[str, ...]:
    index = bar_times(frame)
    if bar_spacing_ns is None:
        bar_seconds = infer_bar_seconds(index.asi8)
    else:  # infer_bar_seconds' rounding, of the median the caller measured
        bar_seconds = max(1, round(bar_spacing_ns / NANOSECONDS_PER_SECOND))
    gaps = find_gaps(index, bar_seconds)
    if not gaps:
        return ()
    missing = sum(gap.missing_bars for gap in gaps)
    return (
        f"{len(gaps)} gap(s) in the {seconds_to_timeframe(bar_seconds)} bars, "
        f"{missing} bar(s) missing; the first after {gaps[0].after.isoformat()}",
    )
