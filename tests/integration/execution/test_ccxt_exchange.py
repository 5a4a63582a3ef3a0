"""CcxtExchange end to end: ccxt's own binance class against the local fake Binance spot.

No mock of ccxt: its real request building, signing and parsing talk HTTP to
tests/support/fake_binance.py, which checks the HMAC signatures and logs every request with
the time of a ManualClock that the rate limiter's sleeps advance, so pacing is read off the
log without real waiting.
"""

from __future__ import annotations

import re
import threading
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ccxt
import pytest

from marketbot.core.clock import ManualClock
from marketbot.core.errors import ConfigError, ExchangeError, TemporaryError
from marketbot.execution.ccxt_connect import open_ccxt_exchange
from marketbot.execution.ccxt_exchange import CcxtExchange
from marketbot.execution.exchange import OrderNotFoundError
from marketbot.execution.models import OrderSide, OrderStatus, OrderType
from marketbot.net.rate_limiter import PRIORITY_EMERGENCY, PRIORITY_LOW, PriorityRateLimiter
from marketbot.net.retrying import RetryPolicy
from marketbot.store.keys import Credentials
from tests.support.fake_binance import BARS, FakeBinanceSpot, Fault

API_KEY, SECRET = "AKTEST0000wxyz", "SKTEST9f8e"
START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
PYPROJECT = Path(__file__).resolve().parents[3] / "pyproject.toml"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeBinanceSpot]:
    with FakeBinanceSpot(api_key=API_KEY, secret=SECRET, clock=clock) as server:
        yield server


def connect(
    fake: FakeBinanceSpot,
    clock: ManualClock,
    *,
    calls_per_second: int = 1000,
    credentials: Credentials | None = None,
    start_worker: bool = False,
) -> CcxtExchange:
    """A CcxtExchange on the fake whose limiter sleeps by moving the manual clock."""

    def sleep(seconds: float) -> None:
        clock.advance(timedelta(seconds=seconds))
        time.sleep(0.001)  # let other threads run

    limiter = PriorityRateLimiter(calls_per_second, clock=clock, sleep=sleep, window_seconds=1.0)
    if start_worker:
        limiter.start()
    return open_ccxt_exchange(
        "binance",
        credentials if credentials is not None else Credentials(api_key=API_KEY, secret=SECRET),
        api_urls=fake.api_urls,
        policy=RetryPolicy(timeout_seconds=5, backoff_seconds=0, sleep=sleep),
        limiter=limiter,
        clock=clock,
    )


@pytest.fixture
def exchange(fake: FakeBinanceSpot, clock: ManualClock) -> Iterator[CcxtExchange]:
    with connect(fake, clock) as venue:
        yield venue


def buy(exchange: CcxtExchange, cost: float, client_id: str) -> object:
    return exchange.create_order(
        "BTC/USDT", OrderType.MARKET, OrderSide.BUY, cost=cost, client_order_id=client_id
    )


def test_installed_ccxt_when_checked_is_the_version_pyproject_pins() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    pins = [re.fullmatch(r"ccxt==([\d.]+)", item) for item in dependencies]
    pinned = [match.group(1) for match in pins if match]

    assert pinned == [ccxt.__version__]


def test_markets_when_loaded_are_spot_usd_pairs_with_precision_and_minimums(
    exchange: CcxtExchange, fake: FakeBinanceSpot
) -> None:
    markets = exchange.load_markets()

    assert sorted(markets) == ["BNB/USDT", "BTC/USDT", "ETH/USDT"]
    btc = markets["BTC/USDT"]
    assert (btc.base, btc.quote, btc.amount_step, btc.price_tick) == ("BTC", "USDT", 1e-5, 0.01)
    assert (btc.min_amount, btc.min_cost) == (1e-5, 5.0)
    # Spot only, no currencies or margin pairs (private calls Binance's testnet lacks).
    assert fake.paths() == ["GET /api/v3/exchangeInfo"]
    with pytest.raises(ConfigError, match="no spot market 'BTC/EUR'"):
        exchange.market("BTC/EUR")


def test_ticker_bars_and_balance_when_fetched_read_binance_formats(
    exchange: CcxtExchange, fake: FakeBinanceSpot
) -> None:
    fake.set_price("31234.5")
    ticker = exchange.fetch_ticker("BTC/USDT")
    bars = exchange.fetch_ohlcv("BTC/USDT", "1h", since=BARS.index[10].to_pydatetime(), limit=3)
    balance = exchange.fetch_balance()

    assert (ticker.last, ticker.bid, ticker.ask) == (31234.5, 31234.49, 31234.51)
    assert [bar.opened_at for bar in bars] == list(BARS.index[10:13])
    assert bars[0].close == pytest.approx(BARS["close"].iloc[10])
    assert (balance.free("USDT"), balance.free("BNB"), balance.total("BTC")) == (10000, 10, 0)


