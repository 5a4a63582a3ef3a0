"""The paper exchange's orders: fills, the bracket's labels, refusals, client ids, limits, knobs.

Each test drives a ``PaperExchange`` bar by bar with hand-made bars and reads what a bot
reads (orders, fills, balances, the position). The numbers are worked out from the rules in
docs/execution.md ("Paper exchange") and docs/backtesting.md.
"""

from __future__ import annotations

import inspect
import math
from datetime import timedelta
from pathlib import Path

import pytest

from marketbot.backtest.config import BacktestConfig, ExitRules
from marketbot.core.errors import ConfigError, DataError, ExchangeError
from marketbot.execution import (
    Exchange,
    Order,
    OrderNotFoundError,
    OrderSide,
    OrderStatus,
    OrderType,
    PaperBar,
    PaperExchange,
    PaperKnobs,
    PaperSettings,
    Ticker,
)
from tests.support.paper_driver import (
    FEE,
    SLIP,
    SYMBOL,
    T0,
    Venue,
    bar,
    entered,
    flat_bar,
)


@pytest.fixture
def venue(tmp_path: Path) -> Venue:
    return Venue(tmp_path)


# -- the protocol ----------------------------------------------------------------------------


def test_paper_exchange_when_compared_with_the_protocol_has_its_methods_and_parameters() -> None:
    for name, member in inspect.getmembers(Exchange, inspect.isfunction):
        if name.startswith("_"):
            continue
        ours = inspect.signature(getattr(PaperExchange, name))
        theirs = inspect.signature(member)
        assert list(ours.parameters) == list(theirs.parameters), name
        for parameter in theirs.parameters.values():
            assert ours.parameters[parameter.name].kind == parameter.kind, (name, parameter)
            assert ours.parameters[parameter.name].default == parameter.default, (name, parameter)


# -- entries and signal exits ----------------------------------------------------------------


def test_market_buy_when_the_next_bar_opens_fills_at_the_open_plus_slippage_with_the_fee(
    venue: Venue,
) -> None:
    venue.run(flat_bar(0))
    placed = venue.buy(1_000.0)
    assert placed.status is OrderStatus.OPEN and placed.filled == 0.0 and placed.amount == 0.0

    changed = venue.run(bar(1, 200.0, 210.0, 190.0, 205.0))

    fill = 200.0 * (1 + SLIP)
    units = 1_000.0 / (fill * (1 + FEE))
    order = venue.order("entry-1")
    assert order.status is OrderStatus.CLOSED and order.quote_amount == 1_000.0
    assert math.isclose(order.filled, units, rel_tol=1e-12) and order.amount == order.filled
    assert math.isclose(order.average or 0.0, fill, rel_tol=1e-12)
    assert order.fee is not None and math.isclose(order.fee.cost, units * fill * FEE)
    (trade,) = order.trades
    assert trade.client_order_id == "entry-1" and trade.timestamp == T0 + timedelta(days=1)
    assert math.isclose(venue.exchange.quote_cash(), 9_000.0, rel_tol=1e-12)
    # Every order whose state changed: the entry and its bracket's carrier.
    assert [o.client_order_id for o in changed] == ["entry-1", "entry-1-protect"]


def test_market_buy_when_cost_is_all_the_cash_never_spends_more(venue: Venue) -> None:
    units = entered(venue, cost=10_000.0)

    assert math.isclose(units, 10_000.0 / (100.1 * (1 + FEE)), rel_tol=1e-12)
    assert abs(venue.exchange.quote_cash()) < 1e-9
    balance = venue.exchange.fetch_balance()
    assert balance.free("BTC") == units and balance.total("USDT") < 1e-9


