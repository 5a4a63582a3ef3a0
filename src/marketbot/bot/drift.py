"""``marketbot drift``: the current bot run's trades against a backtest of the same bars.

The run stores the configuration it started with (strategy, parameters, symbol, timeframe,
source, costs, exits, limits, START); the backtest replays exactly that over the stored bars
from START to the last bar the run acted on, long only as the bot trades. Trades are paired
by entry time; each pair shows both sides and their differences (exit time, prices, size,
P&L). The run's open position stands beside the backtest's ``end_of_data`` trade. On paper
the two agree (tests/integration/test_bot_parity.py); live, the differences are the fills'
slippage, fees and timing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from marketbot.backtest.config import BacktestConfig, ExitRules
from marketbot.backtest.engine import BacktestingEngine
from marketbot.core.errors import ConfigError
from marketbot.core.risk_limits import RiskLimits
from marketbot.store.bot import BotRecordRepository, BotRunInfo, BotRunRepository, TradeRecord
from marketbot.store.database import Database
from marketbot.strategies.loader import load_strategy

_COMPARED = ("entry_price", "exit_price", "size", "pnl", "fees")


@dataclass(frozen=True)
class DriftReport:
    """The run, the period compared, and the trades side by side."""

    run: BotRunInfo
    start: datetime
    end: datetime
    pairs: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (times as ``YYYY-MM-DDTHH:MM:SSZ``)."""
        matched = [p for p in self.pairs if p["bot"] and p["backtest"]]
        # Closed trades only: the open position's P&L is not realised on either side.
        pnl_bot = sum(p["bot"]["pnl"] for p in self.pairs if p["bot"] and p["bot"]["exit_time"])
        pnl_test = sum(
            p["backtest"]["pnl"]
            for p in self.pairs
            if p["backtest"] and p["backtest"]["exit_reason"] != "end_of_data"
        )
        return {
            "run": {
                "id": self.run.id, "strategy": self.run.strategy, "symbol": self.run.symbol,
                "timeframe": self.run.timeframe, "mode": self.run.mode, "params": self.run.params,
            },
            "start": _iso(self.start),
            "end": _iso(self.end),
            "summary": {
                "bot_trades": sum(1 for p in self.pairs if p["bot"]),
                "backtest_trades": sum(1 for p in self.pairs if p["backtest"]),
                "matched": len(matched),
                "same_exits": sum(1 for p in matched if p["differences"]["same_exit"]),
                "bot_pnl": pnl_bot,
                "backtest_pnl": pnl_test,
                "pnl_difference": pnl_bot - pnl_test,
            },
            "trades": self.pairs,
        }  # fmt: skip


def drift_report(database: Database) -> DriftReport:
    """Compare the newest current bot run with a backtest of its configuration.

    Raises:
        ConfigError: there is no current run, or it has not acted on a bar yet.
        DataError: its bars are no longer stored.
        StrategyError: its strategy cannot be loaded any more.
    """
    runs = BotRunRepository(database).current_runs()
    if not runs:
        raise ConfigError(
            "no bot run to compare: start one with `marketbot run`, then run `marketbot drift`"
        )
    run = runs[-1]
    if run.last_bar_time is None:
        raise ConfigError(f"bot run {run.id} has not acted on a bar yet: nothing to compare")
    if "," in run.strategy or "," in run.symbol:
        raise ConfigError(
            f"bot run {run.id} trades several strategies ({run.strategy} on {run.symbol}): "
            "drift compares a one-strategy run; backtest each sleeve with `marketbot backtest`"
        )
    if getattr(load_strategy(run.strategy), "instrument", "ohlcv") == "binary":
        raise ConfigError(
            f"bot run {run.id} trades binary markets ({run.strategy}): drift compares OHLCV "
            "runs; `marketbot backtest --strategy NAME --market SLUG` gives the backtest"
        )
    config = run.config
    result = BacktestingEngine(database).run_backtest(
        run.strategy, run.start, run.last_bar_time, symbol=run.symbol,
        params=run.params, timeframe=run.timeframe, source=run.source,
        config=backtest_config(config.get("config") or {}), save=False,
    )  # fmt: skip
    tested = result.to_dict()["trades"]
    bot = [_bot_trade(trade) for trade in BotRecordRepository(database).trades(run.id)]
    open_trade = (run.progress or {}).get("open_trade")
    if open_trade:
        bot.append(_open_position(open_trade))
    return DriftReport(run, run.start, run.last_bar_time, pair_trades(bot, tested))


def backtest_config(data: dict[str, Any]) -> BacktestConfig:
    """The run's stored ``BacktestConfig.to_dict()`` back as a config, long only as the bot."""
    values = dict(data)
    exits = ExitRules(**(values.pop("exits", None) or {}))
    risk = values.pop("risk", None)
    values["allow_short"] = False
    return BacktestConfig(
        **values, exits=exits, risk=None if risk is None else RiskLimits.model_validate(risk)
    )


def pair_trades(bot: list[dict[str, Any]], tested: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Trades paired by entry time, in time order, with their differences."""
    by_entry = {trade["entry_time"]: trade for trade in tested}
    times = sorted({t["entry_time"] for t in bot} | set(by_entry))
    mine = {trade["entry_time"]: trade for trade in bot}
    return [_pair(time, mine.get(time), by_entry.get(time)) for time in times]


def _pair(time: str, bot: dict[str, Any] | None, test: dict[str, Any] | None) -> dict[str, Any]:
    differences: dict[str, Any] = {}
    if bot is not None and test is not None:
        still_open = bot["exit_reason"] == "open" and test["exit_reason"] == "end_of_data"
        differences["same_exit"] = still_open or (
            bot["exit_time"] == test["exit_time"] and bot["exit_reason"] == test["exit_reason"]
        )
        differences["exit_seconds"] = _seconds_between(test["exit_time"], bot["exit_time"])
        for key in _COMPARED:
            mine, theirs = bot.get(key), test.get(key)
            if mine is None or theirs is None:
                differences[key] = None
                continue
            differences[key] = mine - theirs
            if key in ("entry_price", "exit_price", "size") and theirs:
                differences[f"{key}_pct"] = 100.0 * (mine - theirs) / abs(theirs)
    return {"entry_time": time, "bot": bot, "backtest": test, "differences": differences}


def _bot_trade(trade: TradeRecord) -> dict[str, Any]:
    return {
        "entry_time": _iso(trade.entry_time), "exit_time": _iso(trade.exit_time),
        "entry_price": trade.entry_price, "exit_price": trade.exit_price, "size": trade.size,
        "pnl": trade.pnl, "fees": trade.fees, "exit_reason": trade.exit_reason,
    }  # fmt: skip


def _open_position(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "entry_time": _iso(datetime.fromisoformat(str(data["entry_time"]))), "exit_time": None,
        "entry_price": float(data["entry_price"]), "exit_price": None,
        "size": float(data["size"]), "pnl": None, "fees": float(data.get("entry_fee", 0.0)),
        "exit_reason": "open",
    }  # fmt: skip


def _seconds_between(expected: str | None, got: str | None) -> float | None:
    if expected is None or got is None:
        return None
    return (_parse(got) - _parse(expected)).total_seconds()


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
