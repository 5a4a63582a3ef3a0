"""Tables of stored research runs: backtests, optimisations and walk-forward validations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from marketbot.store.models_base import Base, UTCDateTime, utc_now


class BacktestRun(Base):
    """One finished backtest, kept so that past runs can be listed and compared.

    ``params``, ``settings`` and ``metrics`` are JSON (non-finite floats as the strings
    ``"inf"``, ``"-inf"``, ``"nan"``); ``equity_curve`` and ``trades`` are compressed blobs
    that only :meth:`BacktestRunRepository.get` decodes, so listing runs stays cheap.
    """

    __tablename__ = "backtest_runs"
    __table_args__ = (
        sa.Index("ix_backtest_runs_strategy_created_at", "strategy", "created_at"),
        sa.Index("ix_backtest_runs_symbol_created_at", "symbol", "created_at"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    strategy: Mapped[str] = mapped_column(sa.String(100))
    symbol: Mapped[str] = mapped_column(sa.String(100))
    timeframe: Mapped[str] = mapped_column(sa.String(16))
    source: Mapped[str] = mapped_column(sa.String(64))
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    settings: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    recommendation: Mapped[str] = mapped_column(sa.String(16))
    trade_count: Mapped[int] = mapped_column(sa.Integer)
    equity_curve: Mapped[bytes] = mapped_column(sa.LargeBinary)
    trades: Mapped[bytes] = mapped_column(sa.LargeBinary)
    # A run on a CSV file (``backtest --data``): its file name and the sha256 of its content,
    # so that runs can be told apart by the bars they traded on; null for stored bars.
    data_file: Mapped[str | None] = mapped_column(sa.String(255))
    data_sha256: Mapped[str | None] = mapped_column(sa.String(64))


class OptimizationRun(Base):
    """One finished optimisation: what was searched, the winner, and every combination.

    ``summary`` is the optimiser's JSON summary (best parameters, metric, diagnostics);
    ``results`` is the full table as a compressed JSON blob, decoded only when one run is
    read, so listing runs stays cheap.
    """

    __tablename__ = "optimization_runs"
    __table_args__ = (
        sa.Index("ix_optimization_runs_strategy_created_at", "strategy", "created_at"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    strategy: Mapped[str] = mapped_column(sa.String(100))
    symbol: Mapped[str] = mapped_column(sa.String(100))
    method: Mapped[str] = mapped_column(sa.String(16))
    metric: Mapped[str] = mapped_column(sa.String(64))
    best_params: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    best_metric: Mapped[float | None] = mapped_column(sa.Double)
    combinations: Mapped[int] = mapped_column(sa.Integer)
    summary: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    results: Mapped[bytes] = mapped_column(sa.LargeBinary)


# --- Live trading: walk-forward verdicts for the live gates (issue 14; migration 0008) ---


class WalkForwardRun(Base):
    """One stored walk-forward validation: its out-of-sample verdict, for the live gates.

    ``params`` are the last window's (what would be traded next); ``out_of_sample_metrics``
    and ``recommendation`` come from the stitched out-of-sample run; ``summary`` is the
    result's JSON (windows, settings) without the equity curve.
    """

    __tablename__ = "walk_forward_runs"
    __table_args__ = (
        sa.Index("ix_walk_forward_runs_strategy_created_at", "strategy", "created_at"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    strategy: Mapped[str] = mapped_column(sa.String(100))
    symbol: Mapped[str] = mapped_column(sa.String(100))
    timeframe: Mapped[str] = mapped_column(sa.String(16))
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    metric: Mapped[str] = mapped_column(sa.String(64))
    windows: Mapped[int] = mapped_column(sa.Integer)
    out_of_sample_metrics: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    recommendation: Mapped[str] = mapped_column(sa.String(16))
    summary: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
