"""The circuit breaker: once a loss limit is breached, no new entry until it is reset.

A daily-loss trip clears by itself at the next daily reset; a drawdown trip (measured from
the equity high-water mark) holds until a manual reset, because a new day does not undo a
drawdown. A person can override it either way (allow trading despite a trip, or halt at
once); every override is recorded with who, when and why. The breaker is pure state plus
rules: it emits events and the bot persists and notifies.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from marketbot.core.clock import as_utc, last_reset_at_or_before


class TripKind(StrEnum):
    """Why the breaker is open."""

    DAILY_LOSS = "daily_loss"
    DRAWDOWN = "drawdown"


class OverrideMode(StrEnum):
    """A person's override of the breaker."""

    ALLOW = "allow"
    HALT = "halt"


@dataclass(frozen=True, slots=True)
class RiskEvent:
    """Something the bot must record and, when ``emergency``, notify at once.

    Attributes:
        kind: ``circuit_breaker_tripped``, ``circuit_breaker_reset`` or ``override``.
        at: When it happened (UTC).
        message: What happened, for people.
        emergency: True for trips: the notifier sends these first.
        details: Machine-readable facts (limit, value, bound, who, why).
    """

    kind: str
    at: datetime
    message: str
    emergency: bool = False
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Override:
    """A recorded manual override."""

    mode: OverrideMode
    who: str
    why: str
    at: datetime


@dataclass(frozen=True, slots=True)
class BreakerState:
    """Everything the breaker knows; handed in and out so the bot can persist it."""

    trip: TripKind | None = None
    tripped_at: datetime | None = None
    trip_reason: str = ""
    override: Override | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (times as ISO 8601)."""
        data = asdict(self)
        data["tripped_at"] = self.tripped_at.isoformat() if self.tripped_at else None
        if self.override is not None:
            data["override"]["at"] = self.override.at.isoformat()
        return data


class CircuitBreaker:
    """Blocks new entries after a breach until the daily reset or a manual reset.

    Args:
        reset_hour_utc: Hour of the daily reset that clears a daily-loss trip.
        state: State to resume from (as saved by the bot).
    """

    def __init__(self, reset_hour_utc: int = 0, state: BreakerState | None = None) -> None:
        self.reset_hour_utc = reset_hour_utc
        self.state = state or BreakerState()
        self._events: list[RiskEvent] = []

    def blocks_entries(self, now: datetime) -> bool:
        """Whether a new entry is refused at ``now`` (after applying the daily reset)."""
        self.apply_daily_reset(now)
        override = self.state.override
        if override is not None:
            return override.mode is OverrideMode.HALT
        return self.state.trip is not None

    def trip(self, kind: TripKind, reason: str, now: datetime) -> None:
        """Open the breaker (no-op when already open for the same kind) and emit an emergency."""
        now = as_utc(now)
        # A daily trip from an earlier risk day is over before this one is judged.
        self.apply_daily_reset(now)
        if self.state.trip is kind:
            return
        # A drawdown trip outranks a daily one: it must not clear at midnight.
        if self.state.trip is TripKind.DRAWDOWN and kind is TripKind.DAILY_LOSS:
            return
        self.state = replace(self.state, trip=kind, tripped_at=now, trip_reason=reason)
        self._events.append(
            RiskEvent(
                "circuit_breaker_tripped",
                now,
                f"circuit breaker tripped ({kind}): {reason}; new entries blocked",
                emergency=True,
                details={"trip": str(kind), "reason": reason},
            )
        )

    def apply_daily_reset(self, now: datetime) -> None:
        """Clear a daily-loss trip once a reset boundary has passed since it tripped."""
        state = self.state
        if state.trip is not TripKind.DAILY_LOSS or state.tripped_at is None:
            return
        if last_reset_at_or_before(now, self.reset_hour_utc) > state.tripped_at:
            self._clear(as_utc(now), "daily reset")

    def manual_reset(self, who: str, why: str, now: datetime) -> None:
        """Clear any trip and any override; recorded like an override."""
        now = as_utc(now)
        self._record_override(None, who, why, now)
        self._clear(now, f"manual reset by {who}: {why}")

    def override(self, mode: OverrideMode, who: str, why: str, now: datetime) -> None:
        """Allow trading despite a trip, or halt trading at once, until cleared."""
        now = as_utc(now)
        self._record_override(Override(mode, who, why, now), who, why, now)

    def clear_override(self, who: str, why: str, now: datetime) -> None:
        """End an override; the breaker's own state applies again."""
        self._record_override(None, who, why, as_utc(now))

    def drain_events(self) -> list[RiskEvent]:
        """The events since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    def _record_override(
        self, override: Override | None, who: str, why: str, now: datetime
    ) -> None:
        if not who.strip() or not why.strip():
            from marketbot.core.errors import ConfigError

            raise ConfigError("an override needs who and why (both non-empty)")
        self.state = replace(self.state, override=override)
        mode = "cleared" if override is None else str(override.mode)
        self._events.append(
            RiskEvent(
                "override",
                now,
                f"override {mode} by {who}: {why}",
                details={"mode": mode, "who": who, "why": why},
            )
        )

    def _clear(self, now: datetime, how: str) -> None:
        if self.state.trip is None:
            return
        previous = self.state.trip
        self.state = replace(self.state, trip=None, tripped_at=None, trip_reason="")
        self._events.append(
            RiskEvent(
                "circuit_breaker_reset",
                now,
                f"circuit breaker ({previous}) cleared: {how}",
                details={"trip": str(previous), "how": how},
            )
        )