def test_signal_exit_when_the_next_bar_opens_sells_at_the_open_and_cancels_the_carrier(
    venue: Venue,
) -> None:
    units = entered(venue)
    venue.sell(units)

    venue.run(bar(2, 110.0, 111.0, 109.0, 110.0))

    exit_order = venue.order("exit-1")
    assert exit_order.status is OrderStatus.CLOSED and exit_order.reason == "signal"
    assert math.isclose(exit_order.average or 0.0, 110.0 * (1 - SLIP), rel_tol=1e-12)
    carrier = venue.order("entry-1-protect")
    assert carrier.status is OrderStatus.CANCELED
    assert carrier.reason == "position closed by the signal exit (order exit-1)"
    assert venue.exchange.open_position(SYMBOL) is None
    assert venue.exchange.fetch_open_orders() == []


def test_entry_when_long_at_the_signal_is_canceled_no_pyramiding(venue: Venue) -> None:
    venue.run(flat_bar(0))
    venue.buy(1_000.0, position_at_signal="long")

    venue.run(flat_bar(1))

    order = venue.order("entry-1")
    assert order.status is OrderStatus.CANCELED and "no pyramiding" in order.reason
    assert venue.exchange.open_position(SYMBOL) is None


def test_entry_when_a_position_is_open_is_canceled_one_per_symbol(venue: Venue) -> None:
    entered(venue)
    venue.buy(1_000.0, cid="entry-2")

    venue.run(flat_bar(2))

    order = venue.order("entry-2")
    assert order.status is OrderStatus.CANCELED and "one per symbol" in order.reason


# -- the bracket -----------------------------------------------------------------------------

BRACKET = ExitRules(
    stop_loss=0.05, take_profit=0.1, trailing_stop=0.08, max_hold_seconds=5 * 86_400
)


@pytest.mark.parametrize(
    ("bars", "reason", "price"),
    [
        # stop level 100.1 x 0.95 = 95.095: touched inside bar 2, filled at the level
        ([bar(2, 100, 101, 95, 100)], "stop_loss", 100.1 * 0.95),
        # the open gaps below the stop: filled at the open
        ([bar(2, 90, 91, 89, 90)], "stop_loss", 90.0),
        # the high 110 lifts the trailing level to 101.2 at bar 2's close; bar 3 falls to it
        ([bar(2, 101, 110, 101, 101), bar(3, 105, 106, 100, 105)], "trailing_stop", 110 * 0.92),
        # target 100.1 x 1.1 = 110.11
        ([bar(2, 100, 111, 100, 100)], "take_profit", 100.1 * 1.1),
        # five days after the entry bar's open: out at the open of bar 6
        ([flat_bar(2), flat_bar(3), flat_bar(4), flat_bar(5), flat_bar(6, 103.0)], "max_hold",
         103.0),
    ],
)  # fmt: skip
def test_bracket_when_a_leg_fires_the_carrier_fills_labelled_with_it(
    tmp_path: Path, bars: list[PaperBar], reason: str, price: float
) -> None:
    venue = Venue(tmp_path, exits=BRACKET)
    units = entered(venue)
    carrier = venue.order("entry-1-protect")
    assert (carrier.type, carrier.side, carrier.amount) == (OrderType.STOP, OrderSide.SELL, units)
    assert math.isclose(carrier.stop_price or 0.0, 100.1 * 0.95)

    venue.run(*bars)

    carrier = venue.order("entry-1-protect")
    assert carrier.status is OrderStatus.CLOSED and carrier.reason == reason
    assert math.isclose(carrier.average or 0.0, price * (1 - SLIP), rel_tol=1e-12)
    assert carrier.filled == units
    assert venue.exchange.open_position(SYMBOL) is None


def test_bracket_when_the_stop_and_target_trigger_in_one_bar_the_stop_is_taken(
    tmp_path: Path,
) -> None:
    venue = Venue(tmp_path, exits=BRACKET)
    entered(venue)

    venue.run(bar(2, 100, 115, 90, 100))

    assert venue.order("entry-1-protect").reason == "stop_loss"


def test_bracket_when_a_leg_fires_at_the_open_cancels_the_pending_signal_exit(
    tmp_path: Path,
) -> None:
    venue = Venue(tmp_path, exits=BRACKET)
    units = entered(venue)
    venue.sell(units)

    venue.run(bar(2, 90, 91, 89, 90))

    assert venue.order("entry-1-protect").reason == "stop_loss"
    exit_order = venue.order("exit-1")
    assert exit_order.status is OrderStatus.CANCELED and exit_order.filled == 0.0
    assert exit_order.reason == "position already closed by stop_loss"


