"""``CcxtExchange``: the :class:`~marketbot.execution.exchange.Exchange` port on a real exchange.

Every call goes through one :class:`~marketbot.sources.exchange_client.ExchangeClient`:
queued on its :class:`~marketbot.net.PriorityRateLimiter` at the caller's priority (1 for
cancels, exits and stops; 5 for entries, tickers, latest bars and order status; 10 for
backfill), with ccxt's own throttle off, reads retried and errors translated. Spot markets
only, ``fetchCurrencies`` off (a private call Binance's testnet lacks), ``verbose`` never on
(it would print signed requests).

An order POST is never retried blindly: after a timeout, a 5xx or a dropped connection the
order may or may not have reached the exchange, so it is looked up by its client order id
and sent again, with the same id, only when the exchange never got it; if that second
attempt fails the same way it is looked up once more, then the error is raised. Refusals
(below a filter, not enough funds) come back as orders with status ``rejected``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from marketbot.core.clock import Clock, SystemClock, as_utc
from marketbot.core.errors import ConfigError, DataError, ExchangeError
from marketbot.execution.ccxt_orders import (
    OrderRequest,
    ccxt_order_arguments,
    edited_client_id,
    is_duplicate,
    is_not_found,
    is_refusal,
    rejected_order,
    with_quote_amount,
)
from marketbot.execution.ccxt_records import (
    read_balance,
    read_market,
    read_order,
    read_ticker,
    read_time,
    read_trade,
)
from marketbot.execution.exchange import Exchange, OrderNotFoundError
from marketbot.execution.models import (
    Balance,
    Candle,
    Market,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Ticker,
    Trade,
)
from marketbot.execution.order_rules import LIVE_QUOTE_CURRENCIES, FillOutcome, net_fill
from marketbot.net.rate_limiter import PRIORITY_EMERGENCY, PRIORITY_NORMAL
from marketbot.sources.exchange_client import ExchangeClient, ExchangeUnavailableError

__all__ = ["CcxtExchange"]

_LOG = logging.getLogger(__name__)
# An order is sent at most twice: again only when the exchange never got the first.
_SENDS: Final = 2


class CcxtExchange:
    """The Exchange port on one ccxt exchange (see the module doc).

    Args:
        client: The paced, retried, translating ccxt client (its ``clock`` is used too).
    """

    def __init__(self, client: ExchangeClient) -> None:
        self.client = client
        self.clock: Clock = client.clock if client.clock is not None else SystemClock()
        self._ccxt = client.ccxt_exchange
        self._markets: dict[str, Market] = {}
        # Order id -> symbol, for exchanges (Binance) that need the symbol to find an order.
        self._symbols: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"CcxtExchange({self.client.exchange_id})"

    def __enter__(self) -> CcxtExchange:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP session."""
        self.client.close()

    def _call(self, fn: Callable[[], Any], context: str, priority: int) -> Any:
        name = self.client.exchange_id
        return self.client.call(fn, context=f"{name}: {context}", priority=priority)

    # -- market data ----------------------------------------------------------------------

    def load_markets(self, *, priority: int = PRIORITY_NORMAL) -> Mapping[str, Market]:
        """Spot pairs quoted in USD, USDT or USDC, with their order rules."""
        if not self._markets:
            raw = self._call(self._ccxt.load_markets, "loading markets", priority)
            for symbol, market in (raw or {}).items():
                if market.get("spot") and market.get("quote") in LIVE_QUOTE_CURRENCIES:
                    self._markets[symbol] = read_market(market)
        return dict(self._markets)

    def market(self, symbol: str, *, priority: int = PRIORITY_NORMAL) -> Market:
        """One pair's rules.

        Raises:
            ConfigError: no such spot pair quoted in USD, USDT or USDC.
        """
        markets = self.load_markets(priority=priority)
        if symbol not in markets:
            raise ConfigError(
                f"{self.client.exchange_id} has no spot market {symbol!r} quoted in "
                f"{', '.join(LIVE_QUOTE_CURRENCIES)}"
            )
        return markets[symbol]

    def fetch_ticker(self, symbol: str, *, priority: int = PRIORITY_NORMAL) -> Ticker:
        """The latest prices of ``symbol``."""
        raw = self._call(lambda: self._ccxt.fetch_ticker(symbol), f"{symbol} ticker", priority)
        return read_ticker(raw, symbol, self.clock.now())

    def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str,
        *,
        since: datetime | None = None,
        limit: int | None = None,
        priority: int = PRIORITY_NORMAL,
    ) -> list[Candle]:
        """Bars of ``timeframe``, oldest first (5 for the latest bar, 10 for backfill)."""
        since_ms = _epoch_ms(since)
        rows = self._call(
            lambda: self._ccxt.fetch_ohlcv(symbol, timeframe, since=since_ms, limit=limit),
            f"{symbol} {timeframe} candles",
            priority,
        )
        try:
            return [
                Candle(read_time(row[0]), *(float(value) for value in row[1:6])) for row in rows
            ]
        except (TypeError, ValueError, IndexError) as exc:
            raise DataError(f"{symbol} {timeframe} candles: not candles ({exc})") from exc

    def fetch_balance(self, *, priority: int = PRIORITY_NORMAL) -> Balance:
        """The account's balances (an authenticated call)."""
        raw = self._call(self._ccxt.fetch_balance, "balance", priority)
        return read_balance(raw, self.clock.now())

    # -- orders ---------------------------------------------------------------------------

    def create_order(  # noqa: PLR0913 - the Exchange protocol's signature
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
        """Place an order once (see the module doc); a refusal is a ``rejected`` order."""
        request = OrderRequest(
            symbol, type, side, amount, price, client_order_id, stop_price=stop_price, cost=cost
        )
        arguments = ccxt_order_arguments(request)
        ccxt = self._ccxt
        context = request.describe(self.client.exchange_id)
        for attempt in (1, 2):
            try:
                raw = self.client.call(
                    lambda: ccxt.create_order(*arguments),
                    context=context,
                    priority=priority,
                    retry_transient=False,
                )
            except ExchangeUnavailableError as exc:
                found = self.fetch_order_by_client_id(client_order_id, symbol, priority=priority)
                if found is not None:
                    _LOG.warning("%s: no answer (%s) but the exchange has the order", context, exc)
                    return with_quote_amount(found, cost)
                if attempt == _SENDS:
                    raise
                _LOG.warning("%s: not received (%s); sending it again, same id", context, exc)
                continue
            except ExchangeError as exc:
                found = None
                if is_duplicate(exc):
                    found = self.fetch_order_by_client_id(
                        client_order_id, symbol, priority=priority
                    )
                if found is not None:
                    return with_quote_amount(found, cost)
                if not is_refusal(exc):
                    raise
                _LOG.warning("%s: rejected: %s", context, exc)
                return rejected_order(request, exc, self.clock.now())
            return with_quote_amount(self._order(raw), cost)
        raise AssertionError("unreachable")  # pragma: no cover

    def _order(self, raw: Mapping[str, Any]) -> Order:
        order = read_order(raw, self.clock.now())
        self._symbols[order.id] = order.symbol
        return order

    def _symbol_for(self, order_id: str, symbol: str | None) -> str | None:
        return symbol if symbol is not None else self._symbols.get(order_id)

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
        """Move an open order: cancel it, then place its replacement.

        Binance spot cannot amend a stop, so every exchange is treated alike.

        The replacement's client id is derived from the old one and the new levels
        (``mb-`` + 29 hex digits of their sha256), so a restart after a crash between the
        two calls finds it instead of placing it twice.

        Raises:
            OrderNotFoundError: No order has this id.
            ExchangeError: the order already ended, so there is nothing to move.
        """
        current = self.cancel_order(order_id, symbol, priority=priority)
        if current.status is not OrderStatus.CANCELED:
            raise ExchangeError(f"order {order_id} is {current.status.value}: nothing to move")
        left = amount if amount is not None else current.amount - current.filled
        new_id = edited_client_id(current.client_order_id, left, price, stop_price)
        return self.create_order(
            symbol,
            current.type,
            current.side,
            left,
            price if price is not None else current.price,
            client_order_id=new_id,
            stop_price=stop_price if stop_price is not None else current.stop_price,
            priority=priority,
        )

    def cancel_order(
        self, order_id: str, symbol: str | None = None, *, priority: int = PRIORITY_EMERGENCY
    ) -> Order:
        """Cancel an order; one that already ended comes back as it stands."""
        known = self._symbol_for(order_id, symbol)
        try:
            raw = self._call(
                lambda: self._ccxt.cancel_order(order_id, known), f"cancel {order_id}", priority
            )
        except ExchangeError as exc:
            if not is_not_found(exc):
                raise
            return self.fetch_order(order_id, known, priority=priority)
        order = self._order(raw)
        if order.status is OrderStatus.OPEN:  # some exchanges answer before it is done
            return self.fetch_order(order_id, known, priority=priority)
        return order

    def fetch_order(
        self, order_id: str, symbol: str | None = None, *, priority: int = PRIORITY_NORMAL
    ) -> Order:
        """One order by the exchange's id.

        Raises:
            OrderNotFoundError: no order has this id.
        """
        known = self._symbol_for(order_id, symbol)
        try:
            raw = self._call(
                lambda: self._ccxt.fetch_order(order_id, known), f"order {order_id}", priority
            )
        except ExchangeError as exc:
            if is_not_found(exc):
                raise OrderNotFoundError(
                    f"{self.client.exchange_id} has no order {order_id}"
                ) from exc
            raise
        return self._order(raw)

    def fetch_order_by_client_id(
        self, client_order_id: str, symbol: str | None = None, *, priority: int = PRIORITY_NORMAL
    ) -> Order | None:
        """One order by our client id, or None when the exchange never got it."""
        params = {"origClientOrderId": client_order_id, "clientOrderId": client_order_id}
        try:
            raw = self._call(
                lambda: self._ccxt.fetch_order("", symbol, params),
                f"order {client_order_id}",
                priority,
            )
        except ExchangeError as exc:
            if is_not_found(exc):
                return None
            raise
        return self._order(raw)

    def fetch_open_orders(
        self,
        symbol: str | None = None,
        *,
        since: datetime | None = None,
        limit: int | None = None,
        priority: int = PRIORITY_NORMAL,
    ) -> list[Order]:
        """Orders still open, oldest first."""
        since_ms = _epoch_ms(since)
        rows = self._call(
            lambda: self._ccxt.fetch_open_orders(symbol, since_ms, limit), "open orders", priority
        )
        return sorted((self._order(row) for row in rows), key=lambda order: order.timestamp)

    def fetch_closed_orders(
        self,
        symbol: str | None = None,
        *,
        since: datetime | None = None,
        limit: int | None = None,
        priority: int = PRIORITY_NORMAL,
    ) -> list[Order]:
        """Orders no longer open (filled, canceled, rejected, expired), oldest first.

        ccxt's ``fetch_closed_orders`` means filled only; where the exchange lists all
        orders (Binance's allOrders), the ended ones are taken from that list instead.
        """
        since_ms = _epoch_ms(since)
        ccxt = self._ccxt
        method = ccxt.fetch_orders if ccxt.has.get("fetchOrders") else ccxt.fetch_closed_orders
        rows = self._call(lambda: method(symbol, since_ms, limit), "closed orders", priority)
        orders = (self._order(row) for row in rows)
        ended = (order for order in orders if order.status.is_terminal)
        return sorted(ended, key=lambda order: order.timestamp)

    def fetch_my_trades(
        self,
        symbol: str | None = None,
        *,
        since: datetime | None = None,
        limit: int | None = None,
        priority: int = PRIORITY_NORMAL,
    ) -> list[Trade]:
        """The account's fills, oldest first."""
        since_ms = _epoch_ms(since)
        rows = self._call(
            lambda: self._ccxt.fetch_my_trades(symbol, since_ms, limit), "my trades", priority
        )
        now = self.clock.now()
        return sorted((read_trade(row, now) for row in rows), key=lambda trade: trade.timestamp)

    # -- fills ----------------------------------------------------------------------------

    def net_fill(self, order: Order, *, priority: int = PRIORITY_NORMAL) -> FillOutcome:
        """What ``order``'s fills left, fees included.

        A fee in a third asset (BNB) is valued at its ticker against the pair's quote.

        Raises:
            DataError: a filled order whose fills the exchange did not report.
        """
        market = self.market(order.symbol, priority=priority)
        trades = order.trades
        if order.filled > 0 and not trades:
            trades = tuple(
                trade
                for trade in self.fetch_my_trades(order.symbol, priority=priority)
                if trade.order_id == order.id
            )
            if not trades:
                raise DataError(f"order {order.id} filled {order.filled:g} but has no fills")

        def price_of(asset: str) -> float:
            return self.fetch_ticker(f"{asset}/{market.quote}", priority=priority).last

        return net_fill(trades, market, price_of)


def _epoch_ms(moment: datetime | None) -> int | None:
    """A time as ccxt's epoch milliseconds (a naive one taken as UTC), or None."""
    return None if moment is None else round(as_utc(moment).timestamp() * 1000)


if TYPE_CHECKING:  # mypy checks here that CcxtExchange implements the whole port

    def _as_exchange(venue: CcxtExchange) -> Exchange:
        return venue
