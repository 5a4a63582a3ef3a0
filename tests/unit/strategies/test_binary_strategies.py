"""binary_momentum on a hand-made path, and the account's invariants on random books."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketbot.backtest.binary_backtest import simulate_markets
from marketbot.backtest.binary_config import BinaryConfig
from marketbot.backtest.engine import BacktestingEngine
from marketbot.core.errors import StrategyError
from marketbot.strategies.binary import BinarySignals, BinaryStrategy, checked_binary_signals
from marketbot.strategies.builtin.polymarket_arbitrage import PolymarketArbitrage
from tests.support.binary_books import Quote, binary_markets, two_sided


def path(*points: tuple[float, float]) -> list[Quote]:
    """Up quoted at (seconds, mid) with a 0.02 spread; Down its mirror image."""
    quotes = []
    for seconds, mid in points:
        quotes += two_sided(seconds, (mid - 0.01, mid + 0.01), (0.99 - mid, 1.01 - mid), 500.0)
    return quotes


RISING = path((0, 0.50), (30, 0.52), (60, 0.56), (90, 0.57), (540, 0.61), (560, 0.64))


@pytest.mark.parametrize(
    ("exit_before_end", "exit_price", "reason", "pnl"),
    [(60, 0.63, "signal", 5.0), (0, 1.0, "settlement", 42.0)],
)
def test_binary_momentum_when_up_rises_buys_it_and_sells_before_the_end(
    exit_before_end: int, exit_price: float, reason: str, pnl: float
) -> None:
    result = BacktestingEngine().run_backtest(
        "binary_momentum",
        data=binary_markets({"m": RISING}),
        params={"exit_before_end_seconds": exit_before_end},
        fee=0.0, sizing="shares", size=100,
    )  # fmt: skip
    trades = result.trades
    assert len(trades) == 1
    trade = trades.iloc[0]
    # The rise of 0.06 over 60 s shows at 60 s; the order fills at 90 s, at Up's ask.
    assert (trade["outcome"], trade["entry_price"], trade["size"]) == ("Up", 0.58, 100.0)
    assert str(trade["entry_time"]) == "2026-01-05 12:01:30+00:00"
    assert (trade["exit_price"], trade["exit_reason"]) == (pytest.approx(exit_price), reason)
    assert trade["pnl"] == pytest.approx(pnl, abs=1e-9)


def test_binary_momentum_when_the_rise_is_below_the_threshold_stays_out() -> None:
    result = BacktestingEngine().run_backtest(
        "binary_momentum", data=binary_markets({"m": RISING}), params={"threshold": 0.07}
    )
    assert result.metrics["num_trades"] == 0


class _Wrong(BinaryStrategy):
    name = "wrong"

    def signals(self, book, params):  # type: ignore[no-untyped-def]  # a user's mistake
        return BinarySignals(np.zeros(len(book)), np.zeros((len(book), 2)))


def test_binary_strategy_when_an_output_has_the_wrong_shape_names_it() -> None:
    with pytest.raises(StrategyError, match=r"entries of shape \(1,\), expected \(1, 2\)"):
        BacktestingEngine().run_backtest(_Wrong(), data=binary_markets({"m": path((0, 0.5))}))
    with pytest.raises(StrategyError, match="expected BinarySignals"):
        checked_binary_signals("x", None, 3)


ASKS = st.sampled_from([None, 0.0, 0.05, 0.3, 0.41, 0.45, 0.45, 0.5, 0.59, 0.7])
SIZES = st.sampled_from([0.0, 7.5, 100.0, 1000.0, 5000.0, 5000.0])
# The bid a cent below the ask mostly; sometimes none, locked (0) or crossed (-0.01).
BID_OFFSETS = st.sampled_from([0.01, 0.01, 0.01, None, 0.0, -0.01])


@st.composite
def random_quote(draw: st.DrawFn, seconds: int, outcome: int) -> Quote:
    """One token's snapshot, mostly with both sides; 0 prices and sizes included."""
    ask, offset = draw(ASKS), draw(BID_OFFSETS)
    bid = None if ask is None or offset is None else round(ask - offset, 2)
    if bid is not None and not 0.0 <= bid <= 1.0:
        bid = None
    return Quote(
        seconds, outcome, bid, None if bid is None else draw(SIZES),
        ask, None if ask is None else draw(SIZES),
    )  # fmt: skip


