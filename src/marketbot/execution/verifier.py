"""The trade verifier: did an order fill as the bot expected, in amount and in price?

Each ended order is checked against what the bot expected and gets one of four statuses:

- ``verified``: filled in full, within the slippage allowance;
- ``partial_fill``: something filled, but not all of it;
- ``slippage_high``: the average fill price is worse than expected by more than
  ``max_slippage`` (a fraction: 0.01 is 1 %);
- ``failed``: nothing filled (rejected, cancelled or expired unfilled), or the fill cannot be
  judged (no usable expected price).

An order can have several discrepancies at once (a partial fill at a bad price); all are
listed, and ``status`` is the gravest by the order of gravity
``failed > slippage_high > partial_fill > verified``. High slippage ranks above a partial
fill because it costs money on every unit that did fill and points at a broken price
assumption (a stale ticker, a thin book, a fill model that disagrees with the backtest),
whereas a partial fill is an ordinary market outcome the bot already handles by trading
what it got.

Slippage is adverse only: a buy filled above the expected price, or a sell below it. A
better price than expected is never a discrepancy. The check is
``fill - expected > max_slippage x expected`` for a buy (``expected - fill`` for a sell),
i.e. ``|fill / expected - 1| > max_slippage`` in the adverse direction, written without the
division so that a fill exactly at the allowance (100 -> 101 at 1 %) is within it.

The expected price (:func:`expected_price`): a limit order's limit price, a stop order's
stop price, and for a market order the ``reference_price`` the caller passes: in a replay,
the open of the bar after the signal (the price the backtest fills at); forward, the ticker
at submission.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from marketbot.core.clock import Clock, SystemClock
from marketbot.core.errors import ConfigError
from marketbot.execution.models import Order, OrderSide, OrderType

__all__ = [
    "Discrepancy",
    "TradeVerifier",
    "Verification",
    "VerificationBatch",
    "VerificationStatistics",
    "VerificationStatus",
    "expected_price",
    "gravest",
]

# Relative shortfall of ``filled`` below ``amount`` that float sums of fills may leave.
_AMOUNT_TOLERANCE: Final = 1e-9


class VerificationStatus(StrEnum):
    """The verdict on one order; compare gravity with :attr:`gravity`."""

    VERIFIED = "verified"
    PARTIAL_FILL = "partial_fill"
    SLIPPAGE_HIGH = "slippage_high"
    FAILED = "failed"

    @property
    def gravity(self) -> int:
        """0 (verified) to 3 (failed): the larger, the graver."""
        return _GRAVITY[self]


_GRAVITY: Final = MappingProxyType(
    {
        VerificationStatus.VERIFIED: 0,
        VerificationStatus.PARTIAL_FILL: 1,
        VerificationStatus.SLIPPAGE_HIGH: 2,
        VerificationStatus.FAILED: 3,
    }
)


def gravest(statuses: Iterable[VerificationStatus]) -> VerificationStatus:
    """The gravest of ``statuses``; ``verified`` when there are none."""
    return max(statuses, key=_GRAVITY.__getitem__, default=VerificationStatus.VERIFIED)


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """One way an order differs from what was expected: its status and, for people, why."""

    status: VerificationStatus
    message: str


@dataclass(frozen=True, slots=True)
class Verification:
    """The verdict on one order.

    Attributes:
        client_order_id: The order's client id.
        order_id: The exchange's order id.
        symbol: The pair.
        side: Buy or sell.
        status: The gravest discrepancy's status, or ``verified`` when there is none.
        discrepancies: Every discrepancy found, in the order they were checked
            (filled at all, filled in full, price).
        expected_price: The price the order should have filled at, or None if unknown.
        fill_price: The average fill price, or None when nothing filled.
        slippage: How much worse than expected the fill was, as a fraction: positive is
            adverse, negative is better than expected; None when either price is missing.
        amount: Base units ordered.
        filled: Base units filled.
        verified_at: When the verdict was made (UTC).
    """

    client_order_id: str
    order_id: str
    symbol: str
    side: OrderSide
    status: VerificationStatus
    discrepancies: tuple[Discrepancy, ...]
    expected_price: float | None
    fill_price: float | None
    slippage: float | None
    amount: float
    filled: float
    verified_at: datetime

    def __bool__(self) -> bool:
        return self.status is VerificationStatus.VERIFIED

    def to_row(self) -> dict[str, Any]:
        """The ``verifications`` table's row.

        ``client_order_id``, ``status``, ``at`` (``verified_at``), ``expected_price``,
        ``fill_price``, ``slippage`` and ``discrepancies`` as a JSON list of
        ``{"status", "message"}``; enumerations as their values. The order's own fields
        (amounts, side) are the ``orders`` table's.
        """
        return {
            "client_order_id": self.client_order_id,
            "status": self.status.value,
            "at": self.verified_at,
            "expected_price": self.expected_price,
            "fill_price": self.fill_price,
            "slippage": self.slippage,
            "discrepancies": [
                {"status": item.status.value, "message": item.message}
                for item in self.discrepancies
            ],
        }


@dataclass(frozen=True, slots=True)
class VerificationStatistics:
    """Counts and slippage over many verdicts.

    Attributes:
        total: How many orders were verified.
        by_status: How many got each status (every status present, zero included).
        average_slippage: The mean slippage (adverse positive) of the orders that filled
            with a known expected price; None when there were none.
        worst_slippage: The largest of those; None when there were none.
    """

    total: int = 0
    by_status: Mapping[VerificationStatus, int] = field(
        default_factory=lambda: dict.fromkeys(VerificationStatus, 0)
    )
    average_slippage: float | None = None
    worst_slippage: float | None = None

    @property
    def verified_rate(self) -> float | None:
        """The fraction of orders verified (0 to 1), or None when there were none."""
        if self.total == 0:
            return None
        return self.by_status[VerificationStatus.VERIFIED] / self.total

    @classmethod
    def of(cls, verifications: Iterable[Verification]) -> VerificationStatistics:
        """The statistics of ``verifications``."""
        tally = _Tally()
        for verification in verifications:
            tally.add(verification)
        return tally.statistics()


@dataclass(slots=True)
class _Tally:
    """Running sums, so a long-lived verifier's memory does not grow with its orders."""

    counts: Counter[VerificationStatus] = field(default_factory=Counter)
    slippage_sum: float = 0.0
    slippage_count: int = 0
    worst_slippage: float | None = None

    def add(self, verification: Verification) -> None:
        self.counts[verification.status] += 1
        slippage = verification.slippage
        if slippage is not None:
            self.slippage_sum += slippage
            self.slippage_count += 1
            if self.worst_slippage is None or slippage > self.worst_slippage:
                self.worst_slippage = slippage

    def statistics(self) -> VerificationStatistics:
        by_status = {status: self.counts[status] for status in VerificationStatus}
        average = self.slippage_sum / self.slippage_count if self.slippage_count else None
        return VerificationStatistics(
            total=sum(by_status.values()),
            by_status=MappingProxyType(by_status),
            average_slippage=average,
            worst_slippage=self.worst_slippage,
        )


