"""Which bars of a series are missing in a time range, and in which request windows to fetch them.

A run is a stretch of consecutive missing bars, given by the open times of its first and last
bar. Runs include a missing head (before the first stored bar) and tail (after the last), not
only holes between stored bars, so the same code collects, repairs and brings up to date.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from marketbot.core.errors import ConfigError
from marketbot.core.timeframes import bar_grid_offset_seconds


@dataclass(frozen=True, slots=True)
class MissingRun:
    """Consecutive missing bars: open times ``first`` to ``last`` inclusive.

    Attributes:
        first: Open time of the first missing bar.
        last: Open time of the last missing bar.
        bars: How many bars are missing.
    """

    first: pd.Timestamp
    last: pd.Timestamp
    bars: int


def missing_runs(
    stored_opens: pd.DatetimeIndex,
    start: pd.Timestamp,
    end: pd.Timestamp,
    bar_seconds: int,
) -> list[MissingRun]:
    """Runs of bars in ``[start, end]`` that are not stored.

    The bar grid is that of the stored bars (their offset from the epoch), or, when nothing
    is stored, the usual one (:func:`~marketbot.core.timeframes.bar_grid_offset_seconds`:
    weeks from Monday, the rest from the epoch); ``start`` rounds up and ``end`` down onto it.

    Args:
        stored_opens: Open times of the stored bars (UTC, any order).
        start: Earliest bar open time of interest.
        end: Latest bar open time of interest.
        bar_seconds: Bar length in seconds.

    Raises:
        ConfigError: ``bar_seconds`` is not positive.
    """
    if bar_seconds <= 0:
        raise ConfigError(f"bar length must be positive, got {bar_seconds} seconds")
    bar_ns = bar_seconds * 1_000_000_000
    stored = np.unique(stored_opens.as_unit("ns").asi8)
    usual_offset = bar_grid_offset_seconds(bar_seconds) * 1_000_000_000
    offset = int(stored[0] % bar_ns) if stored.size else usual_offset
    first = -(-(start.value - offset) // bar_ns) * bar_ns + offset
    last = (end.value - offset) // bar_ns * bar_ns + offset
    if last < first:
        return []
    grid = np.arange(first, last + bar_ns, bar_ns, dtype=np.int64)
    missing = grid[~np.isin(grid, stored, assume_unique=True)]
    if missing.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(missing) != bar_ns)
    starts = np.concatenate(([0], breaks + 1))
    stops = np.concatenate((breaks, [missing.size - 1]))
    return [
        MissingRun(
            first=pd.Timestamp(int(missing[a]), tz="UTC"),
            last=pd.Timestamp(int(missing[b]), tz="UTC"),
            bars=int(b - a + 1),
        )
        for a, b in zip(starts.tolist(), stops.tolist(), strict=True)
    ]


def split_run(run: MissingRun, bar_seconds: int, max_bars: int) -> list[MissingRun]:
    """The run cut into pieces of at most ``max_bars`` bars, in time order."""
    if max_bars < 1:
        raise ConfigError(f"a request window must hold at least one bar, got {max_bars}")
    step = pd.Timedelta(seconds=bar_seconds)
    pieces = []
    for offset in range(0, run.bars, max_bars):
        count = min(max_bars, run.bars - offset)
        first = run.first + offset * step
        pieces.append(MissingRun(first=first, last=first + (count - 1) * step, bars=count))
    return pieces