@st.composite
def random_markets(draw: st.DrawFn) -> dict[str, list[Quote]]:
    markets = {}
    for slug in ("a", "b", "c")[: draw(st.integers(1, 3))]:
        quotes = []
        for seconds in sorted(draw(st.sets(st.integers(0, 620), min_size=3, max_size=8))):
            for outcome in draw(st.sampled_from([(0, 1), (0, 1), (0, 1), (0,), (1,)])):
                quotes.append(draw(random_quote(seconds, outcome)))
        markets[slug] = quotes
    return markets


@given(
    random_markets(),
    st.sampled_from([BinaryConfig(sizing="shares", size=300.0, initial_cash=500.0),
                     BinaryConfig(fee_rate=0.0, initial_cash=1_500.0),
                     BinaryConfig(sizing="fraction", size=0.9, initial_cash=200.0)]),
)  # fmt: skip
def test_binary_account_when_books_are_random_never_overdraws_and_keeps_legs_equal(
    books: dict[str, list[Quote]], config: BinaryConfig
) -> None:
    markets = binary_markets(books, payouts={"b": None, "c": (0.5, 0.5)})
    params = {"min_profit_margin": 0.0, "min_liquidity": 0.0}
    outcome = simulate_markets(PolymarketArbitrage(), markets, params, config)
    cash = config.initial_cash + np.cumsum([delta for _, delta in outcome.run.cash_changes])
    assert (cash >= 0.0).all()
    for _, legs in outcome.trades.groupby(["group", "exit_time"]):
        assert len(legs) == 2 and legs["size"].iloc[0] == legs["size"].iloc[1]
    final = outcome.equity.iloc[-1] if len(outcome.equity) else config.initial_cash
    assert final == pytest.approx(config.initial_cash + outcome.trades["pnl"].sum(), abs=1e-9)
    assert all(a <= b for a, b in itertools.pairwise(outcome.trades["exit_time"]))


FALLING = path((0, 0.50), (30, 0.52), (60, 0.56), (90, 0.57), (300, 0.40), (320, 0.38))


@pytest.mark.parametrize(
    ("books", "rule", "exit_time", "exit_price", "pnl"),
    [
        # Worth 40 at 300 s against a cost of 58: below 20 % off, sold at the next bid.
        (FALLING, {"stop_loss": 0.2}, "12:05:20", 0.37, -21.0),
        # Held 60 s from the 90 s fill: sold at the first event from 150 s on, at 540 s.
        (RISING, {"max_hold": 60}, "12:09:00", 0.60, 2.0),
    ],
    ids=["stop_loss", "max_hold"],
)
def test_binary_rules_when_configured_exit_the_group(
    books: list[Quote], rule: dict[str, float], exit_time: str, exit_price: float, pnl: float
) -> None:
    result = BacktestingEngine().run_backtest(
        "binary_momentum", data=binary_markets({"m": books}), fee=0.0, sizing="shares",
        size=100, **rule,  # type: ignore[arg-type]
    )  # fmt: skip
    trade = result.trades.iloc[0]
    assert trade["exit_reason"] == next(iter(rule))
    assert str(trade["exit_time"]) == f"2026-01-05 {exit_time}+00:00"
    assert (trade["exit_price"], trade["pnl"]) == (pytest.approx(exit_price), pytest.approx(pnl))


def test_binary_exit_when_the_bid_is_thin_sells_what_it_takes_and_settles_the_rest() -> None:
    thin_bid = [Quote(560, 0, 0.63, 40.0, 0.65, 500.0), Quote(560, 1, 0.35, 500.0, 0.37, 500.0)]
    books = [quote for quote in RISING if quote.seconds != 560] + thin_bid
    result = BacktestingEngine().run_backtest(
        "binary_momentum", data=binary_markets({"m": books}), fee=0.0, sizing="shares", size=100
    )
    trades = result.trades
    assert trades[["size", "exit_reason"]].values.tolist() == [
        [40.0, "signal"],
        [60.0, "settlement"],
    ]
    assert trades["pnl"].tolist() == pytest.approx([40 * 0.05, 60 * 0.42])
    assert trades["group"].nunique() == 1
