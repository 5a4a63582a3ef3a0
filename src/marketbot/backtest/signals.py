"""A strategy's signals shaped for the kernels: arrays of the right dtype, warm-up masked.

The strategy's own output is checked and converted by ``Strategy.compute_signals``; here the
warm-up is masked and the optional outputs get their defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from marketbot.backtest.config import BacktestConfig
from marketbot.backtest.kernel import KernelSignals
from marketbot.strategies.base import Signals, Strategy


@dataclass(frozen=True, slots=True)
class PreparedSignals:
    """A strategy's signals for a frame, with the warm-up masked, ready for the kernel."""

    kernel: KernelSignals
    tag_names: tuple[str, ...]
    allow_short: bool
    rank: np.ndarray | None = None


def prepare_signals(
    strategy: Strategy, frame: pd.DataFrame, params: Mapping[str, Any], config: BacktestConfig
) -> PreparedSignals:
    """Compute the strategy's signals and shape them for the kernel, warm-up masked.

    Raises:
        StrategyError: the strategy crashed or broke the contract (see ``compute_signals``).
    """
    raw = strategy.compute_signals(frame, params)
    length = len(frame)
    warmup = min(strategy.compute_warmup(params), length)
    has_short = raw.entries_short is not None
    allow_short = has_short if config.allow_short is None else config.allow_short and has_short
    entries_short, exits_short = _short_arrays(raw, warmup, length)
    kernel = KernelSignals(
        entries_long=_bool_array(raw.entries_long, warmup),
        exits_long=_bool_array(raw.exits_long, warmup),
        entries_short=entries_short,
        exits_short=exits_short,
        size_fraction=_float_array(raw.size_fraction, length),
        tag=_tag_array(raw, length),
    )
    rank = None if raw.rank is None else np.asarray(raw.rank, dtype=np.float64)
    return PreparedSignals(
        kernel=kernel, tag_names=raw.tag_names, allow_short=allow_short, rank=rank
    )


def _bool_array(values: np.ndarray | None, warmup: int, length: int = 0) -> np.ndarray:
    if values is None:
        return np.zeros(length, dtype=np.bool_)
    if (
        values.dtype == np.bool_
        and values.flags.c_contiguous
        and values.flags.writeable  # the kernel's usual argument type: no second compilation
        and not values[:warmup].any()
    ):
        # Already what the kernel takes, with nothing to mask: used as is (nothing writes
        # into kernel signals), which saves a copy per output.
        return values
    array = np.array(values, dtype=np.bool_, copy=True)
    array[:warmup] = False
    return array


def _short_arrays(raw: Signals, warmup: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    if raw.entries_short is None and raw.exits_short is None:
        never = np.zeros(length, dtype=np.bool_)  # one all-False array serves both
        return never, never
    return (
        _bool_array(raw.entries_short, warmup, length),
        _bool_array(raw.exits_short, warmup, length),
    )


def _float_array(values: np.ndarray | None, length: int) -> np.ndarray:
    if values is None:
        return _constant(np.float64(np.nan), length)
    return np.ascontiguousarray(values, dtype=np.float64)


def _tag_array(signals: Signals, length: int) -> np.ndarray:
    if signals.tag is None:
        return _constant(np.int64(-1), length)
    return np.ascontiguousarray(signals.tag, dtype=np.int64)


def _constant(value: np.float64 | np.int64, length: int) -> np.ndarray:
    """``length`` copies of ``value`` as a read-only view of one (its stride is 0).

    The defaults of the optional outputs are read only where an entry fires; writing them
    out took 16 MB and 0.5 ms for 1M bars. The kernel reads the view as it reads an array.
    """
    return np.broadcast_to(value, (length,))
