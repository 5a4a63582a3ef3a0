"""Live paper on a binary market: the CLOB's books polled from a local Polymarket, a fake clock.

The market (stored, two tokens, open for 10 minutes) is polled every 30 s. Its books are
cheap at the first poll (Up ask 0.40 + Down ask 0.55) and move at the second (0.42 + 0.53):
polymarket_arbitrage signals at the first poll and fills at the second poll's asks, then
holds to the end, where the unresolved legs close at the last mids (0.415, 0.525). The same
snapshots backtested give the same trades.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from marketbot.backtest.binary_config import BinaryConfig
from marketbot.backtest.engine import BacktestingEngine
from marketbot.bot.binary_live import run_live_paper
from marketbot.bot.binary_plan import load_binary_strategy_named as load_strategy
from marketbot.config import Settings
from marketbot.core.errors import ConfigError
from marketbot.net import ApiError
from marketbot.sources.polymarket_api import PolymarketApi
from marketbot.store import Database
from marketbot.store.bot import BotRecordRepository, BotRunRepository
from marketbot.store.polymarket import PolymarketMarketInfo, PolymarketRepository
from tests.support.binary_books import START, binary_markets, two_sided
from tests.support.fake_polymarket import FakePolymarket
from tests.support.fake_time import FakeTime

SLUG = "btc-updown-live"
UP_TOKEN, DOWN_TOKEN = "9001", "9002"
POLL = 30.0
CONFIG = BinaryConfig(fee_rate=0.0, sizing="shares", size=1000.0)
CHEAP = {
    UP_TOKEN: {"bids": [(0.38, 900.0), (0.39, 5000.0)], "asks": [(0.40, 5000.0), (0.45, 10.0)]},
    DOWN_TOKEN: {"bids": [(0.54, 5000.0)], "asks": [(0.55, 5000.0), (0.60, 10.0)]},
}
MOVED = {
    UP_TOKEN: {"bids": [(0.41, 5000.0)], "asks": [(0.42, 5000.0)]},
    DOWN_TOKEN: {"bids": [(0.52, 5000.0)], "asks": [(0.53, 5000.0)]},
}


class PollingTime(FakeTime):
    """The fake clock; after the first wait the books move (what the second poll sees)."""

    def __init__(self, polymarket: FakePolymarket) -> None:
        super().__init__(START.to_pydatetime())
        self.polymarket = polymarket
        polymarket.books = dict(CHEAP)

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        self.polymarket.books = dict(MOVED)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    with Database(f"sqlite:///{tmp_path / 'marketbot.db'}") as store:
        store.migrate()
        PolymarketRepository(store).upsert_market(
            PolymarketMarketInfo(
                market_id="990001", condition_id="0xabc", slug=SLUG, question="Up or Down?",
                event_slug=None, outcomes=("Up", "Down"), token_ids=(UP_TOKEN, DOWN_TOKEN),
                outcome_prices=(), volume=None, liquidity=None,
                start_date=START.to_pydatetime(),
                end_date=(START + timedelta(minutes=10)).to_pydatetime(), closed=False,
                closed_time=None, resolution_status=None,
            )
        )  # fmt: skip
        yield store


@pytest.fixture
def polymarket(httpserver: HTTPServer) -> FakePolymarket:
    return FakePolymarket(httpserver)


def api_for(polymarket: FakePolymarket, time: FakeTime) -> PolymarketApi:
    settings = Settings(polymarket_gamma_url=polymarket.gamma_url,
                        polymarket_clob_url=polymarket.clob_url,
                        polymarket_calls_per_minute=6000, http_timeout_seconds=5)  # fmt: skip
    return PolymarketApi.from_settings(settings, clock=time.clock, sleep=time.sleep)


def test_live_paper_when_books_are_polled_fills_at_the_next_polls_asks_and_closes_at_the_end(
    tmp_path: Path, database: Database, polymarket: FakePolymarket
) -> None:
    time = PollingTime(polymarket)
    strategy = load_strategy("polymarket_arbitrage")
    params = strategy.resolve_params({})
    with api_for(polymarket, time) as api:
        summary = run_live_paper(
            database, tmp_path / "var", (strategy, params, [SLUG], CONFIG), api.clob,
            time.clock, time.sleep, poll_seconds=POLL,
        )  # fmt: skip
    assert summary.instants == 21  # 20 polls (0 s .. 570 s) and the end
    assert polymarket.book_requests == [UP_TOKEN, DOWN_TOKEN] * 20
    assert time.sleeps == [POLL] * 20
    trades = BotRecordRepository(database).trades(summary.run.id)
    assert [(t.entry_tag, t.entry_price, t.size, t.exit_reason) for t in trades] == [
        ("Up", 0.42, 1000.0, "end_of_data"), ("Down", 0.53, 1000.0, "end_of_data"),
    ]  # fmt: skip
    assert [t.entry_time for t in trades] == [(START + timedelta(seconds=30)).to_pydatetime()] * 2
    assert [t.exit_price for t in trades] == pytest.approx([0.415, 0.525])
    assert sum(t.pnl for t in trades) == pytest.approx(-10.0, abs=1e-9)
    # The same snapshots, backtested.
    quotes = two_sided(0, (0.39, 0.40), (0.54, 0.55))
    for poll in range(1, 20):
        quotes += two_sided(poll * POLL, (0.41, 0.42), (0.52, 0.53))
    markets = binary_markets({SLUG: quotes}, payouts={SLUG: None})
    expected = BacktestingEngine().run_backtest(strategy, data=markets, config=CONFIG)
    for mine, theirs in zip(trades, expected.trades.to_dict("records"), strict=True):
        assert mine.exit_time == theirs["exit_time"].to_pydatetime()
        for name in ("entry_price", "exit_price", "size", "pnl", "fees"):
            assert math.isclose(getattr(mine, name), theirs[name], abs_tol=1e-9), name
    assert (
        BotRunRepository(database).get(summary.run.id).last_bar_time
        == (START + timedelta(minutes=10)).to_pydatetime()
    )


def test_live_paper_when_a_token_has_no_book_stops_naming_the_request(
    tmp_path: Path, database: Database, polymarket: FakePolymarket
) -> None:
    time = PollingTime(polymarket)
    polymarket.books = {UP_TOKEN: CHEAP[UP_TOKEN]}
    strategy = load_strategy("polymarket_arbitrage")
    with (
        api_for(polymarket, time) as api,
        pytest.raises(
            ApiError,
            match=f"^market {SLUG}, outcome Down \\(token {DOWN_TOKEN}\\): "
            "Polymarket CLOB GET /book: HTTP 404",
        ),
    ):
        run_live_paper(database, tmp_path / "var", (strategy, {}, [SLUG], CONFIG), api.clob,
                       time.clock, time.sleep)  # fmt: skip
    assert BotRunRepository(database).current_runs() == []


def test_live_paper_when_the_market_is_not_stored_is_one_line_naming_collect(
    tmp_path: Path, database: Database, polymarket: FakePolymarket
) -> None:
    time = PollingTime(polymarket)
    strategy = load_strategy("polymarket_arbitrage")
    with (
        api_for(polymarket, time) as api,
        pytest.raises(ConfigError, match="polymarket collect --market nope"),
    ):
        run_live_paper(database, tmp_path / "var", (strategy, {}, ["nope"], CONFIG), api.clob,
                       time.clock, time.sleep)  # fmt: skip
