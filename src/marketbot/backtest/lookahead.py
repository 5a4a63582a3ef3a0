"""Lookahead-bias check: change the future, recompute the signals, report every past one that moved.

A strategy may use data up to and including the close of the bar it signals on. For a set of
cut points ``t``, the check recomputes the strategy's signals twice, once on the data
truncated after ``t`` and once with every bar after ``t`` replaced by a different (valid)
price path, and compares the signals at bars ``warm-up..t`` with those computed on the
original data. A causal strategy gives bit-identical values there; any difference is a
finding. The replacement paths come from a fixed seed, so a run is reproducible.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd

from marketbot.strategies.base import Signals, Strategy

_SIGNAL_FIELDS: Final = (
    "entries_long",
    "exits_long",
    "entries_short",
    "exits_short",
    "size_fraction",
    "tag",
    "rank",
)


@dataclass(frozen=True, slots=True)
class LookaheadFinding:
    """One signal value that changed when only later data changed.

    Attributes:
        bar_time: Open time of the bar whose signal moved.
        signal: Which output moved (``entries_long``, ``exits_long``...).
        original: The value computed on the real data.
        altered: The value computed with the future changed.
        cut_time: Open time of the last bar kept as it was.
        how: ``truncated`` (bars after the cut removed) or ``altered`` (replaced).
    """

    bar_time: pd.Timestamp
    signal: str
    original: float
    altered: float
    cut_time: pd.Timestamp
    how: str

    def describe(self) -> str:
        """One line for the command line."""
        return (
            f"{self.bar_time.isoformat()} {self.signal}: {self.original:g} -> {self.altered:g} "
            f"when bars after {self.cut_time.isoformat()} were {self.how}"
        )


@dataclass(frozen=True)
class LookaheadReport:
    """The outcome of a lookahead check.

    Attributes:
        strategy: The strategy's name.
        cuts_checked: How many cut points were tested (each truncated and altered).
        bars: Bars in the data.
        findings: Every (bar, signal) that moved, first occurrence only, in time order.
    """

    strategy: str
    cuts_checked: int
    bars: int
    findings: list[LookaheadFinding] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no signal moved."""
        return not self.findings

    def summary(self) -> str:
        """One line: passed, or how many signals moved."""
        if self.passed:
            return (
                f"{self.strategy}: no lookahead found ({self.cuts_checked} cut points, "
                f"{self.bars} bars, future truncated and altered at each)"
            )
        return (
            f"{self.strategy}: LOOKAHEAD BIAS: {len(self.findings)} signal value(s) changed when "
            f"only later bars changed ({self.cuts_checked} cut points)"
        )


def check_lookahead(
    strategy: Strategy,
    frame: pd.DataFrame,
    params: Mapping[str, Any],
    *,
    cuts: int = 40,
    seed: int = 20_240_601,
) -> LookaheadReport:
    """Check ``strategy`` for lookahead bias on ``frame`` (see the module docstring).

    Args:
        strategy: The strategy to check, built-in or the user's.
        frame: Validated OHLCV bars.
        params: Validated parameters.
        cuts: How many cut points, spread evenly over the bars after the warm-up.
        seed: Seed of the replacement price paths.
    """
    length = len(frame)
    warmup = strategy.compute_warmup(params)
    reference = _signal_arrays(strategy.compute_signals(frame, params))
    rng = np.random.default_rng(seed)
    seen: set[tuple[int, str]] = set()
    findings: list[LookaheadFinding] = []
    cut_points = _cut_points(warmup, length, cuts)
    for cut in cut_points:
        for how, variant in (
            ("truncated", frame.iloc[: cut + 1]),
            ("altered", _alter_future(frame, cut, rng)),
        ):
            arrays = _signal_arrays(strategy.compute_signals(variant, params))
            for name, original in reference.items():
                moved = _moved_bars(original, arrays.get(name), warmup, cut)
                for bar in moved:
                    if (bar, name) in seen:
                        continue
                    seen.add((bar, name))
                    findings.append(
                        LookaheadFinding(
                            bar_time=frame.index[bar],
                            signal=name,
                            original=float(original[bar]),
                            altered=_value_at(arrays.get(name), bar),
                            cut_time=frame.index[cut],
                            how=how,
                        )
                    )
    findings.sort(key=lambda f: (f.bar_time, f.signal))
    return LookaheadReport(
        strategy=strategy.name, cuts_checked=len(cut_points), bars=length, findings=findings
    )


def _cut_points(warmup: int, length: int, cuts: int) -> list[int]:
    last = length - 2  # a cut at the last bar changes nothing
    if last < warmup or cuts <= 0:
        return []
    points = np.linspace(warmup, last, num=min(cuts, last - warmup + 1))
    return sorted({int(p) for p in np.round(points)})


def _signal_arrays(signals: Signals) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for name in _SIGNAL_FIELDS:
        value = getattr(signals, name)
        if value is not None:
            arrays[name] = np.asarray(value, dtype=np.float64)
    return arrays


def _moved_bars(
    original: np.ndarray, other: np.ndarray | None, warmup: int, cut: int
) -> np.ndarray:
    stop = cut + 1
    if other is None:
        return np.arange(warmup, stop)
    before, after = original[warmup:stop], other[warmup:stop]
    same = (before == after) | (np.isnan(before) & np.isnan(after))
    return np.flatnonzero(~same) + warmup


def _value_at(array: np.ndarray | None, bar: int) -> float:
    return float("nan") if array is None else float(array[bar])


def _alter_future(frame: pd.DataFrame, cut: int, rng: np.random.Generator) -> pd.DataFrame:
    """A copy of ``frame`` whose bars after ``cut`` follow a different, valid price path."""
    altered = frame.copy()
    future = len(frame) - cut - 1
    if future <= 0:
        return altered
    # A random multiplicative walk keeps every bar positive and its OHLC order intact.
    factors = np.exp(np.cumsum(rng.normal(0.0, 0.05, size=future)))
    for column in ("open", "high", "low", "close"):
        values = altered[column].to_numpy(copy=True)
        values[cut + 1 :] *= factors
        altered[column] = values
    volume = altered["volume"].to_numpy(copy=True)
    volume[cut + 1 :] *= rng.uniform(0.1, 10.0, size=future)
    altered["volume"] = volume
    return altered
