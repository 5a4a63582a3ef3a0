"""The panel indicators are, column by column, bit for bit the one-symbol indicators."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from marketbot.strategies.indicators import (
    rate_of_change_nb,
    rolling_mean_nb,
    rolling_std_nb,
    sma_crossover_signals_nb,
)
from marketbot.strategies.panel_indicators import (
    rate_of_change_panel_nb,
    rolling_mean_panel_nb,
    rolling_std_panel_nb,
    sma_crossover_panel_nb,
)


@st.composite
def panels(draw: st.DrawFn) -> tuple[np.ndarray, list[int]]:
    """Random-walk closes (bars x symbols), shorter symbols padded with NaN below."""
    rows = draw(st.integers(1, 60))
    lengths = draw(st.lists(st.integers(1, rows), min_size=1, max_size=5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, (rows, len(lengths))), axis=0))
    for column, length in enumerate(lengths):
        values[length:, column] = np.nan
    return values, lengths


@given(panels(), st.integers(1, 20), st.integers(1, 30))
def test_panel_indicators_when_random_equal_the_one_symbol_ones_per_column(
    panel: tuple[np.ndarray, list[int]], window: int, other_window: int
) -> None:
    values, lengths = panel
    fast, slow = sorted((window, other_window + window))  # fast < slow, as the strategy checks
    up, down = sma_crossover_panel_nb(values, fast, slow)
    mean = rolling_mean_panel_nb(values, window)
    std = rolling_std_panel_nb(values, window)
    roc = rate_of_change_panel_nb(values, window)
    for column, length in enumerate(lengths):
        own = np.ascontiguousarray(values[:length, column])
        own_up, own_down = sma_crossover_signals_nb(own, fast, slow)
        np.testing.assert_array_equal(up[:length, column], own_up)
        np.testing.assert_array_equal(down[:length, column], own_down)
        np.testing.assert_array_equal(mean[:length, column], rolling_mean_nb(own, window))
        np.testing.assert_array_equal(std[:length, column], rolling_std_nb(own, window))
        np.testing.assert_array_equal(roc[:length, column], rate_of_change_nb(own, window))