def test_carrier_when_the_loop_moves_its_stop_shows_it_but_fills_by_the_step_core(
    tmp_path: Path,
) -> None:
    venue = Venue(tmp_path, exits=ExitRules(stop_loss=0.05))
    entered(venue)
    carrier = venue.order("entry-1-protect")

    moved = venue.exchange.edit_order(carrier.id, SYMBOL, stop_price=99.0)
    venue.run(bar(2, 100, 100, 98, 100))  # below the shown 99, above the core's 95.095

    assert moved.stop_price == 99.0
    assert venue.order("entry-1-protect").status is OrderStatus.OPEN
    with pytest.raises(ExchangeError, match="only its stop_price"):
        venue.exchange.edit_order(carrier.id, SYMBOL, amount=1.0)


def test_carrier_when_canceled_takes_the_bracket_off(tmp_path: Path) -> None:
    venue = Venue(tmp_path, exits=ExitRules(stop_loss=0.05))
    entered(venue)

    venue.exchange.cancel_order(venue.order("entry-1-protect").id)
    venue.run(bar(2, 80, 80, 70, 75))

    position = venue.exchange.open_position(SYMBOL)
    assert position is not None and not position.bracket_on


def test_carrier_when_the_bracket_has_only_a_target_is_a_limit_sell_at_it(
    tmp_path: Path,
) -> None:
    venue = Venue(tmp_path, exits=ExitRules(take_profit=0.1))
    entered(venue)

    carrier = venue.order("entry-1-protect")

    assert carrier.type is OrderType.LIMIT and math.isclose(carrier.price or 0.0, 110.11)


# -- client ids ------------------------------------------------------------------------------


def test_client_id_when_an_open_order_has_it_is_refused_and_not_stored(venue: Venue) -> None:
    first = venue.buy(1_000.0)

    again = venue.buy(500.0)

    assert again.status is OrderStatus.REJECTED and again.id == ""
    assert again.reason == f"duplicate client order id: order {first.id} with it is open"
    assert venue.order("entry-1").id == first.id
    assert len(venue.exchange.fetch_open_orders()) == 1


def test_client_id_when_its_order_ended_is_accepted_again_and_found_as_the_latest(
    venue: Venue,
) -> None:
    first = venue.buy(1_000.0)
    venue.exchange.cancel_order(first.id)

    second = venue.buy(500.0)

    assert second.status is OrderStatus.OPEN and second.id != first.id
    assert venue.order("entry-1").id == second.id
    assert venue.exchange.fetch_order(first.id).status is OrderStatus.CANCELED


# -- refusals --------------------------------------------------------------------------------


def test_sell_when_nothing_is_held_is_rejected_long_only(venue: Venue) -> None:
    order = venue.sell(1.0)

    assert order.status is OrderStatus.REJECTED
    assert order.reason == "long only: selling 1 BTC with 0 held would open a short"
    assert venue.exchange.fetch_closed_orders()[-1].id == order.id


def test_sell_when_more_than_held_is_rejected_long_only(venue: Venue) -> None:
    units = entered(venue)

    order = venue.sell(units * 2)

    assert order.status is OrderStatus.REJECTED and "would open a short" in order.reason


def test_buy_when_the_cost_exceeds_the_free_quote_is_rejected(venue: Venue) -> None:
    order = venue.buy(20_000.0)

    assert order.status is OrderStatus.REJECTED
    assert order.reason == (
        "insufficient funds: the order needs 20,000.00 USDT, 10,000.00 USDT is free"
    )


