"""Walk-forward runs: each validation's out-of-sample verdict, kept for the live gates.

A walk-forward re-optimises on each in-sample window and trades the next out-of-sample one;
what is kept is the stitched out-of-sample verdict and metrics, the parameters of the last
window (what would be traded next) and the per-window table, so that ``run --live`` can ask
"what was the latest verdict on this strategy, these parameters, this pair and timeframe?".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from marketbot.core.errors import ConfigError
from marketbot.store._codec import from_json_value, to_json_value
from marketbot.store.database import Database
from marketbot.store.models import WalkForwardRun, utc_now

__all__ = ["WalkForwardRecord", "WalkForwardRunRepository", "WalkForwardRunSummary"]


@dataclass(frozen=True, slots=True)
class WalkForwardRecord:
    """What is saved of one walk-forward validation.

    Attributes:
        strategy: The strategy's name.
        symbol: The series it ran on (``BTC/USDT``, ``bitcoin``) or the data file's name.
        timeframe: Bar length label (``1h``).
        params: The last window's chosen parameters.
        metric: The metric each in-sample optimisation maximised.
        windows: How many windows it had.
        out_of_sample_metrics: Metrics of the stitched out-of-sample run.
        recommendation: The verdict on those (EXCELLENT, GOOD, MARGINAL, FAILED).
        summary: The result's JSON (settings and windows), without the equity curve.
    """

    strategy: str
    symbol: str
    timeframe: str
    params: Mapping[str, Any]
    metric: str
    windows: int
    out_of_sample_metrics: Mapping[str, Any]
    recommendation: str
    summary: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class WalkForwardRunSummary:
    """A stored walk-forward run (without its window table)."""

    id: int
    created_at: datetime
    strategy: str
    symbol: str
    timeframe: str
    params: dict[str, Any]
    metric: str
    windows: int
    out_of_sample_metrics: dict[str, Any]
    recommendation: str


def record_from_walk_forward(result: Any, *, symbol: str, timeframe: str) -> WalkForwardRecord:
    """The record of an :class:`~marketbot.optimize.walk_forward.WalkForwardResult`.

    Raises:
        ConfigError: a result without windows (nothing was validated).
    """
    windows = tuple(result.windows)
    if not windows:
        raise ConfigError(f"walk-forward of {result.strategy} on {symbol}: no windows to save")
    summary = result.to_dict()
    summary.pop("equity", None)
    return WalkForwardRecord(
        strategy=str(result.strategy),
        symbol=symbol,
        timeframe=timeframe,
        params=dict(windows[-1].params),
        metric=str(result.metric),
        windows=len(windows),
        out_of_sample_metrics=dict(result.out_of_sample_metrics),
        recommendation=str(result.recommendation.value),
        summary=summary,
    )


class WalkForwardRunRepository:
    """Saves and lists walk-forward runs.

    Args:
        database: The migrated database.
        clock: "Now" for ``created_at``.
    """

    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._database = database
        self._clock = clock

    def save(self, record: WalkForwardRecord) -> int:
        """Store a run and return its id.

        Raises:
            ConfigError: an empty name field.
            DataError: a value JSON cannot hold (named).
        """
        for name in ("strategy", "symbol", "timeframe", "recommendation"):
            if not str(getattr(record, name)).strip():
                raise ConfigError(f"walk-forward run: {name} must not be empty")
        row = WalkForwardRun(
            created_at=self._clock(),
            strategy=record.strategy,
            symbol=record.symbol[:100],
            timeframe=record.timeframe,
            params=to_json_value(dict(record.params), where="params"),
            metric=record.metric,
            windows=record.windows,
            out_of_sample_metrics=to_json_value(
                dict(record.out_of_sample_metrics), where="out_of_sample_metrics"
            ),
            recommendation=record.recommendation,
            summary=to_json_value(dict(record.summary), where="summary"),
        )
        with self._database.session() as session, session.begin():
            session.add(row)
            session.flush()
            return int(row.id)

    def list_runs(
        self,
        limit: int = 50,
        *,
        strategy: str | None = None,
        symbol: str | None = None,
        timeframe: str | None = None,
    ) -> list[WalkForwardRunSummary]:
        """The most recent runs first, optionally of one strategy, symbol and timeframe."""
        if limit < 1:
            raise ConfigError(f"limit must be at least 1, got {limit}")
        query = sa.select(WalkForwardRun).order_by(
            WalkForwardRun.created_at.desc(), WalkForwardRun.id.desc()
        )
        if strategy is not None:
            query = query.where(WalkForwardRun.strategy == strategy)
        if symbol is not None:
            query = query.where(WalkForwardRun.symbol == symbol)
        if timeframe is not None:
            query = query.where(WalkForwardRun.timeframe == timeframe)
        with self._database.session() as session:
            rows = session.scalars(query.limit(limit)).all()
            return [_summary(row) for row in rows]


def _summary(row: WalkForwardRun) -> WalkForwardRunSummary:
    return WalkForwardRunSummary(
        id=int(row.id),
        created_at=row.created_at,
        strategy=row.strategy,
        symbol=row.symbol,
        timeframe=row.timeframe,
        params=from_json_value(row.params),
        metric=row.metric,
        windows=int(row.windows),
        out_of_sample_metrics=from_json_value(row.out_of_sample_metrics),
        recommendation=row.recommendation,
    )


def save_walk_forward(
    database: Database, result: Any, *, symbol: str, timeframe: str | None
) -> int:
    """Store a walk-forward result run on stored bars; return its id.

    Args:
        database: The migrated database.
        result: The :class:`~marketbot.optimize.walk_forward.WalkForwardResult`.
        symbol: The series it ran on.
        timeframe: The bars' timeframe; None infers it from the out-of-sample curve.
    """
    import pandas as pd

    from marketbot.core.timeframes import infer_bar_seconds, seconds_to_timeframe

    if timeframe is None:
        times = pd.DatetimeIndex(result.equity.index).as_unit("ns").asi8
        timeframe = seconds_to_timeframe(infer_bar_seconds(times))
    record = record_from_walk_forward(result, symbol=symbol, timeframe=timeframe)
    return WalkForwardRunRepository(database).save(record)
