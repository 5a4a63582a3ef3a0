"""Why a backtest made no trade: the warm-up, no entry signal, or every entry refused.

A run with zero trades is a common first-hour surprise; the result says which of these it was,
so the user knows whether to widen the range, change parameters or loosen a limit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from marketbot.backtest.kernel import KernelSignals
from marketbot.risk.limits_nb import DENIAL_NAMES


@dataclass(frozen=True, slots=True)
class TradeAttempts:
    """What a window's run offered to trade, from the signals and the kernel's refusals.

    Attributes:
        entry_signals: Entry signals inside the trading window (long, and short when allowed).
        denials: Per-bar (or bars x symbols) risk-limit codes of refused entries (0: none).
        warmup_bars: Leading bars of the whole loaded frame whose signals are masked.
        loaded_bars: Bars loaded, warm-up included (the frame up to the end of the window).
    """

    entry_signals: int
    denials: np.ndarray
    warmup_bars: int
    loaded_bars: int


def count_entry_signals(signals: KernelSignals, allow_short: bool) -> int:
    """Entry signals that could fill in (already sliced) kernel signals.

    The last bar's signal has no next open to fill at, so it does not count; shorts count only
    when the run may trade them.
    """
    count = int(np.count_nonzero(signals.entries_long[:-1]))
    if allow_short:
        count += int(np.count_nonzero(signals.entries_short[:-1]))
    return count


def no_trade_reason(attempts: TradeAttempts, index: pd.DatetimeIndex) -> str:
    """One sentence on why a run over ``index`` made no trade."""
    span = f"{_day(index[0])} to {_day(index[-1])}" if len(index) else "the range"
    if attempts.warmup_bars >= attempts.loaded_bars:
        return (
            f"the strategy's warm-up ({attempts.warmup_bars} bars) is as long as the data "
            f"({attempts.loaded_bars} bars up to {_day(index[-1])}): load more history "
            "or shorten its windows"
        )
    if attempts.entry_signals == 0:
        return f"no entry signal from {span}"
    refused = attempts.denials[attempts.denials > 0]
    if refused.size:
        codes, counts = np.unique(refused, return_counts=True)
        parts = ", ".join(
            f"{DENIAL_NAMES[int(code)]}: {int(count)}"
            for code, count in zip(codes, counts, strict=True)
        )
        return f"every entry was refused by a risk limit ({parts})"
    return (
        f"{attempts.entry_signals} entry signal(s) from {span}, but no position opened "
        "(the sizing gave no units: check --cash and the size settings)"
    )


def _day(stamp: pd.Timestamp) -> str:
    """A bar time as a plain date, or an ISO time when it is not midnight."""
    if stamp.hour == stamp.minute == stamp.second == 0:
        return stamp.strftime("%Y-%m-%d")
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
