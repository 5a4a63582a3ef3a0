"""Momentum: hold while the rate of change over a lookback is strongly positive."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from marketbot.core.bar_panel import PanelBars
from marketbot.core.errors import ConfigError
from marketbot.strategies.base import GridSignals, Parameter, Signals, Strategy
from marketbot.strategies.indicators import (
    close_rows,
    grid_kernel,
    prior_high_rows,
    rate_of_change_nb,
    rate_of_change_rows,
)
from marketbot.strategies.indicators_nb import momentum_grid_nb
from marketbot.strategies.panel import PanelSignals
from marketbot.strategies.panel_indicators import rate_of_change_panel_nb


class Momentum(Strategy):
    """Enter long when the close has risen more than ``entry_pct`` over ``lookback`` bars.

    Exit when that rate of change falls below ``exit_pct``. A breakout filter
    (``breakout=true``) also requires the close to exceed the highest close of the lookback.
    """

    name: ClassVar[str] = "momentum"
    description: ClassVar[str] = "rate-of-change momentum with an optional breakout filter"
    parameters: ClassVar[tuple[Parameter, ...]] = (
        Parameter("lookback", 20, low=1, high=1000, description="bars in the rate of change"),
        Parameter("entry_pct", 5.0, low=-100.0, high=1000.0, description="ROC % to enter"),
        Parameter("exit_pct", 0.0, low=-100.0, high=1000.0, description="ROC % to exit below"),
        Parameter("breakout", False, description="also require a new lookback-high close"),
    )

    def check_params(self, params: Mapping[str, Any]) -> None:
        """Entering must need more momentum than exiting, or the two signals overlap."""
        if params["exit_pct"] >= params["entry_pct"]:
            raise ConfigError(
                f"momentum: exit_pct ({params['exit_pct']}) must be less than "
                f"entry_pct ({params['entry_pct']})"
            )

    def warmup_bars(self, params: Mapping[str, Any]) -> int:
        """The rate of change is defined from bar ``lookback``."""
        return int(params["lookback"])

    def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
        """Rate-of-change thresholds, optionally gated by a breakout of earlier closes."""
        close = frame["close"].to_numpy(dtype=np.float64)
        lookback = int(params["lookback"])
        roc = rate_of_change_nb(close, lookback)
        entries = roc > params["entry_pct"]
        if params["breakout"]:
            # Highest close of the previous ``lookback`` bars, excluding the current one.
            prior_high = (
                pd.Series(close).shift(1).rolling(lookback, min_periods=lookback).max()
            ).to_numpy()
            entries &= close > prior_high
        exits = roc < params["exit_pct"]
        return Signals(entries, exits)

    def panel_signals(self, bars: PanelBars, params: Mapping[str, Any]) -> PanelSignals:
        """Every symbol of a portfolio at once, column by column as signals()."""
        close = bars.close
        lookback = int(params["lookback"])
        roc = rate_of_change_panel_nb(close, lookback)
        entries = roc > params["entry_pct"]
        if params["breakout"]:
            # pandas' rolling max runs down each column, as on each symbol's Series.
            prior_high = (
                pd.DataFrame(close).shift(1).rolling(lookback, min_periods=lookback).max()
            ).to_numpy()
            entries &= close > prior_high
        exits = roc < params["exit_pct"]
        return PanelSignals(entries, exits)

    def grid_signals(self, combinations: Sequence[Mapping[str, Any]]) -> GridSignals:
        """The fast grid's plan: each lookback's rate of change (and breakout level) once."""
        count = len(combinations)
        keys = np.empty((count, 3), dtype=np.int64)
        for row, params in enumerate(combinations):
            lookback = int(params["lookback"])
            # Without a breakout, the kernel reads neither the breakout level nor the close.
            keys[row] = (lookback, lookback, 0) if params["breakout"] else (lookback, -1, -1)
        values = [[params["entry_pct"], params["exit_pct"]] for params in combinations]
        return GridSignals(
            kernel=grid_kernel(momentum_grid_nb),
            indicators=(rate_of_change_rows, prior_high_rows, close_rows),
            keys=keys,
            values=np.array(values, dtype=np.float64).reshape(count, 2),
        )
