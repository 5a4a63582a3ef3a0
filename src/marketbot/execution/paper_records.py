"""The records the paper venue is built from: bars, knobs, the position it reports, ids.

With the checks and conversions they need (:func:`check_bar`, :func:`paper_position`,
:func:`base_asset`); :mod:`marketbot.execution.paper_market` steps a symbol's orders and
:mod:`marketbot.execution.paper` holds the API and the ledger writes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from marketbot.core.errors import ConfigError, DataError
from marketbot.execution.paper_ledger_rows import PositionRow

__all__ = [
    "EPOCH",
    "IdSource",
    "PaperBar",
    "PaperKnobs",
    "PaperPosition",
    "base_asset",
    "check_bar",
    "paper_position",
]

# The step core keeps times as nanoseconds since this instant.
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class PaperBar:
    """One bar handed to the venue in a replay.

    Attributes:
        index: The bar's index in the replay (the step core's bar number, in trade records).
        time: Its open time (UTC); the time of every fill it causes.
    """

    index: int
    time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True)
class PaperKnobs:
    """Frictions a test or a rehearsal turns on; none by default.

    Attributes:
        partial_fill_fraction: A market order fills at most this fraction of what it
            ordered per step (bar or ticker); the rest stays open for the next step.
        reject_client_order_ids: Orders with these client ids are rejected when placed.
        reject_every_nth: Every n-th ``create_order`` call of this venue object is rejected.
        latency_bars: Orders may fill only this many steps after the next one.
    """

    partial_fill_fraction: float | None = None
    reject_client_order_ids: frozenset[str] = field(default_factory=frozenset)
    reject_every_nth: int | None = None
    latency_bars: int = 0

    def __post_init__(self) -> None:
        fraction = self.partial_fill_fraction
        if fraction is not None and not (math.isfinite(fraction) and 0.0 < fraction <= 1.0):
            raise ConfigError(f"partial_fill_fraction={fraction!r}: must be in (0, 1]")
        if self.reject_every_nth is not None and self.reject_every_nth < 1:
            raise ConfigError(f"reject_every_nth={self.reject_every_nth!r}: must be >= 1")
        if self.latency_bars < 0:
            raise ConfigError(f"latency_bars={self.latency_bars!r}: must be >= 0")
        object.__setattr__(self, "reject_client_order_ids", frozenset(self.reject_client_order_ids))


@dataclass(frozen=True, slots=True)
class PaperPosition:
    """A position the venue holds, as the loop reads it (levels None when off).

    Attributes:
        units: Units held.
        entry_price: The entry fill; the levels are relative to it.
        entry_fee: The entry's fee (quote).
        entry_time: Open time of the bar (or the ticker's time) that filled the entry.
        entry_bar: That bar's index (-1 for a ticker's fill).
        extreme: The trailing stop's anchor: the highest high at earlier closes.
        stop_level: The stop-loss price.
        target_level: The take-profit price.
        trail_level: The trailing stop's price (None before it arms).
        protect_client_order_id: The bracket carrier's client id.
        bracket_on: False once the carrier was canceled: no leg fires any more.
        tag: The entry's tag (the step core's tag number; -1 for none).
    """

    symbol: str
    units: float
    entry_price: float
    entry_fee: float
    entry_time: datetime
    entry_bar: int
    extreme: float
    stop_level: float | None
    target_level: float | None
    trail_level: float | None
    protect_client_order_id: str
    bracket_on: bool
    tag: int


@dataclass(slots=True)
class IdSource:
    """The next order and fill ids (the ledger's rows are numbered by the venue)."""

    last_order_id: int = 0
    last_fill_id: int = 0

    def next_order(self) -> int:
        """A new order id."""
        self.last_order_id += 1
        return self.last_order_id

    def next_fill(self) -> int:
        """A new fill id."""
        self.last_fill_id += 1
        return self.last_fill_id


def base_asset(symbol: str) -> str:
    """The asset a symbol trades: ``BTC`` of ``BTC/USDT``, the symbol itself otherwise."""
    return symbol.partition("/")[0]


def check_bar(symbol: str, bar: PaperBar) -> None:
    """DataError unless the bar's prices are positive and its high and low hold it."""
    prices = (bar.open, bar.high, bar.low, bar.close)
    if not all((math.isfinite(price) and price > 0) for price in prices):
        raise DataError(f"paper exchange: {symbol} bar at {bar.time}: prices must be positive")
    if bar.low > min(bar.open, bar.close) or bar.high < max(bar.open, bar.close):
        raise DataError(f"paper exchange: {symbol} bar at {bar.time}: high/low do not hold it")


def paper_position(held: PositionRow) -> PaperPosition:
    """What the loop reads of a held position (levels None when off)."""
    position = held.position

    def level(value: float) -> float | None:
        return None if math.isnan(value) else float(value)

    return PaperPosition(
        symbol=held.symbol, units=position.units, entry_price=position.entry_price,
        entry_fee=position.entry_fee,
        entry_time=EPOCH + timedelta(microseconds=position.entry_time_ns // 1_000),
        entry_bar=position.entry_bar, extreme=position.extreme,
        stop_level=level(position.stop_level), target_level=level(position.target_level),
        trail_level=level(position.trail_level),
        protect_client_order_id=held.protect_client_order_id,
        bracket_on=held.carrier_order_id is not None, tag=position.tag,
    )  # fmt: skip
