"""The run configuration file: every key, ``false``, defaults, precedence and its messages."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from marketbot.backtest.config import DEFAULT_CASH, DEFAULT_FEE, DEFAULT_SLIPPAGE, ExitRules
from marketbot.backtest.run_config import (
    DEFAULT_MAX_SLIPPAGE,
    DEFAULT_ORDER_TIMEOUT_SECONDS,
    FILE_KEYS,
    RunConfig,
    StrategyEntry,
    load_run_config,
)
from marketbot.config import Settings
from marketbot.core.errors import ConfigError
from marketbot.core.risk_limits import RiskLimits

BOT_EXITS = ExitRules(stop_loss=0.05, take_profit=0.10, max_hold_seconds=24 * 3600)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings of an empty data directory, with no risk limits configured anywhere."""
    for name in os.environ:
        if name.startswith("MARKETBOT_RISK"):
            monkeypatch.delenv(name)
    return Settings(data_dir=tmp_path / "var")


def write(tmp_path: Path, text: str, name: str = "bot.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, settings: Settings, text: str, **overrides: object) -> RunConfig:
    return load_run_config(write(tmp_path, text), settings=settings, overrides=overrides)


def refusal(tmp_path: Path, settings: Settings, text: str, **overrides: object) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, settings, text, **overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message.removeprefix(f"{tmp_path}{os.sep}")  # the path as the user spelt it


def test_load_run_config_when_no_file_gives_a_plain_backtest(settings: Settings) -> None:
    config = load_run_config(None, settings=settings)
    assert config.backtest.exits == ExitRules()
    assert config.risk is None
    assert config.backtest_config("sma_crossover").risk is None
    assert (config.backtest.fee_rate, config.backtest.slippage_rate) == (
        DEFAULT_FEE,
        DEFAULT_SLIPPAGE,
    )
    assert config.backtest.initial_cash == DEFAULT_CASH
    assert config.backtest.sizing == "all_in"


def test_load_run_config_when_bot_defaults_gives_bot_exits_and_seed_limits(
    settings: Settings,
) -> None:
    config = load_run_config(None, settings=settings, bot_defaults=True)
    assert config.backtest.exits == BOT_EXITS
    assert config.backtest_config().risk == RiskLimits()
    assert config.backtest.sizing == "all_in"
    assert config.backtest.fee_rate == DEFAULT_FEE
    assert config.order_timeout_seconds == DEFAULT_ORDER_TIMEOUT_SECONDS == 30
    assert config.max_slippage == DEFAULT_MAX_SLIPPAGE == 0.01
    assert config.rebalance == "weekly"
    assert config.strategies == ()


def test_load_run_config_when_file_is_empty_takes_the_bot_defaults(
    tmp_path: Path, settings: Settings
) -> None:
    config = load(tmp_path, settings, "")
    assert config.path == tmp_path / "bot.toml"
    assert replace(config, path=None) == load_run_config(None, settings=settings, bot_defaults=True)


def test_load_run_config_when_every_key_given_reads_each(
    tmp_path: Path, settings: Settings
) -> None:
    config = load(
        tmp_path,
        settings,
        'fee = 0.001\nslippage = 0.0005\ncash = 2500\nsizing = "fraction"\nsize = 0.5\n'
        "stop_loss = 0.03\ntake_profit = 0.2\ntrailing_stop = 0.08\n"
        'trailing_activation = 0.02\nmax_hold = "3d"\norder_timeout = "2m"\n'
        'max_slippage = 0.005\nrebalance = "monthly"\n',
    )
    backtest = config.backtest
    assert (backtest.fee_rate, backtest.slippage_rate, backtest.initial_cash) == (
        0.001,
        0.0005,
        2500.0,
    )
    assert (backtest.sizing, backtest.size) == ("fraction", 0.5)
    assert backtest.exits == ExitRules(
        stop_loss=0.03,
        take_profit=0.2,
        trailing_stop=0.08,
        trailing_activation=0.02,
        max_hold_seconds=3 * 86_400,
    )
    assert config.order_timeout_seconds == 120
    assert config.max_slippage == 0.005
    assert config.rebalance == "monthly"


def test_load_run_config_when_keys_are_false_turns_those_rules_off(
    tmp_path: Path, settings: Settings
) -> None:
    config = load(
        tmp_path,
        settings,
        "stop_loss = false\ntake_profit = false\ntrailing_stop = false\n"
        "trailing_activation = false\nmax_hold = false\norder_timeout = false\n"
        "max_slippage = false\nrebalance = false\n",
    )
    assert config.backtest.exits == ExitRules()
    assert config.order_timeout_seconds == 0
    assert config.max_slippage is None
    assert config.rebalance is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [('"24h"', 86_400), ('"30s"', 30), ('"90m"', 5_400), ('"1w"', 604_800), ("3600", 3_600)],
)
def test_load_run_config_when_duration_given_reads_seconds(
    tmp_path: Path, settings: Settings, value: str, seconds: int
) -> None:
    config = load(tmp_path, settings, f"max_hold = {value}\norder_timeout = {value}\n")
    assert config.backtest.exits.max_hold_seconds == seconds
    assert config.order_timeout_seconds == seconds


