"""Binary backtests end to end: signals per market, the shared-account run, equity, metrics.

The result is the portfolio's :class:`BacktestResult` (a row per market in ``per_symbol``),
so reports, JSON and the optimiser treat it as any other run. The combined equity is
computed from the fills at each event of any market and at each market's end; metrics come
from it at 1-minute steps (``compute_metrics``, the one definition), so ``avg_hold_bars``
and ``max_drawdown_bars`` count minutes. The buy-and-hold benchmark is cash (0 %).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from marketbot.backtest.binary_account import BinaryRun, MarketInput
from marketbot.backtest.binary_config import BinaryConfig
from marketbot.backtest.binary_engine import simulate_binary
from marketbot.backtest.binary_markets import BinaryMarkets
from marketbot.backtest.portfolio import per_symbol_breakdown
from marketbot.backtest.result import BacktestResult, result_warnings
from marketbot.core.metrics import ClosedTrades, compute_metrics
from marketbot.core.recommendation import RecommendationThresholds, recommend
from marketbot.strategies.binary import BinaryStrategy

if TYPE_CHECKING:
    from marketbot.store.runs import BacktestRecord

MINUTE_NS: Final = 60 * 1_000_000_000
TRADE_ORDER: Final = (
    "symbol", "outcome", "outcome_index", "group", "entry_time", "exit_time", "entry_price",
    "exit_price", "size", "pnl", "pnl_pct", "exit_reason", "direction", "fees", "entry_bar",
    "exit_bar", "tag",
)  # fmt: skip


@dataclass(frozen=True)
class BinaryOutcome:
    """One binary run before it becomes a result: the fills, the equity and the metrics."""

    run: BinaryRun
    trades: pd.DataFrame
    equity: pd.Series
    metrics: dict[str, float | int]


def simulate_markets(
    strategy: BinaryStrategy,
    markets: BinaryMarkets,
    params: Mapping[str, Any],
    config: BinaryConfig,
) -> BinaryOutcome:
    """Each market's signals, one account over all of them, and the run's metrics (no I/O)."""
    inputs = []
    for market in markets.values():
        book = market.book.copy(deep=False)
        book.attrs = {
            **market.book.attrs,
            "fee_model": config.fee_model,
            "fee_rate": config.fee_rate,
        }
        inputs.append(MarketInput.of(market, strategy.compute_signals(book, params)))
    run = simulate_binary(inputs, config)
    axis = _time_axis(markets)
    trades = _trades_frame(run, markets, axis, [data.signals.tag for data in inputs])
    equity = pd.Series(
        _equity_on(axis, run, trades, markets, config.initial_cash),
        index=pd.DatetimeIndex(pd.to_datetime(axis, utc=True), name="time"),
        name="equity",
    )
    return BinaryOutcome(run, trades, equity, _metrics(equity, trades, run, config))


def backtest_markets(
    strategy: BinaryStrategy,
    markets: BinaryMarkets,
    params: Mapping[str, Any],
    config: BinaryConfig,
    thresholds: RecommendationThresholds,
) -> BacktestResult:
    """Backtest ``strategy`` on ``markets`` as one account and return the full result."""
    outcome = simulate_markets(strategy, markets, params, config)
    metrics = outcome.metrics
    slugs = markets.slugs
    reason = None if len(outcome.trades) else _no_trade_reason(outcome.run, markets)
    equity = outcome.equity
    return BinaryBacktestResult(
        strategy=strategy.name,
        symbol=",".join(slugs),
        params=dict(params),
        settings=config.to_dict(),
        metrics=metrics,
        recommendation=recommend(metrics, thresholds),
        trades=outcome.trades,
        equity_curve=equity,
        bars=pd.DataFrame({"close": np.ones(len(equity))}, index=equity.index),
        symbols=slugs,
        per_symbol=per_symbol_breakdown(outcome.trades, slugs, config.initial_cash),
        warnings=result_warnings(metrics),
        no_trade_reason=reason,
    )


@dataclass(frozen=True)
class BinaryBacktestResult(BacktestResult):
    """A binary run's result: trades also carry outcome, outcome_index and group."""

    def to_dict(self) -> dict[str, Any]:
        """The portfolio JSON, with each trade's outcome and group and times to the ms."""
        payload = super().to_dict()
        payload["instrument"] = "binary"
        times = _iso_ms(pd.DatetimeIndex(self.equity_curve.index))
        payload["equity_curve"] = [
            {"time": time, "equity": float(value)}
            for time, value in zip(times, self.equity_curve.to_numpy(), strict=True)
        ]
        payload["start"] = times[0] if times else None
        payload["end"] = times[-1] if times else None
        trades = self.trades
        entry = _iso_ms(pd.DatetimeIndex(trades["entry_time"]))
        exit_ = _iso_ms(pd.DatetimeIndex(trades["exit_time"]))
        extra = zip(
            entry, exit_, trades["outcome"].tolist(), trades["outcome_index"].tolist(),
            trades["group"].tolist(), strict=True,
        )  # fmt: skip
        for item, (entered, exited, outcome, index, group) in zip(
            payload["trades"], extra, strict=True
        ):
            item |= {"entry_time": entered, "exit_time": exited, "outcome": str(outcome),
                     "outcome_index": int(index), "group": int(group)}  # fmt: skip
        return payload


