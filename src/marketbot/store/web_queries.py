"""Counts and small lookups the dashboard's paged lists need (read-only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from marketbot.store.database import Database
from marketbot.store.models import (
    BacktestRun,
    BotCommand,
    BotRiskEvent,
    BotTrade,
    BotVerification,
    OptimizationRun,
)


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


def recent_commands(database: Database, limit: int = 20) -> list[dict[str, Any]]:
    """The newest operator commands, whatever their status."""
    with database.session() as session:
        rows = session.scalars(sa.select(BotCommand).order_by(BotCommand.id.desc()).limit(limit))
        return [
            {
                "id": row.id, "kind": row.kind, "args": row.args, "by": row.by,
                "reason": row.reason, "created_at": _iso(row.created_at), "status": row.status,
                "acknowledged_at": _iso(row.acknowledged_at), "result": row.result,
            }
            for row in rows
        ]  # fmt: skip


def recent_risk_events(database: Database, limit: int = 20) -> list[dict[str, Any]]:
    """The newest risk events: breaker trips and resets, overrides, denials."""
    with database.session() as session:
        rows = session.scalars(
            sa.select(BotRiskEvent)
            .order_by(BotRiskEvent.at.desc(), BotRiskEvent.id.desc())
            .limit(limit)
        )
        return [
            {"id": row.id, "kind": row.kind, "at": _iso(row.at), "who": row.who, "why": row.why,
             "message": row.message}
            for row in rows
        ]  # fmt: skip


def recent_verifications(database: Database, limit: int = 20) -> list[dict[str, Any]]:
    """The trade verifier's newest verdicts."""
    with database.session() as session:
        rows = session.scalars(
            sa.select(BotVerification).order_by(BotVerification.id.desc()).limit(limit)
        )
        return [
            {"id": row.id, "client_order_id": row.client_order_id, "status": row.status,
             "slippage": row.slippage, "at": _iso(row.at)}
            for row in rows
        ]  # fmt: skip


def bot_trade(database: Database, trade_id: int) -> dict[str, Any] | None:
    """One closed bot trade, for a journal entry's link; None when there is none."""
    with database.session() as session:
        row = session.get(BotTrade, trade_id)
        if row is None:
            return None
        return {
            "id": row.id, "strategy": row.strategy, "symbol": row.symbol,
            "direction": row.direction, "size": row.size, "entry_time": _iso(row.entry_time),
            "entry_price": row.entry_price, "exit_time": _iso(row.exit_time),
            "exit_price": row.exit_price, "pnl": row.pnl, "pnl_pct": row.pnl_pct,
            "exit_reason": row.exit_reason, "entry_tag": row.entry_tag,
        }  # fmt: skip


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def optimization_head(database: Database, run_id: int) -> dict[str, Any] | None:
    """A saved optimisation's columns and its JSON summary (not its results); None if absent."""
    from marketbot.store._codec import from_json_value

    with database.session() as session:
        row = session.get(OptimizationRun, run_id)
        if row is None:
            return None
        return {
            "id": row.id, "created_at": _iso(row.created_at), "strategy": row.strategy,
            "symbol": row.symbol, "method": row.method, "metric": row.metric,
            "best_params": from_json_value(row.best_params), "best_metric": row.best_metric,
            "combinations": row.combinations, "summary": from_json_value(row.summary),
        }  # fmt: skip
