"""Counts and small lookups the dashboard's paged lists need (read-only)."""

from __future__ import annotations

import sqlalchemy as sa

from marketbot.store.database import Database
from marketbot.store.models import BacktestRun, OptimizationRun


def count_backtest_runs(
    database: Database, *, strategy: str | None = None, symbol: str | None = None
) -> int:
    """How many backtest runs are stored (of one strategy or symbol when given)."""
    query = sa.select(sa.func.count()).select_from(BacktestRun)
    if strategy is not None:
        query = query.where(BacktestRun.strategy == strategy)
    if symbol is not None:
        query = query.where(sa.or_(BacktestRun.symbol == symbol, BacktestRun.data_file == symbol))
    with database.session() as session:
        return int(session.scalar(query) or 0)


def count_optimization_runs(database: Database) -> int:
    """How many optimisation runs are stored."""
    with database.session() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(OptimizationRun)) or 0)
