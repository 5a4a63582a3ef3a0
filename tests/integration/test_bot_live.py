"""The bot live on a local Binance spot account: ccxt's real binance class, signed requests.

``FakeBinanceSpot`` (tests/support/fake_binance.py) checks every signature, keeps its orders
and balances across client restarts, fills market orders at the price it is set to and
takes Binance's fee in the asset received. The bot's clock and sleep are a fake clock; each
sleep moves the fake market to the open of the bar forming at the new time, so tickers
between closes walk the real hourly BTC path.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from marketbot.bot.feed import ExchangeFeed
from marketbot.bot.forward import ForwardBars, ForwardOptions, ForwardRequest, plan_forward
from marketbot.bot.runner import BotRunner, LiveSetup, RunOptions
from marketbot.bot.status import bot_status
from marketbot.cli.common import open_database
from marketbot.config import load_settings
from marketbot.core.clock import ManualClock
from marketbot.execution.ccxt_connect import open_ccxt_exchange
from marketbot.execution.ccxt_exchange import CcxtExchange
from marketbot.net.retrying import RetryPolicy
from marketbot.store.keys import Credentials
from tests.support.cli import isolated_data_dir
from tests.support.fake_binance import BARS, PAIR, FakeBinanceSpot

API_KEY, SECRET = "AKLIVE0000test", "SKLIVEsecret"
FIRST_ROW = 400
FEE_RATE = 0.001  # the fake's taker fee, taken from the asset received
CONFIG = (
    'sizing = "fixed_cash"\nsize = 1000\nstop_loss = 0.02\ntrailing_stop = 0.03\n'
    "take_profit = 0.04\nmax_hold = false\nslippage = 0\n"
)


class MovingMarket:
    """The bot's fake clock, and the fake exchange's price following the bars with it."""

    def __init__(self) -> None:
        self.clock = ManualClock(BARS.index[FIRST_ROW].to_pydatetime() + timedelta(hours=1))
        self.fake: FakeBinanceSpot | None = None
        self.times = pd.DatetimeIndex(BARS.index)

    def sleep(self, seconds: float) -> None:
        self.clock.advance(timedelta(seconds=seconds))
        self.follow()

    def follow(self) -> None:
        assert self.fake is not None
        row = int(self.times.searchsorted(pd.Timestamp(self.clock.now()), side="right")) - 1
        self.fake.set_price(f"{BARS['open'].iloc[row]:.2f}")


@pytest.fixture
def market(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MovingMarket]:
    isolated_data_dir(tmp_path, monkeypatch)
    moving = MovingMarket()
    with FakeBinanceSpot(
        api_key=API_KEY, secret=SECRET, clock=moving.clock,
        balances={"USDT": "5000", "BNB": "10"}, bars=BARS,
    ) as fake:  # fmt: skip
        moving.fake = fake
        moving.follow()
        yield moving


def connect(market: MovingMarket) -> CcxtExchange:
    assert market.fake is not None
    policy = RetryPolicy(max_attempts=2, timeout_seconds=5.0, sleep=market.sleep)
    return open_ccxt_exchange(
        "binance", Credentials(api_key=API_KEY, secret=SECRET),
        api_urls=market.fake.api_urls, policy=policy, clock=market.clock,
    )  # fmt: skip


def run_live(market: MovingMarket, tmp_path: Path, config: str, *, hours: int) -> dict[str, Any]:
    config_file = tmp_path / "live.toml"
    config_file.write_text(config)
    settings = load_settings()
    database = open_database()
    with connect(market) as exchange:
        feed = ExchangeFeed(exchange.client, PAIR, "1h", market.clock)
        request = ForwardRequest(
            strategy="sma_crossover", exchange="binance", pair=PAIR, timeframe="1h",
            params={"fast": 5, "slow": 20}, config_path=config_file,
        )  # fmt: skip
        plan = plan_forward(settings, request, feed, market.clock.now(), feed.bar_seconds)
        until = market.clock.now() + timedelta(hours=hours)
        bars = ForwardBars(feed, market.clock, market.sleep, ForwardOptions(1800.0, until))
        runner = BotRunner(
            database, plan, RunOptions(data_dir=settings.data_dir), forward=bars,
            live=LiveSetup(exchange),
        )  # fmt: skip
        runner.run()
    return bot_status(database, settings.data_dir)


def test_live_when_run_on_the_fake_enters_exits_by_ticker_and_books_base_fees(
    market: MovingMarket, tmp_path: Path
) -> None:
    status = run_live(market, tmp_path, CONFIG, hours=100)

    trades = status["trades"]
    assert len(trades) >= 3
    reasons = {t["exit_reason"] for t in trades}
    assert reasons & {"stop_loss", "trailing_stop", "take_profit"}  # exits by ticker poll
    assert market.fake is not None
    buys = [o for o in market.fake.orders() if o.side == "BUY"]
    sells = [o for o in market.fake.orders() if o.side == "SELL"]
    for trade, buy, sell in zip(trades, buys, sells, strict=False):
        # The position is what the account received: the fee came out of the BTC bought,
        # and the exit sold all of it (the lot step rounds down at most one step).
        assert math.isclose(trade["size"], float(buy.executed) * (1 - FEE_RATE), rel_tol=1e-9)
        assert 0 <= trade["size"] - float(sell.executed) < 1e-5
        assert math.isclose(trade["entry_price"], float(buy.cumulative_quote / buy.executed))
        assert trade["entry_time"] > BARS.index[FIRST_ROW].isoformat()
    ids = [o.client_order_id for o in market.fake.orders()]
    assert len(ids) == len(set(ids))
    assert all(cid.startswith("mb-") for cid in ids)


def test_live_when_the_entry_rounds_below_min_notional_sends_nothing(
    market: MovingMarket, tmp_path: Path
) -> None:
    tiny = CONFIG.replace("size = 1000", "size = 3")  # Binance's NOTIONAL minimum is 5 USDT
    status = run_live(market, tmp_path, tiny, hours=30)

    assert market.fake is not None
    assert market.fake.orders() == []
    assert status["trades"] == []
    rejected = [o for o in status["orders"] if o["status"] == "rejected"]
    assert rejected and all(o["intent"] == "entry" for o in rejected)


def test_live_when_restarted_resolves_its_orders_by_client_id_and_trades_on(
    market: MovingMarket, tmp_path: Path
) -> None:
    first = run_live(market, tmp_path, CONFIG, hours=50)
    second = run_live(market, tmp_path, CONFIG, hours=50)

    assert second["trades"][: len(first["trades"])] == first["trades"]
    assert len(second["trades"]) > len(first["trades"])
    assert market.fake is not None
    ids = [o.client_order_id for o in market.fake.orders()]
    assert len(ids) == len(set(ids))


def test_live_when_stop_on_exchange_rests_a_stop_per_position_and_leaves_it_at_shutdown(
    market: MovingMarket, tmp_path: Path
) -> None:
    resting = CONFIG + "stop_on_exchange = true\n"
    status = run_live(market, tmp_path, resting, hours=100)

    assert market.fake is not None
    stops = [o for o in market.fake.orders() if o.type == "STOP_LOSS"]
    assert stops, "no stop rested on the exchange"
    # Each rested stop was for the position then held, at or above its stop-loss level.
    for stop in stops:
        assert stop.side == "SELL" and stop.stop_price > 0
    # A position open at the end still has its stop resting (protection while the bot is down).
    open_stops = [o for o in stops if o.status == "NEW"]
    assert len(open_stops) == len(status["open_positions"])
    ids = [o.client_order_id for o in market.fake.orders()]
    assert len(ids) == len(set(ids))


class Killed(BaseException):
    """Stands for SIGKILL in-process: nothing after the fault point runs, nothing is cleaned."""


@pytest.mark.parametrize("point", ["after_send", "after_intent_commit"])
def test_live_when_killed_at_a_send_restart_resolves_by_client_id_and_places_nothing_twice(
    market: MovingMarket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    from marketbot.bot import loop as loop_module

    reached = {"count": 0}

    def die_at_the_second(name: str) -> None:
        if name == point:
            reached["count"] += 1
            if reached["count"] == 2:  # the second order: the first exit or next entry
                raise Killed

    monkeypatch.setattr(loop_module, "fault_point", die_at_the_second)
    with pytest.raises(Killed):
        run_live(market, tmp_path, CONFIG, hours=100)
    monkeypatch.setattr(loop_module, "fault_point", lambda name: None)
    (lock := tmp_path / "var" / "state" / "bot.lock").unlink(missing_ok=True)
    del lock

    status = run_live(market, tmp_path, CONFIG, hours=60)

    assert market.fake is not None
    ids = [o.client_order_id for o in market.fake.orders()]
    assert len(ids) == len(set(ids)), "an order was placed twice"
    stored = {o["client_order_id"]: o for o in status["orders"]}
    # Every order the exchange has is in the database, in the exchange's final state.
    for order in market.fake.orders():
        assert order.client_order_id in stored
        assert stored[order.client_order_id]["status"] in {"closed", "canceled", "open"}
    # Every fill the exchange made is the bot's: each filled sell closed one recorded trade,
    # and a buy not yet sold is the open position.
    filled = [o for o in market.fake.orders() if o.status == "FILLED" and o.type == "MARKET"]
    sells = sum(1 for o in filled if o.side == "SELL")
    buys = len(filled) - sells
    assert sells >= 1
    assert len(status["trades"]) == sells
    assert len(status["open_positions"]) == buys - sells
