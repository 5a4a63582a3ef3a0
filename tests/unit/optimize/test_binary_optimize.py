"""The optimiser on binary markets: one backtest per combination, and the no-winner result."""

from __future__ import annotations

import math

import pytest

from marketbot.backtest.engine import BacktestingEngine
from marketbot.core.errors import DataError
from marketbot.optimize.batch import optimize_many
from marketbot.optimize.optimizer import StrategyOptimizer
from tests.support.binary_books import binary_markets, two_sided

SEED_GRID = {"min_profit_margin": [1.5, 2.0, 2.5, 3.0], "min_liquidity": [500, 1000, 2000]}
# Asks of 0.40 + 0.575: 2.5 % below $1; 1,600 pairs of which the thinner leg takes $640.
BOOKS = {
    slug: two_sided(0, (0.39, 0.40), (0.565, 0.575), 1600.0)
    + two_sided(1, (0.39, 0.40), (0.565, 0.575), 1600.0)
    for slug in ("a", "b", "c")
}


def test_optimize_when_binary_runs_each_combination_as_its_own_backtest() -> None:
    markets = binary_markets(BOOKS)
    result = StrategyOptimizer(jobs=1).optimize_strategy(
        "polymarket_arbitrage", SEED_GRID, "return_pct", data=markets, fee=0.0
    )
    table = result.results
    assert len(table) == 12
    # Only margins below 2.5 % and a liquidity floor of $500 trade: 3 markets x 2 legs.
    trading = table[table["num_trades"] > 0]
    pairs = trading[["min_profit_margin", "min_liquidity"]].to_numpy().tolist()
    assert pairs == [[1.5, 500], [2.0, 500]]
    assert trading["num_trades"].tolist() == [6, 6]
    assert result.best_params == {"min_profit_margin": 1.5, "min_liquidity": 500}
    one = BacktestingEngine().run_backtest(
        "polymarket_arbitrage", data=markets, params=result.best_params, fee=0.0
    )
    assert result.best_metric == one.metrics["return_pct"]
    assert result.symbol == "3 markets"


def test_optimize_when_no_combination_trades_returns_the_table_and_names_the_data() -> None:
    markets = binary_markets(BOOKS)
    result = StrategyOptimizer(jobs=1).optimize_strategy(
        "polymarket_arbitrage", {"min_profit_margin": [3.0], "min_liquidity": [500, 2000]},
        data=markets,
    )  # fmt: skip
    assert result.best_params is None
    assert math.isnan(result.best_metric)
    assert result.message == "no combination made at least 1 trade (most: 0) on 3 markets"
    assert result.results["num_trades"].tolist() == [0, 0]
    payload = result.to_dict()
    assert payload["best_params"] is None and payload["best_metric"] is None
    assert payload["message"] == result.message


def test_optimize_many_when_no_combination_trades_still_fails() -> None:
    with pytest.raises(
        DataError,
        match=r"no strategy produced a result \(polymarket_arbitrage: "
        r"no combination made at least 1 trade \(most: 0\) on 3 markets\)",
    ):
        optimize_many(
            StrategyOptimizer(jobs=1),
            {"polymarket_arbitrage": {"min_profit_margin": [3.0]}},
            data=binary_markets(BOOKS),
        )  # fmt: skip
