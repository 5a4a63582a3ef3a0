"""``marketbot status``: the current bot run as the database and the state file tell it.

Nothing here talks to an exchange or the bot: the database is the truth (the run, its
progress, orders, trades, commands) and the state file adds the positions and the heartbeat.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from marketbot.bot.lock import BotLock, BotLockedError
from marketbot.bot.state import StateError, load_state
from marketbot.store.bot import BotCommandRepository, BotRecordRepository, BotRunRepository
from marketbot.store.database import Database
from marketbot.store.models import BotOrder


def bot_status(database: Database, data_dir: Path) -> dict[str, Any]:
    """The status of the current bot run (every key present; empty values when none)."""
    state_dir = data_dir / "state"
    running, pid = _running(state_dir)
    runs = BotRunRepository(database)
    current = runs.current_runs()
    run = current[0] if current else None
    progress = (run.progress or {}) if run is not None else {}
    risk = progress.get("risk") or {}
    trades = [] if run is None else BotRecordRepository(database).trades(run.id)
    try:
        state = load_state(state_dir)
    except StateError:
        state = None
    heartbeat = progress.get("heartbeat")
    now = datetime.now(UTC)
    breaker = risk.get("breaker") or {}
    return {
        "running": running,
        "pid": pid,
        "run_id": None if run is None else run.id,
        "strategy": None if run is None else run.strategy,
        "symbol": None if run is None else run.symbol,
        "timeframe": None if run is None else run.timeframe,
        "heartbeat_age_seconds": None
        if heartbeat is None
        else (now - datetime.fromisoformat(heartbeat)).total_seconds(),
        "last_bar_time": None
        if run is None or run.last_bar_time is None
        else run.last_bar_time.isoformat(),
        "cash": progress.get("cash"),
        "equity": risk.get("last_equity"),
        "daily_pnl": None
        if not risk
        else float(risk["last_equity"]) - float(risk["day_start_equity"]),
        "peak_equity": risk.get("peak_equity"),
        "pnl_by_strategy": _pnl_by(trades, lambda t: t.strategy),
        "pnl_by_day": _pnl_by(trades, lambda t: t.exit_time.date().isoformat()),
        "circuit_breaker_active": bool(breaker.get("trip")) or _halted(breaker),
        "circuit_breaker": breaker,
        "open_positions": []
        if state is None
        else [
            {
                "position_id": p.position_id,
                "strategy": p.strategy,
                "symbol": p.symbol,
                "side": p.direction,
                "size": p.size,
                "entry_time": p.entry_time.isoformat(),
                "entry_price": p.entry_price,
                "client_order_id": p.entry_client_order_id,
            }
            for p in state.open_positions
        ],
        "trades": [_trade_json(t) for t in trades],
        "orders": [] if run is None else _orders(database, run.id),
        "pending_commands": [
            {
                "id": c.id,
                "kind": c.kind,
                "args": c.args,
                "by": c.by,
                "reason": c.reason,
                "created_at": c.created_at.isoformat(),
            }
            for c in BotCommandRepository(database).pending()
        ],
        "entry_denials": progress.get("denials", {}),
        # Several strategies (bot/multi_runner.py): each sleeve's weight of the equity.
        "allocations": (progress.get("capital") or {}).get("weights", {}),
    }


def status_lines(payload: dict[str, Any]) -> list[str]:
    """The status for people, a few lines."""
    if payload["run_id"] is None:
        return ["no bot run yet: start one with `marketbot run`"]
    state = "running" if payload["running"] else "not running"
    lines = [
        f"run {payload['run_id']}: {payload['strategy']} on {payload['symbol']} "
        f"({payload['timeframe']}), {state}; last bar {payload['last_bar_time']}",
        f"equity {_money(payload['equity'])}, daily P&L {_money(payload['daily_pnl'])}, "
        f"peak {_money(payload['peak_equity'])}",
        f"circuit breaker: {'ACTIVE' if payload['circuit_breaker_active'] else 'clear'}",
        f"{len(payload['open_positions'])} open position(s), {len(payload['trades'])} trades, "
        f"{len(payload['pending_commands'])} pending command(s)",
    ]
    for position in payload["open_positions"]:
        lines.append(
            f"  {position['side']} {position['size']:.8g} {position['symbol']} from "
            f"{position['entry_time']} at {position['entry_price']:,.2f}"
        )
    if payload.get("allocations"):
        shares = ", ".join(f"{k} {100.0 * w:.1f} %" for k, w in payload["allocations"].items())
        lines.append(f"allocations: {shares}")
    return lines


def _running(state_dir: Path) -> tuple[bool, int | None]:
    lock = BotLock.in_state_dir(state_dir)
    if not lock.path.exists():
        return False, None
    try:
        lock.acquire()
    except BotLockedError as exc:
        return True, exc.pid
    lock.release()
    return False, None


def _halted(breaker: dict[str, Any]) -> bool:
    override = breaker.get("override")
    return isinstance(override, dict) and override.get("mode") == "halt"


def _pnl_by(trades: list[Any], key: Any) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for trade in trades:
        totals[str(key(trade))] += float(trade.pnl)
    return dict(totals)


def _trade_json(trade: Any) -> dict[str, Any]:
    return {
        "symbol": trade.symbol,
        "strategy": trade.strategy,
        "entry_time": _iso(trade.entry_time),
        "exit_time": _iso(trade.exit_time),
        "entry_price": trade.entry_price,
        "exit_price": trade.exit_price,
        "size": trade.size,
        "pnl": trade.pnl,
        "pnl_pct": trade.pnl_pct,
        "exit_reason": trade.exit_reason,
        "direction": trade.direction,
        "fees": trade.fees,
        "tag": trade.entry_tag,
        "entry_tag": trade.entry_tag,
    }


def _orders(database: Database, bot_run_id: int) -> list[dict[str, Any]]:
    import sqlalchemy as sa

    with database.session() as session:
        rows = session.scalars(
            sa.select(BotOrder).where(BotOrder.bot_run_id == bot_run_id).order_by(BotOrder.id)
        ).all()
        return [
            {
                "client_order_id": row.client_order_id, "intent": row.intent, "side": row.side,
                "type": row.type, "amount": row.amount, "cost": row.cost,
                "status": row.status, "filled": row.filled, "average_price": row.average_price,
                "bar_time": None if row.bar_time is None else _iso(row.bar_time),
            }
            for row in rows
        ]  # fmt: skip


def _iso(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    if utc.microsecond:  # a binary market's snapshot times carry milliseconds
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def _money(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:,.2f}"
