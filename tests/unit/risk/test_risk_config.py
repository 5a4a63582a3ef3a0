"""Risk limits from a TOML file and the environment, validated at load time."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketbot.config import Settings, load_risk_config
from marketbot.core.errors import ConfigError


def settings_in(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


def test_load_risk_config_when_nothing_configured_gives_seed_defaults(tmp_path: Path) -> None:
    config = load_risk_config(settings_in(tmp_path), environ={})
    assert config.limits.max_position_size_usd == 1_000.0
    assert config.strategies == {}


def test_load_risk_config_when_file_and_environment_environment_wins(tmp_path: Path) -> None:
    (tmp_path / "risk.toml").write_text(
        "[limits]\nmax_daily_loss_usd = 300\nmax_positions = 4\n"
        "[strategies.momentum]\nmax_positions = 2\n"
    )
    config = load_risk_config(
        settings_in(tmp_path), environ={"MARKETBOT_RISK_MAX_DAILY_LOSS_USD": "250"}
    )
    assert config.limits.max_daily_loss_usd == 250.0
    assert config.limits.max_positions == 4
    assert config.limits_for("momentum").max_positions == 2
    assert config.limits_for("momentum").max_daily_loss_usd == 250.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[limits]\nmax_daily_loss_usd = -1\n", "max_daily_loss_usd"),
        ("[limits]\nmax_drawdown_pct = 120\n", "max_drawdown_pct"),
        ("[limits\n", "not valid TOML"),
        ("[limit]\nmax_positions = 3\n", "limit"),
    ],
)
def test_load_risk_config_when_file_is_bad_names_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_risk_config(settings_in(tmp_path), path=path, environ={})
    assert "mine.toml" in str(caught.value)


def test_load_risk_config_when_file_missing_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="risk file not found"):
        load_risk_config(settings_in(tmp_path), path=tmp_path / "nope.toml", environ={})
