"""The bot page's data: ``bot_status`` plus limits in use, commands, events and the log tail.

Everything comes from the database, the state file and the log: the dashboard never calls a
bot object (commands are rows the bot acknowledges).
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from marketbot.bot.status import bot_status
from marketbot.config import Settings, load_risk_config
from marketbot.core.errors import ConfigError
from marketbot.store.database import Database
from marketbot.store.web_queries import recent_commands, recent_risk_events, recent_verifications

LOG_TAIL_LINES = 60


def _usage(used: float | None, limit: float) -> dict[str, Any]:
    share = None if used is None or limit <= 0 else 100.0 * used / limit
    return {"used": used, "limit": limit, "pct": share}


def limit_usage(status: dict[str, Any], settings: Settings) -> list[dict[str, Any]]:
    """Each hard limit and how much of it the bot uses now (percent of the limit)."""
    try:
        limits = load_risk_config(settings).limits
    except ConfigError as exc:
        return [{"name": "risk limits", "error": str(exc)}]
    positions = status["open_positions"]
    exposure = sum(abs(p["size"] * p["entry_price"]) for p in positions)
    daily_loss = None if status["daily_pnl"] is None else max(0.0, -float(status["daily_pnl"]))
    peak, equity = status["peak_equity"], status["equity"]
    drawdown = None
    if peak and equity is not None and float(peak) > 0:
        drawdown = max(0.0, 100.0 * (float(peak) - float(equity)) / float(peak))
    return [
        {"name": "total exposure (USD)", **_usage(exposure, limits.max_total_exposure_usd)},
        {"name": "open positions", **_usage(float(len(positions)), float(limits.max_positions))},
        {"name": "daily loss (USD)", **_usage(daily_loss, limits.max_daily_loss_usd)},
        {"name": "drawdown (%)", **_usage(drawdown, limits.max_drawdown_pct)},
    ]


def period_profit(status: dict[str, Any], now: datetime) -> dict[str, float]:
    """Closed-trade P&L of today and of the last 7 days (UTC)."""
    today = now.date()
    week_start = today - timedelta(days=6)
    by_day: dict[str, float] = status["pnl_by_day"]
    return {
        "daily": sum(v for k, v in by_day.items() if k == today.isoformat()),
        "weekly": sum(v for k, v in by_day.items() if k >= week_start.isoformat()),
    }


def log_tail(data_dir: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last lines of ``logs/bot.log`` (empty when the bot never logged)."""
    path = data_dir / "logs" / "bot.log"
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return [line.rstrip("\n") for line in deque(handle, maxlen=lines)]
    except OSError:
        return []


def breaker_reason(breaker: dict[str, Any]) -> str | None:
    """Why the breaker blocks entries: the trip and its reason, or the operator's override."""
    override = breaker.get("override")
    if isinstance(override, dict) and override.get("mode"):
        return f"{override['mode']} by {override.get('who')}: {override.get('why')}"
    if breaker.get("trip"):
        reason = breaker.get("trip_reason") or ""
        return f"{breaker['trip']} since {breaker.get('tripped_at')}" + (
            f": {reason}" if reason else ""
        )
    return None


def bot_page_data(database: Database, settings: Settings) -> dict[str, Any]:
    """Everything the bot page shows, JSON-ready."""
    status = bot_status(database, settings.data_dir)
    breaker = status["circuit_breaker"] or {}
    return {
        **status,
        "breaker_reason": breaker_reason(breaker),
        "profit": period_profit(status, datetime.now(UTC)),
        "limits": limit_usage(status, settings),
        "commands": recent_commands(database),
        "risk_events": recent_risk_events(database),
        "verifications": recent_verifications(database),
        "log_tail": log_tail(settings.data_dir),
    }


def equity_points(status: dict[str, Any]) -> dict[str, Any]:
    """The bot's equity after each closed trade, from the latest equity back (for a chart)."""
    trades = sorted(status["trades"], key=lambda t: t["exit_time"])
    equity = status["equity"]
    if equity is None or not trades:
        return {"time": [], "equity": []}
    start = float(equity) - sum(float(t["pnl"]) for t in trades)
    times: list[int] = []
    values: list[float] = []
    running = start
    for trade in trades:
        running += float(trade["pnl"])
        moment = int(datetime.fromisoformat(trade["exit_time"].replace("Z", "+00:00")).timestamp())
        if times and moment <= times[-1]:
            values[-1] = running
            continue
        times.append(moment)
        values.append(running)
    return {"time": times, "equity": values}
