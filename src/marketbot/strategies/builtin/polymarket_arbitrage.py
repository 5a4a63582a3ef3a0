"""polymarket_arbitrage: buy both outcomes when together they cost less than the $1 they pay."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final

import numpy as np
import pandas as pd

from marketbot.strategies.base import Parameter
from marketbot.strategies.binary import BinarySignals, BinaryStrategy

# Comparisons allow this much float noise, so a threshold met exactly on paper is met.
TOLERANCE: Final = 1e-9


class PolymarketArbitrage(BinaryStrategy):
    """Buy one share of each outcome when the pair costs less than 1 by a margin; hold it.

    With both quotes valid, a pair costs ask_0 + ask_1 plus the taker fee on one share of
    each (the run's fee model); ``pairs = min(ask_size_0, ask_size_1)`` and the liquidity
    is ``pairs x min(ask_0, ask_1)``: the USD the thinner leg takes at prices clearing the
    margin. The signal fires when cost < 1 - margin / 100 and liquidity >= min_liquidity;
    the pair is held to settlement, where exactly one outcome (or a split) pays $1 a pair.
    """

    name: ClassVar[str] = "polymarket_arbitrage"
    description: ClassVar[str] = "buy both outcomes when their asks sum below 1 (binary)"
    parameters: ClassVar[tuple[Parameter, ...]] = (
        Parameter(
            "min_profit_margin", 2.0, low=0.0, high=100.0,
            description="percent below $1 a pair must cost, fees included",
        ),
        Parameter(
            "min_liquidity", 1000.0, low=0.0,
            description="USD the thinner leg must take at the quoted asks",
        ),
    )  # fmt: skip

    def signals(  # type: ignore[override]  # a book in, BinarySignals out
        self, book: pd.DataFrame, params: Mapping[str, Any]
    ) -> BinarySignals:
        """Both legs at every event where the pair clears the margin and the liquidity."""
        fee_rate = float(book.attrs.get("fee_rate", 0.0))
        ask_0, ask_1 = book["ask_0"].to_numpy(), book["ask_1"].to_numpy()
        fee = fee_rate * (ask_0 * (1.0 - ask_0) + ask_1 * (1.0 - ask_1))
        cost = ask_0 + ask_1 + fee
        pairs = np.minimum(book["ask_size_0"].to_numpy(), book["ask_size_1"].to_numpy())
        liquidity = pairs * np.minimum(ask_0, ask_1)
        both_valid = book["valid_0"].to_numpy(dtype=bool) & book["valid_1"].to_numpy(dtype=bool)
        with np.errstate(invalid="ignore"):
            fire = (
                both_valid
                & (cost < 1.0 - float(params["min_profit_margin"]) / 100.0 - TOLERANCE)
                & (liquidity >= float(params["min_liquidity"]) - TOLERANCE)
            )
        entries = np.column_stack((fire, fire))
        return BinarySignals(entries, np.zeros_like(entries))