def test_stop_order_when_placed_by_the_bot_is_rejected(venue: Venue) -> None:
    order = venue.exchange.create_order(
        SYMBOL, OrderType.STOP, OrderSide.SELL, 1.0, stop_price=90.0, client_order_id="s"
    )

    assert order.status is OrderStatus.REJECTED and "bracket comes with its entry" in order.reason


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"amount": 1.0, "cost": 100.0}, "exactly one of amount and cost"),
        ({}, "exactly one of amount and cost"),
        ({"amount": -1.0}, "amount=-1.0 must be a positive number"),
        ({"amount": 1.0, "type": "limit"}, "price=None must be a positive number"),
        ({"amount": 1.0, "type": "iceberg"}, "'iceberg' is not a valid OrderType"),
        ({"amount": 1.0, "params": {"position_at_signal": "short"}}, "position_at_signal"),
    ],
)
def test_create_order_when_malformed_raises_exchange_error(
    venue: Venue, arguments: dict[str, object], message: str
) -> None:
    values: dict[str, object] = {"type": OrderType.MARKET, "side": OrderSide.BUY} | arguments
    with pytest.raises(ExchangeError, match=message):
        venue.exchange.create_order(SYMBOL, client_order_id="bad", **values)  # type: ignore[arg-type]


def test_unknown_order_when_fetched_canceled_or_edited_raises_order_not_found(
    venue: Venue,
) -> None:
    for call in (
        lambda: venue.exchange.fetch_order("42"),
        lambda: venue.exchange.cancel_order("42"),
        lambda: venue.exchange.edit_order("nope", SYMBOL, price=1.0),
    ):
        with pytest.raises(OrderNotFoundError):
            call()
    assert venue.exchange.fetch_order_by_client_id("nobody") is None


def test_cancel_when_the_order_already_ended_returns_it_unchanged(venue: Venue) -> None:
    entered(venue)
    filled = venue.order("entry-1")

    again = venue.exchange.cancel_order(filled.id)

    assert again == filled


def test_settings_when_shorts_are_allowed_are_refused() -> None:
    with pytest.raises(ConfigError, match="long only"):
        PaperSettings(BacktestConfig(allow_short=True))


def test_process_bar_when_not_after_the_last_bar_raises_data_error(venue: Venue) -> None:
    venue.run(flat_bar(3))
    with pytest.raises(DataError, match="is not after the last bar processed"):
        venue.run(flat_bar(2))
    with pytest.raises(DataError, match="prices must be positive"):
        venue.run(bar(4, math.nan, 1, 1, 1))


# -- limit orders ----------------------------------------------------------------------------


def limit(venue: Venue, side: OrderSide, amount: float, price: float, cid: str) -> Order:
    return venue.exchange.create_order(
        SYMBOL, OrderType.LIMIT, side, amount, price, client_order_id=cid,
        params={"protect_client_order_id": f"{cid}-protect"},
    )  # fmt: skip


def test_limit_buy_when_the_bar_trades_through_fills_at_the_limit_as_a_maker(
    venue: Venue,
) -> None:
    venue.run(flat_bar(0))
    placed = limit(venue, OrderSide.BUY, 2.0, 95.0, "lb")
    held = venue.exchange.fetch_balance().assets["USDT"].used
    assert math.isclose(held, 2.0 * 95.0 * (1 + FEE))

    venue.run(bar(1, 100, 101, 95, 100))  # a touch does not fill
    assert venue.order("lb").status is OrderStatus.OPEN
    venue.run(bar(2, 100, 101, 94, 100))

    order = venue.order("lb")
    assert order.id == placed.id and order.status is OrderStatus.CLOSED
    assert order.average == 95.0 and order.fee is not None
    assert math.isclose(order.fee.cost, 2.0 * 95.0 * FEE)
    assert math.isclose(venue.exchange.quote_cash(), 10_000.0 - 2.0 * 95.0 * (1 + FEE))
    assert venue.exchange.fetch_balance().assets["USDT"].used == 0.0
    assert venue.order("lb-protect").status is OrderStatus.OPEN


def test_limit_buy_when_the_open_gaps_through_fills_at_the_open(venue: Venue) -> None:
    venue.run(flat_bar(0))
    limit(venue, OrderSide.BUY, 1.0, 95.0, "lb")

    venue.run(bar(1, 90, 92, 89, 91))

    assert venue.order("lb").average == 90.0


