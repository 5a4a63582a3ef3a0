"""Causal indicators (the value at bar t uses bars 0..t only), and the grid hook's helpers.

The compiled indicators live in :mod:`marketbot.strategies.indicators_nb` and are re-exported
here, the strategies' import point. Each leaves NaN where its window is not yet full, so
comparisons there are False and the strategies need no special cases at the start of the
data.

For ``Strategy.grid_signals`` (the optimiser's fast grid): :func:`grid_kernel` turns a
compiled per-combination signal function into the kernel the grid calls, and the
``*_rows`` functions compute an indicator for many parameter values at once, one row per
value, as the grid asks for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from numba import cfunc

from marketbot.strategies.indicators_nb import (
    GRID_SIGNALS_SIGNATURE,
    crossed_above_nb,
    kahan_add_nb,
    rate_of_change_nb,
    rolling_mean_nb,
    rolling_means_nb,
    rolling_std_nb,
    rolling_stds_nb,
    sma_crossover_signals_nb,
)

__all__ = [
    "GRID_SIGNALS_SIGNATURE",
    "close_rows",
    "crossed_above_nb",
    "crossed_below",
    "grid_kernel",
    "kahan_add_nb",
    "prior_high_rows",
    "rate_of_change_nb",
    "rate_of_change_rows",
    "rolling_mean_nb",
    "rolling_mean_rows",
    "rolling_means_nb",
    "rolling_std_nb",
    "rolling_std_rows",
    "rolling_stds_nb",
    "sma_crossover_signals_nb",
]

_KERNELS: dict[Callable[..., Any], Any] = {}


def crossed_below(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True where ``a`` goes from at or above ``b`` to below it."""
    return crossed_above_nb(b, a)


def grid_kernel(function: Any) -> Any:
    """The grid kernel of a compiled signal function: a numba ``cfunc`` of its signature.

    Args:
        function: An ``@njit`` function with the arguments of
            ``indicators_nb.GRID_SIGNALS_SIGNATURE`` (its docstring says what it fills).

    Returns:
        The same code as a ``cfunc`` of that signature, made once per process (loaded from
        numba's cache after the first build). The grid's compiled loop takes any such
        kernel as one argument type, so it compiles once for every strategy.
    """
    kernel = _KERNELS.get(function)
    if kernel is None:
        kernel = cfunc(GRID_SIGNALS_SIGNATURE, cache=True)(function.py_func)
        _KERNELS[function] = kernel
    return kernel


def _close(frame: pd.DataFrame) -> np.ndarray:
    return np.ascontiguousarray(frame["close"].to_numpy(dtype=np.float64))


def rolling_mean_rows(frame: pd.DataFrame, windows: np.ndarray) -> np.ndarray:
    """``rolling_mean_nb`` of the close for each window, one row each (four windows a pass)."""
    return np.asarray(rolling_means_nb(_close(frame), np.asarray(windows, dtype=np.int64)))


def rolling_std_rows(frame: pd.DataFrame, windows: np.ndarray) -> np.ndarray:
    """``rolling_std_nb`` of the close for each window, one row each (windows on all cores)."""
    return np.asarray(rolling_stds_nb(_close(frame), np.asarray(windows, dtype=np.int64)))


def rate_of_change_rows(frame: pd.DataFrame, lookbacks: np.ndarray) -> np.ndarray:
    """``rate_of_change_nb`` of the close for each lookback, one row each."""
    close = _close(frame)
    out = np.empty((len(lookbacks), len(close)), dtype=np.float64)
    for row, lookback in enumerate(np.asarray(lookbacks).tolist()):
        out[row] = rate_of_change_nb(close, int(lookback))
    return out


def prior_high_rows(frame: pd.DataFrame, lookbacks: np.ndarray) -> np.ndarray:
    """Momentum's breakout level for each lookback, one row each, computed as it does.

    The highest close of the previous ``lookback`` bars, NaN until there are that many.
    """
    shifted = pd.Series(_close(frame)).shift(1)
    out = np.empty((len(lookbacks), len(shifted)), dtype=np.float64)
    for row, lookback in enumerate(np.asarray(lookbacks).tolist()):
        out[row] = shifted.rolling(int(lookback), min_periods=int(lookback)).max().to_numpy()
    return out


def close_rows(frame: pd.DataFrame, keys: np.ndarray) -> np.ndarray:
    """The close, once per key (a slot that takes no parameter has the key 0)."""
    return np.repeat(_close(frame)[None, :], len(keys), axis=0)
