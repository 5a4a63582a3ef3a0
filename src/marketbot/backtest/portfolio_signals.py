"""A portfolio's signals as (bars x symbols) kernel grids on the run's one time axis.

Two paths give the same grids. When the strategy has a panel hook for its own signals
(``Strategy.compute_panel_signals``), it computes every symbol at once on the
:class:`~marketbot.core.bar_panel.PanelBars`, whose columns are each symbol's own bars; the
warm-up is masked on each symbol's first bars and the columns are laid on the time axis.
Otherwise each symbol's signals are computed on its own frame (``prepare_signals``) and
written into its column. Either way a symbol's indicators only ever see its own bars.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from marketbot.backtest.config import BacktestConfig
from marketbot.backtest.kernel import KernelSignals
from marketbot.backtest.signals import prepare_signals
from marketbot.core.bar_panel import PanelBars
from marketbot.core.errors import DataError
from marketbot.strategies.base import Strategy
from marketbot.strategies.panel import PanelSignals


@dataclass(frozen=True)
class TimeAxis:
    """The union of the symbols' bar times, and where each symbol's bars sit on it.

    Attributes:
        index: The bar times (UTC, ascending).
        rows: Each symbol's rows on the axis, in its own bar order; None when every symbol
            has exactly these bar times (a shared calendar), so that own bar r is row r.
    """

    index: pd.DatetimeIndex
    rows: tuple[np.ndarray, ...] | None

    @classmethod
    def of(cls, bars: PanelBars) -> TimeAxis:
        """The axis of ``bars``: one symbol's times on a shared calendar, else their union."""
        times = [index.asi8 for index in bars.indexes]
        # One shared calendar (the usual case) needs no union and no row lookup per symbol.
        axis = times[0] if bars.shared_calendar else np.unique(np.concatenate(times))
        index = pd.DatetimeIndex(axis, tz="UTC").as_unit("ns")
        if bars.shared_calendar:
            return cls(index=index, rows=None)
        return cls(index=index, rows=tuple(np.searchsorted(axis, own) for own in times))

    def place(self, own: np.ndarray, fill: object) -> np.ndarray:
        """A (bars x symbols) grid of own-bar columns laid on the axis, ``fill`` elsewhere."""
        if self.rows is None:
            return own
        grid = np.full((len(self.index), own.shape[1]), fill, dtype=own.dtype)
        for column, rows in enumerate(self.rows):
            grid[rows, column] = own[: len(rows), column]
        return grid


@dataclass(frozen=True, slots=True)
class PortfolioSignals:
    """Every symbol's signals on the time axis, ready for the portfolio kernel."""

    kernel: KernelSignals
    priority: np.ndarray
    allow_short: bool
    tag_names: tuple[str, ...]


def portfolio_signals(
    strategy: Strategy,
    frames: Mapping[str, pd.DataFrame],
    bars: PanelBars,
    axis: TimeAxis,
    params: Mapping[str, Any],
    config: BacktestConfig,
) -> PortfolioSignals:
    """The strategy's signals for every symbol, warm-up masked, on ``axis``.

    Raises:
        StrategyError: the strategy crashed or broke the contract.
        DataError: per symbol, the strategy's tag names differ between symbols.
    """
    panel = strategy.compute_panel_signals(bars, params)
    if panel is None:
        return _per_symbol(strategy, frames, axis, params, config)
    return _from_panel(panel, strategy.compute_warmup(params), axis, config)


def _from_panel(
    panel: PanelSignals, warmup: int, axis: TimeAxis, config: BacktestConfig
) -> PortfolioSignals:
    """``prepare_signals`` on the whole panel: the same masking and defaults, per column."""
    shape = (len(axis.index), panel.entries_long.shape[1])

    def flags(values: np.ndarray | None) -> np.ndarray:
        if values is None:
            return never
        if _kernel_ready(values) and not values[:warmup].any():
            return axis.place(values, False)  # nothing to mask, and nothing writes to it
        masked = np.array(values, dtype=np.bool_, order="C")  # a copy
        masked[:warmup] = False  # each symbol's own first bars
        return axis.place(masked, False)

    def numbers(values: np.ndarray | None, dtype: type, default: float) -> np.ndarray:
        if values is None:
            return np.full(shape, default, dtype=dtype)
        return axis.place(np.ascontiguousarray(values, dtype=dtype), default)

    never = np.zeros(shape, dtype=np.bool_)
    has_short = panel.entries_short is not None
    kernel = KernelSignals(
        entries_long=flags(panel.entries_long),
        exits_long=flags(panel.exits_long),
        entries_short=flags(panel.entries_short),
        exits_short=flags(panel.exits_short),
        size_fraction=numbers(panel.size_fraction, np.float64, np.nan),
        tag=numbers(panel.tag, np.int64, -1),
    )
    return PortfolioSignals(
        kernel=kernel,
        priority=numbers(panel.rank, np.float64, np.nan),
        allow_short=has_short if config.allow_short is None else config.allow_short and has_short,
        tag_names=panel.tag_names,
    )


def _kernel_ready(values: np.ndarray) -> bool:
    """A bool array of the type the kernel is compiled for (C order, writable)."""
    return bool(values.dtype == np.bool_ and values.flags.c_contiguous and values.flags.writeable)


def _per_symbol(
    strategy: Strategy,
    frames: Mapping[str, pd.DataFrame],
    axis: TimeAxis,
    params: Mapping[str, Any],
    config: BacktestConfig,
) -> PortfolioSignals:
    """Each symbol's ``prepare_signals`` on its own frame, written into its column."""
    shape = (len(axis.index), len(frames))
    arrays = {
        "entries_long": np.zeros(shape, dtype=np.bool_),
        "exits_long": np.zeros(shape, dtype=np.bool_),
        "entries_short": np.zeros(shape, dtype=np.bool_),
        "exits_short": np.zeros(shape, dtype=np.bool_),
        "size_fraction": np.full(shape, np.nan),
        "tag": np.full(shape, -1, dtype=np.int64),
    }
    priority = np.full(shape, np.nan)
    allow_short = False
    tag_names: tuple[str, ...] = ()
    for column, (symbol, frame) in enumerate(frames.items()):
        rows: slice | np.ndarray = slice(None) if axis.rows is None else axis.rows[column]
        prepared = prepare_signals(strategy, frame, params, config)
        for name, grid in arrays.items():
            values = getattr(prepared.kernel, name)
            if _holds_only_default(name, values):
                continue  # the grid already holds the default
            grid[rows, column] = values
        rank = prepared.rank
        if rank is not None:
            priority[rows, column] = rank
        allow_short = allow_short or prepared.allow_short
        if prepared.tag_names and tag_names and prepared.tag_names != tag_names:
            raise DataError(f"{symbol}: the strategy's tag names differ between symbols")
        tag_names = tag_names or prepared.tag_names
    return PortfolioSignals(
        kernel=KernelSignals(**arrays),
        priority=priority,
        allow_short=allow_short,
        tag_names=tag_names,
    )


def _holds_only_default(name: str, values: np.ndarray) -> bool:
    if name in ("entries_short", "exits_short"):
        return not values.any()
    if name == "size_fraction":
        return bool(np.isnan(values).all())
    if name == "tag":
        return bool((values == -1).all())
    return False
