"""Forward paper trading on a local Binance: ccxt's real binance class, public endpoints only.

The fake serves the bundled hourly BTC as klines, and a 24h ticker whose price is the open of
the bar forming at the fake clock's time. The bot's clock and sleep are that fake clock: it
sleeps to each bar's close exactly, so the ticker it fills at is the next bar's open, which
is where the backtest fills. So a forward run must give the backtest's trades on the same
bars, and its fills must be at ticker prices, never at a bar it had not seen close.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from marketbot import BacktestingEngine
from marketbot.bot.feed import ExchangeFeed
from marketbot.bot.forward import ForwardBars, ForwardOptions, ForwardRequest, plan_forward
from marketbot.bot.runner import BotRunner, RunOptions
from marketbot.bot.status import bot_status
from marketbot.cli.common import open_database
from marketbot.config import load_settings
from marketbot.core.clock import ManualClock
from marketbot.net.retrying import RetryPolicy
from marketbot.sources.exchange_client import ExchangeClient
from tests.support.cli import isolated_data_dir
from tests.support.fake_binance import BARS, PAIR, SPOT_ONLY, FakeBinance

CONFIG = (
    'sizing = "fixed_cash"\nsize = 1000\nstop_loss = 0.02\ntrailing_stop = 0.03\n'
    "take_profit = 0.04\nmax_hold = false\n"
)
FIRST_ROW = 400  # the bot starts when bar 400 has just closed
HOURS = 300


class FakeTime:
    """The bot's clock and its sleep: sleeping moves the clock, nothing waits."""

    def __init__(self, start: datetime) -> None:
        self.clock = ManualClock(start)
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.advance(timedelta(seconds=seconds))


