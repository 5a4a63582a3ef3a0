"""binary_momentum: buy the outcome whose mid rose by a threshold; sell shortly before the end."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final

import numpy as np
import pandas as pd

from marketbot.strategies.base import Parameter
from marketbot.strategies.binary import OUTCOMES, BinarySignals, BinaryStrategy

TOLERANCE: Final = 1e-9
_NS_PER_SECOND: Final = 1_000_000_000


class BinaryMomentum(BinaryStrategy):
    """Buy outcome k when its mid rose by ``threshold`` or more over ``lookback_seconds``.

    The rise compares the mid at an event with the last valid mid at or before
    ``lookback_seconds`` earlier. The group is sold at the first event at or after
    ``end - exit_before_end_seconds`` (and no entry is taken from then on); with 0 it is
    held to settlement.
    """

    name: ClassVar[str] = "binary_momentum"
    description: ClassVar[str] = "buy the outcome whose mid rose over a lookback (binary)"
    parameters: ClassVar[tuple[Parameter, ...]] = (
        Parameter("lookback_seconds", 60, low=1, description="seconds the rise is measured over"),
        Parameter("threshold", 0.05, low=0.0, high=1.0, description="rise of the mid, in $"),
        Parameter(
            "exit_before_end_seconds", 60, low=0,
            description="sell this long before the end (0: hold to settlement)",
        ),
    )  # fmt: skip

    def signals(  # type: ignore[override]  # a book in, BinarySignals out
        self, book: pd.DataFrame, params: Mapping[str, Any]
    ) -> BinarySignals:
        """Entries where a mid rose enough; exits from the exit time before the end on."""
        times = pd.DatetimeIndex(book.index).as_unit("ns").asi8
        lookback = int(params["lookback_seconds"]) * _NS_PER_SECOND
        earlier = np.searchsorted(times, times - lookback, side="right") - 1
        entries = np.zeros((len(book), OUTCOMES), dtype=bool)
        for k in range(OUTCOMES):
            mid = book[f"mid_{k}"].to_numpy(dtype=np.float64)
            last_mid = pd.Series(mid).ffill().to_numpy()
            before = np.where(earlier >= 0, last_mid[np.maximum(earlier, 0)], np.nan)
            with np.errstate(invalid="ignore"):
                entries[:, k] = mid - before >= float(params["threshold"]) - TOLERANCE
        exits = np.zeros_like(entries)
        lead = int(params["exit_before_end_seconds"])
        if lead > 0:
            end = pd.Timestamp(book.attrs["end"]).value
            late = times >= end - lead * _NS_PER_SECOND
            entries[late] = False
            exits[late] = True
        return BinarySignals(entries, exits)