def test_limit_sell_when_the_high_trades_through_sells_at_the_limit(venue: Venue) -> None:
    units = entered(venue)
    limit(venue, OrderSide.SELL, units, 105.0, "ls")
    assert venue.exchange.fetch_balance().assets["BTC"].used == units

    venue.run(bar(2, 100, 106, 99, 100))

    order = venue.order("ls")
    assert order.status is OrderStatus.CLOSED and order.average == 105.0
    assert venue.exchange.open_position(SYMBOL) is None
    assert venue.order("entry-1-protect").status is OrderStatus.CANCELED


def test_limit_buy_when_the_quote_cannot_hold_it_is_rejected(venue: Venue) -> None:
    order = limit(venue, OrderSide.BUY, 200.0, 100.0, "lb")

    assert order.status is OrderStatus.REJECTED and "insufficient funds" in order.reason


def test_limit_order_when_edited_moves_its_price_and_reservation(venue: Venue) -> None:
    placed = limit(venue, OrderSide.BUY, 1.0, 95.0, "lb")

    edited = venue.exchange.edit_order(placed.id, SYMBOL, price=90.0, amount=2.0)

    assert (edited.price, edited.amount) == (90.0, 2.0)
    assert math.isclose(venue.exchange.fetch_balance().assets["USDT"].used, 180.0 * (1 + FEE))


# -- knobs -----------------------------------------------------------------------------------


def test_partial_fill_knob_when_set_fills_a_fraction_per_bar_and_the_rest_later(
    tmp_path: Path,
) -> None:
    venue = Venue(tmp_path, fee=0.0, slippage=0.0, knobs=PaperKnobs(partial_fill_fraction=0.5))
    venue.run(flat_bar(0))
    venue.buy(1_000.0)

    venue.run(flat_bar(1, 100.0))
    half = venue.order("entry-1")
    venue.run(flat_bar(2, 125.0))
    whole = venue.order("entry-1")

    assert half.status is OrderStatus.OPEN and half.filled == 5.0
    assert whole.status is OrderStatus.CLOSED and whole.filled == 9.0
    position = venue.exchange.open_position(SYMBOL)
    assert position is not None and position.units == 9.0
    assert math.isclose(position.entry_price, 1_000.0 / 9.0)
    assert venue.order("entry-1-protect").amount == 9.0
    venue.sell(9.0)
    venue.run(flat_bar(3, 120.0))
    assert venue.order("exit-1").filled == 4.5
    venue.run(flat_bar(4, 120.0))
    assert venue.order("exit-1").status is OrderStatus.CLOSED
    assert venue.exchange.open_position(SYMBOL) is None


def test_reject_knobs_when_set_reject_by_client_id_and_every_nth_call(tmp_path: Path) -> None:
    knobs = PaperKnobs(reject_client_order_ids=frozenset({"no"}), reject_every_nth=3)
    venue = Venue(tmp_path, knobs=knobs)

    statuses = [venue.buy(10.0, cid=cid).status for cid in ("a", "no", "c", "d")]

    assert statuses == ["open", "rejected", "rejected", "open"]
    assert "reject_every_nth=3" in venue.order("c").reason


def test_latency_knob_when_set_fills_that_many_bars_later(tmp_path: Path) -> None:
    venue = Venue(tmp_path, knobs=PaperKnobs(latency_bars=2))
    venue.run(flat_bar(0))
    venue.buy(1_000.0)

    venue.run(flat_bar(1), flat_bar(2))
    assert venue.order("entry-1").status is OrderStatus.OPEN
    venue.run(flat_bar(3, 120.0))

    assert venue.order("entry-1").average == 120.0 * (1 + SLIP)