def test_load_run_config_when_fixed_cash_reads_the_acceptance_file(
    tmp_path: Path, settings: Settings
) -> None:
    config = load(
        tmp_path,
        settings,
        'sizing = "fixed_cash"\nsize = 1000\nstop_loss = 0.05\ntrailing_stop = 0.1\n'
        "take_profit = false\nmax_hold = false\n",
    )
    backtest = config.backtest_config("sma_crossover")
    assert (backtest.sizing, backtest.size) == ("fixed_cash", 1000.0)
    assert backtest.exits == ExitRules(stop_loss=0.05, trailing_stop=0.1)
    assert backtest.risk == RiskLimits()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stop_loss = 1.5\n", "bot.toml: stop_loss = 1.5: must be a fraction between 0 and 1"),
        ("take_profit = 0\n", "bot.toml: take_profit = 0: must be a fraction between 0 and 1"),
        ("trailing_stop = true\n", "bot.toml: trailing_stop = true: must be a fraction"),
        ('stop_loss = "5%"\n', 'bot.toml: stop_loss = "5%": must be a fraction'),
        ("trailing_activation = -0.1\n", "bot.toml: trailing_activation = -0.1: must be"),
        ("fee = 1\n", "bot.toml: fee = 1: must be a fraction in [0, 1)"),
        ("slippage = -0.001\n", "bot.toml: slippage = -0.001: must be a fraction in [0, 1)"),
        ("cash = 0\n", "bot.toml: cash = 0: must be a positive number"),
        ('cash = "lots"\n', 'bot.toml: cash = "lots": must be a positive number'),
        ('sizing = "all"\n', 'bot.toml: sizing = "all": use one of all_in, fraction, fixed_cash'),
        ('sizing = "fixed_cash"\n', 'bot.toml: sizing = "fixed_cash": needs size'),
        ('sizing = "fraction"\nsize = 2\n', "bot.toml: size = 2.0: fraction sizing needs"),
        ("size = 100\n", "bot.toml: size = 100.0: all_in sizing takes no size"),
        ('max_hold = "24x"\n', 'bot.toml: max_hold = "24x": use a positive number of seconds'),
        ("max_hold = 0\n", "bot.toml: max_hold = 0: use a positive number of seconds"),
        ("order_timeout = true\n", "bot.toml: order_timeout = true: use seconds"),
        ("max_slippage = 2\n", "bot.toml: max_slippage = 2: must be a fraction between 0 and 1"),
        ('rebalance = "hourly"\n', 'bot.toml: rebalance = "hourly": use one of daily, weekly'),
        ("stop_loss = nan\n", "bot.toml: stop_loss = nan: must be a fraction"),
        ("stop_loss = 0.05\nstop_loss = 0.1\n", "bot.toml: not valid TOML"),
    ],
)
def test_load_run_config_when_value_is_bad_names_file_key_and_value(
    tmp_path: Path, settings: Settings, text: str, message: str
) -> None:
    assert refusal(tmp_path, settings, text).startswith(message)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stop_los = 0.05\n", "bot.toml: unknown key 'stop_los' (did you mean stop_loss?)"),
        ("maxhold = '1d'\n", "bot.toml: unknown key 'maxhold' (did you mean max_hold?)"),
        ("colour = 'red'\n", "bot.toml: unknown key 'colour' (keys: fee, slippage, cash"),
        (
            "[risk.limit]\nmax_positions = 2\n",
            "bot.toml: unknown key 'risk.limit' (did you mean risk.limits?)",
        ),
        (
            "[risk.limits]\nmax_position_size = 2\n",
            "bot.toml: unknown key 'risk.limits.max_position_size' "
            "(did you mean risk.limits.max_position_size_usd?)",
        ),
        (
            "[risk.strategies.momentum]\nmax_position = 2\n",
            "bot.toml: unknown key 'risk.strategies.momentum.max_position' (did you mean "
            "risk.strategies.momentum.max_positions?)",
        ),
        (
            "[[strategies]]\nname = 'momentum'\nparam = {}\n",
            "bot.toml: unknown key 'strategies[1].param' (did you mean strategies[1].params?)",
        ),
    ],
)
def test_load_run_config_when_key_is_unknown_suggests_the_close_one(
    tmp_path: Path, settings: Settings, text: str, message: str
) -> None:
    assert refusal(tmp_path, settings, text).startswith(message)


