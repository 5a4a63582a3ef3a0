"""The risk enforcer: every new entry passes here; a refusal is a result with a reason.

``RiskEnforcer().check_trade_allowed(trade_size, current_exposure, daily_pnl, num_positions)``
is the seed's API. The limit checks are the compiled ``check_entry_nb`` that the backtest
kernel also calls, so a backtest and the live bot refuse the same trades. The wrapper fails
closed: any exception, missing value, NaN or negative amount is a denial saying why.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from marketbot.core.clock import Clock, SystemClock, as_utc, last_reset_at_or_before
from marketbot.core.risk_limits import RiskLimits
from marketbot.risk.circuit_breaker import BreakerState, CircuitBreaker, RiskEvent, TripKind
from marketbot.risk.limits_nb import (
    DENIAL_NAMES,
    DENIED_DAILY_LOSS,
    DENIED_DRAWDOWN,
    DENIED_EXPOSURE,
    DENIED_HALTED,
    DENIED_POSITION_SIZE,
    DENIED_POSITIONS,
    ENTRY_ALLOWED,
    check_entry_nb,
    close_breaches_nb,
    drawdown_pct_nb,
)


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """The answer to "may this entry go ahead?"; unpacks as ``allowed, reason`` (the seed's).

    Attributes:
        allowed: True when every limit holds.
        reason: Empty when allowed; else the limit, the value and the bound.
        limit: The limit's name (``position size``, ``daily loss``...) or ``allowed``.
    """

    allowed: bool
    reason: str
    limit: str = "allowed"

    def __iter__(self) -> Iterator[bool | str]:
        return iter((self.allowed, self.reason))

    def __bool__(self) -> bool:
        return self.allowed


class RiskEnforcer:
    """Hard limits and the circuit breaker for one account (or one strategy's budget).

    Args:
        limits: The limits (default: the seed's live defaults).
        clock: Source of "now" for daily resets and event times.
        breaker_state: Saved circuit-breaker state to resume from.
        peak_equity: Saved equity high-water mark to resume from.
    """

    def __init__(
        self,
        limits: RiskLimits | None = None,
        *,
        clock: Clock | None = None,
        breaker_state: BreakerState | None = None,
        peak_equity: float | None = None,
    ) -> None:
        self.limits = limits or RiskLimits()
        self.clock = clock or SystemClock()
        self.breaker = CircuitBreaker(self.limits.daily_reset_hour_utc, breaker_state)
        self.peak_equity = math.nan if peak_equity is None else float(peak_equity)

    def check_trade_allowed(
        self,
        trade_size: float,
        current_exposure: float,
        daily_pnl: float,
        num_positions: int,
        *,
        equity: float | None = None,
        now: datetime | None = None,
    ) -> RiskDecision:
        """Decide whether a new entry of notional ``trade_size`` (USD) may be placed.

        Args:
            trade_size: Notional of the proposed entry.
            current_exposure: Sum of open positions' notional.
            daily_pnl: Profit or loss since the last daily reset (negative is a loss).
            num_positions: Open positions now.
            equity: Account equity now; updates the high-water mark for the drawdown limit
                (omitted: the drawdown is judged on equity given earlier, if any).
            now: Decision time (default: the clock's).

        Returns:
            A RiskDecision; a breach of the daily loss or drawdown limit also trips the
            circuit breaker, which then refuses every entry until it is reset.
        """
        try:
            return self._check(trade_size, current_exposure, daily_pnl, num_positions, equity, now)
        except Exception as exc:  # fail closed: a broken check must never let a trade through
            return RiskDecision(False, f"risk check failed, trade refused: {exc}", "error")

    def check_exit_allowed(self) -> RiskDecision:
        """Exits are always allowed, whatever the limits and the breaker say."""
        return RiskDecision(True, "")

    def update_account(
        self, equity: float, daily_pnl: float = 0.0, now: datetime | None = None
    ) -> RiskDecision:
        """Mark the account (each bar close): raise the high-water mark, trip on a breach.

        The backtest kernel does the same at every close, so a loss limit trips the breaker
        when it is breached, not only when the next entry is proposed.

        Returns:
            Allowed when no loss limit is breached; else the breach (and the breaker trips).
            Invalid numbers change nothing and are reported as a refusal.
        """
        if not (math.isfinite(equity) and math.isfinite(daily_pnl)):
            return RiskDecision(
                False,
                f"account update ignored: equity {equity!r}, "
                f"daily P&L {daily_pnl!r} must be numbers",
                "invalid input",
            )
        moment = as_utc(now) if now is not None else self.clock.now()
        self.peak_equity = equity if math.isnan(self.peak_equity) else max(self.peak_equity, equity)
        limits = self.limits
        values: dict[str, float | int] = {"daily_pnl": daily_pnl}
        breaches: list[RiskDecision] = []
        # The kernels' own check, with nothing tripped yet: the breaker ignores repeats.
        # Both are checked: a drawdown trip outlives the daily reset that clears a daily one.
        daily, drawdown = close_breaches_nb(
            equity,
            self.peak_equity,
            daily_pnl,
            False,
            False,
            limits.max_daily_loss_usd,
            limits.max_drawdown_pct,
        )
        if drawdown:
            reason = self._reason(DENIED_DRAWDOWN, values, equity)
            self.breaker.trip(TripKind.DRAWDOWN, reason, moment)
            breaches.append(RiskDecision(False, reason, "drawdown"))
        if daily:
            reason = self._reason(DENIED_DAILY_LOSS, values, equity)
            self.breaker.trip(TripKind.DAILY_LOSS, reason, moment)
            breaches.append(RiskDecision(False, reason, "daily loss"))
        return breaches[0] if breaches else RiskDecision(True, "")

    def record_equity(self, equity: float, now: datetime | None = None) -> RiskDecision:
        """Raise the high-water mark and trip the breaker if the drawdown limit is breached."""
        return self.update_account(equity, 0.0, now)

    def drain_events(self) -> list[RiskEvent]:
        """Trips, resets and overrides since the last call, for the bot to log and notify."""
        return self.breaker.drain_events()

    def daily_reset_boundary(self, now: datetime | None = None) -> datetime:
        """Start of the current risk day (the last reset at or before ``now``)."""
        moment = as_utc(now) if now is not None else self.clock.now()
        return last_reset_at_or_before(moment, self.limits.daily_reset_hour_utc)

    def _check(
        self,
        trade_size: float,
        current_exposure: float,
        daily_pnl: float,
        num_positions: int,
        equity: float | None,
        now: datetime | None,
    ) -> RiskDecision:
        moment = as_utc(now) if now is not None else self.clock.now()
        values = {
            "trade_size": trade_size,
            "current_exposure": current_exposure,
            "daily_pnl": daily_pnl,
            "num_positions": num_positions,
        }
        for name, value in values.items():
            if value is None or isinstance(value, bool) or not math.isfinite(float(value)):
                return RiskDecision(False, f"{name} is missing or not a number: {value!r}", name)
        for name in ("trade_size", "current_exposure", "num_positions"):
            if float(values[name]) < 0:
                return RiskDecision(False, f"{name} is negative: {values[name]!r}", name)
        if equity is not None:
            if not math.isfinite(equity):
                return RiskDecision(False, f"equity is not a number: {equity!r}", "equity")
            self.peak_equity = (
                equity if math.isnan(self.peak_equity) else max(self.peak_equity, equity)
            )
        limits = self.limits
        code = check_entry_nb(
            float(trade_size),
            float(current_exposure),
            float(daily_pnl),
            int(num_positions),
            math.nan if equity is None else float(equity),
            self.peak_equity,
            self.breaker.blocks_entries(moment),
            limits.max_position_size_usd,
            limits.max_daily_loss_usd,
            limits.max_total_exposure_usd,
            limits.max_drawdown_pct,
            float(limits.max_positions),
        )
        if code == ENTRY_ALLOWED:
            return RiskDecision(True, "")
        reason = self._reason(code, values, equity)
        if code == DENIED_DAILY_LOSS:
            self.breaker.trip(TripKind.DAILY_LOSS, reason, moment)
        elif code == DENIED_DRAWDOWN:
            self.breaker.trip(TripKind.DRAWDOWN, reason, moment)
        return RiskDecision(False, reason, DENIAL_NAMES[code])

    def _reason(self, code: int, values: dict[str, float | int], equity: float | None) -> str:
        limits = self.limits
        if code == DENIED_HALTED:
            state = self.breaker.state
            why = state.trip_reason or "manual halt"
            return f"circuit breaker open ({state.trip or 'halt'}): {why}"
        if code == DENIED_DAILY_LOSS:
            return (
                f"daily loss: P&L {values['daily_pnl']:,.2f} USD reaches the limit "
                f"-{limits.max_daily_loss_usd:,.2f} USD"
            )
        if code == DENIED_DRAWDOWN:
            drawdown = drawdown_pct_nb(float(equity or 0.0), self.peak_equity)
            return (
                f"drawdown: {drawdown:.2f} % below the high-water mark "
                f"{self.peak_equity:,.2f} reaches the limit {limits.max_drawdown_pct:g} %"
            )
        if code == DENIED_POSITIONS:
            return (
                f"positions: {values['num_positions']} open reaches the limit "
                f"{limits.max_positions}"
            )
        if code == DENIED_POSITION_SIZE:
            return (
                f"position size: {values['trade_size']:,.2f} USD exceeds the limit "
                f"{limits.max_position_size_usd:,.2f} USD"
            )
        if code == DENIED_EXPOSURE:
            total = float(values["current_exposure"]) + float(values["trade_size"])
            return (
                f"exposure: {total:,.2f} USD with this trade exceeds the limit "
                f"{limits.max_total_exposure_usd:,.2f} USD"
            )
        return f"refused ({DENIAL_NAMES[code]})"
