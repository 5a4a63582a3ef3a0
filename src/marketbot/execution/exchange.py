"""The ``Exchange`` port: the one boundary between the bot and a market, paper or real.

The methods follow ccxt's unified API (``load_markets``, ``fetch_ticker``, ``fetch_ohlcv``,
``fetch_balance``, ``create_order``, ``edit_order``, ``cancel_order``, ``fetch_order``,
``fetch_open_orders``, ``fetch_closed_orders``, ``fetch_my_trades``) and return the records
of :mod:`marketbot.execution.models`. They are synchronous: the bot's loop calls them in
turn, and a slow call waits on the implementation's rate limiter, not on the loop.

Every call takes a keyword ``priority`` that an implementation hands to its
:class:`~marketbot.net.PriorityRateLimiter`: 1 (``PRIORITY_EMERGENCY``) for cancels, exits
and stops; 5 (``PRIORITY_NORMAL``) for entries, tickers and order status; 10
(``PRIORITY_LOW``) for backfill. The paper exchange may ignore it.

Refusals are results: an order the exchange will not take (below the minimums, not enough
funds, a bad price) comes back from :meth:`Exchange.create_order` as an :class:`Order` with
status ``rejected`` and a ``reason``. Exceptions are for what is not about the order: a
:class:`~marketbot.core.errors.TemporaryError` when the exchange cannot be reached after the
retries, an :class:`~marketbot.core.errors.ExchangeError` for anything else, and
:class:`OrderNotFoundError` for an order id the exchange does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from marketbot.core.errors import ExchangeError
from marketbot.execution.models import (
    Balance,
    Candle,
    Market,
    Order,
    OrderSide,
    OrderType,
    Ticker,
    Trade,
)
from marketbot.net.rate_limiter import PRIORITY_EMERGENCY, PRIORITY_NORMAL

__all__ = ["Exchange", "OrderNotFoundError"]


class OrderNotFoundError(ExchangeError):
    """The exchange knows no order with this id (ccxt's ``OrderNotFound``)."""


class Exchange(Protocol):
    """A market to trade on: its pairs, prices, the account's balance and its orders.

    Amounts are in base units and prices in quote units; times are tz-aware UTC.
    """

    def load_markets(self, *, priority: int = PRIORITY_NORMAL) -> Mapping[str, Market]:
        """Every tradable pair, by unified symbol (``BTC/USDT``), with its order rules."""
        ...

    def fetch_ticker(self, symbol: str, *, priority: int = PRIORITY_NORMAL) -> Ticker:
        """The latest prices of ``symbol``."""
        ...

    def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str,
        *,
        since: datetime | None = None,
        limit: int | None = None,
        priority: int = PRIORITY_NORMAL,
    ) -> list[Candle]:
        """Bars of ``timeframe`` (``1h``), oldest first, opening at or after ``since``.

        Args:
            symbol: The pair.
            timeframe: The bar length, as ccxt spells it.
            since: The earliest bar open wanted; None for the exchange's default window.
            limit: The most bars wanted; None for the exchange's default.
            priority: 5 for the loop's latest bar; 10 for backfill.
        """
        ...

    def fetch_balance(self, *, priority: int = PRIORITY_NORMAL) -> Balance:
        """The account's balances by asset."""
        ...

    def create_order(  # noqa: PLR0913 - ccxt's create_order, plus our id and priority
        self,
        symbol: str,
        type: OrderType,
        side: OrderSide,
        amount: float | None = None,
        price: float | None = None,
        *,
        client_order_id: str,
        stop_price: float | None = None,
        cost: float | None = None,
        params: Mapping[str, object] | None = None,
        priority: int = PRIORITY_NORMAL,
    ) -> Order:
        """Place an order; a refusal is an order with status ``rejected`` and a reason.

        Exactly one of ``amount`` and ``cost`` is given: ``amount`` in base units, or
        ``cost`` in quote units for a quote-amount market buy (Binance's
        ``quoteOrderQty``: spend this much USDT, however much BTC it buys).

        Args:
            symbol: The pair.
            type: Market, limit (needs ``price``) or stop (needs ``stop_price``).
            side: Buy or sell.
            amount: Base units to trade.
            price: The limit price (limit orders only).
            client_order_id: Our idempotency key; an exchange that already holds an order
                with this id returns that order instead of placing a second one.
            stop_price: The trigger price (stop orders only).
            cost: Quote units to spend (market buys only), instead of ``amount``.
            params: Venue-specific extras, as ccxt's ``params`` (the paper exchange reads
                ``protect_client_order_id``, ``tag`` and ``position_at_signal`` of an entry);
                an implementation ignores keys it does not know.
            priority: 5 for entries; 1 for exits and protective stops.
        """
        ...

    def edit_order(
        self,
        order_id: str,
        symbol: str,
        *,
        amount: float | None = None,
        price: float | None = None,
        stop_price: float | None = None,
        priority: int = PRIORITY_NORMAL,
    ) -> Order:
        """Change an open order's amount, limit price or stop price (None keeps it).

        Raises:
            OrderNotFoundError: No order has this id.
        """
        ...

    def cancel_order(
        self, order_id: str, symbol: str | None = None, *, priority: int = PRIORITY_EMERGENCY
    ) -> Order:
        """Cancel what is left of an order and return it as it now stands.

        An order that already ended (filled meanwhile, say) is returned unchanged: the
        caller reads its status rather than catching an error.

        Raises:
            OrderNotFoundError: No order has this id.
        """
        ...

    def fetch_order(
        self, order_id: str, symbol: str | None = None, *, priority: int = PRIORITY_NORMAL
    ) -> Order:
        """One order by the exchange's id.

        Raises:
            OrderNotFoundError: No order has this id.
        """
        ...

    def fetch_order_by_client_id(
        self, client_order_id: str, symbol: str | None = None, *, priority: int = PRIORITY_NORMAL
    ) -> Order | None:
        """One order by our client id, or None when it never reached the exchange.

        After a crash, this answers "was my order placed?" before placing it again.
        """
        ...

    def fetch_open_orders(
        self,
        symbol: str | None = None,
        *,
        since: datetime | None = None,
        limit: int | None = None,
        priority: int = PRIORITY_NORMAL,
    ) -> list[Order]:
        """Orders still open (of ``symbol``, or all), oldest first."""
        ...

    def fetch_closed_orders(
        self,
        symbol: str | None = None,
        *,
        since: datetime | None = None,
        limit: int | None = None,
        priority: int = PRIORITY_NORMAL,
    ) -> list[Order]:
        """Orders no longer open (closed, canceled, rejected, expired), oldest first."""
        ...

    def fetch_my_trades(
        self,
        symbol: str | None = None,
        *,
        since: datetime | None = None,
        limit: int | None = None,
        priority: int = PRIORITY_NORMAL,
    ) -> list[Trade]:
        """The account's fills (of ``symbol``, or all), oldest first."""
        ...