def ticker_handler(time: FakeTime) -> Any:
    opens = BARS["open"]
    times = pd.DatetimeIndex(BARS.index)

    def answer(request: Request) -> Response:
        now = pd.Timestamp(time.clock.now())
        row = int(times.searchsorted(now, side="right")) - 1
        price = f"{opens.iloc[row]:.8f}"
        body = {
            "symbol": "BTCUSDT", "priceChange": "0", "priceChangePercent": "0",
            "weightedAvgPrice": price, "prevClosePrice": price, "lastPrice": price,
            "lastQty": "0.1", "bidPrice": price, "bidQty": "1", "askPrice": price,
            "askQty": "1", "openPrice": price, "highPrice": price, "lowPrice": price,
            "volume": "1", "quoteVolume": price, "openTime": int(now.value // 1_000_000) - 1,
            "closeTime": int(now.value // 1_000_000), "firstId": 1, "lastId": 2, "count": 2,
        }  # fmt: skip
        return Response(json.dumps(body), content_type="application/json")

    return answer


@pytest.fixture
def forward_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, httpserver: HTTPServer
) -> Iterator[tuple[FakeTime, ExchangeClient, Path]]:
    data_dir = isolated_data_dir(tmp_path, monkeypatch)
    start = BARS.index[FIRST_ROW].to_pydatetime() + timedelta(hours=1)
    time = FakeTime(start)
    # Registered before the fake's own handlers, so it answers the ticker first.
    httpserver.expect_request("/api/v3/ticker/24hr").respond_with_handler(ticker_handler(time))
    FakeBinance(httpserver, BARS)
    root = httpserver.url_for("/api/v3").rstrip("/")
    urls = {"public": root, "private": root}
    policy = RetryPolicy(max_attempts=1, timeout_seconds=5.0, sleep=time.sleep)
    client = ExchangeClient(
        "binance", api_urls=urls, options=SPOT_ONLY, policy=policy, clock=time.clock
    )
    config = tmp_path / "bot.toml"
    config.write_text(CONFIG)
    yield time, client, config
    client.close()
    del data_dir


def run_forward(
    time: FakeTime, client: ExchangeClient, config: Path, *, hours: int, exit_poll: float
) -> dict[str, Any]:
    settings = load_settings()
    database = open_database()
    feed = ExchangeFeed(client, PAIR, "1h", time.clock)
    request = ForwardRequest(
        strategy="sma_crossover", exchange="binance", pair=PAIR, timeframe="1h",
        params={"fast": 5, "slow": 20}, config_path=config,
    )  # fmt: skip
    plan = plan_forward(settings, request, feed, time.clock.now(), feed.bar_seconds)
    until = time.clock.now() + timedelta(hours=hours)
    bars = ForwardBars(feed, time.clock, time.sleep, ForwardOptions(exit_poll, until))
    options = RunOptions(data_dir=settings.data_dir)
    BotRunner(database, plan, options, forward=bars).run()
    return bot_status(database, settings.data_dir)


def backtest_of_the_same_bars(config: Path, plan_first: pd.Timestamp, end: datetime) -> Any:
    from marketbot.backtest.run_config import load_run_config

    run_config = load_run_config(config, settings=load_settings(), bot_defaults=True)
    frame = BARS[BARS.index < pd.Timestamp(end)]
    return BacktestingEngine().run_backtest(
        "sma_crossover", plan_first, None, data=frame, params={"fast": 5, "slow": 20},
        config=run_config.backtest_config("sma_crossover"),
    )  # fmt: skip


def test_forward_paper_when_the_ticker_is_the_next_open_gives_the_backtests_trades(
    forward_env: tuple[FakeTime, ExchangeClient, Path],
) -> None:
    time, client, config = forward_env
    first_decision = BARS.index[FIRST_ROW]
    status = run_forward(time, client, config, hours=HOURS, exit_poll=0)
    end = time.clock.now()
    result = backtest_of_the_same_bars(config, first_decision, end)
    expected = result.to_dict()["trades"]
    closed = [t for t in expected if t["exit_reason"] != "end_of_data"]
    got = status["trades"]
    assert len(closed) >= 5  # enough round trips for the comparison to mean something
    assert {t["exit_reason"] for t in closed} >= {"signal", "stop_loss"}
    assert len(got) == len(closed)
    for mine, theirs in zip(got, closed, strict=True):
        assert mine["entry_time"] == theirs["entry_time"]
        assert mine["exit_time"] == theirs["exit_time"]
        assert mine["exit_reason"] == theirs["exit_reason"]
        for key in ("entry_price", "exit_price", "size", "pnl"):
            assert math.isclose(mine[key], theirs[key], rel_tol=1e-9), key
    # Each sleep ended exactly at a bar's close: the bot never saw a bar before it closed.
    assert sum(time.slept) == pytest.approx(HOURS * 3600.0)


def test_forward_paper_when_restarted_after_a_gap_trades_on_and_enters_only_on_new_closes(
    forward_env: tuple[FakeTime, ExchangeClient, Path],
) -> None:
    time, client, config = forward_env
    first = run_forward(time, client, config, hours=100, exit_poll=1800)
    time.clock.advance(timedelta(hours=20))  # the bot was down for 20 bars
    restarted_at = time.clock.now()
    second = run_forward(time, client, config, hours=100, exit_poll=1800)
    assert second["trades"][: len(first["trades"])] == first["trades"]
    entries = [pd.Timestamp(t["entry_time"]) for t in second["trades"]]
    down = (restarted_at - timedelta(hours=20), restarted_at)
    # Nothing entered on a bar that closed while the bot was down.
    assert not [e for e in entries if down[0] < e.to_pydatetime() < down[1]]
    assert len(second["trades"]) > len(first["trades"])
    ids = [o["client_order_id"] for o in second["orders"]]
    assert len(ids) == len(set(ids))


def test_feed_when_no_new_candle_is_published_yet_answers_no_bars_and_waits(
    httpserver: HTTPServer,
) -> None:
    # An exchange that answers only old candles (not published yet, or ignoring startTime):
    # ccxt drops those before `since`, and the feed hands back no bars instead of failing.
    first = BARS.iloc[:100]

    def oldest_page(request: Request) -> Response:
        return Response(json.dumps(FakeBinance.rows(first)), content_type="application/json")

    httpserver.expect_request("/api/v3/klines").respond_with_handler(oldest_page)
    FakeBinance(httpserver, BARS)
    root = httpserver.url_for("/api/v3").rstrip("/")
    clock = ManualClock(BARS.index[300].to_pydatetime())
    policy = RetryPolicy(max_attempts=1, timeout_seconds=5.0)
    with ExchangeClient(
        "binance", api_urls={"public": root, "private": root}, options=SPOT_ONLY,
        policy=policy, clock=clock,
    ) as client:  # fmt: skip
        feed = ExchangeFeed(client, PAIR, "1h", clock)
        bars = feed.closed_bars(BARS.index[200].to_pydatetime(), clock.now())
    assert bars.empty
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
