"""The risk enforcer: each limit, fail-closed inputs, and property tests over trade sequences."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketbot.core.clock import ManualClock
from marketbot.core.errors import ConfigError
from marketbot.core.risk_limits import RiskConfig, RiskLimits, risk_config_from_mapping
from marketbot.risk.circuit_breaker import OverrideMode, TripKind
from marketbot.risk.enforcer import RiskEnforcer

START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def enforcer(**limits: float) -> RiskEnforcer:
    return RiskEnforcer(RiskLimits(**limits), clock=ManualClock(START))  # type: ignore[arg-type]


def test_check_trade_allowed_when_seed_example_allows_and_unpacks() -> None:
    allowed, reason = RiskEnforcer(clock=ManualClock(START)).check_trade_allowed(
        trade_size=500, current_exposure=2000, daily_pnl=-200, num_positions=3
    )
    assert allowed is True and reason == ""


def test_risk_enforcer_when_constructed_bare_has_the_seed_defaults() -> None:
    limits = RiskEnforcer().limits
    assert (
        limits.max_position_size_usd,
        limits.max_daily_loss_usd,
        limits.max_total_exposure_usd,
        limits.max_drawdown_pct,
        limits.max_positions,
    ) == (1_000.0, 500.0, 5_000.0, 20.0, 10)


@pytest.mark.parametrize(
    ("args", "limit", "text"),
    [
        ((1_000.01, 0, 0, 0), "position size", "1,000.01 USD exceeds the limit 1,000.00 USD"),
        ((600, 4_500, 0, 0), "exposure", "5,100.00 USD with this trade exceeds"),
        ((100, 0, 0, 10), "positions", "10 open reaches the limit 10"),
        ((100, 0, -500, 0), "daily loss", "P&L -500.00 USD reaches the limit -500.00 USD"),
    ],
)
def test_check_trade_allowed_when_limit_broken_names_limit_value_and_bound(
    args: tuple[float, float, float, int], limit: str, text: str
) -> None:
    decision = enforcer().check_trade_allowed(*args)
    assert not decision.allowed
    assert decision.limit == limit
    assert text in decision.reason


def test_check_trade_allowed_when_exactly_at_size_and_exposure_bounds_allows() -> None:
    # 1,000 is the size limit and 4,000 + 1,000 = 5,000 the exposure limit: both inclusive.
    assert enforcer().check_trade_allowed(1_000, 4_000, -499.99, 9).allowed


def test_check_trade_allowed_when_drawdown_reaches_limit_trips_until_manual_reset() -> None:
    risk = enforcer()
    assert risk.record_equity(10_000).allowed
    # 8,000 is 20 % below the 10,000 high-water mark: the limit.
    decision = risk.check_trade_allowed(100, 0, 0, 0, equity=8_000)
    assert decision.limit == "drawdown" and "20.00 %" in decision.reason
    events = risk.drain_events()
    assert [e.kind for e in events] == ["circuit_breaker_tripped"] and events[0].emergency
    # A new day does not undo a drawdown; recovering equity does not either.
    later = START + timedelta(days=3)
    assert risk.check_trade_allowed(100, 0, 0, 0, equity=9_900, now=later).limit == (
        "circuit breaker"
    )
    risk.breaker.manual_reset("alice", "reviewed the losses", later)
    assert risk.check_trade_allowed(100, 0, 0, 0, equity=9_900, now=later).allowed


def test_check_trade_allowed_when_daily_loss_trips_clears_at_next_reset() -> None:
    risk = enforcer(daily_reset_hour_utc=6)
    assert risk.check_trade_allowed(100, 0, -600, 0).limit == "daily loss"
    # Later the same risk day (reset at 06:00 UTC): still blocked, whatever the P&L now.
    same_day = START.replace(hour=23)
    assert risk.check_trade_allowed(100, 0, 0, 0, now=same_day).limit == "circuit breaker"
    # Exits are never blocked.
    assert risk.check_exit_allowed().allowed
    next_day = START + timedelta(days=1, hours=-3)  # 06:00 the next day
    assert risk.check_trade_allowed(100, 0, 0, 0, now=next_day).allowed
    assert [e.kind for e in risk.drain_events()] == [
        "circuit_breaker_tripped",
        "circuit_breaker_reset",
    ]


def test_override_when_allow_lets_entries_through_and_halt_blocks_them() -> None:
    risk = enforcer()
    risk.check_trade_allowed(100, 0, -600, 0)
    risk.breaker.override(OverrideMode.ALLOW, "bob", "known data glitch", START)
    assert risk.check_trade_allowed(100, 0, 0, 0).allowed
    risk.breaker.override(OverrideMode.HALT, "bob", "exchange incident", START)
    assert risk.check_trade_allowed(100, 0, 0, 0).limit == "circuit breaker"
    overrides = [e for e in risk.drain_events() if e.kind == "override"]
    assert [(e.details["mode"], e.details["who"]) for e in overrides] == [
        ("allow", "bob"),
        ("halt", "bob"),
    ]


def test_override_when_who_or_why_missing_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="who and why"):
        enforcer().breaker.override(OverrideMode.ALLOW, "", "x", START)


@pytest.mark.parametrize(
    ("args", "text"),
    [
        ((math.nan, 0, 0, 0), "trade_size is missing or not a number"),
        ((100, math.inf, 0, 0), "current_exposure is missing or not a number"),
        ((100, 0, None, 0), "daily_pnl is missing or not a number"),
        ((-1, 0, 0, 0), "trade_size is negative"),
        ((100, -5, 0, 0), "current_exposure is negative"),
        ((100, 0, 0, -1), "num_positions is negative"),
        (("lots", 0, 0, 0), "risk check failed, trade refused"),
    ],
)
def test_check_trade_allowed_when_input_is_bad_fails_closed_with_reason(
    args: tuple[object, ...], text: str
) -> None:
    decision = enforcer().check_trade_allowed(*args)  # type: ignore[arg-type]
    assert not decision.allowed
    assert text in decision.reason


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ({"limits": {"max_position_size_usd": -5}}, "max_position_size_usd"),
        ({"limits": {"max_drawdown_pct": 150}}, "max_drawdown_pct"),
        ({"limits": {"max_positions": 0}}, "max_positions"),
        ({"limits": {"max_daily_loss": 5}}, "max_daily_loss"),
        ({"limits": {"max_position_size_usd": 9_000}}, "exceeds max_total_exposure_usd"),
        ({"strategies": {"momentum": {"max_drawdown_pct": -1}}}, "max_drawdown_pct"),
    ],
)
def test_risk_config_when_bad_raises_config_error_naming_key(
    data: dict[str, object], text: str
) -> None:
    with pytest.raises(ConfigError, match=text):
        risk_config_from_mapping(data, where="risk.toml")


def test_risk_config_when_strategy_overrides_merges_with_global() -> None:
    config = RiskConfig(
        limits=RiskLimits(max_positions=5), strategies={"momentum": {"max_positions": 2}}
    )
    assert config.limits_for("momentum").max_positions == 2
    assert config.limits_for("momentum").max_daily_loss_usd == 500.0
    assert config.limits_for("other").max_positions == 5


@dataclass
class Account:
    positions: list[float] = field(default_factory=list)
    cash_pnl_today: float = 0.0


ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("enter"), st.floats(0, 2_500)),
        st.tuples(st.just("move"), st.floats(0.5, 1.5)),
        st.tuples(st.just("close"), st.integers(0, 20)),
        st.tuples(st.just("wait"), st.floats(0.5, 30)),
        st.tuples(st.just("reset"), st.just(0.0)),
    ),
    max_size=80,
)


@given(actions=ACTIONS, max_positions=st.integers(1, 6))
def test_enforcer_when_any_sequence_never_lets_limits_be_exceeded(
    actions: list[tuple[str, float]], max_positions: int
) -> None:
    clock = ManualClock(START)
    limits = RiskLimits(max_positions=max_positions)
    risk = RiskEnforcer(limits, clock=clock)
    account = Account()
    equity_base = 10_000.0
    day = risk.daily_reset_boundary()
    for action, value in actions:
        if risk.daily_reset_boundary() != day:
            day, account.cash_pnl_today = risk.daily_reset_boundary(), 0.0
        if action == "enter":
            was_blocked = risk.breaker.blocks_entries(clock.now())
            exposure = sum(account.positions)
            decision = risk.check_trade_allowed(
                value,
                exposure,
                account.cash_pnl_today,
                len(account.positions),
                equity=equity_base + account.cash_pnl_today,
            )
            if decision.allowed:
                assert not was_blocked, "an entry passed while the breaker was open"
                account.positions.append(value)
                assert value <= limits.max_position_size_usd
                assert sum(account.positions) <= limits.max_total_exposure_usd + 1e-9
                assert len(account.positions) <= limits.max_positions
        elif action == "move":
            moved = [p * value for p in account.positions]
            account.cash_pnl_today += sum(moved) - sum(account.positions)
            account.positions = moved
        elif action == "close" and account.positions:
            account.positions.pop(int(value) % len(account.positions))
        elif action == "wait":
            clock.advance(timedelta(hours=value))
        elif action == "reset":
            risk.breaker.manual_reset("tester", "property test", clock.now())
        state = risk.breaker.state
        if state.trip is TripKind.DRAWDOWN:
            # Held until a manual reset: even a later day keeps it.
            assert risk.breaker.blocks_entries(clock.now() + timedelta(days=2))
