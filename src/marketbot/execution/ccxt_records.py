"""ccxt's unified dicts read into the execution layer's records.

Each reader takes one dict as ccxt returns it (``parse_market``, ``parse_ticker``,
``parse_order``...) and builds the frozen record of :mod:`marketbot.execution.models`; a dict
that cannot be one (a ticker without a last price, an order without an id) is a
:class:`~marketbot.core.errors.DataError` naming the exchange and what was read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from marketbot.core.errors import DataError
from marketbot.execution.models import (
    AssetBalance,
    Balance,
    Fee,
    Market,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Ticker,
    Trade,
)

__all__ = [
    "read_balance",
    "read_market",
    "read_order",
    "read_ticker",
    "read_time",
    "read_trade",
    "utc_from_ms",
]


def utc_from_ms(epoch_ms: object, fallback: datetime) -> datetime:
    """A ccxt timestamp (epoch ms) as a UTC datetime; ``fallback`` when there is none."""
    if isinstance(epoch_ms, int | float) and not isinstance(epoch_ms, bool):
        return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return fallback


def read_time(epoch_ms: object) -> datetime:
    """A candle's open time (epoch ms) as UTC.

    Raises:
        ValueError: not a number.
    """
    if isinstance(epoch_ms, bool) or not isinstance(epoch_ms, int | float):
        raise ValueError(f"open time {epoch_ms!r}")
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)


def _number(value: object) -> float | None:
    """A finite float, or None for None, text or NaN."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _positive(value: object) -> float | None:
    number = _number(value)
    return number if number is not None and number > 0 else None


def read_market(raw: Mapping[str, Any]) -> Market:
    """Ccxt's market: the pair, its precision (tick-size mode) and minimums."""
    precision = raw.get("precision") or {}
    limits = raw.get("limits") or {}
    return Market(
        symbol=str(raw["symbol"]),
        base=str(raw["base"]),
        quote=str(raw["quote"]),
        amount_step=_positive(precision.get("amount")),
        price_tick=_positive(precision.get("price")),
        min_amount=_positive((limits.get("amount") or {}).get("min")),
        min_cost=_positive((limits.get("cost") or {}).get("min")),
    )


def read_ticker(raw: Mapping[str, Any], symbol: str, now: datetime) -> Ticker:
    """Ccxt's ticker; the last price falls back to the close (they are the same on most)."""
    last = _positive(raw.get("last")) or _positive(raw.get("close"))
    if last is None:
        raise DataError(f"ticker of {symbol}: no last price in {dict(raw).get('info')!r:.200}")
    return Ticker(
        symbol=symbol,
        at=utc_from_ms(raw.get("timestamp"), now),
        last=last,
        bid=_positive(raw.get("bid")),
        ask=_positive(raw.get("ask")),
    )


def read_balance(raw: Mapping[str, Any], now: datetime) -> Balance:
    """Ccxt's balance: every asset with a free or used amount (negatives read as 0)."""
    free = raw.get("free") or {}
    used = raw.get("used") or {}
    assets = {}
    for code in sorted(set(free) | set(used)):
        amount_free = max(_number(free.get(code)) or 0.0, 0.0)
        amount_used = max(_number(used.get(code)) or 0.0, 0.0)
        assets[str(code)] = AssetBalance(free=amount_free, used=amount_used)
    return Balance(assets=assets, at=utc_from_ms(raw.get("timestamp"), now))


def _fee(raw: object) -> Fee | None:
    if not isinstance(raw, Mapping):
        return None
    cost, currency = _number(raw.get("cost")), raw.get("currency")
    if cost is None or not currency:
        return None
    return Fee(cost=cost, currency=str(currency))


def read_trade(raw: Mapping[str, Any], now: datetime, client_order_id: str = "") -> Trade:
    """Ccxt's trade (one fill)."""
    return Trade(
        id=str(raw.get("id") or ""),
        order_id=str(raw.get("order") or ""),
        symbol=str(raw["symbol"]),
        side=OrderSide(str(raw["side"])),
        amount=_number(raw.get("amount")) or 0.0,
        price=float(raw["price"]),
        timestamp=utc_from_ms(raw.get("timestamp"), now),
        fee=_fee(raw.get("fee")),
        client_order_id=client_order_id,
    )


def _order_type(raw: Mapping[str, Any]) -> OrderType:
    kind = str(raw.get("type") or "").lower()
    if "stop" in kind or (_positive(raw.get("triggerPrice")) is not None and kind != "limit"):
        return OrderType.STOP
    return OrderType.LIMIT if kind == "limit" else OrderType.MARKET


def _order_fee(raw: Mapping[str, Any], trades: tuple[Trade, ...]) -> Fee | None:
    """The order's fee: ccxt's ``fee``, else the fills' fees summed when in one currency."""
    fee = _fee(raw.get("fee"))
    if fee is not None:
        return fee
    fees = [trade.fee for trade in trades if trade.fee is not None]
    if not fees or len({fee.currency for fee in fees}) != 1:
        return None
    return Fee(cost=sum(fee.cost for fee in fees), currency=fees[0].currency)


def read_order(raw: Mapping[str, Any], now: datetime) -> Order:
    """Ccxt's order; its fills become :class:`Trade` s and its status ours."""
    if not raw.get("id"):
        raise DataError(f"an order without an id: {dict(raw).get('info')!r:.200}")
    client_id = str(raw.get("clientOrderId") or "")
    timestamp = utc_from_ms(raw.get("timestamp"), now)
    trades = tuple(
        read_trade(
            {
                **trade,
                "symbol": trade.get("symbol") or raw["symbol"],
                "side": trade.get("side") or raw["side"],
                "order": trade.get("order") or raw["id"],
            },
            timestamp,
            client_id,
        )
        for trade in raw.get("trades") or ()
        if _positive(trade.get("price")) is not None
    )
    filled = _number(raw.get("filled")) or 0.0
    amount = max(_number(raw.get("amount")) or 0.0, filled)
    try:
        # No status yet (some exchanges' cancel answers): still open until fetched again.
        status = OrderStatus(str(raw.get("status") or "open"))
    except ValueError:
        raise DataError(f"order {raw['id']}: unknown status {raw.get('status')!r}") from None
    remaining = 0.0 if status.is_terminal else max(amount - filled, 0.0)
    if status is OrderStatus.CLOSED and filled <= 0:
        status = OrderStatus.CANCELED  # ended with nothing filled (an expired market order)
    kind = _order_type(raw)
    average = _positive(raw.get("average"))
    if filled > 0 and average is None:
        cost = _positive(raw.get("cost"))
        average = cost / filled if cost is not None else None
    return Order(
        id=str(raw["id"]),
        client_order_id=client_id,
        symbol=str(raw["symbol"]),
        side=OrderSide(str(raw["side"])),
        type=kind,
        amount=amount,
        status=status,
        timestamp=timestamp,
        price=_positive(raw.get("price")) if kind is OrderType.LIMIT else None,
        stop_price=_positive(raw.get("triggerPrice")) if kind is OrderType.STOP else None,
        filled=filled,
        remaining=remaining,
        average=average,
        fee=_order_fee(raw, trades),
        trades=trades,
        last_trade_timestamp=(
            utc_from_ms(raw.get("lastTradeTimestamp"), now)
            if raw.get("lastTradeTimestamp")
            else None
        ),
    )
