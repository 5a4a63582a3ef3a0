"""OrderTimeoutHandler on a ManualClock: fills, timeouts, late fills, async, cancel_all, polls."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketbot.core.clock import ManualClock
from marketbot.core.errors import ConfigError, TemporaryError
from marketbot.execution import (
    PRIORITY_EMERGENCY,
    PRIORITY_NORMAL,
    Order,
    OrderOutcome,
    OrderSide,
    OrderStatus,
    OrderTimeoutHandler,
    OrderType,
)
from tests.support.fake_time import FakeTime
from tests.support.scripted_exchange import ScriptedExchange

START = datetime(2026, 3, 1, 12, tzinfo=UTC)


def seconds(value: float) -> datetime:
    return START + timedelta(seconds=value)


class Desk:
    """A fake clock, a scripted exchange named "paper" and a handler wired to both."""

    def __init__(self, poll_interval_seconds: float = 1.0) -> None:
        self.time = FakeTime(START)
        self.exchange = ScriptedExchange(self.time.clock)
        self.handler = OrderTimeoutHandler(
            {"paper": self.exchange},
            self.time.clock,
            sleep=self.time.sleep,
            poll_interval_seconds=poll_interval_seconds,
        )

    def place(self, client_order_id: str = "mb-a", amount: float = 1.0) -> Order:
        return self.exchange.create_order(
            "BTC/USDT",
            OrderType.LIMIT,
            OrderSide.BUY,
            amount,
            100.0,
            client_order_id=client_order_id,
        )

    def elapsed(self) -> float:
        return (self.time.clock.now() - START).total_seconds()


@pytest.fixture
def desk() -> Desk:
    return Desk()


def test_monitor_order_when_it_fills_before_the_deadline_is_truthy_and_never_cancels(
    desk: Desk,
) -> None:
    desk.exchange.script_fill("mb-a", price=100.0, at=seconds(5))
    order = desk.place()

    outcome = desk.handler.monitor_order(order.id, "paper", timeout_seconds=30)

    assert outcome
    assert outcome.status is OrderStatus.CLOSED
    assert not outcome.timed_out
    assert not outcome.cancel_requested
    assert outcome.final
    assert outcome.fill_seconds == 5.0
    assert desk.elapsed() == 5.0
    assert desk.exchange.priorities("cancel_order") == []
    assert set(desk.exchange.priorities("fetch_order")) == {PRIORITY_NORMAL}


def test_monitor_order_when_it_never_fills_cancels_at_the_deadline_at_priority_1(
    desk: Desk,
) -> None:
    order = desk.place()

    outcome = desk.handler.monitor_order(order.id, timeout_seconds=30)

    assert not outcome
    assert outcome.timed_out
    assert outcome.cancel_requested
    assert outcome.status is OrderStatus.CANCELED
    assert outcome.filled == 0.0
    assert desk.elapsed() == 30.0
    cancels = [call for call in desk.exchange.calls if call.method == "cancel_order"]
    assert [(call.priority, call.at) for call in cancels] == [(PRIORITY_EMERGENCY, seconds(30))]
    # The re-read after the cancel goes out at priority 1 too.
    assert desk.exchange.calls[-1].method == "fetch_order"
    assert desk.exchange.calls[-1].priority == PRIORITY_EMERGENCY


def test_monitor_order_when_polling_waits_the_interval_and_cuts_the_last_wait_at_the_deadline() -> (
    None
):
    desk = Desk(poll_interval_seconds=1.0)
    order = desk.place()

    desk.handler.monitor_order(order.id, timeout_seconds=2.5)

    assert desk.time.sleeps == [1.0, 1.0, 0.5]


def test_monitor_order_when_part_filled_by_the_deadline_cancels_the_rest(desk: Desk) -> None:
    desk.exchange.script_fill("mb-a", price=100.0, amount=0.25, at=seconds(3))
    order = desk.place()

    outcome = desk.handler.monitor_order(order.id, timeout_seconds=10)

    assert not outcome
    assert outcome.timed_out
    assert outcome.status is OrderStatus.CANCELED
    assert outcome.filled == 0.25
    assert desk.handler.statistics().cancelled == 1


def test_monitor_order_when_it_fills_just_before_the_cancel_the_re_read_finds_it(
    desk: Desk,
) -> None:
    desk.exchange.script_fill("mb-a", price=100.0, on_cancel=True)
    order = desk.place()

    outcome = desk.handler.monitor_order(order.id, timeout_seconds=10)

    assert outcome
    assert outcome.timed_out
    assert outcome.cancel_requested
    assert outcome.status is OrderStatus.CLOSED
    stats = desk.handler.statistics()
    assert (stats.filled, stats.timed_out, stats.cancelled) == (1, 1, 0)


def test_monitor_order_when_the_exchange_rejected_it_returns_at_once(desk: Desk) -> None:
    desk.exchange.script_rejection("mb-a", "insufficient funds")
    order = desk.place()

    outcome = desk.handler.monitor_order(order.id, timeout_seconds=10)

    assert not outcome
    assert outcome.status is OrderStatus.REJECTED
    assert not outcome.cancel_requested
    assert desk.time.sleeps == []
    assert desk.handler.statistics().ended_otherwise == 1


def test_monitor_order_when_status_fetches_fail_for_a_while_keeps_polling(desk: Desk) -> None:
    desk.exchange.script_fill("mb-a", price=100.0, at=seconds(4))
    desk.exchange.script_error("fetch_order", TemporaryError("exchange down"), times=3)
    order = desk.place()

    outcome = desk.handler.monitor_order(order.id, timeout_seconds=10)

    assert outcome
    assert desk.elapsed() == 4.0


def test_monitor_order_when_the_exchange_does_not_know_the_order_ends_without_waiting(
    desk: Desk,
) -> None:
    outcome = desk.handler.monitor_order("404", timeout_seconds=10)

    assert not outcome
    assert outcome.final
    assert outcome.order is None
    assert "no order '404'" in outcome.error
    assert desk.time.sleeps == []


def test_monitor_order_when_the_cancel_fails_is_not_final_and_the_next_check_retries(
    desk: Desk,
) -> None:
    desk.exchange.script_error("cancel_order", TemporaryError("exchange down"))
    order = desk.place()

    outcome = desk.handler.monitor_order(order.id, timeout_seconds=5)

    assert not outcome.final
    assert outcome.status is OrderStatus.OPEN
    assert outcome.error == "exchange down"
    assert desk.handler.statistics().pending == 1
    assert desk.handler.statistics().cancel_failures == 1

    (retried,) = desk.handler.check_deadlines()

    assert retried.final
    assert retried.status is OrderStatus.CANCELED
    assert desk.exchange.priorities("cancel_order") == [PRIORITY_EMERGENCY] * 2
    stats = desk.handler.statistics()
    assert (stats.monitored, stats.timed_out, stats.cancelled, stats.pending) == (1, 1, 1, 0)


def test_monitor_order_async_when_it_fills_resolves_the_future_and_calls_back(
    desk: Desk,
) -> None:
    desk.exchange.script_fill("mb-a", price=100.0, at=seconds(3))
    order = desk.place()
    received: list[OrderOutcome] = []
    called = threading.Event()

    def callback(outcome: OrderOutcome) -> None:
        received.append(outcome)
        called.set()

    with desk.handler:
        future = desk.handler.monitor_order_async(order.id, timeout_seconds=30, callback=callback)
        outcome = future.result(timeout=10)

    assert outcome
    assert called.wait(timeout=10)
    assert received == [outcome]


def test_monitor_order_async_when_the_callback_raises_logs_it_and_keeps_the_outcome(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    order = desk.place()

    def broken(outcome: OrderOutcome) -> None:
        raise RuntimeError("callback bug")

    with desk.handler, caplog.at_level(logging.ERROR, logger="marketbot.execution.timeouts"):
        outcome = desk.handler.monitor_order_async(order.id, timeout_seconds=2, callback=broken)
        result = outcome.result(timeout=10)

    assert result.timed_out
    assert "the outcome callback failed" in caplog.text


def test_cancel_all_when_orders_are_watched_cancels_each_at_priority_1(desk: Desk) -> None:
    first, second = desk.place("mb-a"), desk.place("mb-b")
    desk.exchange.script_fill("mb-b", price=100.0, amount=0.5)
    desk.handler.watch(first.id, timeout_seconds=30)
    desk.handler.watch(second.id, timeout_seconds=60)

    outcomes = desk.handler.cancel_all()

    assert [(o.order_id, o.status, o.filled, o.timed_out) for o in outcomes] == [
        (first.id, OrderStatus.CANCELED, 0.0, False),
        (second.id, OrderStatus.CANCELED, 0.5, False),
    ]
    assert desk.exchange.priorities("cancel_order") == [PRIORITY_EMERGENCY] * 2
    assert desk.handler.cancel_all() == []
    stats = desk.handler.statistics()
    assert (stats.monitored, stats.cancelled, stats.timed_out, stats.pending) == (2, 2, 0, 0)


def test_check_deadlines_when_none_has_passed_calls_nothing_and_never_waits(desk: Desk) -> None:
    order = desk.place()
    desk.handler.watch(order.id, timeout_seconds=30)
    calls_before = len(desk.exchange.calls)

    desk.time.clock.advance(timedelta(seconds=29))
    assert desk.handler.check_deadlines() == []
    assert len(desk.exchange.calls) == calls_before

    desk.time.clock.advance(timedelta(seconds=1))
    (outcome,) = desk.handler.check_deadlines()

    assert outcome.timed_out
    assert outcome.status is OrderStatus.CANCELED
    assert desk.exchange.priorities("cancel_order") == [PRIORITY_EMERGENCY]
    assert desk.time.sleeps == []


def test_check_deadlines_when_the_handler_has_no_sleep_still_works_on_a_manual_clock() -> None:
    clock = ManualClock(START)
    exchange = ScriptedExchange(clock)
    handler = OrderTimeoutHandler({"paper": exchange}, clock)
    order = exchange.create_order(
        "BTC/USDT", OrderType.MARKET, OrderSide.BUY, 1.0, client_order_id="mb-a"
    )
    handler.watch(order.id, timeout_seconds=1)
    clock.advance(timedelta(seconds=1))

    assert [outcome.status for outcome in handler.check_deadlines()] == [OrderStatus.CANCELED]
    with pytest.raises(ConfigError, match="pass `sleep=`"):
        handler.monitor_order(order.id)


def test_poll_when_an_order_filled_settles_it_without_a_cancel(desk: Desk) -> None:
    first, second = desk.place("mb-a"), desk.place("mb-b")
    desk.exchange.script_fill("mb-a", price=100.0, at=seconds(5))
    desk.handler.watch(first.id, timeout_seconds=30)
    desk.handler.watch(second.id, timeout_seconds=30)

    assert desk.handler.poll() == []
    desk.time.clock.advance(timedelta(seconds=5))
    (outcome,) = desk.handler.poll()

    assert outcome.order_id == first.id
    assert outcome
    assert desk.exchange.priorities("cancel_order") == []
    assert desk.handler.statistics().pending == 1


def test_statistics_when_orders_fill_and_time_out_counts_them_and_averages_fill_time(
    desk: Desk,
) -> None:
    for client_id, fill_at in (("mb-a", 5), ("mb-b", 10)):
        start = desk.time.clock.now()
        desk.exchange.script_fill(client_id, price=100.0, at=start + timedelta(seconds=fill_at))
        desk.handler.monitor_order(desk.place(client_id).id, timeout_seconds=30)
    desk.handler.monitor_order(desk.place("mb-c").id, timeout_seconds=30)

    stats = desk.handler.statistics()

    assert (stats.monitored, stats.filled, stats.timed_out, stats.cancelled) == (3, 2, 1, 1)
    assert stats.average_fill_seconds == 7.5
    assert stats.pending == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"exchange": "binance"}, "unknown exchange 'binance'; the handler has: paper"),
        ({"timeout_seconds": 0}, "`timeout_seconds` must be a positive number"),
        ({"timeout_seconds": float("inf")}, "`timeout_seconds` must be finite"),
    ],
)
def test_watch_when_arguments_are_invalid_raises_config_error(
    desk: Desk, arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        desk.handler.watch("1", **arguments)  # type: ignore[arg-type]


def test_handler_when_given_no_exchanges_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="at least one exchange"):
        OrderTimeoutHandler({}, ManualClock(START))


# Fills in eighths of the amount, so that sums of them are exact and "filled == amount" is a
# fair question; times and the deadline on whole seconds, so fills can land on the deadline.
scripted_fills = st.lists(
    st.tuples(st.integers(min_value=1, max_value=8), st.integers(min_value=0, max_value=60)),
    max_size=4,
)


@given(
    fills=scripted_fills,
    late_fill=st.integers(min_value=0, max_value=8),
    timeout=st.integers(min_value=1, max_value=40),
)
def test_monitor_order_when_fills_are_scripted_is_truthy_iff_everything_filled(
    fills: list[tuple[int, int]], late_fill: int, timeout: int
) -> None:
    desk = Desk()
    for eighths, at in fills:
        desk.exchange.script_fill("mb-a", price=100.0, amount=eighths / 8, at=seconds(at))
    if late_fill:
        desk.exchange.script_fill("mb-a", price=100.0, amount=late_fill / 8, on_cancel=True)
    order = desk.place()

    outcome = desk.handler.monitor_order(order.id, timeout_seconds=timeout)

    assert outcome.order is not None
    assert bool(outcome) == (outcome.order.filled == outcome.order.amount)
    assert outcome.final
    assert desk.elapsed() <= timeout
    assert sum(desk.time.sleeps) <= timeout
    if outcome.timed_out:
        assert desk.elapsed() == timeout
        assert desk.exchange.priorities("cancel_order") == [PRIORITY_EMERGENCY]
    else:
        assert desk.exchange.priorities("cancel_order") == []