def _iso_ms(index: pd.DatetimeIndex) -> list[str]:
    return [f"{text}Z" for text in index.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%f")
            .str.slice(0, 23)]  # fmt: skip


def _time_axis(markets: BinaryMarkets) -> np.ndarray:
    """Every event of every market and every market's end, sorted, without repeats."""
    parts = [market.times_ns for market in markets.values()]
    parts.append(np.array([market.end_ns for market in markets.values()], dtype=np.int64))
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)


def _trades_frame(
    run: BinaryRun, markets: BinaryMarkets, axis: np.ndarray, tags: list[str | None]
) -> pd.DataFrame:
    records = sorted(run.trades, key=lambda t: (t.exit_ns, t.entry_ns, t.market, t.outcome))
    slugs = markets.slugs
    entry_ns = np.array([t.entry_ns for t in records], dtype=np.int64)
    exit_ns = np.array([t.exit_ns for t in records], dtype=np.int64)
    labels = [markets[slugs[t.market]].labels[t.outcome] for t in records]
    columns: dict[str, Any] = {
        "symbol": pd.array([slugs[t.market] for t in records], dtype="str"),
        "outcome": pd.array(labels, dtype="str"),
        "outcome_index": np.array([t.outcome for t in records], dtype=np.int64),
        "group": np.array([t.group for t in records], dtype=np.int64),
        "entry_time": pd.to_datetime(entry_ns, utc=True),
        "exit_time": pd.to_datetime(exit_ns, utc=True),
        "entry_price": np.array([t.entry_price for t in records], dtype=np.float64),
        "exit_price": np.array([t.exit_price for t in records], dtype=np.float64),
        "size": np.array([t.size for t in records], dtype=np.float64),
        "pnl": np.array([t.pnl for t in records], dtype=np.float64),
        "pnl_pct": np.array([t.pnl_pct for t in records], dtype=np.float64),
        "exit_reason": pd.array([t.exit_reason for t in records], dtype="str"),
        "direction": pd.array(["long"] * len(records), dtype="str"),
        "fees": np.array([t.fees for t in records], dtype=np.float64),
        "entry_bar": np.searchsorted(axis, entry_ns).astype(np.int64),
        "exit_bar": np.searchsorted(axis, exit_ns).astype(np.int64),
        "tag": np.array([tags[t.market] for t in records], dtype=object),
    }
    return pd.DataFrame({name: columns[name] for name in TRADE_ORDER})


