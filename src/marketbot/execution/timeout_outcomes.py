"""What the order timeout handler reports: one order's outcome, and its running counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from marketbot.execution.models import Order, OrderStatus

__all__ = ["OrderOutcome", "TimeoutStatistics"]


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    """How a watched order ended, or stood when the handler last gave up waiting.

    Attributes:
        order_id: The exchange's order id.
        exchange: The name of the exchange it is on.
        order: The order as last reported, or None if the exchange never answered.
        started_at: When watching began (injected clock).
        ended_at: When this outcome was settled (injected clock).
        timed_out: True when the deadline passed while the order was open.
        cancel_requested: True when the handler asked the exchange to cancel it (on
            timeout or in :meth:`OrderTimeoutHandler.cancel_all`).
        final: True when nothing more will happen to the order: it ended, or the exchange
            does not know it. False only after a cancel that left it open.
        error: The last exchange error met, or ``""``.
    """

    order_id: str
    exchange: str
    order: Order | None
    started_at: datetime
    ended_at: datetime
    timed_out: bool = False
    cancel_requested: bool = False
    final: bool = True
    error: str = ""

    def __bool__(self) -> bool:
        return self.order is not None and self.order.is_fully_filled

    @property
    def status(self) -> OrderStatus | None:
        """The order's last reported status, or None if it was never read."""
        return self.order.status if self.order is not None else None

    @property
    def filled(self) -> float:
        """Base units filled (0 if the order was never read)."""
        return self.order.filled if self.order is not None else 0.0

    @property
    def fill_seconds(self) -> float | None:
        """For a filled order, how long it took to fill, in seconds; else None.

        From the exchange's order time to its last fill when it reports both, else from the
        start of watching to this outcome.
        """
        order = self.order
        if order is None or not order.is_fully_filled:
            return None
        if order.last_trade_timestamp is not None:
            return (order.last_trade_timestamp - order.timestamp).total_seconds()
        return (self.ended_at - self.started_at).total_seconds()


@dataclass(frozen=True, slots=True)
class TimeoutStatistics:
    """What the handler has seen: ``monitored = filled + cancelled + ended_otherwise + pending``.

    Attributes:
        monitored: Orders watched.
        filled: Orders that filled in full (late fills found after a timeout included).
        timed_out: Orders whose deadline passed while they were open.
        cancelled: Orders that ended cancelled at the handler's request.
        ended_otherwise: Orders that ended unfilled or part-filled without the handler's
            cancel (rejected, expired, cancelled elsewhere), or that the exchange lost.
        pending: Orders still watched.
        cancel_failures: Cancels that raised or left the order open.
        average_fill_seconds: The mean :attr:`OrderOutcome.fill_seconds` of the filled
            orders; None before the first.
    """

    monitored: int
    filled: int
    timed_out: int
    cancelled: int
    ended_otherwise: int
    pending: int
    cancel_failures: int
    average_fill_seconds: float | None
