"""The fast grid's per-combination statistics row, from the shared metric reductions.

The fast grid keeps neither the equity curve nor the trades of a combination. It feeds
``core.metrics_nb``'s equity state one bar at a time (re-exported here for it) and reduces its
reused trade buffers with ``core.metrics_nb.trade_sums_nb``: the very functions
``compute_metrics`` calls, so the grid's metrics equal the engine's by construction.

The statistics of one combination are a row of ``NUM_STATS`` floats; the ``STAT_*`` names
are its columns.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numba import njit

from marketbot.core.metrics_nb import (
    EquityState,
    equity_stats_finish_nb,
    equity_stats_mark_nb,
    equity_stats_start_nb,
    equity_stats_unchanged_nb,
)
from marketbot.core.metrics_nb import trade_sums_nb as sums_of_trades_nb

__all__ = [
    "NUM_STATS",
    "EquityState",
    "equity_stats_finish_nb",
    "equity_stats_mark_nb",
    "equity_stats_start_nb",
    "equity_stats_unchanged_nb",
    "trade_sums_nb",
]

STAT_FINAL_EQUITY: Final = 0
STAT_FINITE: Final = 1
STAT_RETURN_MEAN: Final = 2
STAT_RETURN_STD: Final = 3
STAT_DOWNSIDE: Final = 4
STAT_MAX_DEPTH: Final = 5
STAT_LONGEST_DRAWDOWN: Final = 6
STAT_EXPOSED_BARS: Final = 7
STAT_TOTAL_FEES: Final = 8
STAT_NUM_TRADES: Final = 9
STAT_WINS: Final = 10
STAT_GROSS_PROFIT: Final = 11
STAT_GROSS_LOSS: Final = 12
STAT_PNL_MEAN: Final = 13
STAT_PNL_STD: Final = 14
STAT_PNL_PCT_MEAN: Final = 15
STAT_PNL_PCT_MAX: Final = 16
STAT_PNL_PCT_MIN: Final = 17
STAT_HOLD_MEAN: Final = 18
NUM_STATS: Final = 19


@njit(cache=True, nogil=True)
def trade_sums_nb(
    pnl: np.ndarray, pnl_pct: np.ndarray, count: int, scratch: np.ndarray, out: np.ndarray
) -> None:
    """Write the trade sums of the first ``count`` trades into the ``STAT_*`` columns of ``out``.

    Wins, gross profit and loss, the P&L's mean and std (-1 where the SQN stays 0), the
    P&L percent's mean, best and worst; clears ``STAT_FINITE`` when a P&L is not finite.
    ``scratch`` is unused (kept for the caller's signature).
    """
    finite, wins, gross_profit, gross_loss, mean, std, pct_mean, best, worst = sums_of_trades_nb(
        pnl, pnl_pct, count
    )
    out[STAT_WINS] = wins
    out[STAT_GROSS_PROFIT] = gross_profit
    out[STAT_GROSS_LOSS] = gross_loss
    out[STAT_PNL_MEAN] = mean
    out[STAT_PNL_STD] = std
    out[STAT_PNL_PCT_MEAN] = pct_mean
    out[STAT_PNL_PCT_MAX] = best
    out[STAT_PNL_PCT_MIN] = worst
    if not finite:
        out[STAT_FINITE] = 0.0
