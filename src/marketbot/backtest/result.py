"""What a backtest returns: metrics, a recommendation, the trades and the equity curve."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd

from marketbot.backtest.kernel import KernelOutput
from marketbot.core.codes import EXIT_REASON_NAMES
from marketbot.core.recommendation import Recommendation

TRADE_COLUMNS: Final = (
    "entry_time",
    "exit_time",
    "entry_price",
    "exit_price",
    "size",
    "pnl",
    "pnl_pct",
    "exit_reason",
)
EXTRA_TRADE_COLUMNS: Final = ("direction", "fees", "entry_bar", "exit_bar", "tag")
# Text arrays of the labels: a column of them is a take() by code, with nothing to check.
_EXIT_REASON_LABELS: Final = pd.array(EXIT_REASON_NAMES, dtype="str")
_DIRECTION_LABELS: Final = pd.array(("short", "long"), dtype="str")


@dataclass(frozen=True)
class BacktestResult:
    """The outcome of one backtest.

    Attributes:
        strategy: The strategy's name.
        symbol: The symbol backtested (``data`` for a frame without one).
        params: The validated strategy parameters.
        settings: Costs, sizing and exits used (fractions), as a plain dict.
        metrics: Every metric of docs/metrics.md by key; never NaN, profit_factor may be inf.
        recommendation: EXCELLENT, GOOD, MARGINAL or FAILED.
        trades: One row per trade: entry_time, exit_time (UTC bar open times), entry_price,
            exit_price, size (asset units), pnl (quote currency), pnl_pct, exit_reason, and
            direction (long/short), fees, entry_bar, exit_bar, tag.
        equity_curve: Account equity at each bar's close, indexed by bar open time (UTC).
        bars: The price bars the run traded on (for a portfolio: the first symbol's).
        notes: Things the user should know about the data (gaps, warm-up trimmed).
        symbols: The symbols of a portfolio run (empty for a single-symbol run).
        per_symbol: Portfolio runs: one row per symbol (trades, win rate, P&L, fees,
            contribution to the return in percent of the starting cash).
        exposure: Portfolio runs: gross exposure (notional of open positions) per bar.
        prices: Portfolio runs: each symbol's bars (shared, not copied), for the report.
        warnings: Reasons to distrust the result (an implausibly high return or Sharpe, which
            usually means the strategy peeks at the future); see :func:`result_warnings`.
        no_trade_reason: Why a run made no trade (no entry signal in the range, a warm-up
            longer than the range, or every entry refused by a risk limit); None otherwise.
    """

    strategy: str
    symbol: str
    params: dict[str, Any]
    settings: dict[str, Any]
    metrics: dict[str, float | int]
    recommendation: Recommendation
    trades: pd.DataFrame
    equity_curve: pd.Series
    bars: pd.DataFrame = field(repr=False)
    notes: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()
    per_symbol: pd.DataFrame | None = None
    exposure: pd.Series | None = None
    prices: Mapping[str, pd.DataFrame] | None = field(default=None, repr=False)
    warnings: tuple[str, ...] = ()
    no_trade_reason: str | None = None

    @property
    def verdict_line(self) -> str:
        """The verdict with what qualifies it, e.g. ``FAILED; buy & hold made more (+81.2 %)``."""
        return verdict_line(str(self.recommendation), self.metrics)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``marketbot backtest --json``: ISO 8601 UTC times, inf as null."""
        trades = [_trade_json(record) for record in self.trades.to_dict("records")]
        curve_index = pd.DatetimeIndex(self.equity_curve.index)
        times = curve_index.strftime("%Y-%m-%dT%H:%M:%SZ")
        equity = [
            {"time": time, "equity": float(value)}
            for time, value in zip(times, self.equity_curve.to_numpy(), strict=True)
        ]
        payload = {
            "strategy": self.strategy,
            "symbol": self.symbol,
            "params": self.params,
            "settings": self.settings,
            "start": times[0] if len(times) else None,
            "end": times[-1] if len(times) else None,
            "metrics": {key: json_number(value) for key, value in self.metrics.items()},
            "recommendation": str(self.recommendation),
            "verdict": self.verdict_line,
            "notes": list(self.notes),
            "warnings": list(self.warnings),
            "no_trade_reason": self.no_trade_reason,
            "trades": trades,
            "equity_curve": equity,
        }
        if self.symbols:
            payload["symbols"] = list(self.symbols)
            payload["per_symbol"] = _records_json(self.per_symbol)
            if self.exposure is not None:
                payload["exposure"] = [
                    {"time": time, "exposure": float(value)}
                    for time, value in zip(times, self.exposure.to_numpy(), strict=True)
                ]
        return payload


# Beyond these a backtest result is more likely a bug (usually lookahead) than an edge.
IMPLAUSIBLE_CAGR_PCT: Final = 10_000.0
IMPLAUSIBLE_SHARPE: Final = 5.0
LOOKAHEAD_HINT: Final = "check with `marketbot lookahead`"


def result_warnings(metrics: Mapping[str, float | int]) -> tuple[str, ...]:
    """Warnings for an implausible result: CAGR over 10,000 % a year or Sharpe over 5."""
    warnings: list[str] = []
    cagr = float(metrics.get("cagr_pct", 0.0))
    sharpe = float(metrics.get("sharpe", 0.0))
    if math.isfinite(cagr) and cagr > IMPLAUSIBLE_CAGR_PCT:
        warnings.append(
            f"implausible return: {cagr:,.0f} % a year (over {IMPLAUSIBLE_CAGR_PCT:,.0f} %); "
            + LOOKAHEAD_HINT
        )
    if math.isfinite(sharpe) and sharpe > IMPLAUSIBLE_SHARPE:
        warnings.append(
            f"implausible Sharpe ratio: {sharpe:.2f} (over {IMPLAUSIBLE_SHARPE:g}); "
            + LOOKAHEAD_HINT
        )
    return tuple(warnings)


def verdict_line(recommendation: str, metrics: Mapping[str, float | int]) -> str:
    """The verdict, adding ``buy & hold made more (+X %)`` when holding beat the strategy."""
    strategy_return = float(metrics.get("return_pct", 0.0))
    hold_return = float(metrics.get("buy_hold_return_pct", math.nan))
    if math.isfinite(hold_return) and hold_return > strategy_return:
        return f"{recommendation}; buy & hold made more ({hold_return:+,.1f} %)"
    return recommendation


def json_number(value: float | int) -> float | int | None:
    """A metric as JSON allows it: infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _iso(value: object) -> str:
    return pd.Timestamp(str(value)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _records_json(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    if frame is None:
        return []
    return [
        {str(key): json_number(value) if isinstance(value, float) else value
         for key, value in record.items()}
        for record in frame.to_dict("records")
    ]  # fmt: skip


def _trade_json(record: Mapping[Hashable, Any]) -> dict[str, Any]:
    tag = record["tag"]
    extra = {"symbol": str(record["symbol"])} if "symbol" in record else {}
    return extra | {
        "entry_time": _iso(record["entry_time"]),
        "exit_time": _iso(record["exit_time"]),
        "entry_price": float(record["entry_price"]),
        "exit_price": float(record["exit_price"]),
        "size": float(record["size"]),
        "pnl": float(record["pnl"]),
        "pnl_pct": float(record["pnl_pct"]),
        "exit_reason": str(record["exit_reason"]),
        "direction": str(record["direction"]),
        "fees": float(record["fees"]),
        "tag": None if tag is None else str(tag),
    }


def trades_frame(
    output: KernelOutput, index: pd.DatetimeIndex, tag_names: tuple[str, ...]
) -> pd.DataFrame:
    """The kernel's trade records as a DataFrame with times, labels and the public columns."""
    return trade_records_frame(output.trades, index, tag_names)


def trade_records_frame(
    records: np.ndarray, index: pd.DatetimeIndex, tag_names: tuple[str, ...]
) -> pd.DataFrame:
    """Trade records (``step_nb.TRADE_DTYPE``, read by field name) as the public trade table.

    Bars become times of ``index``, exit reasons and directions their labels, tags the
    strategy's tag names (None for none).
    """
    entry_bar = records["entry_bar"].copy()
    exit_bar = records["exit_bar"].copy()
    # Labels taken from text arrays of the names: letting the frame infer text columns
    # from objects (or np.where building fixed-width text) took most of the time for
    # 14,000 trades.
    reasons = _EXIT_REASON_LABELS.take(records["exit_reason"])
    directions = _DIRECTION_LABELS.take((records["direction"] > 0).astype(np.intp))
    tag_column = _tag_labels(records["tag"], tag_names)
    columns = {
        "entry_time": index[entry_bar],
        "exit_time": index[exit_bar],
        "entry_price": records["entry_price"].copy(),
        "exit_price": records["exit_price"].copy(),
        "size": records["size"].copy(),
        "pnl": records["pnl"].copy(),
        "pnl_pct": records["pnl_pct"].copy(),
        "exit_reason": reasons,
        "direction": directions,
        "fees": records["fees"].copy(),
        "entry_bar": entry_bar,
        "exit_bar": exit_bar,
        "tag": tag_column,
    }
    # Every column is a new array made here: the frame may keep them without a copy.
    return pd.DataFrame(columns, copy=False)


def _tag_labels(tags: np.ndarray, tag_names: tuple[str, ...]) -> np.ndarray:
    """Each trade's tag name, None where it has none (or its index names no tag)."""
    if not tag_names:
        return np.full(tags.shape[0], None, dtype=object)
    labels = np.asarray((*tag_names, None), dtype=object)
    return labels[np.where((tags >= 0) & (tags < len(tag_names)), tags, -1)]