@pytest.mark.parametrize(
    "knobs",
    [{"partial_fill_fraction": 0.0}, {"reject_every_nth": 0}, {"latency_bars": -1}],
)
def test_knobs_when_out_of_range_raise_config_error(knobs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        PaperKnobs(**knobs)  # type: ignore[arg-type]


# -- forward paper trading -------------------------------------------------------------------


def test_process_ticker_when_forward_buys_at_the_ask_and_stops_at_the_bid(tmp_path: Path) -> None:
    venue = Venue(tmp_path, exits=ExitRules(stop_loss=0.05))
    venue.buy(1_000.0)

    venue.exchange.process_ticker(SYMBOL, Ticker(SYMBOL, T0, 100.0, bid=99.9, ask=100.1))
    entry = venue.order("entry-1")
    venue.exchange.process_ticker(SYMBOL, Ticker(SYMBOL, T0 + timedelta(minutes=1), 96.0, 95.5, 96))
    still = venue.order("entry-1-protect")
    venue.exchange.process_ticker(SYMBOL, Ticker(SYMBOL, T0 + timedelta(minutes=2), 95.0, 94.9, 95))

    assert entry.average == 100.1 * (1 + SLIP)
    assert still.status is OrderStatus.OPEN
    carrier = venue.order("entry-1-protect")
    assert carrier.reason == "stop_loss" and carrier.average == 94.9 * (1 - SLIP)
    assert venue.exchange.fetch_ticker(SYMBOL).last == 95.0


# -- what a bot reads ------------------------------------------------------------------------


def test_reads_when_a_round_trip_is_done_give_trades_balances_markets_and_bars(
    tmp_path: Path,
) -> None:
    venue = Venue(tmp_path, exits=ExitRules(stop_loss=0.05))
    units = entered(venue)
    venue.sell(units)
    venue.run(bar(2, 110.0, 112.0, 108.0, 111.0))

    trades = venue.exchange.fetch_my_trades(SYMBOL)
    assert [(t.side, t.client_order_id) for t in trades] == [
        (OrderSide.BUY, "entry-1"),
        (OrderSide.SELL, "exit-1"),
    ]
    balance = venue.exchange.fetch_balance()
    assert set(balance.assets) == {"USDT", "BTC"} and balance.total("BTC") == 0.0
    assert math.isclose(balance.total("USDT"), venue.exchange.quote_cash())
    market = venue.exchange.load_markets()[SYMBOL]
    assert (market.base, market.quote, market.min_cost) == ("BTC", "USDT", None)
    assert venue.exchange.fetch_ticker(SYMBOL).last == 111.0
    candles = venue.exchange.fetch_ohlcv(SYMBOL, "1d", since=T0 + timedelta(days=1))
    assert [c.close for c in candles] == [100.0, 111.0]
    assert len(venue.exchange.fetch_closed_orders(SYMBOL)) == 3
    assert venue.exchange.fetch_open_orders(SYMBOL) == []


def test_open_position_and_equity_when_long_report_the_step_cores_position(
    tmp_path: Path,
) -> None:
    venue = Venue(tmp_path, exits=ExitRules(stop_loss=0.05, trailing_stop=0.1))
    units = entered(venue)
    venue.run(bar(2, 101.0, 130.0, 100.0, 120.0))

    position = venue.exchange.open_position(SYMBOL)

    assert position is not None and position.units == units
    assert position.entry_price == 100.1 and position.entry_bar == 1
    assert position.entry_time == T0 + timedelta(days=1)
    assert position.extreme == 130.0 and math.isclose(position.trail_level or 0.0, 117.0)
    assert position.target_level is None and position.bracket_on
    assert position.protect_client_order_id == "entry-1-protect"
    cash = venue.exchange.quote_cash()
    assert venue.exchange.equity({SYMBOL: 125.0}) == cash + units * 125.0
    assert venue.exchange.equity({}) == cash + units * 120.0


def test_base_asset_when_the_symbol_has_no_quote_is_the_symbol(tmp_path: Path) -> None:
    venue = Venue(tmp_path)
    venue.exchange.process_bar("bitcoin", flat_bar(0))

    assert set(venue.exchange.fetch_balance().assets) == {"USDT", "bitcoin"}
