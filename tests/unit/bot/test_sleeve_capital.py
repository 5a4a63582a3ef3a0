"""Sleeves' capital: equal weights, a sleeve's cap, the schedule, the stats it scores."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime

import pytest

from marketbot.bot.sleeve_capital import SleeveCapital, sleeve_stats
from marketbot.store.bot import TradeRecord

KEYS = ("a@bitcoin", "b@ethereum", "c@flatcoin")
SUNDAY = datetime(2024, 3, 10, tzinfo=UTC)
MONDAY = datetime(2024, 3, 11, tzinfo=UTC)


def trade(strategy: str, symbol: str, pnl: float, pnl_pct: float) -> TradeRecord:
    """A closed trade with the fields the rebalancer's stats read."""
    at = datetime(2024, 3, 1, tzinfo=UTC)
    return TradeRecord(
        bot_run_id=1, strategy=strategy, symbol=symbol, direction="long", size=1.0,
        entry_time=at, entry_price=100.0, exit_time=at, exit_price=100.0 + pnl, pnl=pnl,
        pnl_pct=pnl_pct, fees=0.0, exit_reason="signal",
    )  # fmt: skip


def test_sleeve_stats_when_three_trades_give_sharpe_win_rate_and_pnl() -> None:
    trades = [trade("a", "bitcoin", 100.0, 10.0), trade("a", "bitcoin", -50.0, -5.0),
              trade("a", "bitcoin", 40.0, 4.0)]  # fmt: skip
    stats = sleeve_stats("a@bitcoin", trades)
    assert stats.sharpe == pytest.approx(3.0 / statistics.stdev([10.0, -5.0, 4.0]), rel=1e-12)
    assert stats.win_rate_pct == pytest.approx(200.0 / 3.0)
    assert stats.total_pnl_usd == pytest.approx(90.0)
    assert stats.num_trades == 3


def test_sleeve_stats_when_no_trades_or_one_score_neutral_zeros() -> None:
    none = sleeve_stats("a@bitcoin", [])
    assert (none.sharpe, none.win_rate_pct, none.total_pnl_usd, none.num_trades) == (0, 0, 0, 0)
    one = sleeve_stats("a@bitcoin", [trade("a", "bitcoin", -5.0, -0.5)])
    assert (one.sharpe, one.win_rate_pct, one.total_pnl_usd) == (0.0, 0.0, -5.0)


def test_capital_when_run_starts_is_an_equal_share_less_what_is_held() -> None:
    capital = SleeveCapital(KEYS, "weekly", SUNDAY)
    assert capital.weights == {key: pytest.approx(1 / 3) for key in KEYS}
    assert capital.capital("a@bitcoin", 9_000.0, 1_000.0) == pytest.approx(2_000.0)
    assert capital.capital("a@bitcoin", 9_000.0, 5_000.0) == 0.0  # never negative


def test_rebalance_when_not_due_until_monday_then_weights_follow_the_scores() -> None:
    capital = SleeveCapital(KEYS, "weekly", datetime(2024, 3, 5, 13, 45, tzinfo=UTC))
    trades = [trade("a", "bitcoin", 20.0, 2.0), trade("b", "ethereum", -50.0, -5.0)]
    assert capital.rebalance(SUNDAY, trades, 10_000.0) is None
    event = capital.rebalance(MONDAY, trades, 10_000.0)
    assert event is not None
    assert (event.kind, event.at) == ("rebalance", MONDAY)
    # Sharpe shared (1 each); win rate a 1, others 0; P&L a 1, c 50/70, b 0.
    scores = {"a@bitcoin": 1.0, "b@ethereum": 0.4, "c@flatcoin": 0.4 + 0.3 * 50.0 / 70.0}
    rest = 0.6 / (scores["b@ethereum"] + scores["c@flatcoin"])
    expected = {
        "a@bitcoin": 0.4,
        "b@ethereum": 0.4 * rest,
        "c@flatcoin": scores["c@flatcoin"] * rest,
    }
    assert capital.weights == {k: pytest.approx(v, rel=1e-9) for k, v in expected.items()}
    assert event.details["weights"] == capital.weights
    assert event.details["previous"] == {key: pytest.approx(1 / 3) for key in KEYS}
    assert "a@bitcoin 40.0 %" in event.message
    assert capital.rebalance(MONDAY.replace(day=17), trades, 10_000.0) is None  # Sunday
    assert capital.rebalance(MONDAY.replace(day=18), trades, 10_000.0) is not None


def test_rebalance_when_schedule_is_off_keeps_equal_weights() -> None:
    capital = SleeveCapital(KEYS, None, SUNDAY)
    assert capital.rebalance(MONDAY, [trade("a", "bitcoin", 20.0, 2.0)], 10_000.0) is None
    assert capital.weights == {key: pytest.approx(1 / 3) for key in KEYS}


def test_capital_snapshot_when_restored_gives_the_same_weights_and_schedule() -> None:
    capital = SleeveCapital(KEYS, "weekly", SUNDAY)
    capital.rebalance(MONDAY, [trade("a", "bitcoin", 20.0, 2.0)], 10_000.0)
    restored = SleeveCapital(KEYS, "weekly", SUNDAY)
    restored.restore(capital.snapshot())
    assert restored.weights == capital.weights
    assert restored.last_rebalance == MONDAY
    assert math.isclose(sum(restored.weights.values()), 1.0)
