"""Every SMA path restarts its running sum at the same blocks and agrees bit for bit past them.

``rolling_mean_nb`` restarts the compensated running sum at every block of
``SMA_BLOCK_BARS`` bars, a window before the block, so that blocks are independent chains of
additions (the fused crossover runs two side by side). The property tests elsewhere use
series shorter than a block; these use several blocks, windows up to and beyond a block, and
panels whose symbols end at different bars.
"""

from __future__ import annotations

import numpy as np
import pytest

from marketbot.strategies.indicators_nb import (
    SMA_BLOCK_BARS,
    crossed_above_nb,
    rolling_mean_nb,
    rolling_means_nb,
    sma_crossover_signals_nb,
)
from marketbot.strategies.panel_indicators import rolling_mean_panel_nb, sma_crossover_panel_nb

BLOCK = SMA_BLOCK_BARS
WINDOW_PAIRS = [
    (1, 2), (10, 50), (300, 1_000), (BLOCK - 1, BLOCK), (BLOCK, BLOCK + 1), (5_000, 20_000),
]  # fmt: skip
LENGTHS = [BLOCK - 1, BLOCK, 3 * BLOCK, 4 * BLOCK + 7, 6 * BLOCK + 100]


def random_walk(length: int, seed: int) -> np.ndarray:
    return 100.0 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0.0, 0.01, length)))


@pytest.mark.parametrize("length", LENGTHS)
def test_sma_crossover_when_series_spans_blocks_equals_crossings_of_the_averages(
    length: int,
) -> None:
    values = random_walk(length, length)
    for fast_window, slow_window in WINDOW_PAIRS:
        up, down = sma_crossover_signals_nb(values, fast_window, slow_window)
        fast = rolling_mean_nb(values, fast_window)
        slow = rolling_mean_nb(values, slow_window)
        np.testing.assert_array_equal(up, crossed_above_nb(fast, slow))
        np.testing.assert_array_equal(down, crossed_above_nb(slow, fast))
        if slow_window <= 1_000:  # short windows cross often: the check compared something
            assert up.sum() > 3


@pytest.mark.parametrize("length", LENGTHS)
def test_rolling_means_when_series_spans_blocks_are_bit_identical_per_window(length: int) -> None:
    values = random_walk(length, length + 1)
    windows = [1, 7, 50, 1_000, BLOCK, BLOCK + 1, 20_000]
    means = rolling_means_nb(values, np.array(windows, dtype=np.int64))
    for row, window in enumerate(windows):
        assert means[row].tobytes() == rolling_mean_nb(values, window).tobytes()


def test_rolling_mean_when_past_the_first_block_is_the_mean_restarted_a_window_before() -> None:
    values = random_walk(4 * BLOCK, 3)
    window = 50
    means = rolling_mean_nb(values, window)
    for start in (BLOCK, 2 * BLOCK, 3 * BLOCK):
        origin = start - window + 1
        # The series as if it began a window before the block: its first block's averages.
        restarted = rolling_mean_nb(values[origin : origin + BLOCK], window)
        assert means[start : origin + BLOCK].tobytes() == restarted[start - origin :].tobytes()
    # So a bar's average does not depend on how long the series is.
    assert rolling_mean_nb(values[: 2 * BLOCK + 5], window).tobytes() == (
        means[: 2 * BLOCK + 5].tobytes()
    )
    # And it is still the window's mean, to rounding.
    expected = np.convolve(values, np.ones(window), "valid") / window
    np.testing.assert_allclose(means[window - 1 :], expected, rtol=1e-13)


@pytest.mark.parametrize(("fast_window", "slow_window"), WINDOW_PAIRS)
def test_panel_sma_when_symbols_span_blocks_equals_each_symbol_alone(
    fast_window: int, slow_window: int
) -> None:
    length = 3 * BLOCK + 11
    lengths = (length, length - 5, BLOCK + 3)
    panel = np.full((length, 3), np.nan)
    for column, bars in enumerate(lengths):
        panel[:bars, column] = random_walk(bars, column)
    up, down = sma_crossover_panel_nb(panel, fast_window, slow_window)
    means = rolling_mean_panel_nb(panel, slow_window)
    for column, bars in enumerate(lengths):
        own = np.ascontiguousarray(panel[:bars, column])
        own_up, own_down = sma_crossover_signals_nb(own, fast_window, slow_window)
        np.testing.assert_array_equal(up[:bars, column], own_up)
        np.testing.assert_array_equal(down[:bars, column], own_down)
        assert means[:bars, column].tobytes() == rolling_mean_nb(own, slow_window).tobytes()
        assert not up[bars:, column].any()