def test_quote_amount_market_buy_when_filled_pays_a_base_fee_that_shrinks_the_position(
    exchange: CcxtExchange, fake: FakeBinanceSpot
) -> None:
    order = buy(exchange, 100.0, "mb-entry-1")

    assert (order.status, order.filled, order.average, order.quote_amount) == (
        OrderStatus.CLOSED,
        0.00333,
        30000.0,
        100.0,
    )
    assert order.client_order_id == "mb-entry-1"
    assert fake.requests[-1].params["quoteOrderQty"] == "100"
    outcome = exchange.net_fill(order)
    assert outcome.base_amount == pytest.approx(0.00333 * 0.999)
    assert outcome.quote_amount == pytest.approx(99.9)
    assert outcome.fee_quote == pytest.approx(0.0999)
    assert exchange.fetch_balance().free("BTC") == pytest.approx(0.00333 * 0.999)


def test_fee_in_bnb_when_filled_is_valued_at_the_bnb_ticker(
    fake: FakeBinanceSpot, clock: ManualClock
) -> None:
    fake.ledger.fee_asset = "BNB"
    with connect(fake, clock) as exchange:
        order = buy(exchange, 300.0, "mb-bnb-1")
        outcome = exchange.net_fill(order)

    assert order.fee is not None and order.fee.currency == "BNB"
    assert outcome.base_amount == pytest.approx(0.01)  # a BNB fee leaves the position whole
    assert outcome.fee_quote == pytest.approx(0.3)  # 0.001 BNB x 300 USDT
    assert "GET /api/v3/ticker/24hr" in fake.paths()


def test_orders_when_placed_are_found_by_client_id_listed_cancelled_and_traded(
    exchange: CcxtExchange, fake: FakeBinanceSpot
) -> None:
    entry = buy(exchange, 100.0, "mb-entry-2")
    stop = exchange.create_order(
        "BTC/USDT", OrderType.STOP, OrderSide.SELL, 0.003, client_order_id="mb-stop-2",
        stop_price=28500.0, priority=PRIORITY_EMERGENCY,
    )  # fmt: skip

    assert (stop.status, stop.type, stop.stop_price) == (OrderStatus.OPEN, OrderType.STOP, 28500)
    assert fake.requests[-1].params["type"] == "STOP_LOSS"
    assert [o.client_order_id for o in exchange.fetch_open_orders("BTC/USDT")] == ["mb-stop-2"]
    found = exchange.fetch_order_by_client_id("mb-entry-2", "BTC/USDT")
    assert found is not None and (found.id, found.status) == (entry.id, OrderStatus.CLOSED)
    assert exchange.fetch_order_by_client_id("mb-never-sent", "BTC/USDT") is None

    canceled = exchange.cancel_order(stop.id, "BTC/USDT")
    assert canceled.status is OrderStatus.CANCELED
    # Cancelling again returns the order as it stands instead of failing.
    assert exchange.cancel_order(stop.id, "BTC/USDT").status is OrderStatus.CANCELED
    assert exchange.fetch_open_orders("BTC/USDT") == []
    closed = exchange.fetch_closed_orders("BTC/USDT")
    assert [o.client_order_id for o in closed] == ["mb-entry-2", "mb-stop-2"]
    trades = exchange.fetch_my_trades("BTC/USDT")
    assert [(t.order_id, t.amount, t.price) for t in trades] == [(entry.id, 0.00333, 30000.0)]
    with pytest.raises(OrderNotFoundError):
        exchange.fetch_order("999999", "BTC/USDT")


def test_stop_when_the_price_falls_through_it_fills_on_the_exchange(
    exchange: CcxtExchange, fake: FakeBinanceSpot
) -> None:
    buy(exchange, 300.0, "mb-entry-3")
    stop = exchange.create_order(
        "BTC/USDT", OrderType.STOP, OrderSide.SELL, 0.00999, client_order_id="mb-stop-3",
        stop_price=29000.0,
    )  # fmt: skip
    moved = exchange.edit_order(stop.id, "BTC/USDT", stop_price=29500.0, priority=1)

    assert moved.stop_price == 29500.0 and moved.client_order_id != "mb-stop-3"
    assert exchange.fetch_order(stop.id, "BTC/USDT").status is OrderStatus.CANCELED
    fake.set_price("29400")
    filled = exchange.fetch_order(moved.id, "BTC/USDT")
    assert (filled.status, filled.filled, filled.average) == (OrderStatus.CLOSED, 0.00999, 29400)


