"""The live exit manager on hand-made price paths: every exit kind, gaps, same-bar conflicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from marketbot.core.errors import ConfigError
from marketbot.risk.exit_manager import (
    Bar,
    ExitManager,
    ExitRuleSet,
    Position,
    PositionExitOverrides,
)

ENTRY_TIME = datetime(2024, 5, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def long_at_100(**kwargs: object) -> Position:
    return Position("p1", "bitcoin", 1, 100.0, ENTRY_TIME, 2.0, **kwargs)  # type: ignore[arg-type]


def bar(o: float, h: float, low: float, c: float, hours: int = 1) -> Bar:
    return Bar(o, h, low, c, ENTRY_TIME + hours * HOUR)


RULES = ExitRuleSet(stop_loss=0.05, take_profit=0.10, max_hold=None)


def test_check_exit_when_low_touches_stop_exits_at_stop_level() -> None:
    # Stop at 100 x (1 - 0.05) = 95; the low 94 touches it; the fill level is 95.
    decision = ExitManager(RULES).check_exit_conditions(long_at_100(), bar(99, 101, 94, 96))
    assert decision == ("stop_loss", 95.0)


def test_check_exit_when_open_gaps_below_stop_exits_at_the_open() -> None:
    decision = ExitManager(RULES).check_exit_conditions(long_at_100(), bar(90, 92, 88, 91))
    assert decision == ("stop_loss", 90.0)


def test_check_exit_when_stop_and_target_in_one_bar_takes_the_stop() -> None:
    # Low 94 <= 95 and high 111 >= 110: the conservative assumption is the stop.
    decision = ExitManager(RULES).check_exit_conditions(long_at_100(), bar(100, 111, 94, 105))
    assert decision == ("stop_loss", 95.0)


def test_check_exit_when_trailing_stop_and_target_in_one_bar_takes_the_trailing_stop() -> None:
    # Trailing 5 % from the anchor 100: level 95. Low 94 and high 111 (target 110) in one
    # bar: a stop wins over the target, as in the kernel.
    rules = ExitRuleSet(stop_loss=None, take_profit=0.10, trailing_stop=0.05, max_hold=None)
    decision = ExitManager(rules).check_exit_conditions(long_at_100(), bar(100, 111, 94, 105))
    assert decision == ("trailing_stop", pytest.approx(95.0))


def test_check_exit_when_high_reaches_target_exits_at_target() -> None:
    decision = ExitManager(RULES).check_exit_conditions(long_at_100(), bar(104, 112, 103, 108))
    assert decision == ("take_profit", pytest.approx(110.0))


def test_check_exit_when_plain_price_given_treats_it_as_a_flat_bar() -> None:
    assert ExitManager(RULES).check_exit_conditions(long_at_100(), 94.0) == ("stop_loss", 94.0)
    assert ExitManager(RULES).check_exit_conditions(long_at_100(), 100.0) is None


def test_check_exit_when_trailing_raises_anchor_only_after_the_check() -> None:
    rules = ExitRuleSet(stop_loss=None, take_profit=None, trailing_stop=0.10, max_hold=None)
    manager = ExitManager(rules)
    position = long_at_100()
    # Bar 1: high 120 sets the anchor after the check: the trail is 100 x 0.9 = 90 during it.
    assert manager.check_exit_conditions(position, bar(101, 120, 95, 118)) is None
    assert position.extreme_price == 120.0
    # Bar 2: trail now 120 x 0.9 = 108; the low 107 hits it.
    assert manager.check_exit_conditions(position, bar(117, 125, 107, 110, 2)) == (
        "trailing_stop",
        pytest.approx(108.0),
    )


def test_check_exit_when_trailing_has_activation_waits_for_the_move() -> None:
    rules = ExitRuleSet(
        stop_loss=None, take_profit=None, trailing_stop=0.05, trailing_activation=0.10,
        max_hold=None,
    )  # fmt: skip
    manager = ExitManager(rules)
    position = long_at_100()
    # Anchor 100 is below the 110 activation: no trailing stop even on a deep low.
    assert manager.check_exit_conditions(position, bar(100, 109, 80, 105)) is None
    assert manager.check_exit_conditions(position, bar(105, 112, 104, 111, 2)) is None
    # Anchor 112 >= 110 arms it at 112 x 0.95 = 106.4.
    assert manager.check_exit_conditions(position, bar(111, 111, 106, 107, 3)) == (
        "trailing_stop",
        pytest.approx(106.4),
    )


def test_check_exit_when_max_hold_reached_exits_at_the_open() -> None:
    rules = ExitRuleSet(stop_loss=None, take_profit=None, max_hold=timedelta(hours=24))
    manager = ExitManager(rules)
    assert manager.check_exit_conditions(long_at_100(), bar(101, 102, 100, 101, 23)) is None
    assert manager.check_exit_conditions(long_at_100(), bar(101, 102, 100, 101, 24)) == (
        "max_hold",
        101.0,
    )


def test_check_exit_when_short_mirrors_stop_and_target() -> None:
    short = Position("s", "bitcoin", -1, 100.0, ENTRY_TIME, 1.0)
    manager = ExitManager(RULES)
    assert manager.check_exit_conditions(short, bar(101, 106, 100, 104)) == ("stop_loss", 105.0)
    assert manager.check_exit_conditions(short, bar(95, 96, 89, 91)) == (
        "take_profit",
        pytest.approx(90.0),
    )


def test_check_exit_when_position_overrides_rules_uses_its_own() -> None:
    position = long_at_100(overrides=PositionExitOverrides(stop_loss=0.02))
    assert ExitManager(RULES).check_exit_conditions(position, bar(99, 100, 97.5, 99)) == (
        "stop_loss",
        98.0,
    )


def test_check_exit_when_bar_is_the_entry_bar_skips_open_checks() -> None:
    # Entered at this bar's open: a stop beyond the open is still an intrabar exit there.
    entry_bar = Bar(100.0, 101.0, 94.0, 95.0, ENTRY_TIME)
    assert ExitManager(RULES).check_exit_conditions(long_at_100(), entry_bar) == (
        "stop_loss",
        95.0,
    )


def test_execute_exit_when_called_records_statistics_and_calls_executor() -> None:
    closed: list[tuple[str, str, float]] = []

    class Recorder:
        def close_position(self, position: Position, reason: str, price: float) -> None:
            closed.append((position.position_id, reason, price))

    manager = ExitManager(RULES, executor=Recorder())
    manager.execute_exit(long_at_100(), "stop_loss", 95.0)
    manager.execute_exit(long_at_100(), "take_profit", 110.0)
    assert closed == [("p1", "stop_loss", 95.0), ("p1", "take_profit", 110.0)]
    # 2 units: (95 - 100) x 2 = -10 and (110 - 100) x 2 = 20.
    assert dict(manager.statistics.pnl) == {"stop_loss": -10.0, "take_profit": 20.0}
    assert dict(manager.statistics.count) == {"stop_loss": 1, "take_profit": 1}


def test_exit_rule_set_when_defaults_are_the_seed_live_defaults() -> None:
    rules = ExitRuleSet()
    assert (rules.stop_loss, rules.take_profit, rules.max_hold) == (
        0.05,
        0.10,
        timedelta(hours=24),
    )


@pytest.mark.parametrize(
    "kwargs", [{"stop_loss": -0.1}, {"take_profit": 1.5}, {"max_hold": timedelta(0)}]
)
def test_exit_rule_set_when_bad_raises_config_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        ExitRuleSet(**kwargs)  # type: ignore[arg-type]
