"""The execution layer: the Exchange port, orders, events, verifier and timeouts.

It holds the ``Exchange`` protocol and its records, order events, client order ids, the trade
verifier, order timeouts and the paper exchange. It sits between the bot (above) and research,
rules, data and core (below); docs/execution.md describes the protocol, the events, the
verifier's statuses and gravity, the timeouts and the clock, the client ids and the paper
exchange.

The paper exchange's names are imported on first use: it fills with the backtest's compiled
step core, and ``import marketbot.execution`` stays as light as the protocol.
"""

from typing import TYPE_CHECKING

from marketbot.execution.client_ids import CLIENT_ORDER_ID_LENGTH, Intent, client_order_id
from marketbot.execution.events import (
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    OrderUpdated,
    order_events,
)
from marketbot.execution.exchange import Exchange, OrderNotFoundError
from marketbot.execution.models import (
    AssetBalance,
    Balance,
    Candle,
    Fee,
    Market,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Ticker,
    Trade,
)
from marketbot.execution.timeouts import OrderOutcome, OrderTimeoutHandler, TimeoutStatistics
from marketbot.execution.verifier import (
    Discrepancy,
    TradeVerifier,
    Verification,
    VerificationBatch,
    VerificationStatistics,
    VerificationStatus,
    expected_price,
    gravest,
)
from marketbot.net.rate_limiter import PRIORITY_EMERGENCY, PRIORITY_LOW, PRIORITY_NORMAL

if TYPE_CHECKING:
    from marketbot.execution.paper import (
        PaperBar,
        PaperExchange,
        PaperKnobs,
        PaperPosition,
        PaperSettings,
        paper_ledger_path,
    )

_PAPER_NAMES = frozenset(
    {
        "PaperBar",
        "PaperExchange",
        "PaperKnobs",
        "PaperPosition",
        "PaperSettings",
        "paper_ledger_path",
    }
)


def __getattr__(name: str) -> object:
    """The paper exchange's names, imported when first asked for."""
    if name in _PAPER_NAMES:
        from marketbot.execution import paper

        return getattr(paper, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CLIENT_ORDER_ID_LENGTH",
    "PRIORITY_EMERGENCY",
    "PRIORITY_LOW",
    "PRIORITY_NORMAL",
    "AssetBalance",
    "Balance",
    "Candle",
    "Discrepancy",
    "Exchange",
    "Fee",
    "Intent",
    "Market",
    "Order",
    "OrderAccepted",
    "OrderCanceled",
    "OrderDenied",
    "OrderEvent",
    "OrderExpired",
    "OrderFilled",
    "OrderNotFoundError",
    "OrderOutcome",
    "OrderRejected",
    "OrderSide",
    "OrderStatus",
    "OrderSubmitted",
    "OrderTimeoutHandler",
    "OrderType",
    "OrderUpdated",
    "PaperBar",
    "PaperExchange",
    "PaperKnobs",
    "PaperPosition",
    "PaperSettings",
    "Ticker",
    "TimeoutStatistics",
    "Trade",
    "TradeVerifier",
    "Verification",
    "VerificationBatch",
    "VerificationStatistics",
    "VerificationStatus",
    "client_order_id",
    "expected_price",
    "gravest",
    "order_events",
    "paper_ledger_path",
]
