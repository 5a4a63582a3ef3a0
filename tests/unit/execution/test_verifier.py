"""TradeVerifier: each status on known numbers, gravity, every discrepancy, batches, rows."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketbot.core.clock import ManualClock
from marketbot.core.errors import ConfigError
from marketbot.execution import (
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    TradeVerifier,
    VerificationStatistics,
    VerificationStatus,
    expected_price,
    gravest,
)

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
VERIFIED = VerificationStatus.VERIFIED
PARTIAL = VerificationStatus.PARTIAL_FILL
SLIPPAGE = VerificationStatus.SLIPPAGE_HIGH
FAILED = VerificationStatus.FAILED
# The documented order of gravity, spelt out independently of the code's table.
GRAVITY_ORDER = [VERIFIED, PARTIAL, SLIPPAGE, FAILED]


def an_order(
    *,
    side: OrderSide = OrderSide.BUY,
    type: OrderType = OrderType.MARKET,
    amount: float = 1.0,
    filled: float | None = None,
    average: float | None = 100.0,
    status: OrderStatus | None = None,
    price: float | None = None,
    stop_price: float | None = None,
    reason: str = "",
) -> Order:
    """A market buy of 1 filled in full at 100 unless told otherwise."""
    filled = amount if filled is None else filled
    if status is None:
        status = OrderStatus.CLOSED if filled == amount else OrderStatus.CANCELED
    return Order(
        id="7",
        client_order_id="mb-test",
        symbol="BTC/USDT",
        side=side,
        type=type,
        amount=amount,
        status=status,
        timestamp=NOW,
        price=price,
        stop_price=stop_price,
        filled=filled,
        remaining=amount - filled if status is OrderStatus.OPEN else 0.0,
        average=average if filled > 0 else None,
        reason=reason,
    )


@pytest.fixture
def verifier() -> TradeVerifier:
    return TradeVerifier(max_slippage=0.01, clock=ManualClock(NOW))


def test_verify_when_filled_in_full_within_the_allowance_is_verified(
    verifier: TradeVerifier,
) -> None:
    result = verifier.verify(an_order(average=100.5), reference_price=100.0)

    assert result.status is VERIFIED
    assert result
    assert result.discrepancies == ()
    assert result.slippage == pytest.approx(0.005)
    assert result.verified_at == NOW


def test_verify_when_a_buy_fills_better_than_expected_is_verified_with_negative_slippage(
    verifier: TradeVerifier,
) -> None:
    result = verifier.verify(an_order(average=95.0), reference_price=100.0)

    assert result.status is VERIFIED
    assert result.slippage == pytest.approx(-0.05)


def test_verify_when_a_buy_fills_too_high_is_slippage_high(verifier: TradeVerifier) -> None:
    result = verifier.verify(an_order(average=101.5), reference_price=100.0)

    assert result.status is SLIPPAGE
    assert not result
    assert result.slippage == pytest.approx(0.015)
    assert [item.message for item in result.discrepancies] == [
        "buy filled at 101.5, 1.50% above the expected 100 (allowed 1.00%)"
    ]


@pytest.mark.parametrize(
    ("average", "status"),
    [(98.9, SLIPPAGE), (99.0, VERIFIED), (101.0, VERIFIED), (120.0, VERIFIED)],
)
def test_verify_when_a_sell_fills_below_expected_only_that_is_adverse(
    verifier: TradeVerifier, average: float, status: VerificationStatus
) -> None:
    result = verifier.verify(an_order(side=OrderSide.SELL, average=average), 100.0)

    assert result.status is status


@pytest.mark.parametrize(("average", "status"), [(101.0, VERIFIED), (101.01, SLIPPAGE)])
def test_verify_when_a_buy_fills_exactly_at_the_allowance_it_is_within_it(
    verifier: TradeVerifier, average: float, status: VerificationStatus
) -> None:
    assert verifier.verify(an_order(average=average), 100.0).status is status


def test_verify_when_part_filled_and_cancelled_is_partial_fill(verifier: TradeVerifier) -> None:
    result = verifier.verify(an_order(filled=0.5, average=100.2), reference_price=100.0)

    assert result.status is PARTIAL
    assert [item.message for item in result.discrepancies] == ["filled 0.5 of 1 (order canceled)"]


@pytest.mark.parametrize(
    ("status", "verdict", "message"),
    [
        (OrderStatus.CLOSED, VERIFIED, None),
        (OrderStatus.CANCELED, PARTIAL, "filled 4 of a quote amount of 1000 USDT (order canceled)"),
    ],
)
def test_verify_when_quote_amount_buy_is_judged_by_its_status(
    verifier: TradeVerifier, status: OrderStatus, verdict: VerificationStatus, message: str | None
) -> None:
    order = replace(
        an_order(amount=4.0, filled=4.0, average=100.0, status=status), quote_amount=1000.0
    )

    result = verifier.verify(order, reference_price=100.0)

    assert result.status is verdict
    assert [item.message for item in result.discrepancies] == ([message] if message else [])


@pytest.mark.parametrize(
    ("status", "reason", "message"),
    [
        (OrderStatus.REJECTED, "insufficient funds", "nothing filled (order rejected: "),
        (OrderStatus.CANCELED, "", "nothing filled (order canceled)"),
        (OrderStatus.EXPIRED, "", "nothing filled (order expired)"),
    ],
)
def test_verify_when_nothing_filled_is_failed(
    verifier: TradeVerifier, status: OrderStatus, reason: str, message: str
) -> None:
    result = verifier.verify(an_order(filled=0.0, status=status, reason=reason), 100.0)

    assert result.status is FAILED
    assert result.fill_price is None
    assert result.slippage is None
    assert result.discrepancies[0].message.startswith(message)


def test_verify_when_partial_fill_has_high_slippage_lists_both_and_status_is_the_gravest(
    verifier: TradeVerifier,
) -> None:
    result = verifier.verify(an_order(filled=0.4, average=103.0), reference_price=100.0)

    assert [item.status for item in result.discrepancies] == [PARTIAL, SLIPPAGE]
    assert result.status is SLIPPAGE


def test_verify_when_limit_order_expects_its_limit_price_whatever_the_reference(
    verifier: TradeVerifier,
) -> None:
    order = an_order(type=OrderType.LIMIT, price=100.0, average=100.0)

    result = verifier.verify(order, reference_price=80.0)

    assert result.expected_price == 100.0
    assert result.status is VERIFIED


def test_verify_when_a_stop_sell_gaps_through_its_stop_is_slippage_high(
    verifier: TradeVerifier,
) -> None:
    order = an_order(side=OrderSide.SELL, type=OrderType.STOP, stop_price=95.0, average=93.0)

    result = verifier.verify(order)

    assert result.expected_price == 95.0
    assert result.status is SLIPPAGE
    assert result.slippage == pytest.approx(2 / 95)


@pytest.mark.parametrize("reference", [None, math.nan, 0.0, -5.0])
def test_verify_when_market_order_has_no_usable_reference_fails_closed(
    verifier: TradeVerifier, reference: float | None
) -> None:
    result = verifier.verify(an_order(), reference_price=reference)

    assert result.status is FAILED
    assert "no usable expected price" in result.discrepancies[0].message
    assert result.expected_price is None


def test_expected_price_when_each_order_type_picks_its_own_price() -> None:
    assert expected_price(an_order(), 100.0) == 100.0
    assert expected_price(an_order(type=OrderType.LIMIT, price=99.0), 100.0) == 99.0
    assert expected_price(an_order(type=OrderType.STOP, stop_price=98.0), 100.0) == 98.0


def test_gravest_when_given_statuses_follows_the_documented_order() -> None:
    assert gravest([]) is VERIFIED
    assert gravest([PARTIAL, VERIFIED]) is PARTIAL
    assert gravest([PARTIAL, SLIPPAGE]) is SLIPPAGE
    assert gravest([SLIPPAGE, FAILED, PARTIAL]) is FAILED
    assert [status.gravity for status in GRAVITY_ORDER] == [0, 1, 2, 3]


def test_verify_batch_when_mixed_returns_each_verdict_in_order_and_statistics(
    verifier: TradeVerifier,
) -> None:
    batch = verifier.verify_batch(
        [
            (an_order(average=100.0), 100.0),
            (an_order(average=102.0), 100.0),
            (an_order(filled=0.5, average=100.0), 100.0),
            an_order(type=OrderType.LIMIT, price=100.0, average=99.0),
            (an_order(filled=0.0), 100.0),
        ]
    )

    assert [item.status for item in batch.verifications] == [
        VERIFIED,
        SLIPPAGE,
        PARTIAL,
        VERIFIED,
        FAILED,
    ]
    assert batch.status is FAILED
    stats = batch.statistics
    assert stats.total == 5
    assert dict(stats.by_status) == {VERIFIED: 2, PARTIAL: 1, SLIPPAGE: 1, FAILED: 1}
    assert stats.verified_rate == pytest.approx(0.4)
    # Slippage of the four that filled: 0, +2 %, 0, -1 % (a limit buy filled below its price).
    assert stats.average_slippage == pytest.approx(0.0025)
    assert stats.worst_slippage == pytest.approx(0.02)


def test_statistics_when_verifying_over_time_accumulates_every_verdict(
    verifier: TradeVerifier,
) -> None:
    assert verifier.statistics().total == 0
    assert verifier.statistics().verified_rate is None
    assert verifier.statistics().average_slippage is None

    verifier.verify(an_order(average=100.0), 100.0)
    verifier.verify_batch([(an_order(average=105.0), 100.0)])

    stats = verifier.statistics()
    assert stats.total == 2
    assert stats.by_status[VERIFIED] == 1
    assert stats.by_status[SLIPPAGE] == 1
    assert stats.by_status[FAILED] == 0
    assert stats.worst_slippage == pytest.approx(0.05)


def test_verification_statistics_of_when_empty_is_all_zero() -> None:
    stats = VerificationStatistics.of([])

    assert stats.total == 0
    assert set(stats.by_status.values()) == {0}
    assert stats.worst_slippage is None


def test_to_row_when_partial_with_slippage_is_json_ready(verifier: TradeVerifier) -> None:
    row = verifier.verify(an_order(filled=0.4, average=103.0), 100.0).to_row()

    assert row == {
        "client_order_id": "mb-test",
        "status": "slippage_high",
        "at": NOW,
        "expected_price": 100.0,
        "fill_price": 103.0,
        "slippage": pytest.approx(0.03),
        "discrepancies": [
            {"status": "partial_fill", "message": "filled 0.4 of 1 (order canceled)"},
            {
                "status": "slippage_high",
                "message": "buy filled at 103, 3.00% above the expected 100 (allowed 1.00%)",
            },
        ],
    }
    json.dumps({key: value for key, value in row.items() if key != "at"}, allow_nan=False)


def test_to_row_when_given_to_the_store_is_its_verification_record() -> None:
    # The contract with the verifications table: a row is a VerificationRecord's fields.
    from marketbot.store.bot import VerificationRecord

    verifier = TradeVerifier(clock=ManualClock(NOW))
    row = verifier.verify(an_order(), 100.0).to_row()

    assert VerificationRecord(**row).status == "verified"


@pytest.mark.parametrize("bad", [-0.01, math.nan, math.inf, "1%", True])
def test_trade_verifier_when_max_slippage_is_invalid_raises_config_error(bad: object) -> None:
    with pytest.raises(ConfigError, match="max_slippage"):
        TradeVerifier(max_slippage=bad)  # type: ignore[arg-type]


# Prices on a cent lattice around an expected 100, so that fills land exactly on the 1 %
# allowance (101.00 and 99.00) as well as one cent either side of it.
cents = st.integers(min_value=9_000, max_value=11_000)


@given(cents, st.sampled_from(list(OrderSide)))
def test_verify_when_fills_sit_on_a_cent_lattice_flags_exactly_the_adverse_moves_beyond_1pct(
    fill_cents: int, side: OrderSide
) -> None:
    verifier = TradeVerifier(0.01, clock=ManualClock(NOW))
    result = verifier.verify(an_order(side=side, average=fill_cents / 100), 100.0)

    adverse_cents = fill_cents - 10_000 if side is OrderSide.BUY else 10_000 - fill_cents
    assert (result.status is SLIPPAGE) == (adverse_cents > 100)


@given(
    status=st.sampled_from(list(OrderStatus)),
    eighths_filled=st.integers(min_value=0, max_value=8),
    fill_cents=cents,
    reference=st.one_of(st.none(), st.just(math.nan), st.just(100.0)),
    side=st.sampled_from(list(OrderSide)),
)
def test_verify_when_anything_status_is_the_gravest_discrepancy_or_verified_if_none(
    status: OrderStatus,
    eighths_filled: int,
    fill_cents: int,
    reference: float | None,
    side: OrderSide,
) -> None:
    filled = eighths_filled / 8
    if status is OrderStatus.CLOSED and filled < 1.0:
        status = OrderStatus.CANCELED  # closed means fully filled: an Order refuses otherwise
    if filled == 1.0 and status is OrderStatus.OPEN:
        status = OrderStatus.CLOSED
    order = an_order(side=side, filled=filled, average=fill_cents / 100, status=status)

    result = TradeVerifier(0.01, clock=ManualClock(NOW)).verify(order, reference)

    found = [item.status for item in result.discrepancies]
    expected = max(found, key=GRAVITY_ORDER.index) if found else VERIFIED
    assert result.status is expected
    assert VERIFIED not in found
    assert (FAILED in found) == (filled == 0 or reference is None or math.isnan(reference))
    assert (PARTIAL in found) == (0 < filled < 1)
