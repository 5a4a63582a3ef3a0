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
        raw_entries: Entry signals inside the trading window (long, and short when allowed).
        entry_signals: Of those, the ones no exit or opposite entry on the same bar cancels.
        denials: Per-bar (or bars x symbols) risk-limit codes of refused entries (0: none).
        warmup_bars: Leading bars of the whole loaded frame whose signals are masked.
        loaded_bars: Bars loaded, warm-up included (the frame up to the end of the window).
    """

    raw_entries: int
    entry_signals: int
    denials: np.ndarray
    warmup_bars: int
    loaded_bars: int


def count_entry_signals(signals: KernelSignals, allow_short: bool) -> tuple[int, int]:
    """Entry signals that could fill in (already sliced) kernel signals: (raw, effective).

    The last bar's signal has no next open to fill at, so it does not count; shorts count only
    when the run may trade them. An entry is effective unless an exit or the opposite entry
    on the same bar cancels it (the kernel's conflict rule).
    """
    long_entries = signals.entries_long[:-1]
    long_exits = signals.exits_long[:-1]
    short_entries = signals.entries_short[:-1] & allow_short
    short_exits = signals.exits_short[:-1]
    raw = int(np.count_nonzero(long_entries)) + int(np.count_nonzero(short_entries))
    effective = int(np.count_nonzero(long_entries & ~long_exits & ~short_entries)) + int(
        np.count_nonzero(short_entries & ~short_exits & ~long_entries)
    )
    return raw, effective


def no_trade_reason(attempts: TradeAttempts, index: pd.DatetimeIndex) -> str:
    """One sentence on why a run over ``index`` made no trade."""
    span = f"{_day(index[0])} to {_day(index[-1])}" if len(index) else "the range"
    if attempts.warmup_bars >= attempts.loaded_bars:
        return (
            f"the strategy's warm-up ({attempts.warmup_bars} bars) is as long as the data "
            f"({attempts.loaded_bars} bars up to {_day(index[-1])}): load more history "
            "or shorten its windows"
        )
    if attempts.raw_entries == 0:
        return f"no entry signal from {span}"
    if attempts.entry_signals == 0:
        return (
            f"every entry signal from {span} came with an exit or opposite signal on the "
            "same bar, which cancels the entry"
        )
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
