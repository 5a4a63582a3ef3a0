"""A run without trades says why; an implausible result and a beaten benchmark say so too."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from marketbot.backtest.engine import BacktestingEngine
from marketbot.backtest.explain import TradeAttempts, no_trade_reason
from marketbot.backtest.result import result_warnings, verdict_line
from marketbot.risk.limits_nb import DENIAL_NAMES, DENIED_DAILY_LOSS, DENIED_POSITIONS
from marketbot.strategies.base import Signals, Strategy


def daily_bars(closes: list[float] | np.ndarray, start: str = "2024-01-01") -> pd.DataFrame:
    close = np.asarray(closes, dtype=float)
    index = pd.date_range(start, periods=len(close), freq="D", tz="UTC", name="timestamp")
    return pd.DataFrame(
        {"open": close, "high": close * 1.01, "low": close * 0.99, "close": close, "volume": 1.0},
        index=index,
    )


class EntryEveryOtherBar(Strategy):
    """Signals an entry on even bars and an exit on odd ones."""

    name: ClassVar[str] = "entry_every_other_bar"

    def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
        entries = np.arange(len(frame)) % 2 == 0
        return Signals(entries_long=entries, exits_long=~entries)


class EntryAndExitTogether(Strategy):
    """Signals entry and exit on the same bars: the conflict rule cancels every entry."""

    name: ClassVar[str] = "entry_and_exit_together"

    def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
        both = np.ones(len(frame), dtype=bool)
        return Signals(entries_long=both, exits_long=both.copy())


class NeverEnters(Strategy):
    """Has no entry signal at all."""

    name: ClassVar[str] = "never_enters"

    def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
        none = np.zeros(len(frame), dtype=bool)
        return Signals(entries_long=none, exits_long=none.copy())


def test_no_trade_reason_when_warmup_longer_than_data_names_the_warmup() -> None:
    frame = daily_bars(np.linspace(100, 130, 30))
    result = BacktestingEngine().run_backtest(
        "sma_crossover", data=frame, params={"fast": 10, "slow": 50}
    )
    assert result.metrics["num_trades"] == 0
    assert result.no_trade_reason is not None
    assert "warm-up (50 bars)" in result.no_trade_reason
    assert "30 bars up to 2024-01-30" in result.no_trade_reason


def test_no_trade_reason_when_no_entry_signal_names_the_range() -> None:
    result = BacktestingEngine().run_backtest(NeverEnters, data=daily_bars([100.0] * 20))
    assert result.no_trade_reason == "no entry signal from 2024-01-01 to 2024-01-20"


def test_no_trade_reason_when_entries_refused_counts_each_limit() -> None:
    denials = np.zeros(10, dtype=np.int8)
    denials[[2, 5]] = DENIED_DAILY_LOSS
    denials[7] = DENIED_POSITIONS
    attempts = TradeAttempts(
        raw_entries=3, entry_signals=3, denials=denials, warmup_bars=0, loaded_bars=10
    )
    index = pd.date_range("2024-01-01", periods=10, freq="D", tz="UTC")
    reason = no_trade_reason(attempts, index)
    assert reason == (
        "every entry was refused by a risk limit "
        f"({DENIAL_NAMES[DENIED_DAILY_LOSS]}: 2, {DENIAL_NAMES[DENIED_POSITIONS]}: 1)"
    )


def test_no_trade_reason_when_exits_cancel_every_entry_names_the_conflict() -> None:
    result = BacktestingEngine().run_backtest(EntryAndExitTogether, data=daily_bars([100.0] * 8))
    assert result.metrics["num_trades"] == 0
    assert result.no_trade_reason == (
        "every entry signal from 2024-01-01 to 2024-01-08 came with an exit or opposite "
        "signal on the same bar, which cancels the entry"
    )


def test_no_trade_reason_when_trades_happen_is_none() -> None:
    result = BacktestingEngine().run_backtest(EntryEveryOtherBar, data=daily_bars([100.0] * 10))
    assert result.metrics["num_trades"] > 0
    assert result.no_trade_reason is None
    assert result.to_dict()["no_trade_reason"] is None


def test_no_trade_reason_when_only_the_last_bar_signals_is_no_entry_signal() -> None:
    class LastBarOnly(NeverEnters):
        def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
            entries = np.zeros(len(frame), dtype=bool)
            entries[-1] = True
            return Signals(entries_long=entries, exits_long=np.zeros(len(frame), dtype=bool))

    result = BacktestingEngine().run_backtest(LastBarOnly, data=daily_bars([100.0] * 5))
    assert result.no_trade_reason == "no entry signal from 2024-01-01 to 2024-01-05"


def test_result_warnings_when_sharpe_over_5_points_to_lookahead() -> None:
    warnings = result_warnings({"sharpe": 5.01, "cagr_pct": 50.0})
    assert warnings == (
        "implausible Sharpe ratio: 5.01 (over 5); check with `marketbot lookahead`",
    )


def test_result_warnings_when_cagr_over_10000_pct_points_to_lookahead() -> None:
    (warning,) = result_warnings({"sharpe": 1.0, "cagr_pct": 12_345.0})
    assert warning.startswith("implausible return: 12,345 % a year")
    assert warning.endswith("check with `marketbot lookahead`")


def test_result_warnings_when_at_the_bounds_are_empty() -> None:
    assert result_warnings({"sharpe": 5.0, "cagr_pct": 10_000.0}) == ()


def test_verdict_line_when_buy_and_hold_made_more_says_by_how_much() -> None:
    metrics = {"return_pct": 12.0, "buy_hold_return_pct": 81.24}
    assert verdict_line("FAILED", metrics) == "FAILED; buy & hold made more (+81.2 %)"


def test_verdict_line_when_strategy_beat_buy_and_hold_is_the_verdict() -> None:
    assert verdict_line("GOOD", {"return_pct": 20.0, "buy_hold_return_pct": -5.0}) == "GOOD"


def test_cheating_strategy_when_backtested_gets_an_implausible_warning() -> None:
    class PeeksTomorrow(NeverEnters):
        def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
            rises = (frame["close"].shift(-1) > frame["close"]).to_numpy()
            return Signals(entries_long=rises, exits_long=~rises)

    rng = np.random.default_rng(7)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 400)))
    frame = daily_bars(closes)
    frame["open"] = frame["close"].shift(1).fillna(frame["close"].iloc[0])
    frame["high"] = frame[["open", "close"]].max(axis=1) * 1.01
    frame["low"] = frame[["open", "close"]].min(axis=1) * 0.99
    result = BacktestingEngine().run_backtest(PeeksTomorrow, data=frame, fee=0.0, slippage=0.0)
    assert any("check with `marketbot lookahead`" in w for w in result.warnings)
    assert result.to_dict()["warnings"] == list(result.warnings)
