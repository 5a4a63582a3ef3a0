"""Overfitting checks for an optimisation: the deflated Sharpe ratio and the PBO.

Is the best combination an optimiser found better than luck? :func:`deflated_sharpe_ratio`
(Bailey and Lopez de Prado 2014) is the probability that its true Sharpe ratio beats the best
of N skill-less trials; :func:`probability_of_backtest_overfitting` (Bailey, Borwein, Lopez
de Prado and Zhu 2017) is how often the in-sample best ranks in the bottom half out-of-sample.

All pure (numpy and ``statistics.NormalDist``, no I/O), in per-period Sharpe units: mean / std
(ddof 1) of per-bar returns, not annualised (divide an annualised Sharpe ratio by
sqrt(periods per year) and an annualised variance of Sharpe ratios by periods per year).
Degenerate input never gives NaN: the result has ``valid=False``, a ``note`` saying why, and
the worst value (DSR 0.0, PBO 1.0), so a gate that forgets ``valid`` fails closed.
docs/overfitting.md explains both diagnostics and how to read them.
The implementations live in :mod:`marketbot.optimize.deflated_sharpe` and
:mod:`marketbot.optimize.pbo`; this module is their one public entry point.
"""

from __future__ import annotations

from marketbot.optimize.deflated_sharpe import (
    EULER_MASCHERONI,
    DeflatedSharpe,
    ReturnMoments,
    deflated_sharpe_from_moments,
    deflated_sharpe_from_returns,
    deflated_sharpe_ratio,
    expected_maximum_sharpe,
    probabilistic_sharpe_ratio,
    return_moments,
)
from marketbot.optimize.pbo import (
    DEFAULT_MAX_COMBINATIONS,
    PBO_TOP_COMBINATIONS,
    BlockSums,
    PBOResult,
    PerformanceMetric,
    block_sums,
    mean_return,
    pbo_from_block_sums,
    probability_of_backtest_overfitting,
    sharpe,
)

__all__ = [
    "DEFAULT_MAX_COMBINATIONS",
    "EULER_MASCHERONI",
    "PBO_TOP_COMBINATIONS",
    "BlockSums",
    "DeflatedSharpe",
    "PBOResult",
    "PerformanceMetric",
    "ReturnMoments",
    "block_sums",
    "deflated_sharpe_from_moments",
    "deflated_sharpe_from_returns",
    "deflated_sharpe_ratio",
    "expected_maximum_sharpe",
    "mean_return",
    "pbo_from_block_sums",
    "probabilistic_sharpe_ratio",
    "probability_of_backtest_overfitting",
    "return_moments",
    "sharpe",
]