def test_load_run_config_when_file_missing_names_it(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: run configuration file not found"):
        load_run_config(tmp_path / "nope.toml", settings=settings)


def test_load_run_config_when_options_given_they_win_over_file_and_defaults(
    tmp_path: Path, settings: Settings
) -> None:
    config = load(
        tmp_path,
        settings,
        "fee = 0.001\nstop_loss = 0.03\nmax_hold = false\n",
        fee=0.004,
        max_hold="12h",
        cash=None,  # not given: the file's value or the default stays
    )
    exits = config.backtest.exits
    assert config.backtest.fee_rate == 0.004  # option over file
    assert exits.max_hold_seconds == 12 * 3600  # option over file's false
    assert exits.stop_loss == 0.03  # file over bot default
    assert exits.take_profit == 0.10  # bot default
    assert config.backtest.initial_cash == DEFAULT_CASH


def test_load_run_config_when_option_is_bad_names_it_as_options_are_named(
    settings: Settings,
) -> None:
    with pytest.raises(ConfigError, match=r"^fee=-1\.0: must be a fraction in \[0, 1\)$"):
        load_run_config(None, settings=settings, overrides={"fee": -1.0})
    with pytest.raises(ConfigError, match=r"^max_hold='soon': use a positive number"):
        load_run_config(None, settings=settings, overrides={"max_hold": "soon"})
    with pytest.raises(ConfigError, match="unknown key 'stop_los' \\(did you mean stop_loss"):
        load_run_config(None, settings=settings, overrides={"stop_los": 0.1})


def test_load_run_config_when_risk_option_without_file_turns_limits_on_only(
    settings: Settings,
) -> None:
    config = load_run_config(None, settings=settings, overrides={"risk": True})
    assert config.backtest_config().risk == RiskLimits()
    assert config.backtest.exits == ExitRules()


def test_load_run_config_when_risk_tables_given_they_sit_on_the_configured_limits(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.data_dir.mkdir()
    (settings.data_dir / "risk.toml").write_text(
        "[limits]\nmax_daily_loss_usd = 300\nmax_positions = 4\n"
        "[strategies.momentum]\nmax_positions = 2\nmax_drawdown_pct = 10\n"
    )
    monkeypatch.setenv("MARKETBOT_RISK_MAX_DRAWDOWN_PCT", "15")
    config = load(
        tmp_path,
        settings,
        "[risk.limits]\nmax_position_size_usd = 2000\nmax_positions = 5\n"
        "[risk.strategies.momentum]\nmax_positions = 1\n"
        "[risk.strategies.rsi]\nmax_daily_loss_usd = 100\n",
    )
    limits = config.backtest_config("sma_crossover").risk
    assert limits == RiskLimits(
        max_position_size_usd=2000,  # the run config
        max_positions=5,  # the run config over the risk file
        max_daily_loss_usd=300,  # the risk file
        max_drawdown_pct=15,  # the environment
    )
    momentum = config.risk_limits("momentum")
    assert momentum is not None
    assert (momentum.max_positions, momentum.max_drawdown_pct) == (1, 10)
    rsi = config.risk_limits("rsi")
    assert rsi is not None
    assert (rsi.max_daily_loss_usd, rsi.max_positions) == (100, 5)


def test_load_run_config_when_risk_file_option_given_it_wins_over_the_risk_tables(
    tmp_path: Path, settings: Settings
) -> None:
    risk_file = write(tmp_path, "[limits]\nmax_positions = 3\n", name="mine.toml")
    config = load(tmp_path, settings, "[risk.limits]\nmax_positions = 7\n", risk_file=risk_file)
    assert config.backtest_config().risk == RiskLimits(max_positions=3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[risk.limits]\nmax_daily_loss_usd = -1\n",
            "bot.toml: risk.limits.max_daily_loss_usd = -1: Input should be greater than 0",
        ),
        (
            "[risk.limits]\nmax_total_exposure_usd = 500\n",
            "bot.toml: [risk.limits]: max_position_size_usd (1000) exceeds "
            "max_total_exposure_usd (500)",
        ),
        (
            "[risk.strategies.momentum]\nmax_drawdown_pct = 120\n",
            "bot.toml: risk.strategies.momentum.max_drawdown_pct = 120: Input should be less",
        ),
        ("risk = 3\n", "bot.toml: risk = 3: must be a table"),
    ],
)
def test_load_run_config_when_risk_limit_is_bad_names_file_and_key(
    tmp_path: Path, settings: Settings, text: str, message: str
) -> None:
    assert refusal(tmp_path, settings, text).startswith(message)