@pytest.mark.parametrize(
    ("cost", "reason"),
    [(4.0, "Filter failure: NOTIONAL"), (20000.0, "insufficient balance")],
)
def test_order_when_the_exchange_refuses_it_comes_back_rejected_with_the_reason(
    exchange: CcxtExchange, fake: FakeBinanceSpot, cost: float, reason: str
) -> None:
    order = buy(exchange, cost, "mb-refused")

    assert order.status is OrderStatus.REJECTED
    assert reason in order.reason
    assert (order.id, order.quote_amount) == ("", cost)
    assert fake.orders() == []


def test_wrong_api_key_or_secret_when_calling_is_an_error_naming_binance_refusal(
    fake: FakeBinanceSpot, clock: ManualClock
) -> None:
    wrong_key = Credentials(api_key="AKWRONG0000", secret=SECRET)
    wrong_secret = Credentials(api_key=API_KEY, secret="not-the-secret")

    with (
        connect(fake, clock, credentials=wrong_key) as exchange,
        pytest.raises(ExchangeError, match="Invalid API-key"),
    ):
        exchange.fetch_balance()
    with (
        connect(fake, clock, credentials=wrong_secret) as exchange,
        pytest.raises(ExchangeError, match="Signature for this request is not valid"),
    ):
        exchange.fetch_balance()


def test_rate_limited_call_when_told_retry_after_waits_that_long_then_succeeds(
    exchange: CcxtExchange, fake: FakeBinanceSpot
) -> None:
    fake.retry_after_seconds = 7
    fake.fail_next("GET", "/api/v3/ticker/24hr", Fault.RATE_LIMITED)

    assert exchange.fetch_ticker("BTC/USDT").last == 30000.0
    tickers = [entry for entry in fake.requests if entry.path == "/api/v3/ticker/24hr"]
    assert [entry.fault for entry in tickers] == ["429", ""]
    assert tickers[1].at - tickers[0].at == timedelta(seconds=7)


def test_order_post_when_the_connection_drops_after_acceptance_is_found_not_resent(
    exchange: CcxtExchange, fake: FakeBinanceSpot
) -> None:
    fake.fail_next("POST", "/api/v3/order", Fault.DROP_AFTER_ACCEPT)

    order = buy(exchange, 100.0, "mb-dropped")

    assert (order.status, order.client_order_id, order.filled) == (
        OrderStatus.CLOSED,
        "mb-dropped",
        0.00333,
    )
    assert len(fake.orders()) == 1
    assert fake.paths()[-2:] == ["POST /api/v3/order", "GET /api/v3/order"]
    assert fake.requests[-1].params["origClientOrderId"] == "mb-dropped"


@pytest.mark.parametrize("fault", [Fault.SERVER_ERROR, Fault.DROP_BEFORE])
def test_order_post_when_the_exchange_never_got_it_is_resent_once_with_the_same_id(
    exchange: CcxtExchange, fake: FakeBinanceSpot, fault: Fault
) -> None:
    fake.fail_next("POST", "/api/v3/order", fault)

    order = buy(exchange, 100.0, "mb-resent")

    posts = [entry for entry in fake.requests if entry.method == "POST"]
    assert [entry.params["newClientOrderId"] for entry in posts] == ["mb-resent", "mb-resent"]
    assert [entry.fault for entry in posts] == [fault.value, ""]
    assert fake.paths()[-3:] == ["POST /api/v3/order", "GET /api/v3/order", "POST /api/v3/order"]
    assert [o.client_order_id for o in fake.orders()] == ["mb-resent"]
    assert order.status is OrderStatus.CLOSED


def test_order_post_when_the_resend_fails_too_raises_and_places_nothing(
    exchange: CcxtExchange, fake: FakeBinanceSpot
) -> None:
    fake.fail_next("POST", "/api/v3/order", Fault.SERVER_ERROR)
    fake.fail_next("POST", "/api/v3/order", Fault.SERVER_ERROR)

    with pytest.raises(TemporaryError, match="503"):
        buy(exchange, 100.0, "mb-twice")

    assert fake.orders() == []
    assert [path for path in fake.paths() if "order" in path] == [
        "POST /api/v3/order", "GET /api/v3/order", "POST /api/v3/order", "GET /api/v3/order",
    ]  # fmt: skip


