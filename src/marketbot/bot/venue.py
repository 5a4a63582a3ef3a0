"""What the bot's loop needs from where it trades: the paper exchange, or a live venue.

:class:`~marketbot.execution.paper.PaperExchange` fills the bot's orders with the step core
from bars and tickers; :class:`~marketbot.bot.live_venue.LiveVenue` sends them to a real
exchange and checks the exits itself. The loop, the recorder, recovery and ``status`` see
both through this protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from marketbot.execution.models import Candle, Order, OrderSide, OrderType, Ticker
from marketbot.execution.paper_market import PaperBar
from marketbot.net.rate_limiter import PRIORITY_NORMAL


class HeldPosition(Protocol):
    """A position as the loop reads it."""

    @property
    def units(self) -> float:
        """Units of the asset held."""
        ...

    @property
    def extreme(self) -> float:
        """The trailing stop's anchor."""
        ...


class Venue(Protocol):
    """The bot's orders, position and cash at the place it trades."""

    def fetch_ohlcv(self, symbol: str, timeframe: str) -> list[Candle]:
        """The bars the venue has processed (the paper exchange's; none live)."""
        ...

    def open_position(self, symbol: str) -> HeldPosition | None:
        """The bot's position in ``symbol``, or None when flat."""
        ...

    def quote_cash(self) -> float:
        """The quote balance, as the step core keeps cash."""
        ...

    def equity(self, marks: Mapping[str, float]) -> float:
        """Cash plus the bot's positions at their marks."""
        ...

    def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        """Open orders (and, live, the bot's orders not yet reported final)."""
        ...

    def fetch_closed_orders(self, symbol: str | None = None) -> list[Order]:
        """Orders that ended."""
        ...

    def fetch_order_by_client_id(
        self, client_order_id: str, symbol: str | None = None
    ) -> Order | None:
        """The order with this client id, or None."""
        ...

    def create_order(  # noqa: PLR0913 - the Exchange protocol's create_order, as the loop calls it
        self,
        symbol: str,
        type: OrderType,
        side: OrderSide,
        amount: float | None = None,
        *,
        client_order_id: str,
        cost: float | None = None,
        params: Mapping[str, object] | None = None,
        priority: int = PRIORITY_NORMAL,
    ) -> Order:
        """Send one order."""
        ...

    def process_bar(self, symbol: str, bar: PaperBar) -> list[Order]:
        """A bar closed: every order it changed."""
        ...

    def process_ticker(self, symbol: str, ticker: Ticker) -> list[Order]:
        """A ticker: every order it changed."""
        ...

    def close(self) -> None:
        """Release the venue's files or connections."""
        ...
