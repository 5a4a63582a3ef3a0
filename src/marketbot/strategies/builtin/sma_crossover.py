"""Moving-average crossover: long while the fast SMA of the close is above the slow one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from marketbot.core.bar_panel import PanelBars
from marketbot.core.errors import ConfigError
from marketbot.strategies.base import GridSignals, Parameter, Signals, Strategy
from marketbot.strategies.indicators import (
    grid_kernel,
    rolling_mean_rows,
    sma_crossover_signals_nb,
)
from marketbot.strategies.indicators_nb import sma_crossover_grid_nb
from marketbot.strategies.panel import PanelSignals
from marketbot.strategies.panel_indicators import sma_crossover_panel_nb


class SmaCrossover(Strategy):
    """Enter long when the fast SMA crosses above the slow SMA; exit when it crosses below.

    With ``short=true`` the downward cross also opens a short, closed by the upward cross.
    """

    name: ClassVar[str] = "sma_crossover"
    description: ClassVar[str] = "fast SMA of the close crossing the slow SMA"
    allows_short: ClassVar[bool] = True
    parameters: ClassVar[tuple[Parameter, ...]] = (
        Parameter("fast", 10, low=2, high=500, description="bars in the fast moving average"),
        Parameter("slow", 30, low=3, high=2000, description="bars in the slow moving average"),
        Parameter("short", False, description="also trade the downward cross short"),
    )

    def check_params(self, params: Mapping[str, Any]) -> None:
        """The fast average must be shorter than the slow one."""
        if params["fast"] >= params["slow"]:
            raise ConfigError(
                f"sma_crossover: fast ({params['fast']}) must be less than slow ({params['slow']})"
            )

    def warmup_bars(self, params: Mapping[str, Any]) -> int:
        """The slow average is defined from bar slow - 1 and a cross needs the bar before."""
        return int(params["slow"])

    def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
        """Crosses of the fast SMA over and under the slow SMA."""
        close = frame["close"].to_numpy(dtype=np.float64)
        up, down = sma_crossover_signals_nb(close, int(params["fast"]), int(params["slow"]))
        if params["short"]:
            return Signals(up, down, entries_short=down, exits_short=up)
        return Signals(up, down)

    def panel_signals(self, bars: PanelBars, params: Mapping[str, Any]) -> PanelSignals:
        """The crosses of every symbol of a portfolio at once, column by column as signals()."""
        fast, slow = int(params["fast"]), int(params["slow"])
        up, down = sma_crossover_panel_nb(bars.close, fast, slow)
        if params["short"]:
            return PanelSignals(up, down, entries_short=down, exits_short=up)
        return PanelSignals(up, down)

    def grid_signals(self, combinations: Sequence[Mapping[str, Any]]) -> GridSignals | None:
        """The fast grid's plan, long only: the two averages, each window computed once."""
        if any(params["short"] for params in combinations):
            return None
        keys = np.array([[params["fast"], params["slow"]] for params in combinations])
        return GridSignals(
            kernel=grid_kernel(sma_crossover_grid_nb),
            indicators=(rolling_mean_rows, rolling_mean_rows),
            keys=keys.astype(np.int64).reshape(len(combinations), 2),
            values=np.empty((len(combinations), 0), dtype=np.float64),
        )