def _equity_on(
    axis: np.ndarray,
    run: BinaryRun,
    trades: pd.DataFrame,
    markets: BinaryMarkets,
    initial_cash: float,
) -> np.ndarray:
    """Cash plus every held leg at its token's last valid mid (its entry price before one)."""
    equity = np.full(len(axis), initial_cash, dtype=np.float64)
    if run.cash_changes:
        times = np.array([time for time, _ in run.cash_changes], dtype=np.int64)
        deltas = np.array([delta for _, delta in run.cash_changes], dtype=np.float64)
        order = np.argsort(times, kind="stable")
        cumulative = initial_cash + np.cumsum(deltas[order])
        position = np.searchsorted(times[order], axis, side="right") - 1
        equity = np.where(position >= 0, cumulative[np.maximum(position, 0)], initial_cash)
    columns = ("symbol", "outcome_index", "entry_bar", "exit_bar", "size", "entry_price")
    for slug, outcome, first, stop, size, price in zip(
        *(trades[name].tolist() for name in columns), strict=True
    ):
        if stop <= first:
            continue
        market = markets[slug]
        times, mids = market.times_ns, market.last_mid[:, outcome]
        seen = np.searchsorted(times, axis[first:stop], side="right") - 1
        value = np.where(seen >= 0, mids[np.maximum(seen, 0)], np.nan)
        equity[first:stop] += size * np.where(np.isnan(value), price, value)
    return equity


def _metrics(
    equity: pd.Series, trades: pd.DataFrame, run: BinaryRun, config: BinaryConfig
) -> dict[str, float | int]:
    """compute_metrics on the combined equity sampled at 1-minute steps."""
    axis = np.asarray(pd.DatetimeIndex(equity.index).as_unit("ns").asi8, dtype=np.int64)
    values = equity.to_numpy()
    if len(axis) == 0:
        axis = np.zeros(1, dtype=np.int64)
        values = np.array([config.initial_cash])
    first = axis[0] - axis[0] % MINUTE_NS
    last = axis[-1] + (-axis[-1]) % MINUTE_NS
    grid = np.arange(first, last + 1, MINUTE_NS, dtype=np.int64)
    seen = np.searchsorted(axis, grid, side="right") - 1
    sampled = np.where(seen >= 0, values[np.maximum(seen, 0)], config.initial_cash)
    entry = pd.DatetimeIndex(trades["entry_time"]).as_unit("ns").asi8
    exit_ = pd.DatetimeIndex(trades["exit_time"]).as_unit("ns").asi8
    opened = np.searchsorted(np.sort(entry), grid, side="right")
    closed = np.searchsorted(np.sort(exit_), grid, side="right")
    return compute_metrics(
        sampled,
        grid,
        np.ones(len(grid)),
        ClosedTrades(
            trades["pnl"].to_numpy(),
            trades["pnl_pct"].to_numpy(),
            (exit_ - entry) // MINUTE_NS,
        ),
        exposed_bars=int((opened > closed).sum()),
        total_fees=run.total_fees,
        initial_cash=config.initial_cash,
    )


def _no_trade_reason(run: BinaryRun, markets: BinaryMarkets) -> str:
    where = markets.describe()
    if not run.entries_offered:
        return f"no entry signal on {where}"
    refused = ", ".join(f"{name}: {count}" for name, count in run.denials.items() if count)
    return f"{run.entries_offered} entry order(s) on {where}, none filled" + (
        f" ({refused})" if refused else ""
    )


def binary_result_from_record(record: BacktestRecord) -> BacktestResult:
    """A saved binary run's result, as its report needs it (``runs report``).

    A binary run charts no price bars (its benchmark is cash): its "bars" are the equity's
    own times, as when it ran; ``per_symbol`` has a row per market that traded.
    """
    from marketbot.backtest.stored import result_from_record

    index = pd.DatetimeIndex(record.equity_curve.index)
    result = result_from_record(record, pd.DataFrame({"close": 1.0}, index=index))
    trades = result.trades
    slugs = tuple(sorted(set(trades["symbol"].astype(str)))) if "symbol" in trades else ()
    if not slugs:
        return result
    cash = float(record.settings.get("initial_cash") or 0.0)
    return replace(
        result, symbols=slugs, per_symbol=per_symbol_breakdown(result.trades, slugs, cash)
    )