def test_calls_when_made_faster_than_the_rate_are_paced_in_the_request_log(
    fake: FakeBinanceSpot, clock: ManualClock
) -> None:
    with connect(fake, clock, calls_per_second=2) as exchange:
        exchange.load_markets()
        for _ in range(6):
            exchange.fetch_ticker("BTC/USDT")

    # Two calls a second: exchangeInfo (markets, loaded once) and six tickers.
    offsets = [(entry.at - START).total_seconds() for entry in fake.requests]
    assert offsets == [0, 0, 1, 1, 2, 2, 3]
    assert fake.paths()[0] == "GET /api/v3/exchangeInfo"


def test_cancel_at_priority_one_when_backfill_is_queued_overtakes_it(
    fake: FakeBinanceSpot, clock: ManualClock
) -> None:
    exchange = connect(fake, clock, start_worker=True)
    limiter = exchange.client.limiter
    try:
        stop = exchange.create_order(
            "BTC/USDT", OrderType.LIMIT, OrderSide.BUY, 0.001, 20000.0,
            client_order_id="mb-resting",
        )  # fmt: skip
        release = threading.Event()
        blocker = limiter.queue_request(release.wait, priority=PRIORITY_EMERGENCY)
        with ThreadPoolExecutor(max_workers=4) as pool:
            backfill = [
                pool.submit(
                    exchange.fetch_ohlcv,
                    "BTC/USDT",
                    "1h",
                    since=BARS.index[100 * page].to_pydatetime(),
                    limit=5,
                    priority=PRIORITY_LOW,
                )
                for page in range(3)
            ]
            _wait_until(lambda: limiter.pending_count() == 3)
            cancel = pool.submit(exchange.cancel_order, stop.id, "BTC/USDT")
            _wait_until(lambda: limiter.pending_count() == 4)
            release.set()
            assert cancel.result(timeout=10).status is OrderStatus.CANCELED
            assert all(len(page.result(timeout=10)) == 5 for page in backfill)
        assert blocker.result() is True
    finally:
        limiter.stop()
        exchange.close()

    assert fake.paths()[-4:] == [
        "DELETE /api/v3/order", "GET /api/v3/klines", "GET /api/v3/klines", "GET /api/v3/klines",
    ]  # fmt: skip


def _wait_until(condition: object, timeout_seconds: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def test_testnet_when_the_exchange_has_none_is_refused(fake: FakeBinanceSpot) -> None:
    with pytest.raises(ConfigError, match="kraken has no testnet"):
        open_ccxt_exchange("kraken", None, testnet=True)
    # Binance has one: its sandbox roots, then the test server's overrides, are used.
    with open_ccxt_exchange("binance", None, testnet=True, api_urls=fake.api_urls) as venue:
        assert venue.fetch_ticker("BTC/USDT").last == 30000.0


def test_orders_when_the_client_restarts_are_found_by_client_id_on_the_exchange(
    fake: FakeBinanceSpot, clock: ManualClock
) -> None:
    with connect(fake, clock) as before:
        entry = buy(before, 100.0, "mb-before-crash")
        stop = before.create_order(
            "BTC/USDT", OrderType.STOP, OrderSide.SELL, 0.003, client_order_id="mb-stop-crash",
            stop_price=28000.0,
        )  # fmt: skip

    with connect(fake, clock) as after:
        found = [
            after.fetch_order_by_client_id(client_id, "BTC/USDT")
            for client_id in ("mb-before-crash", "mb-stop-crash", "mb-never-placed")
        ]
        still_open = after.fetch_open_orders()

    assert [order.id if order else None for order in found] == [entry.id, stop.id, None]
    assert [order.client_order_id for order in still_open] == ["mb-stop-crash"]
    assert len(fake.orders()) == 2


def test_order_post_when_the_answer_times_out_after_acceptance_is_found_not_resent(
    fake: FakeBinanceSpot, clock: ManualClock
) -> None:
    fake.slow_seconds = 0.6
    fake.fail_next("POST", "/api/v3/order", Fault.SLOW_AFTER_ACCEPT)
    with connect(fake, clock) as exchange:
        exchange.load_markets()
        exchange.client.ccxt_exchange.timeout = 200  # ms, shorter than the fake's answer

        order = buy(exchange, 100.0, "mb-slow")

    assert (order.client_order_id, order.status) == ("mb-slow", OrderStatus.CLOSED)
    assert [o.client_order_id for o in fake.orders()] == ["mb-slow"]
    assert fake.paths()[-2:] == ["POST /api/v3/order", "GET /api/v3/order"]
