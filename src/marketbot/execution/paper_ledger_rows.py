"""The paper ledger's rows: orders, fills, positions, symbols and bars as plain records.

What an event changed (:class:`LedgerChanges`) and what a ledger holds
(:class:`LedgerContents`) are made of them; :mod:`marketbot.execution.paper_ledger` stores
them in SQLite and :mod:`marketbot.execution.paper` decides what they hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from marketbot.backtest.step_nb import Position

__all__ = [
    "BarRow",
    "FillRow",
    "LedgerChanges",
    "LedgerContents",
    "OrderRow",
    "PositionRow",
    "SymbolRow",
]


@dataclass(slots=True)
class OrderRow:
    """One order as the venue keeps it (the ``Order`` the API returns is built from it).

    Attributes:
        amount: Base units ordered; None for a quote-amount market buy.
        quote_amount: The quote units such a buy may spend, fee included; else None.
        filled: Base units filled so far.
        cost: Sum of each fill's amount x price (quote, fees excluded).
        spent: Quote paid so far, fees included (quote-amount buys).
        fee: Fees paid so far (quote).
        reserved: What the order holds of the balance now: quote for a limit buy, base for
            a sell the bot placed; 0 for market buys and for carriers.
        is_carrier: The bracket of a position, created by the venue on the entry's fill.
        active_from_step: The symbol's first step (bar or ticker) at which it may fill.
        params: The ``params`` it was placed with (JSON-ready).
    """

    id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    status: str
    timestamp: datetime
    amount: float | None = None
    quote_amount: float | None = None
    price: float | None = None
    stop_price: float | None = None
    filled: float = 0.0
    cost: float = 0.0
    spent: float = 0.0
    fee: float = 0.0
    reserved: float = 0.0
    last_trade_timestamp: datetime | None = None
    reason: str = ""
    is_carrier: bool = False
    active_from_step: int = 0
    priority: int = 5
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        """Whether it may still fill."""
        return self.status == "open"


@dataclass(frozen=True, slots=True)
class FillRow:
    """One fill: ``bar_index`` is the bar's index in a replay, -1 for a ticker's fill."""

    id: int
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    amount: float
    price: float
    fee: float
    timestamp: datetime
    bar_index: int
    reason: str


@dataclass(slots=True)
class PositionRow:
    """A symbol's open position: the step core's ``Position`` and its bracket.

    Attributes:
        carrier_order_id: The carrier's order id; None once the carrier was canceled (the
            bracket is off).
        protect_client_order_id: The carrier's client id.
        entry_order_id: The order whose fill opened it.
        opened_intrabar_step: The step at which a limit buy opened it inside a bar (its
            extreme is first raised at the next close); -1 otherwise.
    """

    symbol: str
    position: Position
    carrier_order_id: int | None
    protect_client_order_id: str
    entry_order_id: int
    opened_intrabar_step: int = -1


@dataclass(slots=True)
class SymbolRow:
    """A symbol the venue has seen: its step count (bars and tickers) and last prices."""

    symbol: str
    steps: int = 0
    last_price: float | None = None
    bid: float | None = None
    ask: float | None = None
    last_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class BarRow:
    """One bar processed."""

    symbol: str
    time: datetime
    bar_index: int
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(slots=True)
class LedgerContents:
    """Everything a ledger holds, as loaded when the venue opens it."""

    cash: float
    orders: list[OrderRow]
    fills: list[FillRow]
    positions: list[PositionRow]
    symbols: list[SymbolRow]
    bars: list[BarRow]


@dataclass(slots=True)
class LedgerChanges:
    """What one event changed, written in one transaction.

    Attributes:
        balances: ``(asset, free, used, total)`` rows to store.
        positions: Positions to store, by symbol; None deletes the symbol's position.
    """

    orders: list[OrderRow] = field(default_factory=list)
    fills: list[FillRow] = field(default_factory=list)
    balances: list[tuple[str, float, float, float]] = field(default_factory=list)
    positions: dict[str, PositionRow | None] = field(default_factory=dict)
    symbols: list[SymbolRow] = field(default_factory=list)
    bars: list[BarRow] = field(default_factory=list)
