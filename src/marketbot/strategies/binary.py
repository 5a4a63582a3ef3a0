"""The contract of a binary (prediction market) strategy: one market's book in, legs out.

A binary market has two outcome tokens (k = 0, 1), each paying 1 or 0 (or a split payout) at
the market's end. A :class:`BinaryStrategy` sees one market at a time: a frame of its events
(distinct snapshot times before the end, UTC index) with, per outcome k, ``bid_k``,
``bid_size_k``, ``ask_k``, ``ask_size_k``, ``mid_k`` and ``valid_k``, and ``book.attrs``
holding ``slug``, ``labels`` (the two outcome names), ``start``, ``end`` and the run's
``fee_model`` and ``fee_rate`` (so a strategy can price its own costs). It returns
:class:`BinarySignals`: which outcomes to buy and to sell at each event, as (events x 2)
arrays. Signals at event t become market orders at the market's next event (the backtest
engine's business, backtest/binary_engine.py and binary_account.py); the strategy never
fills anything.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import numpy as np
import pandas as pd

from marketbot.core.errors import ConfigError, StrategyError
from marketbot.strategies.base import Signals, Strategy
from marketbot.strategies.checks import describe_value

OUTCOMES: Final = 2
BOOK_FIELDS: Final = ("bid", "bid_size", "ask", "ask_size", "mid", "valid")


@dataclass(frozen=True)
class BinarySignals:
    """A binary strategy's output for one market: arrays of (events x 2), column k = outcome k.

    Attributes:
        entries: True where outcome k should be bought at the next event. Outcomes flagged at
            the same event form one group, filled together or not at all.
        exits: True where the open group holding outcome k should be sold at the next event.
        shares: Shares to buy per outcome where an entry fires; NaN (or None for all) means
            the run's sizing decides.
        tag: A label reported with the trades of every entry, or None.
    """

    entries: Any
    exits: Any
    shares: Any = None
    tag: str | None = None


class BinaryStrategy(Strategy):
    """Base class of strategies that trade the two outcome tokens of binary markets.

    Only :meth:`signals` is required, taking one market's book (see the module docstring).
    Parameters, :meth:`check_params` and the loader work as for any :class:`Strategy`.
    """

    instrument: ClassVar[str] = "binary"

    @abstractmethod
    def signals(  # type: ignore[override]  # a binary strategy reads a book, not bars
        self, book: pd.DataFrame, params: Mapping[str, Any]
    ) -> BinarySignals:
        """Compute entries and exits for every event of one market at once.

        Args:
            book: One market's events (UTC index) and both outcomes' top of book.
            params: Validated parameters, every declared one present.
        """

    def compute_signals(  # type: ignore[override]  # see signals()
        self, book: pd.DataFrame, params: Mapping[str, Any]
    ) -> BinarySignals:
        """Call :meth:`signals` and hold its output to the contract.

        Returns:
            Signals whose ``entries`` and ``exits`` are bool and ``shares`` float64 arrays
            of shape (events, 2) (``shares`` NaN where the run's sizing applies).

        Raises:
            StrategyError: :meth:`signals` crashed or returned something else.
            ConfigError: raised by :meth:`signals` itself, passed on unchanged.
        """
        try:
            result = self.signals(book, params)
        except ConfigError:
            raise
        except Exception as exc:
            raise self._crashed("signals", exc) from exc
        return checked_binary_signals(self.label, result, len(book))

    def compute_panel_signals(self, bars: Any, params: Mapping[str, Any]) -> None:
        """Binary strategies have no portfolio panel hook."""
        return None

    def compute_grid_signals(self, combinations: Any) -> None:
        """Binary strategies have no fast-grid hook: the optimiser backtests one by one."""
        return None


def is_binary(strategy: Strategy) -> bool:
    """Whether ``strategy`` trades binary markets (a :class:`BinaryStrategy`)."""
    return isinstance(strategy, BinaryStrategy)


def checked_binary_signals(label: str, result: object, events: int) -> BinarySignals:
    """``result`` as bool/float arrays of shape (events, 2), or a StrategyError naming why."""
    if not isinstance(result, BinarySignals):
        hint = " (use BinarySignals for a binary strategy)" if isinstance(result, Signals) else ""
        raise StrategyError(
            f"{label}: signals() returned {describe_value(result)}{hint}, expected "
            "BinarySignals(entries, exits, shares=None, tag=None)"
        )
    entries = _flags(label, "entries", result.entries, events)
    exits = _flags(label, "exits", result.exits, events)
    if result.shares is None:
        shares = np.full((events, OUTCOMES), np.nan)
    else:
        shares = _array(label, "shares", result.shares, events).astype(np.float64)
        wanted = shares[entries]
        if not (np.isnan(wanted) | (np.isfinite(wanted) & (wanted >= 0.0))).all():
            raise StrategyError(
                f"{label}: signals() returned shares that are negative or infinite where an "
                "entry fires, expected a number of shares >= 0 or NaN for the run's sizing"
            )
    if result.tag is not None and not isinstance(result.tag, str):
        raise StrategyError(
            f"{label}: signals() returned tag {describe_value(result.tag)}, expected text"
        )
    return BinarySignals(entries, exits, shares, result.tag)


def _array(label: str, name: str, values: object, events: int) -> np.ndarray:
    array = np.asarray(values.to_numpy() if isinstance(values, pd.DataFrame) else values)
    if array.shape != (events, OUTCOMES):
        raise StrategyError(
            f"{label}: signals() returned {name} of shape {array.shape}, expected "
            f"({events}, {OUTCOMES}): one row per event, one column per outcome"
        )
    return array


def _flags(label: str, name: str, values: object, events: int) -> np.ndarray:
    array = _array(label, name, values, events)
    if array.dtype == np.bool_:
        return array
    if array.dtype.kind not in "biuf" or not np.isin(array, (0, 1)).all():
        raise StrategyError(
            f"{label}: signals() returned {name} of {array.dtype}, expected True/False or 0/1"
        )
    return array.astype(np.bool_)