@dataclass(frozen=True, slots=True)
class VerificationBatch:
    """The verdicts on a batch of orders, in the order given, with their statistics."""

    verifications: tuple[Verification, ...]
    statistics: VerificationStatistics

    @property
    def status(self) -> VerificationStatus:
        """The gravest status in the batch (``verified`` for an empty batch)."""
        return gravest(item.status for item in self.verifications)


def expected_price(order: Order, reference_price: float | None = None) -> float | None:
    """The price ``order`` should fill at: its limit or stop price, else ``reference_price``.

    Args:
        order: The order.
        reference_price: For a market order, the next bar's open (replay) or the ticker at
            submission (forward); ignored for limit and stop orders.
    """
    if order.type is OrderType.LIMIT:
        return order.price
    if order.type is OrderType.STOP:
        return order.stop_price
    return reference_price


class TradeVerifier:
    """Checks ended orders against what was expected and keeps running statistics.

    Args:
        max_slippage: The largest adverse slippage allowed, as a fraction (0.01 is 1 %).
        clock: Source of ``verified_at``; the system clock by default.

    Raises:
        ConfigError: ``max_slippage`` is not a finite number >= 0.
    """

    def __init__(self, max_slippage: float = 0.01, *, clock: Clock | None = None) -> None:
        if not (
            isinstance(max_slippage, int | float)
            and not isinstance(max_slippage, bool)
            and math.isfinite(max_slippage)
            and max_slippage >= 0
        ):
            raise ConfigError(f"`max_slippage` must be a number >= 0, got {max_slippage!r}")
        self.max_slippage = float(max_slippage)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._tally = _Tally()

    def verify(self, order: Order, reference_price: float | None = None) -> Verification:
        """The verdict on one order (meant for an order that has ended).

        Args:
            order: The order as the exchange last reported it.
            reference_price: The expected price of a market order (see
                :func:`expected_price`); limit and stop orders use their own price.
        """
        expected = expected_price(order, reference_price)
        fill_price = order.average if order.filled > 0 else None
        slippage = _adverse_slippage(order.side, expected, fill_price)
        discrepancies = [
            *self._fill_discrepancies(order),
            *self._price_discrepancies(order, expected, fill_price),
        ]
        verification = Verification(
            client_order_id=order.client_order_id,
            order_id=order.id,
            symbol=order.symbol,
            side=order.side,
            status=gravest(item.status for item in discrepancies),
            discrepancies=tuple(discrepancies),
            expected_price=_usable(expected),
            fill_price=fill_price,
            slippage=slippage,
            amount=order.amount,
            filled=order.filled,
            verified_at=self.clock.now(),
        )
        self._tally.add(verification)
        return verification

    def verify_batch(
        self, orders: Iterable[Order | tuple[Order, float | None]]
    ) -> VerificationBatch:
        """Verify several orders; each item is an order, or ``(order, reference_price)``."""
        verifications: list[Verification] = []
        for item in orders:
            order, reference = item if isinstance(item, tuple) else (item, None)
            verifications.append(self.verify(order, reference))
        return VerificationBatch(tuple(verifications), VerificationStatistics.of(verifications))

    def statistics(self) -> VerificationStatistics:
        """Counts and slippage over every order this verifier has verified."""
        return self._tally.statistics()

    def _fill_discrepancies(self, order: Order) -> Sequence[Discrepancy]:
        status = order.status.value
        if order.filled <= 0:
            why = f": {order.reason}" if order.reason else ""
            return [Discrepancy(VerificationStatus.FAILED, f"nothing filled (order {status}{why})")]
        if order.quote_amount is not None:
            # A quote-amount buy's base amount is what it bought: only its status tells.
            if order.is_fully_filled:
                return []
            ordered = f"a quote amount of {order.quote_amount:g} {_quote(order.symbol)}"
        elif order.amount - order.filled > _AMOUNT_TOLERANCE * order.amount:
            ordered = f"{order.amount:g}"
        else:
            return []
        message = f"filled {order.filled:g} of {ordered} (order {status})"
        return [Discrepancy(VerificationStatus.PARTIAL_FILL, message)]

    def _price_discrepancies(
        self, order: Order, expected: float | None, fill_price: float | None
    ) -> Sequence[Discrepancy]:
        if fill_price is None:
            return []
        usable = _usable(expected)
        if usable is None:
            what = "reference_price" if order.type is OrderType.MARKET else "its own price"
            return [
                Discrepancy(
                    VerificationStatus.FAILED,
                    f"no usable expected price ({what} is {expected!r}): the fill at "
                    f"{fill_price:g} cannot be judged",
                )
            ]
        adverse_move = fill_price - usable if order.side is OrderSide.BUY else usable - fill_price
        if adverse_move > self.max_slippage * usable:
            direction = "above" if order.side is OrderSide.BUY else "below"
            message = (
                f"{order.side.value} filled at {fill_price:g}, {adverse_move / usable:.2%} "
                f"{direction} the expected {usable:g} (allowed {self.max_slippage:.2%})"
            )
            return [Discrepancy(VerificationStatus.SLIPPAGE_HIGH, message)]
        return []


def _usable(price: float | None) -> float | None:
    """``price`` if it is a finite positive number, else None."""
    if price is not None and math.isfinite(price) and price > 0:
        return price
    return None


def _adverse_slippage(
    side: OrderSide, expected: float | None, fill_price: float | None
) -> float | None:
    usable = _usable(expected)
    if fill_price is None or usable is None:
        return None
    ratio = fill_price / usable - 1.0
    return ratio if side is OrderSide.BUY else -ratio


def _quote(symbol: str) -> str:
    return symbol.partition("/")[2] or "quote units"
