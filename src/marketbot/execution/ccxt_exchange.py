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

import hashlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from marketbot.core.clock import Clock, SystemClock
from marketbot.core.errors import ConfigError, DataError, ExchangeError
from marketbot.execution.ccxt_records import (
    read_balance,
    read_market,
    read_order,
    read_ticker,
    read_trade,
)
from marketbot.execution.exchange import OrderNotFoundError
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
from marketbot.net.rate_limiter import (
    PRIORITY_EMERGENCY,
    PRIORITY_NORMAL,
    PriorityRateLimiter,
)
from marketbot.net.retrying import DEFAULT_RETRY_POLICY, RetryPolicy
from marketbot.sources.exchange_client import ExchangeClient, ExchangeUnavailableError

if TYPE_CHECKING:
    from marketbot.store.keys import Credentials

__all__ = ["CcxtExchange", "open_ccxt_exchange", "spot_options"]

_LOG = logging.getLogger(__name__)
_CLIENT_ID_PREFIX: Final = "mb-"
_CLIENT_ID_HEX: Final = 29


def spot_options(exchange_id: str) -> dict[str, Any]:
    """Ccxt options for spot trading only, with no private currency listing."""
    options: dict[str, Any] = {
        "defaultType": "spot",
        "fetchCurrencies": False,
        "fetchMarkets": {"types": ["spot"]},
        "fetchMargins": False,
    }
    if exchange_id.startswith("binance"):
        options["warnOnFetchOpenOrdersWithoutSymbol"] = False
    return options


def open_ccxt_exchange(
    exchange_id: str,
    credentials: Credentials | None,
    *,
    api_urls: Mapping[str, str] | None = None,
    testnet: bool = False,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    limiter: PriorityRateLimiter | None = None,
    clock: Clock | None = None,
) -> CcxtExchange:
    """A :class:`CcxtExchange` on a new client for ``exchange_id``.

    Args:
        exchange_id: The ccxt id (``binance``).
        credentials: The account's keys (None for public calls only).
        api_urls: API roots to replace (``MARKETBOT_EXCHANGE_API_URLS``, a test server).
        testnet: ccxt's sandbox mode; refused for an exchange without one.
        policy: Timeouts and retries of reads.
        limiter: The limiter to pace calls on (default: the exchange's rate).
        clock: "Now" for the limiter and records without a time.

    Raises:
        ConfigError: an unknown exchange, API URL key, or a testnet the exchange lacks.
    """
    client = ExchangeClient(
        exchange_id,
        api_urls=api_urls,
        options=spot_options(exchange_id),
        limiter=limiter,
        policy=policy,
        clock=clock,
        credentials=credentials.to_ccxt() if credentials is not None else None,
        sandbox=testnet,
    )
    return CcxtExchange(client)


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
        since_ms = round(since.timestamp() * 1000) if since is not None else None
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
        _check_order(type, side, amount, cost, price, stop_price)
        extra: dict[str, Any] = {"clientOrderId": client_order_id}
        if cost is not None:
            extra["cost"] = cost
        if type is OrderType.STOP:
            extra["stopPrice"] = stop_price
        kind = "limit" if type is OrderType.LIMIT else "market"
        ccxt = self._ccxt

        def send() -> Any:
            return ccxt.create_order(symbol, kind, side.value, amount, price, extra)

        context = f"{self.client.exchange_id}: {side.value} {type.value} {symbol} {client_order_id}"
        for attempt in (1, 2):
            try:
                raw = self.client.call(
                    send, context=context, priority=priority, retry_transient=False
                )
            except ExchangeUnavailableError as exc:
                found = self.fetch_order_by_client_id(client_order_id, symbol, priority=priority)
                if found is not None:
                    _LOG.warning("%s: no answer (%s) but the exchange has the order", context, exc)
                    return _with_quote_amount(found, cost)
                if attempt == 2:
                    raise
                _LOG.warning("%s: not received (%s); sending it again, same id", context, exc)
                continue
            except ExchangeError as exc:
                if _is_duplicate(exc):
                    found = self.fetch_order_by_client_id(
                        client_order_id, symbol, priority=priority
                    )
                    if found is not None:
                        return _with_quote_amount(found, cost)
                if not _is_refusal(exc):
                    raise
                _LOG.warning("%s: rejected: %s", context, exc)
                return self._rejected(symbol, type, side, amount, cost, client_order_id, exc)
            order = self._order(raw)
            return _with_quote_amount(order, cost)
        raise AssertionError("unreachable")  # pragma: no cover

    def _rejected(
        self,
        symbol: str,
        type: OrderType,
        side: OrderSide,
        amount: float | None,
        cost: float | None,
        client_order_id: str,
        exc: ExchangeError,
    ) -> Order:
        return Order(
            id="",
            client_order_id=client_order_id,
            symbol=symbol,
            side=side,
            type=type,
            amount=amount or 0.0,
            status=OrderStatus.REJECTED,
            timestamp=self.clock.now(),
            price=None,
            stop_price=None,
            quote_amount=cost,
            reason=str(exc.__cause__ or exc),
        )

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
        new_id = _edited_client_id(current.client_order_id, left, price, stop_price)
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
            if not _is_not_found(exc):
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
            if _is_not_found(exc):
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
            if _is_not_found(exc):
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
        since_ms = round(since.timestamp() * 1000) if since is not None else None
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
        since_ms = round(since.timestamp() * 1000) if since is not None else None
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
        since_ms = round(since.timestamp() * 1000) if since is not None else None
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


