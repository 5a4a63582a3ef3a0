"""Each sleeve's share of the account: equal at the start, then the Rebalancer's on schedule.

A sleeve's capital at a close is its target weight times the account's equity, less what the
sleeve holds; an entry is cut to it (or skipped when nothing is left). On the run's
``rebalance`` schedule (``daily``, ``weekly``, ``monthly``; judged by the injected clock,
bar time in a replay) the weights are recomputed by :class:`~marketbot.risk.rebalancer.
Rebalancer` from each sleeve's closed trades, within its bounds (5 % to 40 % a sleeve by
default: with two sleeves both sit at 40 %, 20 % of the account stays in cash). A rebalance
never sells: it only changes the caps of later entries. It is recorded as a ``rebalance``
risk event with the weights.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from marketbot.risk.circuit_breaker import RiskEvent
from marketbot.risk.rebalancer import (
    Rebalancer,
    RebalancerConfig,
    RebalanceSchedule,
    StrategyStats,
)
from marketbot.store.bot import TradeRecord


def sleeve_stats(key: str, trades: Sequence[TradeRecord]) -> StrategyStats:
    """What the rebalancer scores a sleeve by, from its closed trades.

    Sharpe is the mean over the sample standard deviation of the trades' returns (``pnl_pct``),
    0 with fewer than two trades or no spread (no evidence either way); the win rate is in
    percent, 0 without trades (as ``compute_metrics`` counts it); the P&L is the trades' total
    in the quote currency. A sleeve that has traded nothing yet scores as neutral, so a
    losing sleeve ranks below it and a winning one above.
    """
    returns = [trade.pnl_pct for trade in trades]
    sharpe = 0.0
    if len(returns) >= 2:
        spread = statistics.stdev(returns)
        if spread > 0.0:
            sharpe = statistics.fmean(returns) / spread
    wins = sum(1 for trade in trades if trade.pnl > 0.0)
    win_rate = 100.0 * wins / len(trades) if trades else 0.0
    return StrategyStats(
        name=key,
        sharpe=sharpe,
        win_rate_pct=win_rate,
        total_pnl_usd=math.fsum(trade.pnl for trade in trades),
        num_trades=len(trades),
    )


class SleeveCapital:
    """The sleeves' target weights and when they were last recomputed.

    Args:
        keys: The sleeves' keys, in file order.
        schedule: The run's ``rebalance`` (None: the equal weights stay).
        started: When the run started; the first rebalance is due at the next period.
    """

    def __init__(
        self, keys: Sequence[str], schedule: RebalanceSchedule | None, started: datetime
    ) -> None:
        self.keys = tuple(keys)
        self.schedule = schedule
        self.rebalancer = Rebalancer(RebalancerConfig(schedule=schedule or "weekly"))
        self.weights = {key: 1.0 / len(self.keys) for key in self.keys}
        self.last_rebalance = started

    def capital(self, key: str, equity: float, held_value: float) -> float:
        """What the sleeve may still spend: its weight of ``equity``, less what it holds."""
        return max(self.weights[key] * equity - held_value, 0.0)

    def due(self, now: datetime) -> bool:
        """Whether the schedule has a rebalance due at ``now`` (never without a schedule)."""
        return self.schedule is not None and self.rebalancer.is_due(self.last_rebalance, now)

    def rebalance(
        self, now: datetime, trades: Sequence[TradeRecord], equity: float
    ) -> RiskEvent | None:
        """New weights from each sleeve's closed trades, when the schedule has one due at now.

        ``trades`` are the run's; a sleeve's are those of its strategy and symbol. Returns
        the ``rebalance`` event to record (None when nothing is due).
        """
        if not self.due(now):
            return None
        stats = [
            sleeve_stats(key, [t for t in trades if f"{t.strategy}@{t.symbol}" == key])
            for key in self.keys
        ]
        current = {key: 100.0 * weight for key, weight in self.weights.items()}
        plan = self.rebalancer.plan(stats, current, portfolio_value_usd=max(equity, 1e-9))
        previous = dict(self.weights)
        targets = plan.target_pct()
        self.weights = {key: targets.get(key, 0.0) / 100.0 for key in self.keys}
        self.last_rebalance = now
        shares = ", ".join(f"{key} {100.0 * w:.1f} %" for key, w in self.weights.items())
        return RiskEvent(
            "rebalance", now, f"capital rebalanced ({self.schedule}): {shares}",
            details={
                "weights": dict(self.weights), "previous": previous, "equity": equity,
                "reasons": {change.strategy: change.reason for change in plan.changes},
                "notes": list(plan.notes),
            },
        )  # fmt: skip

    def snapshot(self) -> dict[str, Any]:
        """The weights and the last rebalance, JSON-ready (stored with the run's progress)."""
        return {"weights": dict(self.weights), "last_rebalance": self.last_rebalance.isoformat()}

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Resume from :meth:`snapshot`."""
        weights = snapshot.get("weights") or {}
        self.weights = {key: float(weights.get(key, 0.0)) for key in self.keys}
        self.last_rebalance = datetime.fromisoformat(str(snapshot["last_rebalance"]))
