"""Per-position exit overrides: stored in PositionConfig, applied by the exit manager."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from marketbot.core.errors import ConfigError
from marketbot.risk.exit_manager import ExitManager, ExitRuleSet, Position, PositionExitOverrides
from marketbot.store import Database
from marketbot.store.position_configs import PositionConfigRepository


def test_position_config_when_saved_drives_the_exit_manager(database: Database) -> None:
    configs = PositionConfigRepository(database)
    configs.save("btc-1", {"stop_loss": 0.02, "max_hold_seconds": 3_600})
    row = configs.get("btc-1")
    assert row == {
        "stop_loss": 0.02,
        "take_profit": None,
        "trailing_stop": None,
        "trailing_activation": None,
        "max_hold_seconds": 3_600,
    }
    position = Position(
        "btc-1", "bitcoin", 1, 100.0, datetime(2024, 1, 1, tzinfo=UTC), 1.0,
        overrides=PositionExitOverrides(**row),
    )  # fmt: skip
    # The default stop is 5 % (95); this position's own 2 % stop (98) triggers at 97.9.
    decision = ExitManager(ExitRuleSet()).check_exit_conditions(position, 97.9)
    assert decision == ("stop_loss", 97.9)


def test_position_config_when_saved_twice_replaces_the_row(database: Database) -> None:
    configs = PositionConfigRepository(database)
    configs.save("k", {"stop_loss": 0.02})
    configs.save("k", {"take_profit": 0.3})
    assert configs.get("k") == {
        "stop_loss": None,
        "take_profit": 0.3,
        "trailing_stop": None,
        "trailing_activation": None,
        "max_hold_seconds": None,
    }
    assert configs.delete("k") and configs.get("k") is None and not configs.delete("k")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"stop": 0.1}, "unknown exit setting"), ({"stop_loss": 1.5}, "refused by the store")],
)
def test_position_config_when_invalid_raises_and_keeps_the_old_row(
    database: Database, overrides: dict[str, float], message: str
) -> None:
    configs = PositionConfigRepository(database)
    configs.save("k", {"stop_loss": 0.02})
    with pytest.raises(ConfigError, match=message):
        configs.save("k", overrides)  # type: ignore[arg-type]
    assert configs.get("k") is not None and configs.get("k")["stop_loss"] == 0.02  # type: ignore[index]