def test_load_run_config_when_strategies_listed_reads_them_in_order(
    tmp_path: Path, settings: Settings
) -> None:
    config = load(
        tmp_path,
        settings,
        'rebalance = "weekly"\n'
        '[[strategies]]\nname = "sma_crossover"\nsymbol = "bitcoin"\ntimeframe = "1h"\n'
        "params = { fast = 10, slow = 50 }\n"
        '[[strategies]]\nname = "momentum"\n',
    )
    assert config.strategies == (
        StrategyEntry("sma_crossover", "bitcoin", "1h", {"fast": 10, "slow": 50}),
        StrategyEntry("momentum"),
    )
    assert config.rebalance == "weekly"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[strategies]]\nsymbol = 'bitcoin'\n", "bot.toml: strategies[1].name: each"),
        (
            "[[strategies]]\nname = 'a'\n[[strategies]]\nname = 'b'\ntimeframe = '1x'\n",
            'bot.toml: strategies[2].timeframe = "1x": use a number and a unit',
        ),
        ("[[strategies]]\nname = 'a'\nsymbol = 3\n", "bot.toml: strategies[1].symbol = 3"),
        ("[[strategies]]\nname = 'a'\nparams = 3\n", "bot.toml: strategies[1].params = 3"),
        ("strategies = 'sma_crossover'\n", "bot.toml: strategies: use [[strategies]] tables"),
    ],
)
def test_load_run_config_when_strategy_table_is_bad_names_it(
    tmp_path: Path, settings: Settings, text: str, message: str
) -> None:
    assert refusal(tmp_path, settings, text).startswith(message)


@pytest.mark.parametrize(
    ("max_hold", "bar_seconds", "shown"),
    [("24h", 86_400, "1d"), ("12h", 86_400, "12h"), ("25h", 86_400, None), (False, 60, None)],
)
def test_max_hold_warning_when_hold_is_one_bar_or_less_warns(
    tmp_path: Path, settings: Settings, max_hold: object, bar_seconds: int, shown: str | None
) -> None:
    value = "false" if max_hold is False else f'"{max_hold}"'
    warning = load(tmp_path, settings, f"max_hold = {value}\n").max_hold_warning(bar_seconds)
    if shown is None:
        assert warning is None
    else:
        assert warning == (
            f"max_hold {shown} is not longer than one bar (1d): every position is closed at the "
            "open of the bar after its entry"
        )


DOCS = Path(__file__).parents[3] / "docs" / "bot.md"


def test_file_keys_when_listed_match_the_documentation() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for key in FILE_KEYS:
        assert f"| `{key}` |" in text, key


def test_documented_example_when_loaded_gives_what_its_comments_say(
    tmp_path: Path, settings: Settings
) -> None:
    text = DOCS.read_text(encoding="utf-8")
    # The configuration section's example: the `# bot.toml` block and the one after it.
    blocks = text[text.index("```toml\n# bot.toml") :].split("```toml\n")[1:3]
    config = load(tmp_path, settings, "".join(block.split("```")[0] for block in blocks))
    backtest = config.backtest
    assert (backtest.sizing, backtest.size) == ("fixed_cash", 1000.0)
    assert backtest.exits == ExitRules(
        stop_loss=0.05, trailing_stop=0.1, trailing_activation=0.02, max_hold_seconds=259_200
    )
    assert (config.order_timeout_seconds, config.max_slippage, config.rebalance) == (
        30,
        0.01,
        "weekly",
    )
    assert config.risk_limits("momentum") == RiskLimits(max_daily_loss_usd=300, max_positions=2)
    assert [entry.name for entry in config.strategies] == ["sma_crossover", "momentum"]
