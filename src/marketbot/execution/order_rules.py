"""An exchange's order rules applied before the risk check, and what a fill really left.

Before an order is checked and sent, its size is cut to what the market accepts: amounts
rounded down to the lot step, then the minimum amount and the minimum notional checked; an
entry that rounds below them is skipped with a logged reason (it is not an error: the
account is simply too small for it). After a fill, the position is what the fills leave:
a fee paid in the base asset shrinks it, one in the quote asset lowers the proceeds, and one
in a third asset (BNB) is valued at that asset's ticker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from marketbot.core.errors import ConfigError
from marketbot.execution.models import Market, OrderSide, Trade

__all__ = [
    "LIVE_QUOTE_CURRENCIES",
    "FillOutcome",
    "SizedOrder",
    "net_fill",
    "require_live_quote",
    "size_entry",
    "size_exit",
]

_LOG = logging.getLogger(__name__)

LIVE_QUOTE_CURRENCIES: Final = ("USD", "USDT", "USDC")


def require_live_quote(market: Market) -> None:
    """Refuse a pair whose quote is not USD, USDT or USDC (the bot counts in dollars).

    Raises:
        ConfigError: naming the pair and the quotes allowed.
    """
    if market.quote not in LIVE_QUOTE_CURRENCIES:
        raise ConfigError(
            f"{market.symbol}: live trading needs a pair quoted in "
            f"{', '.join(LIVE_QUOTE_CURRENCIES)}, not {market.quote}"
        )


@dataclass(frozen=True, slots=True)
class SizedOrder:
    """An order's size after the market's rules.

    Attributes:
        amount: Base units the order trades (rounded down to the step); 0 when skipped.
        quote_amount: Quote units it spends (entries) or is worth at the price.
        skipped_reason: Why it is not placed (below a minimum), or ``""``.
    """

    amount: float
    quote_amount: float
    skipped_reason: str = ""

    @property
    def skipped(self) -> bool:
        """True when the order must not be placed."""
        return bool(self.skipped_reason)


def size_entry(market: Market, quote_amount: float, price: float) -> SizedOrder:
    """A quote-amount market buy as the market will take it, or skipped with the reason.

    The base amount it buys at ``price`` is rounded down to the lot step; the quote spent is
    that amount's cost, so the order never asks for a fraction of a step. An entry that
    rounds below the minimum amount or notional is skipped, and the reason logged.

    Args:
        market: The pair's rules.
        quote_amount: What the sizing (before the risk check) would spend, in quote units.
        price: The expected fill price (the ticker's ask or last).
    """
    if not (quote_amount > 0 and price > 0):
        return _skip(market, "entry", f"nothing to spend ({quote_amount:g} {market.quote})")
    amount = market.amount_to_precision(quote_amount / price)
    reason = "rounds to 0" if amount <= 0 else market.refusal(amount, price)
    if reason:
        return _skip(market, "entry", f"{quote_amount:g} {market.quote} {reason}")
    return SizedOrder(amount=amount, quote_amount=_cost(market, amount * price))


def size_exit(market: Market, amount: float, price: float) -> SizedOrder:
    """A market sell of ``amount`` rounded down to the lot step, or skipped (dust)."""
    rounded = market.amount_to_precision(amount)
    reason = "rounds to 0" if rounded <= 0 else market.refusal(rounded, price)
    if reason:
        return _skip(market, "exit", reason)
    return SizedOrder(amount=rounded, quote_amount=rounded * price)


def _cost(market: Market, cost: float) -> float:
    """A cost rounded down to the price tick (Binance truncates quoteOrderQty likewise)."""
    if market.price_tick is None:
        return cost
    ticks = Market(market.symbol, market.base, market.quote, amount_step=market.price_tick)
    return ticks.amount_to_precision(cost)


def _skip(market: Market, what: str, reason: str) -> SizedOrder:
    _LOG.info("%s %s skipped: %s", market.symbol, what, reason)
    return SizedOrder(amount=0.0, quote_amount=0.0, skipped_reason=reason)


@dataclass(frozen=True, slots=True)
class FillOutcome:
    """What an order's fills changed, fees included.

    Attributes:
        base_amount: Base units gained (buy) or given (sell), net of base-asset fees on a
            buy: the position actually held.
        quote_amount: Quote units spent (buy) or received (sell, net of quote fees).
        average_price: Gross cost / gross amount.
        fee_quote: Every fee valued in the quote asset.
    """

    base_amount: float
    quote_amount: float
    average_price: float
    fee_quote: float


def net_fill(
    trades: Iterable[Trade], market: Market, price_of: Callable[[str], float]
) -> FillOutcome:
    """Sum an order's fills with their fees (see the module doc).

    Args:
        trades: The order's fills (all one side).
        market: The pair, for its base and quote.
        price_of: The quote price of another asset, e.g. ``BNB`` (its ticker's last).
    """
    gross_amount = gross_cost = base_fee = quote_fee = other_fee_quote = 0.0
    side = None
    for trade in trades:
        side = trade.side
        gross_amount += trade.amount
        gross_cost += trade.amount * trade.price
        if trade.fee is None or trade.fee.cost == 0:
            continue
        if trade.fee.currency == market.base:
            base_fee += trade.fee.cost
            other_fee_quote += trade.fee.cost * trade.price
        elif trade.fee.currency == market.quote:
            quote_fee += trade.fee.cost
        else:
            other_fee_quote += trade.fee.cost * price_of(trade.fee.currency)
    average = gross_cost / gross_amount if gross_amount > 0 else 0.0
    if side is OrderSide.SELL:
        base_amount, quote_amount = gross_amount + base_fee, gross_cost - quote_fee
    else:
        base_amount, quote_amount = gross_amount - base_fee, gross_cost + quote_fee
    return FillOutcome(
        base_amount=base_amount,
        quote_amount=quote_amount,
        average_price=average,
        fee_quote=quote_fee + other_fee_quote,
    )
