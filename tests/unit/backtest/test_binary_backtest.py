"""Binary backtests on hand-made books: the issue's known answers for arbitrage and fills."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from marketbot.backtest.binary_config import BinaryConfig
from marketbot.backtest.engine import BacktestingEngine
from marketbot.backtest.result import BacktestResult
from marketbot.core.errors import ConfigError
from marketbot.core.risk_limits import RiskLimits
from tests.support.binary_books import Quote, binary_markets, two_sided

UP, DOWN = (0.39, 0.40), (0.54, 0.55)
CHEAP = two_sided(0, UP, DOWN) + two_sided(1, UP, DOWN)  # a signal at 0 s, its fill at 1 s


def arbitrage(
    books: dict[str, Sequence[Quote]],
    *,
    fee: float = 0.0,
    payouts: dict[str, tuple[float, float] | None] | None = None,
    margin: float = 2.0,
    **options: object,
) -> BacktestResult:
    markets = binary_markets(books, payouts=payouts)
    sizing = options or {"sizing": "shares", "size": 1000.0}
    return BacktestingEngine().run_backtest(
        "polymarket_arbitrage",
        data=markets,
        params={"min_profit_margin": margin},
        fee=fee,
        **sizing,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("payout", [(1.0, 0.0), (0.0, 1.0), (0.5, 0.5)])
@pytest.mark.parametrize(("fee", "pnl"), [(0.0, 50.00), (0.02, 40.25)])
def test_arbitrage_when_held_to_settlement_earns_the_pair_discount_less_fees(
    payout: tuple[float, float], fee: float, pnl: float
) -> None:
    result = arbitrage({"m": CHEAP}, fee=fee, payouts={"m": payout})
    trades = result.trades
    assert trades["exit_reason"].tolist() == ["settlement", "settlement"]
    assert trades["size"].tolist() == [1000.0, 1000.0]
    assert trades["entry_price"].tolist() == [0.40, 0.55]
    assert trades["exit_price"].tolist() == list(payout)
    assert trades["group"].nunique() == 1
    # 0.05 a pair, less 0.02 x (0.4 x 0.6 + 0.55 x 0.45) a pair in fees.
    assert trades["pnl"].sum() == pytest.approx(pnl, abs=1e-9)
    assert result.equity_curve.iloc[-1] == pytest.approx(10_000.0 + pnl, abs=1e-9)
    assert result.metrics["total_fees"] == pytest.approx(50.0 - pnl, abs=1e-9)
    assert str(trades["exit_time"].iloc[0]) == "2026-01-05 12:10:00+00:00"  # the market's end


@pytest.mark.parametrize(("fee", "pnl"), [(0.0, -10.00), (0.02, -19.75)])
def test_arbitrage_when_unresolved_closes_at_the_last_mids_without_costs(
    fee: float, pnl: float
) -> None:
    result = arbitrage({"m": CHEAP}, fee=fee, payouts={"m": None})
    trades = result.trades
    assert trades["exit_reason"].tolist() == ["end_of_data", "end_of_data"]
    assert trades["exit_price"].tolist() == pytest.approx([0.395, 0.545])
    assert trades["pnl"].sum() == pytest.approx(pnl, abs=1e-9)


def test_arbitrage_when_the_book_moves_fills_at_the_next_snapshots_ask() -> None:
    moved = two_sided(0, UP, DOWN) + two_sided(1, (0.41, 0.42), (0.52, 0.53))
    trades = arbitrage({"m": moved}).trades
    assert trades["entry_price"].tolist() == [0.42, 0.53]
    assert str(trades["entry_time"].iloc[0]) == "2026-01-05 12:00:01+00:00"
    assert trades["pnl"].sum() == pytest.approx(1000 * (1 - 0.95), abs=1e-9)


def test_arbitrage_when_one_leg_is_thin_scales_both_legs_to_its_depth() -> None:
    thin = two_sided(0, UP, DOWN) + two_sided(1, UP, DOWN, up_size=600.0)
    trades = arbitrage({"m": thin}).trades
    assert trades["size"].tolist() == [600.0, 600.0]
    assert trades["pnl"].sum() == pytest.approx(600 * 0.05, abs=1e-9)


def test_arbitrage_when_no_pair_is_cheap_makes_no_trade_and_says_why() -> None:
    dear = two_sided(0, (0.44, 0.45), (0.55, 0.56)) + two_sided(1, (0.44, 0.45), (0.55, 0.56))
    result = arbitrage({"m": dear})
    assert result.metrics["num_trades"] == 0
    assert result.no_trade_reason == "no entry signal on market m"
    assert result.equity_curve.iloc[-1] == 10_000.0


def test_arbitrage_when_three_markets_share_one_account_reports_each() -> None:
    later = [Quote(q.seconds + 120, q.outcome, q.bid, q.bid_size, q.ask, q.ask_size) for q in CHEAP]
    dear = two_sided(0, (0.44, 0.45), (0.55, 0.56)) + two_sided(1, (0.44, 0.45), (0.55, 0.56))
    result = arbitrage({"a": CHEAP, "b": later, "c": dear}, payouts={"b": (0.0, 1.0)}, fee=0.02)
    assert result.symbols == ("a", "b", "c")
    per_symbol = result.per_symbol
    assert per_symbol is not None
    assert per_symbol["num_trades"].tolist() == [2, 2, 0]
    assert per_symbol["pnl"].tolist() == pytest.approx([40.25, 40.25, 0.0], abs=1e-9)
    assert result.trades["group"].tolist() == [1, 1, 2, 2]
    assert result.equity_curve.iloc[-1] == pytest.approx(10_080.5, abs=1e-9)
    payload = result.to_dict()
    assert payload["trades"][0]["entry_time"] == "2026-01-05T12:00:01.000Z"
    assert {k: payload["trades"][2][k] for k in ("symbol", "outcome", "outcome_index")} == {
        "symbol": "b", "outcome": "Up", "outcome_index": 0,
    }  # fmt: skip


def test_arbitrage_when_cash_runs_short_scales_the_last_group_to_the_cash_left() -> None:
    result = arbitrage({"a": CHEAP, "b": CHEAP}, cash=1_500.0, sizing="shares", size=1000.0)
    sizes = result.trades.groupby("symbol")["size"].first()
    # a costs 950 (slug order at one instant); b gets the 550 left: 550 / 0.95 pairs.
    assert sizes["a"] == 1000.0
    assert sizes["b"] == pytest.approx(550.0 / 0.95, rel=1e-12)
    assert result.equity_curve.min() >= 0.0


def test_arbitrage_when_fixed_cash_spends_1000_a_group_fees_included() -> None:
    result = arbitrage({"m": CHEAP}, fee=0.02, sizing="fixed_cash")
    trades = result.trades
    cost = (trades["size"] * trades["entry_price"]).sum() + trades["fees"].sum() / 1  # entry fees
    assert trades["size"].iloc[0] == trades["size"].iloc[1]
    assert cost == pytest.approx(1000.0, abs=1e-9)


# Boundaries ---------------------------------------------------------------------------


def twice(up: tuple[float, float], down: tuple[float, float], **sizes: float) -> list[Quote]:
    return two_sided(0, up, down, **sizes) + two_sided(1, up, down, **sizes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("books", "fee", "margin", "trades"),
    [
        (twice((0.39, 0.40), (0.57, 0.58)), 0.0, 2.0, 0),  # costs exactly 0.98
        (twice((0.39, 0.40), (0.57, 0.5799)), 0.0, 2.0, 2),
        (twice(UP, DOWN, up_size=2499.99), 0.0, 2.0, 0),  # $999.996 of liquidity
        (twice(UP, DOWN, up_size=2500.0), 0.0, 2.0, 2),  # $1,000.00
        (twice(UP, DOWN, down_size=1800.0), 0.0, 2.0, 0),  # 1800 pairs x $0.40 = $720
        (twice((0.41, 0.40), DOWN), 0.0, 2.0, 0),  # crossed
        (twice((0.40, 0.40), DOWN), 0.0, 2.0, 0),  # locked
        (twice(UP, DOWN), 0.07, 2.0, 0),  # 0.95 + 0.034125 of fees > 0.98
        (twice(UP, DOWN), 0.07, 1.5, 2),  # < 0.985
    ],
    ids=["asks-0.98", "asks-0.9799", "up-2499.99", "up-2500", "down-1800", "crossed",
         "locked", "fee-margin-2", "fee-margin-1.5"],
)  # fmt: skip
def test_arbitrage_boundaries(books: list[Quote], fee: float, margin: float, trades: int) -> None:
    result = arbitrage({"m": books}, fee=fee, margin=margin)
    assert result.metrics["num_trades"] == trades


def test_arbitrage_when_the_opportunity_comes_only_after_the_end_makes_no_trade() -> None:
    dear = twice((0.44, 0.45), (0.55, 0.56))
    after_end = [
        Quote(q.seconds + 601, q.outcome, q.bid, q.bid_size, q.ask, q.ask_size) for q in CHEAP
    ]
    result = arbitrage({"m": dear + after_end})
    assert result.metrics["num_trades"] == 0
    assert len(result.equity_curve) == 3  # two events and the end; nothing after it


def test_binary_run_when_given_ohlcv_settings_or_symbols_is_a_one_line_error() -> None:
    markets = binary_markets({"m": CHEAP})
    engine = BacktestingEngine()
    with pytest.raises(ConfigError, match="trailing_stop: not a setting of binary markets"):
        engine.run_backtest("polymarket_arbitrage", data=markets, trailing_stop=0.1)
    with pytest.raises(ConfigError, match="give market= or markets=, not symbol="):
        engine.run_backtest("polymarket_arbitrage", symbol="bitcoin")
    with pytest.raises(ConfigError, match="trades OHLCV bars, not binary markets"):
        engine.run_backtest("sma_crossover", data=markets)
    with pytest.raises(ConfigError, match="sizing='shares' needs size="):
        BinaryConfig(sizing="shares")


def test_binary_run_when_fee_is_not_given_takes_the_polymarket_taker_default() -> None:
    result = BacktestingEngine().run_backtest(
        "polymarket_arbitrage", data=binary_markets({"m": CHEAP}), params={"min_profit_margin": 1.5}
    )
    assert result.settings["fee_rate"] == 0.07
    assert result.settings["slippage_rate"] == 0.0
    assert result.settings["fee_model"] == "polymarket_taker"


def test_arbitrage_when_risk_limits_are_set_caps_groups_at_cost() -> None:
    limits = RiskLimits(max_position_size_usd=500.0, max_total_exposure_usd=800.0)
    result = arbitrage({"a": CHEAP, "b": CHEAP}, sizing="shares", size=1000.0, risk=limits)
    cost = (result.trades["size"] * result.trades["entry_price"]).groupby(result.trades["symbol"])
    # a: $500 of the $950 asked; b: the $300 of exposure left.
    assert cost.sum().tolist() == pytest.approx([500.0, 300.0])
