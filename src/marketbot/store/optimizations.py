"""Saved optimisation runs: store the optimiser's summary and table, list and read them back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from marketbot.core.errors import ConfigError, DataError
from marketbot.store._codec import decode_json_blob, encode_json_blob, to_json_value
from marketbot.store.database import Database
from marketbot.store.models import OptimizationRun
from marketbot.store.runs import _fit_symbol_label


@dataclass(frozen=True, slots=True)
class OptimizationRunSummary:
    """One saved optimisation, without its full table.

    ``grid`` is what was searched: per parameter of the best combination, the distinct
    values the evaluated combinations took, sorted (for ``optuna``, the values it sampled).
    """

    id: int
    created_at: datetime
    strategy: str
    symbol: str
    method: str
    metric: str
    best_params: dict[str, Any]
    best_metric: float | None
    combinations: int
    grid: dict[str, list[Any]] = field(default_factory=dict)


class OptimizationRunRepository:
    """Stores optimisation runs (one transaction each) and reads them back."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def save(self, summary: dict[str, Any]) -> int:
        """Store an ``OptimizationResult.to_dict()``; return the new run's id."""
        results = summary.get("results", [])
        head = {key: value for key, value in summary.items() if key != "results"}
        row = OptimizationRun(
            strategy=str(summary["strategy"]),
            symbol=_fit_symbol_label(str(summary.get("symbol", "data"))),
            method=str(summary.get("method", "grid")),
            metric=str(summary["metric"]),
            best_params=to_json_value(summary["best_params"], where="best_params"),
            best_metric=summary.get("best_metric"),
            combinations=len(results),
            summary=to_json_value(head, where="summary"),
            results=encode_json_blob(results, where="results"),
        )
        with self._database.session() as session, session.begin():
            session.add(row)
            session.flush()
            return int(row.id)

    def list_runs(
        self, limit: int = 50, *, strategy: str | None = None, symbol: str | None = None
    ) -> list[OptimizationRunSummary]:
        """The newest runs first, optionally only one strategy's or one symbol's.

        Raises:
            ConfigError: ``limit`` is below 1.
        """
        if limit < 1:
            raise ConfigError(f"limit must be at least 1, got {limit}")
        query = sa.select(OptimizationRun).order_by(OptimizationRun.id.desc()).limit(limit)
        if strategy is not None:
            query = query.where(OptimizationRun.strategy == strategy)
        if symbol is not None:
            query = query.where(OptimizationRun.symbol == symbol)
        with self._database.session() as session:
            return [_summary(row) for row in session.scalars(query)]

    def get_results(self, run_id: int) -> list[dict[str, Any]]:
        """Every combination's row of run ``run_id``.

        Raises:
            DataError: no run has that id.
        """
        with self._database.session() as session:
            row = session.get(OptimizationRun, run_id)
            if row is None:
                raise DataError(f"no optimisation run with id {run_id}")
            results: list[dict[str, Any]] = decode_json_blob(row.results)
            return results


def _summary(row: OptimizationRun) -> OptimizationRunSummary:
    return OptimizationRunSummary(
        id=row.id,
        created_at=row.created_at,
        strategy=row.strategy,
        symbol=row.symbol,
        method=row.method,
        metric=row.metric,
        best_params=row.best_params,
        best_metric=row.best_metric,
        combinations=row.combinations,
        grid=_searched_values(row.best_params, decode_json_blob(row.results)),
    )


def _searched_values(
    best_params: dict[str, Any], results: list[dict[str, Any]]
) -> dict[str, list[Any]]:
    """Per parameter, the distinct values the saved combinations took, sorted.

    The table's other columns are metrics; the best combination names the parameters.
    """
    grid: dict[str, list[Any]] = {}
    for name in best_params:
        values = {_hashable(row[name]) for row in results if name in row}
        # Sort numbers by value and anything else by text, without comparing the two kinds.
        grid[name] = sorted(values, key=_value_order)
    return grid


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _value_order(value: Any) -> tuple[int, float, str]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))
