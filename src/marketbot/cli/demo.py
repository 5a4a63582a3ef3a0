"""The job ``make run`` runs: load the bundled history, backtest the built-ins, report."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from rich.console import Console

from marketbot.backtest.engine import BacktestingEngine
from marketbot.backtest.report import write_report
from marketbot.backtest.result import BacktestResult
from marketbot.cli.tables import comparison_table, make_console
from marketbot.core.errors import DataError
from marketbot.sources.csv_file import import_csv
from marketbot.store.database import Database
from marketbot.store.prices import PriceRepository
from marketbot.strategies.loader import builtin_strategies

# (file, symbol, timeframe): the bundled Bitstamp history, stored under CoinGecko coin ids.
SAMPLE_SERIES: Final = (
    ("btc_usd_1d_bitstamp.csv", "bitcoin", "1d"),
    ("eth_usd_1d_bitstamp.csv", "ethereum", "1d"),
    ("btc_usd_1h_bitstamp.csv", "bitcoin", "1h"),
)
SAMPLE_SOURCE: Final = "bitstamp"


def import_sample_data(prices: PriceRepository, sample_dir: Path, console: Console) -> None:
    """Import the bundled CSVs (idempotent: a second run overwrites the same rows)."""
    for file_name, symbol, timeframe in SAMPLE_SERIES:
        path = sample_dir / file_name
        if not path.is_file():
            raise DataError(f"bundled sample file missing: {path} (run from the repository root)")
        console.print(
            import_csv(prices, path, symbol=symbol, timeframe=timeframe, source=SAMPLE_SOURCE)
        )


def run_demo(
    database: Database, sample_dir: Path, reports_dir: Path, *, console: Console | None = None
) -> Path:
    """Import the sample data, backtest every built-in on it, print a table, write a report.

    Returns:
        The path of the HTML report of the best run.
    """
    out = console or make_console()
    prices = PriceRepository(database)
    import_sample_data(prices, sample_dir, out)
    engine = BacktestingEngine(database)
    rows: list[tuple[str, BacktestResult]] = []
    for _, symbol, timeframe in SAMPLE_SERIES:
        for name in builtin_strategies():
            result = engine.run_backtest(
                name, symbol=symbol, timeframe=timeframe, source=SAMPLE_SOURCE, save=True
            )
            rows.append((f"{name} / {symbol} {timeframe}", result))
    out.print(comparison_table(rows, "Built-in strategies on the bundled Bitstamp history"))
    label, best = max(rows, key=lambda row: row[1].metrics["sharpe"])
    path = write_report(best, reports_dir / f"{best.strategy}_{best.symbol}.html")
    out.print(f"best Sharpe: {label}; HTML report: {path.resolve()}")
    return path
