"""The bot's account risk: the live ``RiskEnforcer`` marked and asked as the kernel does.

The backtest kernel starts a new risk day at the first bar open at or after the daily reset
(the day's P&L then counts from the equity marked at the last close), marks the equity at
every close (tripping the breaker on a breach) and checks an entry at the open that fills it.
:class:`RiskBook` does the same with the live objects: the day's start from
``risk.limits_nb.next_daily_reset_ns_nb``, the marks through
``RiskEnforcer.update_account`` and the check through ``RiskEnforcer.check_trade_allowed`` at
the next bar's open time, both of which call the kernel's compiled rules. Times are bar open
times, as everywhere in marketbot. Manual commands (halt, resume, reset, override) act on the
enforcer's circuit breaker; a reset also re-bases the high-water mark at the current equity.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from marketbot.core.clock import Clock, epoch_ns
from marketbot.core.risk_limits import RiskLimits
from marketbot.core.timeframes import NANOSECONDS_PER_SECOND
from marketbot.risk.circuit_breaker import BreakerState, OverrideMode, RiskEvent, TripKind
from marketbot.risk.enforcer import RiskDecision, RiskEnforcer
from marketbot.risk.limits_nb import next_daily_reset_ns_nb

_SECONDS_PER_HOUR = 3600


class RiskBook:
    """The account's risk bookkeeping between bars.

    Args:
        limits: The run's limits; None means no limits (entries only stop for a manual halt).
        initial_cash: The account's starting equity.
        clock: The bot's clock (bar time in a replay).
    """

    def __init__(self, limits: RiskLimits | None, initial_cash: float, clock: Clock) -> None:
        self.limits_on = limits is not None
        # Without limits the enforcer still carries the manual halt and its events.
        self.enforcer = RiskEnforcer(limits, clock=clock)
        self.enforcer.peak_equity = float(initial_cash)
        self.last_equity = float(initial_cash)
        self.day_start_equity = float(initial_cash)
        self.next_reset_ns: int | None = None
        hour = 0 if limits is None else limits.daily_reset_hour_utc
        self._offset_ns = hour * _SECONDS_PER_HOUR * NANOSECONDS_PER_SECOND

    @property
    def peak_equity(self) -> float:
        """The equity high-water mark."""
        return float(self.enforcer.peak_equity)

    @property
    def daily_pnl(self) -> float:
        """Profit or loss since the start of the risk day, at the last mark."""
        return self.last_equity - self.day_start_equity

    def open_bar(self, time: datetime) -> None:
        """At a bar's open: a new risk day, when one starts, counts from the last mark."""
        time_ns = epoch_ns(time)
        if self.next_reset_ns is None:
            self.next_reset_ns = int(next_daily_reset_ns_nb(time_ns, self._offset_ns))
        elif time_ns >= self.next_reset_ns:
            self.day_start_equity = self.last_equity
            self.next_reset_ns = int(next_daily_reset_ns_nb(time_ns, self._offset_ns))

    def mark(self, equity: float, time: datetime) -> RiskDecision:
        """At a close: the new equity; a breach of a loss limit trips the breaker."""
        self.last_equity = float(equity)
        if not self.limits_on:
            self.enforcer.peak_equity = max(self.enforcer.peak_equity, self.last_equity)
            return RiskDecision(True, "")
        return self.enforcer.update_account(self.last_equity, self.daily_pnl, now=time)

    def entry_verdict(self, notional: float, next_open: datetime) -> RiskDecision:
        """May an entry of ``notional`` fill at the open of the bar at ``next_open``?"""
        if not self.limits_on:
            breaker = self.enforcer.breaker
            if breaker.blocks_entries(next_open):
                return RiskDecision(False, "entries halted by an operator", "halted")
            return RiskDecision(True, "")
        next_ns = epoch_ns(next_open)
        new_day = self.next_reset_ns is not None and next_ns >= self.next_reset_ns
        day_start = self.last_equity if new_day else self.day_start_equity
        return self.enforcer.check_trade_allowed(
            notional, 0.0, self.last_equity - day_start, 0, equity=self.last_equity,
            now=next_open,
        )  # fmt: skip

    def halted(self, now: datetime) -> bool:
        """Whether new entries are blocked at ``now`` (a trip or an operator's halt)."""
        return self.enforcer.breaker.blocks_entries(now)

    def reset(self, who: str, why: str, now: datetime) -> None:
        """Clear trips and overrides; the high-water mark starts again at the equity now."""
        self.enforcer.breaker.manual_reset(who, why, now)
        self.enforcer.peak_equity = self.last_equity

    def halt(self, who: str, why: str, now: datetime) -> None:
        """Block new entries until resumed."""
        self.enforcer.breaker.override(OverrideMode.HALT, who, why, now)

    def allow(self, who: str, why: str, now: datetime) -> None:
        """Allow entries despite a trip, until resumed."""
        self.enforcer.breaker.override(OverrideMode.ALLOW, who, why, now)

    def resume(self, who: str, why: str, now: datetime) -> None:
        """End an operator's halt or override."""
        self.enforcer.breaker.clear_override(who, why, now)

    def drain_events(self) -> list[RiskEvent]:
        """Trips, resets and overrides since the last call."""
        return self.enforcer.drain_events()

    def snapshot(self) -> dict[str, Any]:
        """Everything a restart needs, JSON-ready (stored with the run after each bar)."""
        return {
            "last_equity": self.last_equity,
            "day_start_equity": self.day_start_equity,
            "next_reset_ns": self.next_reset_ns,
            "peak_equity": self.peak_equity,
            "breaker": self.enforcer.breaker.state.to_dict(),
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Resume from :meth:`snapshot` (a trip survives a restart)."""
        self.last_equity = float(snapshot["last_equity"])
        self.day_start_equity = float(snapshot["day_start_equity"])
        reset = snapshot.get("next_reset_ns")
        self.next_reset_ns = None if reset is None else int(reset)
        peak = float(snapshot["peak_equity"])
        self.enforcer.peak_equity = peak if math.isfinite(peak) else self.last_equity
        self.enforcer.breaker.state = breaker_state_from_dict(snapshot.get("breaker") or {})


def breaker_state_from_dict(data: dict[str, Any]) -> BreakerState:
    """The inverse of ``BreakerState.to_dict``."""
    from marketbot.risk.circuit_breaker import Override

    trip = data.get("trip")
    tripped_at = data.get("tripped_at")
    override = data.get("override")
    return BreakerState(
        trip=None if trip is None else TripKind(trip),
        tripped_at=None if tripped_at is None else _parse_time(tripped_at),
        trip_reason=str(data.get("trip_reason") or ""),
        override=None
        if override is None
        else Override(
            OverrideMode(override["mode"]),
            str(override["who"]),
            str(override["why"]),
            _parse_time(override["at"]),
        ),
    )


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
