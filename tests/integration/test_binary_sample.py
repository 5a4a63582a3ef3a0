"""Binary backtests and the seed's optimisation on the shipped Polymarket sample (issue 13)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from marketbot import BacktestingEngine, BinaryMarkets, BinaryStrategy
from marketbot.optimize.optimizer import StrategyOptimizer
from marketbot.sources.polymarket_book_sample import read_sample
from marketbot.store import Database
from marketbot.store.polymarket_books import PolymarketBookRepository
from tests.support.cli import run_cli

DOCS = Path(__file__).resolve().parents[2] / "docs" / "prediction_markets.md"
SEED_GRID = {"min_profit_margin": [1.5, 2.0, 2.5, 3.0], "min_liquidity": [500, 1000, 2000]}
NO_TRADE = "no combination made at least 1 trade (most: 0) on 18 markets"


@pytest.fixture(scope="module")
def sample() -> BinaryMarkets:
    return BinaryMarkets.from_frames(*read_sample())


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data directory whose SQLite file holds the imported sample (for the CLI and store)."""
    folder = tmp_path_factory.mktemp("binary") / "var"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MARKETBOT_DATA_DIR", str(folder))
        patch.delenv("MARKETBOT_DATABASE_URL", raising=False)
        folder.mkdir(parents=True)
        with Database(f"sqlite:///{folder / 'marketbot.db'}") as database:
            database.migrate()
            PolymarketBookRepository(database).import_frames(*read_sample())
        yield folder


def docs_example() -> type[BinaryStrategy]:
    """docs/prediction_markets.md's example strategy (FirstUp), run as the docs show it."""
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("## Strategies") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the Strategies section has no python example"
    namespace: dict[str, Any] = {}
    exec(compile(match.group(1), str(DOCS), "exec"), namespace)
    found: type[BinaryStrategy] = namespace["FirstUp"]
    return found


def test_sample_when_asks_are_summed_finds_the_documented_near_misses(
    sample: BinaryMarkets,
) -> None:
    below = valid = 0
    markets, sums, liquidity = set(), [], []
    for slug, market in sample.items():
        book = market.book
        cost = book["ask_0"] + book["ask_1"]
        both = (cost < 1.0) & book["valid_0"] & book["valid_1"]
        below += int((cost < 1.0).sum())
        valid += int(both.sum())
        markets |= {slug} if both.any() else set()
        sums += cost[both].tolist()
        pairs = np.minimum(book["ask_size_0"], book["ask_size_1"])
        liquidity += (pairs * np.minimum(book["ask_0"], book["ask_1"]))[both].tolist()
    assert (len(sample), below, valid, len(markets)) == (18, 43, 37, 13)
    assert (min(sums), max(sums)) == (pytest.approx(0.61), pytest.approx(0.997))
    assert max(liquidity) == pytest.approx(53.2252)


def test_sample_when_100_up_shares_are_bought_first_settles_to_399_27(
    sample: BinaryMarkets,
) -> None:
    first_up = docs_example()
    result = BacktestingEngine().run_backtest(first_up(), data=sample, sizing="shares", size=100)
    trades = result.trades
    assert trades["exit_reason"].tolist() == ["settlement"] * 18
    assert trades["exit_price"].value_counts().to_dict() == {1.0: 13, 0.0: 5}
    assert sorted(trades.loc[trades["size"] < 100, "size"]) == [38.0, 43.4, 48.0, 81.0]
    assert round(float(trades["pnl"].sum()), 2) == 399.27
    assert result.settings["fee_rate"] == 0.07


@pytest.mark.parametrize("fee", [None, 0.0])
def test_seed_optimisation_when_run_on_the_stored_sample_finds_no_trade(
    data_dir: Path, fee: float | None
) -> None:
    with Database(f"sqlite:///{data_dir / 'marketbot.db'}") as database:
        result = StrategyOptimizer(BacktestingEngine(database), jobs=1).optimize_strategy(
            "polymarket_arbitrage", SEED_GRID, fee=fee
        )
    assert len(result.results) == 12
    assert result.results["num_trades"].eq(0).all()
    assert result.best_params is None
    assert result.message == NO_TRADE


def test_cli_optimize_when_no_combination_trades_prints_the_message_and_exits_0(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = ["--grid", "min_profit_margin=1.5,2.0,2.5,3.0", "--grid", "min_liquidity=500,1000,2000"]
    code, out, err = run_cli(
        ["optimize", "--strategy", "polymarket_arbitrage", "--markets", "all", *grid],
        capsys,
    )
    assert (code, err) == (0, "")
    assert out.strip() == f"polymarket_arbitrage: {NO_TRADE}"
    code, out, _ = run_cli(
        ["optimize", "--strategy", "polymarket_arbitrage", "--json", *grid], capsys
    )
    payload = json.loads(out)
    assert (code, payload["best_params"], payload["message"]) == (0, None, NO_TRADE)


def test_cli_backtest_when_one_market_is_named_runs_it_with_shares(
    data_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    slug = "btc-updown-15m-1790586000"
    report = tmp_path / "report.html"
    code, out, err = run_cli(
        ["backtest", "--strategy", "binary_momentum", "--market", slug, "--sizing", "shares",
         "--size", "100", "--json", "--report", str(report)],
        capsys,
    )  # fmt: skip
    assert slug in report.read_text(encoding="utf-8")
    assert (code, err) == (0, "")
    payload = json.loads(out)
    assert payload["symbols"] == [slug]
    assert payload["settings"]["sizing"] == "shares"
    assert all(trade["symbol"] == slug for trade in payload["trades"])
    assert all(trade["size"] <= 100 for trade in payload["trades"])
    # Saved with its sub-second trade times, and shown again from the store.
    _, listed, _ = run_cli(["runs", "list", "--json"], capsys)
    run_id = json.loads(listed)[0]["id"]
    code, shown, err = run_cli(["runs", "show", str(run_id)], capsys)
    assert (code, err) == (0, "")
    assert slug in shown


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["backtest", "--strategy", "polymarket_arbitrage", "--symbol", "bitcoin"],
         "error: --symbol names OHLCV bars, but polymarket_arbitrage trades binary markets: "
         "use --market SLUG or --markets all"),
        (["backtest", "--strategy", "sma_crossover", "--market", "x"],
         "error: --market/--markets name binary markets, but sma_crossover trades OHLCV bars: "
         "use --symbol, --universe or --data"),
        (["optimize", "--strategy", "binary_momentum", "--grid", "threshold=0.05",
          "--walk-forward", "10:5"],
         "error: --walk-forward is not an option of binary markets (binary_momentum)"),
        (["backtest", "--strategy", "polymarket_arbitrage", "--market", "nope"],
         "error: no order books stored for market(s) nope; import them with `marketbot "
         "polymarket import-book` (or `import-sample` for the shipped sample)"),
    ],
)  # fmt: skip
def test_cli_when_options_name_the_other_instrument_exits_1_with_one_line(
    data_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run_cli(args, capsys)
    assert (code, out) == (1, "")
    assert err.strip() == message