def read_time(epoch_ms: object) -> datetime:
    """A candle's open time (epoch ms) as UTC."""
    from marketbot.execution.ccxt_records import utc_from_ms

    if isinstance(epoch_ms, bool) or not isinstance(epoch_ms, int | float):
        raise ValueError(f"open time {epoch_ms!r}")
    return utc_from_ms(epoch_ms, datetime.min)


def _check_order(
    type: OrderType,
    side: OrderSide,
    amount: float | None,
    cost: float | None,
    price: float | None,
    stop_price: float | None,
) -> None:
    if (amount is None) == (cost is None):
        raise ConfigError("give exactly one of `amount` and `cost`")
    if cost is not None and not (type is OrderType.MARKET and side is OrderSide.BUY):
        raise ConfigError("`cost` (a quote amount) is for market buys only")
    if type is OrderType.LIMIT and price is None:
        raise ConfigError("a limit order needs `price`")
    if type is OrderType.STOP and stop_price is None:
        raise ConfigError("a stop order needs `stop_price`")


def _cause(exc: BaseException) -> BaseException | None:
    return exc.__cause__


def _is_not_found(exc: ExchangeError) -> bool:
    import ccxt

    return isinstance(exc, OrderNotFoundError) or isinstance(_cause(exc), ccxt.OrderNotFound)


def _is_refusal(exc: ExchangeError) -> bool:
    """The exchange refused the order itself (a filter, the funds, a price), not the request.

    ccxt reads Binance's -1013 filter failures as ``BadRequest``; an unknown symbol, also a
    BadRequest, never gets here (the client raises it as a ConfigError).
    """
    import ccxt

    cause = _cause(exc)
    refusals = ccxt.InvalidOrder | ccxt.InsufficientFunds | ccxt.BadRequest
    return isinstance(cause, refusals) and not isinstance(cause, ccxt.OrderNotFound)


def _is_duplicate(exc: ExchangeError) -> bool:
    return "duplicate order" in str(_cause(exc) or exc).lower()


def _with_quote_amount(order: Order, cost: float | None) -> Order:
    if cost is None or order.quote_amount is not None:
        return order
    from dataclasses import replace

    return replace(order, quote_amount=cost)


def _edited_client_id(
    client_order_id: str, amount: float, price: float | None, stop_price: float | None
) -> str:
    payload = f"{client_order_id}\x1fedit\x1f{amount!r}\x1f{price!r}\x1f{stop_price!r}"
    digest = hashlib.sha256(payload.encode()).hexdigest()[:_CLIENT_ID_HEX]
    return _CLIENT_ID_PREFIX + digest
