"""Mean reversion on Bollinger bands: buy a close below the lower band, sell at the mean."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from marketbot.core.bar_panel import PanelBars
from marketbot.strategies.base import GridSignals, Parameter, Signals, Strategy
from marketbot.strategies.indicators import (
    close_rows,
    grid_kernel,
    rolling_mean_nb,
    rolling_mean_rows,
    rolling_std_nb,
    rolling_std_rows,
)
from marketbot.strategies.indicators_nb import mean_reversion_grid_nb
from marketbot.strategies.panel import PanelSignals
from marketbot.strategies.panel_indicators import rolling_mean_panel_nb, rolling_std_panel_nb


class MeanReversion(Strategy):
    """Enter long when the close falls below the lower Bollinger band (mean - k x std).

    Exit when the close gets back above the middle band (the moving average) plus
    ``exit_std`` standard deviations (0: the mean itself).
    """

    name: ClassVar[str] = "mean_reversion"
    description: ClassVar[str] = "Bollinger-band mean reversion"
    parameters: ClassVar[tuple[Parameter, ...]] = (
        Parameter("window", 20, low=2, high=1000, description="bars in the mean and std"),
        Parameter("num_std", 2.0, low=0.1, high=10.0, description="band width in std devs"),
        Parameter("exit_std", 0.0, low=-10.0, high=10.0, description="exit at mean + k std"),
    )

    def warmup_bars(self, params: Mapping[str, Any]) -> int:
        """The bands are defined from bar ``window - 1``."""
        return int(params["window"]) - 1

    def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
        """Close below the lower band enters; close above mean + exit_std x std exits."""
        close = frame["close"].to_numpy(dtype=np.float64)
        window = int(params["window"])
        mean = rolling_mean_nb(close, window)
        std = rolling_std_nb(close, window)
        entries = close < mean - params["num_std"] * std
        exits = close > mean + params["exit_std"] * std
        return Signals(entries, exits)

    def panel_signals(self, bars: PanelBars, params: Mapping[str, Any]) -> PanelSignals:
        """Every symbol of a portfolio at once, column by column as signals()."""
        close = bars.close
        window = int(params["window"])
        mean = rolling_mean_panel_nb(close, window)
        std = rolling_std_panel_nb(close, window)
        entries = close < mean - params["num_std"] * std
        exits = close > mean + params["exit_std"] * std
        return PanelSignals(entries, exits)

    def grid_signals(self, combinations: Sequence[Mapping[str, Any]]) -> GridSignals:
        """The fast grid's plan: the mean and std of each window once, the close, two numbers."""
        count = len(combinations)
        windows = [int(params["window"]) for params in combinations]
        keys = np.array([[window, window, 0] for window in windows], dtype=np.int64)
        values = [[params["num_std"], params["exit_std"]] for params in combinations]
        return GridSignals(
            kernel=grid_kernel(mean_reversion_grid_nb),
            indicators=(rolling_mean_rows, rolling_std_rows, close_rows),
            keys=keys.reshape(count, 3),
            values=np.array(values, dtype=np.float64).reshape(count, 2),
        )
