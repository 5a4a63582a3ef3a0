"""Order rules before the risk check (lot step, minimums) and fills net of their fees."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketbot.core.errors import ConfigError
from marketbot.execution.models import Fee, Market, OrderSide, Trade
from marketbot.execution.order_rules import net_fill, require_live_quote, size_entry, size_exit

BTC = Market(
    "BTC/USDT", "BTC", "USDT", amount_step=1e-5, price_tick=0.01, min_amount=1e-5, min_cost=5.0
)
AT = datetime(2026, 1, 5, tzinfo=UTC)


def fill(amount: float, price: float, fee: Fee | None, side: OrderSide = OrderSide.BUY) -> Trade:
    return Trade("t", "o", "BTC/USDT", side, amount, price, AT, fee)


def test_size_entry_when_the_amount_has_a_fraction_of_a_step_rounds_it_down() -> None:
    sized = size_entry(BTC, 100.0, 30000.0)

    # 100 / 30000 = 0.0033333...: 333 steps of 0.00001, costing 99.9 USDT.
    assert (sized.amount, sized.quote_amount, sized.skipped) == (0.00333, 99.9, False)


@pytest.mark.parametrize(
    ("quote", "reason"),
    [
        (4.0, "4 USDT cost 3.9 USDT is below the minimum 5"),
        (5.0, "5 USDT cost 4.8 USDT is below the minimum 5"),  # rounds to 0.00016 BTC
        (0.0001, "0.0001 USDT rounds to 0"),
        (0.0, "nothing to spend (0 USDT)"),
    ],
)
def test_size_entry_when_it_rounds_below_the_minimum_is_skipped_with_a_logged_reason(
    quote: float, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="marketbot.execution.order_rules"):
        sized = size_entry(BTC, quote, 30000.0)

    assert (sized.skipped, sized.amount, sized.skipped_reason) == (True, 0.0, reason)
    assert caplog.messages == [f"BTC/USDT entry skipped: {reason}"]


def test_size_exit_when_dust_is_below_the_minimum_is_skipped() -> None:
    assert size_exit(BTC, 0.0123456, 30000.0).amount == 0.01234
    assert size_exit(BTC, 0.00001, 30000.0).skipped_reason == (
        "cost 0.3 USDT is below the minimum 5"
    )


def test_net_fill_when_the_fee_is_in_the_base_asset_shrinks_the_position() -> None:
    outcome = net_fill([fill(0.01, 30000.0, Fee(0.00001, "BTC"))], BTC, lambda asset: 0.0)

    assert outcome.base_amount == pytest.approx(0.00999)
    assert (outcome.quote_amount, outcome.average_price) == (300.0, 30000.0)
    assert outcome.fee_quote == pytest.approx(0.3)


def test_net_fill_when_the_fee_is_in_the_quote_asset_raises_the_cost() -> None:
    trades = [fill(0.004, 30000.0, Fee(0.12, "USDT")), fill(0.006, 30100.0, Fee(0.18, "USDT"))]

    outcome = net_fill(trades, BTC, lambda asset: 0.0)

    assert outcome.base_amount == pytest.approx(0.01)
    assert outcome.quote_amount == pytest.approx(120.0 + 180.6 + 0.3)
    assert outcome.average_price == pytest.approx(300.6 / 0.01)
    assert outcome.fee_quote == pytest.approx(0.3)


def test_net_fill_when_the_fee_is_in_another_asset_values_it_at_its_price() -> None:
    sell = fill(0.01, 30000.0, Fee(0.002, "BNB"), side=OrderSide.SELL)
    asked: list[str] = []

    def price_of(asset: str) -> float:
        asked.append(asset)
        return 250.0

    outcome = net_fill([sell], BTC, price_of)

    assert (outcome.base_amount, outcome.quote_amount) == (0.01, 300.0)
    assert outcome.fee_quote == pytest.approx(0.5)
    assert asked == ["BNB"]


def test_live_quote_when_not_a_dollar_is_refused_naming_the_pair() -> None:
    require_live_quote(BTC)
    with pytest.raises(ConfigError, match="BTC/EUR: live trading needs a pair quoted in USD"):
        require_live_quote(Market("BTC/EUR", "BTC", "EUR"))


@given(
    quote=st.decimals(min_value="0.01", max_value="100000", places=2),
    price=st.decimals(min_value="0.01", max_value="200000", places=2),
)
def test_size_entry_when_placed_never_overspends_and_meets_the_market_rules(
    quote: Decimal, price: Decimal
) -> None:
    sized = size_entry(BTC, float(quote), float(price))

    if sized.skipped:
        # Skipped only when one more step would still not reach the minimums.
        assert sized.amount == 0.0
        biggest = Decimal(repr(BTC.amount_to_precision(float(quote / price))))
        assert biggest < Decimal("0.00001") or biggest * price < 5
        return
    steps = Decimal(repr(sized.amount)) / Decimal("0.00001")
    assert steps == steps.to_integral_value()
    assert Decimal(repr(sized.amount)) * price <= quote
    assert sized.quote_amount <= float(quote)
    assert sized.amount * float(price) >= 5.0 - 1e-9
