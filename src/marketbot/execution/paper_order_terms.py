"""What an order at the paper venue asks for: its amount, what is left, its limit price.

And whether a range of prices fills a limit order (:func:`limit_crossed`), and the position
the bot held when it decided an order; :mod:`marketbot.execution.paper_market` fills them.
"""

from __future__ import annotations

from marketbot.core.codes import FLAT, LONG
from marketbot.execution.paper_ledger_rows import OrderRow

__all__ = ["amount_left", "limit_crossed", "limit_price", "ordered_amount", "position_at_signal"]


def position_at_signal(order: OrderRow) -> int:
    """The position the bot held when it decided the order (``params``), FLAT or LONG."""
    value = order.params.get("position_at_signal", FLAT)
    return LONG if value in (LONG, "long") else FLAT


def ordered_amount(order: OrderRow) -> float:
    """The amount ordered (0 for an order sized by its cost)."""
    return order.amount if order.amount is not None else 0.0


def amount_left(order: OrderRow) -> float:
    """What the order has still to fill (never below 0)."""
    return max(ordered_amount(order) - order.filled, 0.0)


def limit_price(order: OrderRow) -> float:
    """A limit order's price."""
    assert order.price is not None
    return order.price


def limit_crossed(order: OrderRow, low: float, high: float, *, gap: bool) -> bool:
    """Whether prices from ``low`` to ``high`` fill a limit order.

    At an open (``gap``) a price at or through the limit fills; inside a bar the price must
    trade through it (a buy's low below the limit, a sell's high above it): a touch alone
    leaves a maker order in the queue.
    """
    limit = limit_price(order)
    if order.side == "buy":
        return low <= limit if gap else low < limit
    return high >= limit if gap else high > limit
