"""result_from_record and stored_bars: a saved run's report equals the original run's."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from marketbot.backtest.engine import BacktestingEngine
from marketbot.backtest.report import render_report
from marketbot.backtest.result import BacktestResult
from marketbot.backtest.stored import result_from_record, stored_bars
from marketbot.core.errors import DataError
from marketbot.sources.csv_file import read_ohlcv_csv
from marketbot.store import BacktestRunRepository, Database, PriceRepository
from tests.support.frames import SAMPLE_DIR

# The one line of a report that depends on when it was made.
GENERATED = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC")


@pytest.fixture
def sample_database(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'marketbot.db'}")
    database.migrate()
    prices = PriceRepository(database)
    for name, symbol in (
        ("btc_usd_1d_bitstamp.csv", "bitcoin"),
        ("eth_usd_1d_bitstamp.csv", "ethereum"),
    ):
        prices.upsert_bars("bitstamp", symbol, "1d", read_ohlcv_csv(SAMPLE_DIR / name))
    return database


def rebuilt(database: Database) -> tuple[BacktestResult, int]:
    (summary,) = BacktestRunRepository(database).list_runs()
    stored = BacktestRunRepository(database).get(summary.id)
    frames = stored_bars(stored.record, PriceRepository(database), run_id=stored.id)
    first = next(iter(frames.values()))
    return result_from_record(stored.record, first, prices=frames), stored.id


def page(result: BacktestResult) -> str:
    return GENERATED.sub("", render_report(result))


def test_result_from_record_when_run_on_stored_bars_renders_the_original_report(
    sample_database: Database,
) -> None:
    original = BacktestingEngine(database=sample_database).run_backtest(
        "sma_crossover", "2020-01-01", "2021-12-31", symbol="bitcoin", stop_loss=0.05
    )

    result, _ = rebuilt(sample_database)

    assert len(result.trades) == len(original.trades) > 0
    assert page(result) == page(original)


def test_result_from_record_when_portfolio_renders_the_original_charts_and_tables(
    sample_database: Database,
) -> None:
    original = BacktestingEngine(database=sample_database).run_backtest(
        "momentum", "2021-01-01", "2022-12-31", symbols=["bitcoin", "ethereum"],
        max_open_positions=1,
    )  # fmt: skip

    result, _ = rebuilt(sample_database)

    assert result.symbols == ("bitcoin", "ethereum")
    assert result.per_symbol is not None and original.per_symbol is not None
    assert result.per_symbol.equals(original.per_symbol)
    # The exposure curve is not saved; everything else of the page is the original's.
    assert page(result) == page(replace(original, exposure=None))


def test_stored_bars_when_run_was_on_a_frame_refuses(sample_database: Database) -> None:
    frame = read_ohlcv_csv(SAMPLE_DIR / "btc_usd_1d_bitstamp.csv")
    BacktestingEngine(database=sample_database).run_backtest(
        "sma_crossover", "2020-01-01", "2020-12-31", data=frame, save=True
    )

    with pytest.raises(DataError, match=r"run 1 was on a data frame given in Python"):
        rebuilt(sample_database)
