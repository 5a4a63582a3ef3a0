"""Bars of several symbols at once: their validation, and their columns as (bars x symbols) grids.

A portfolio run takes one frame per symbol. :func:`normalize_frames` returns what
:func:`~marketbot.core.bars.normalize_ohlcv` returns for each frame (the same frames, the same
errors), but a frame already in canonical form (the store's, or one normalised before) skips
the pandas work: its values go straight to the compiled bar check. :class:`PanelBars` lays the
symbols side by side: column ``s`` of a grid holds symbol ``s``'s own bars from row 0, so a
rolling window down a column spans that symbol's bars, never another symbol's calendar.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Final

import numpy as np
import pandas as pd

from marketbot.core.bars import OHLCV_COLUMNS, _first_invalid_bar_nb, bar_times, normalize_ohlcv
from marketbot.core.errors import ConfigError

COLUMN_NUMBERS: Final = {name: number for number, name in enumerate(OHLCV_COLUMNS)}


def normalize_frames(frames: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """``normalize_ohlcv(frame, where=symbol)`` for each frame, without redoing canonical work.

    A canonical frame (float64 ``open, high, low, close, volume`` in that order, a UTC
    nanosecond DatetimeIndex named ``timestamp``) is checked by the compiled bar check alone
    and returned as a shallow copy, which is what ``normalize_ohlcv`` returns for it. Every
    other frame, and a canonical one that fails the check, goes through ``normalize_ohlcv``,
    so the result and the error message are the same as per frame.

    Raises:
        DataError: as ``normalize_ohlcv``, naming the symbol.
    """
    normalized = {}
    for symbol, frame in frames.items():
        if _is_canonical(frame) and _bars_are_valid(frame):
            # Under copy-on-write the copy shares the data until either side writes.
            normalized[symbol] = frame.copy(deep=False)
        else:
            normalized[symbol] = normalize_ohlcv(frame, where=symbol)
    return normalized


def _is_canonical(frame: pd.DataFrame) -> bool:
    index = frame.index
    return (
        isinstance(index, pd.DatetimeIndex)
        and index.tz is datetime.UTC
        and index.unit == "ns"
        and index.name == "timestamp"
        and len(index) > 0
        and tuple(frame.columns) == OHLCV_COLUMNS
        and all(dtype == np.float64 for dtype in frame.dtypes)
    )


def _bars_are_valid(frame: pd.DataFrame) -> bool:
    values = frame.to_numpy()
    times_ns = bar_times(frame).asi8
    open_, high, low, close, volume = (values[:, number] for number in range(5))
    return bool(_first_invalid_bar_nb(open_, high, low, close, volume, times_ns) < 0)


@dataclass(frozen=True)
class PanelBars:
    """Validated bars of several symbols, each column as a (bars x symbols) float64 grid.

    Column ``s`` of every grid is symbol ``s``'s own bars in time order from row 0; a symbol
    with fewer bars than the longest is padded with NaN below its last bar (``valid`` is
    False there). When every symbol has the same bar times (``shared_calendar``, the usual
    case) there is no padding and row ``t`` is the same time for every symbol. The grids are
    built on first use and shared by everyone who reads them: read-only to a strategy.

    Attributes:
        symbols: The symbols, in column order.
        indexes: Each symbol's bar times (its frame's index).
        blocks: Each symbol's ``open..volume`` values as a (bars x 5) array.
    """

    symbols: tuple[str, ...]
    indexes: tuple[pd.DatetimeIndex, ...] = field(repr=False)
    blocks: tuple[np.ndarray, ...] = field(repr=False)
    _grids: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, frames: Mapping[str, pd.DataFrame]) -> PanelBars:
        """The panel of validated frames (``normalize_ohlcv``'s or ``normalize_frames``' output).

        Raises:
            ConfigError: no frames.
        """
        if not frames:
            raise ConfigError("a portfolio backtest needs at least one symbol")
        columns = list(OHLCV_COLUMNS)
        blocks = tuple(
            (frame if tuple(frame.columns) == OHLCV_COLUMNS else frame[columns]).to_numpy(
                dtype=np.float64
            )
            for frame in frames.values()
        )
        indexes = tuple(bar_times(frame) for frame in frames.values())
        return cls(symbols=tuple(frames), indexes=indexes, blocks=blocks)

    @cached_property
    def lengths(self) -> np.ndarray:
        """Each symbol's number of bars (int64)."""
        return np.array([len(block) for block in self.blocks], dtype=np.int64)

    @cached_property
    def rows(self) -> int:
        """Rows of every grid: the longest symbol's number of bars."""
        return max(len(block) for block in self.blocks)

    @cached_property
    def shared_calendar(self) -> bool:
        """Whether every symbol has exactly the same bar times."""
        first = self.indexes[0].asi8
        return all(np.array_equal(index.asi8, first) for index in self.indexes[1:])

    @cached_property
    def valid(self) -> np.ndarray:
        """True where a grid holds a bar; False in the NaN padding below a shorter symbol."""
        mask = np.arange(self.rows)[:, np.newaxis] < self.lengths[np.newaxis, :]
        mask.flags.writeable = False
        return mask

    @property
    def open(self) -> np.ndarray:
        """Opens (read-only view)."""
        return _read_only(self.grid("open"))

    @property
    def high(self) -> np.ndarray:
        """Highs (read-only view)."""
        return _read_only(self.grid("high"))

    @property
    def low(self) -> np.ndarray:
        """Lows (read-only view)."""
        return _read_only(self.grid("low"))

    @property
    def close(self) -> np.ndarray:
        """Closes (read-only view)."""
        return _read_only(self.grid("close"))

    @property
    def volume(self) -> np.ndarray:
        """Volumes (read-only view)."""
        return _read_only(self.grid("volume"))

    def grid(self, column: str) -> np.ndarray:
        """The (bars x symbols) grid of ``column``, built once; the caller must not write it."""
        grid = self._grids.get(column)
        if grid is None:
            grid = _stack_column(self.blocks, COLUMN_NUMBERS[column], self.rows)
            self._grids[column] = grid
        return grid


def _stack_column(blocks: tuple[np.ndarray, ...], number: int, rows: int) -> np.ndarray:
    grid = np.empty((rows, len(blocks)))
    for column, block in enumerate(blocks):
        length = len(block)
        grid[:length, column] = block[:, number]
        grid[length:, column] = np.nan
    return grid


def _read_only(grid: np.ndarray) -> np.ndarray:
    view = grid.view()
    view.flags.writeable = False
    return view
