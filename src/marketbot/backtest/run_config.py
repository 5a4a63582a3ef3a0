"""The run configuration: one TOML file that ``backtest --config`` and ``run`` both read.

:func:`load_run_config` is the one place that reads it. The file holds the costs, sizing and
exit rules of a run (``fee``, ``slippage``, ``cash``, ``sizing``, ``size``, ``stop_loss``,
``take_profit``, ``trailing_stop``, ``trailing_activation``, ``max_hold``), the bot's order
checks (``order_timeout``, ``max_slippage``), risk limits under ``[risk.limits]`` and
``[risk.strategies.NAME]`` (as a risk file's ``[limits]`` and ``[strategies.NAME]``), and the
strategies the bot runs (``[[strategies]]``, ``rebalance``). ``false`` turns a rule off.

Precedence, highest first: options given on the command line (``overrides``), the file, the
defaults. With a file, or ``bot_defaults=True``, the defaults are the bot's: stop-loss 5 %,
take-profit 10 %, max hold 24 h and risk limits on (the configured risk file and
``MARKETBOT_RISK_*`` variables, else the seed's limits). Without either, they are a plain
backtest's: no exits, no limits. Costs default to ``backtest``'s in both cases.

Every value is checked when the file is loaded; a bad one is a ``ConfigError`` of one line
naming the file and the key, e.g. ``bot.toml: stop_loss = 1.5: must be a fraction between 0
and 1`` or ``bot.toml: unknown key 'stop_los' (did you mean stop_loss?)``.
"""

from __future__ import annotations

import difflib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from pydantic import ValidationError

from marketbot.backtest.config import (
    DEFAULT_CASH,
    DEFAULT_FEE,
    DEFAULT_SLIPPAGE,
    BacktestConfig,
    ExitRules,
)
from marketbot.backtest.run_config_values import PARSERS, BadValueError
from marketbot.config import Settings, load_risk_config
from marketbot.core.errors import ConfigError
from marketbot.core.risk_limits import RiskConfig, RiskLimits
from marketbot.core.timeframes import seconds_to_timeframe, timeframe_seconds
from marketbot.risk.exit_manager import ExitRuleSet
from marketbot.risk.rebalancer import RebalanceSchedule

__all__ = [
    "DEFAULT_MAX_SLIPPAGE",
    "DEFAULT_ORDER_TIMEOUT_SECONDS",
    "FILE_KEYS",
    "OVERRIDE_KEYS",
    "RunConfig",
    "StrategyEntry",
    "load_run_config",
]

DEFAULT_ORDER_TIMEOUT_SECONDS: Final = 30
"""The seed's order timeout: an order not filled after this long is cancelled."""
DEFAULT_MAX_SLIPPAGE: Final = 0.01
"""The seed's slippage alert threshold: a fill this fraction worse than expected (1 %)."""
DEFAULT_REBALANCE: Final[RebalanceSchedule] = "weekly"

_BOT_EXITS: Final = ExitRuleSet()
_STRATEGY_KEYS: Final = ("name", "symbol", "timeframe", "params")
_RISK_TABLES: Final = ("limits", "strategies")
DEFAULT_EXIT_POLL_SECONDS: Final = 15
_RISK_LIMIT_KEYS: Final = tuple(RiskLimits.model_fields)


@dataclass(frozen=True, slots=True)
class StrategyEntry:
    """One ``[[strategies]]`` table: a strategy the bot runs, on which series, with what.

    Attributes:
        name: A built-in strategy name or ``path/to/file.py:ClassName`` (not loaded here).
        symbol: The stored series it trades, e.g. ``bitcoin`` (None: the command's own).
        timeframe: The bar length, e.g. ``1h`` (None: the command's default).
        params: Strategy parameters; the rest take the strategy's defaults.
    """

    name: str
    symbol: str | None = None
    timeframe: str | None = None
    params: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class RunConfig:
    """A validated run configuration (see the module docstring for where values come from).

    Attributes:
        backtest: Costs, sizing and exit rules (its ``risk`` is None: the limits are in
            ``risk``, per strategy; :meth:`backtest_config` puts them together).
        risk: Risk limits, global and per strategy; None means no limits (a plain backtest).
        order_timeout_seconds: Cancel an order not filled after this many seconds (0: never).
        max_slippage: Fraction a fill may be worse than expected before an alert (None: off).
        strategies: The ``[[strategies]]`` tables, in file order.
        rebalance: How often the bot rebalances several strategies (None: never).
        exit_poll_seconds: Forward and live: seconds between tickers while a bar forms
            (0: none).
        stop_on_exchange: Live: also rest a stop order on the exchange after each entry.
        path: The file read, if any.
    """

    backtest: BacktestConfig = field(default_factory=BacktestConfig)
    risk: RiskConfig | None = None
    order_timeout_seconds: int = DEFAULT_ORDER_TIMEOUT_SECONDS
    max_slippage: float | None = DEFAULT_MAX_SLIPPAGE
    strategies: tuple[StrategyEntry, ...] = ()
    rebalance: RebalanceSchedule | None = DEFAULT_REBALANCE
    exit_poll_seconds: int = DEFAULT_EXIT_POLL_SECONDS
    stop_on_exchange: bool = False
    path: Path | None = None

    def risk_limits(self, strategy: str | None = None) -> RiskLimits | None:
        """The limits that apply to ``strategy`` (its overrides on the global ones), or None."""
        if self.risk is None:
            return None
        return self.risk.limits if strategy is None else self.risk.limits_for(strategy)

    def backtest_config(self, strategy: str | None = None) -> BacktestConfig:
        """The backtest settings of ``strategy``: costs, sizing, exits and its risk limits."""
        return replace(self.backtest, risk=self.risk_limits(strategy))

    def max_hold_warning(self, bar_seconds: int) -> str | None:
        """A warning when max hold is on and no longer than one bar of ``bar_seconds``.

        Such a hold closes every position at the first open after its entry, which is rarely
        what was meant (e.g. ``max_hold = "24h"`` on daily bars).
        """
        hold = self.backtest.exits.max_hold_seconds
        if hold <= 0 or hold > bar_seconds:
            return None
        return (
            f"max_hold {seconds_to_timeframe(hold)} is not longer than one bar "
            f"({seconds_to_timeframe(bar_seconds)}): every position is closed at the open of "
            "the bar after its entry"
        )


def load_run_config(
    path: Path | None,
    *,
    settings: Settings,
    bot_defaults: bool = False,
    overrides: Mapping[str, object] | None = None,
) -> RunConfig:
    """Read and validate a run configuration: the one loader of ``backtest`` and ``run``.

    Args:
        path: The TOML file (None: no file).
        settings: Where the configured risk limits are (``risk_file``, the data directory).
        bot_defaults: Use the bot's defaults without a file (a file always implies them).
        overrides: Values given on the command line, keyed as in the file (``stop_loss``,
            ``max_hold``...), which win over the file; a None value means "not given".
            ``risk=True`` turns the limits on without a file; ``risk_file`` (a path) takes
            the limits from that risk file instead of the configured one and the file's
            ``[risk]``.

    Raises:
        ConfigError: an unreadable file, an unknown key or a bad value; one line that names
            the file and the key.
    """
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    for key in given:
        if key not in OVERRIDE_KEYS:
            raise _unknown_key("", key, OVERRIDE_KEYS)
    where = f"{path}: " if path is not None else ""
    data = _read_toml(path) if path is not None else {}
    for key in data:
        if key not in FILE_KEYS:
            raise _unknown_key(where, key, FILE_KEYS)
    bot = path is not None or bot_defaults
    values, origins = _scalar_values(data, where, given)
    backtest = _backtest_config(values, origins, bot=bot)
    strategies = _strategies(data.get("strategies", []), where)
    file_risk = _risk_tables(data["risk"], where) if "risk" in data else ({}, {})
    risk_file = given.get("risk_file")
    risk = None
    if bot or given.get("risk") is True or risk_file is not None:
        risk = _risk_config(settings, file_risk, where, risk_file)
    return RunConfig(
        backtest=backtest,
        risk=risk,
        order_timeout_seconds=values.get("order_timeout", DEFAULT_ORDER_TIMEOUT_SECONDS),
        max_slippage=values.get("max_slippage", DEFAULT_MAX_SLIPPAGE),
        strategies=strategies,
        rebalance=values.get("rebalance", DEFAULT_REBALANCE),
        exit_poll_seconds=values.get("exit_poll", DEFAULT_EXIT_POLL_SECONDS),
        stop_on_exchange=values.get("stop_on_exchange", False),
        path=path,
    )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: run configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


_SCALAR_KEYS: Final = tuple(PARSERS)
FILE_KEYS: Final = (*_SCALAR_KEYS, "risk", "strategies")
"""Every top-level key a run configuration file may hold."""
OVERRIDE_KEYS: Final = (*_SCALAR_KEYS, "risk", "risk_file")
"""Keys of ``overrides``: the file's values, ``risk`` (True: limits on) and ``risk_file``."""


def _scalar_values(
    data: Mapping[str, Any], where: str, overrides: Mapping[str, object]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The parsed values of the file and of the command line (which wins), and their origins.

    An origin is the prefix of a message about the value: ``bot.toml: ``, or empty.
    """
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for source, prefix in ((data, where), (overrides, "")):
        for key, parse in PARSERS.items():
            if key in source:
                try:
                    values[key] = parse(source[key])
                except BadValueError as exc:
                    raise ConfigError(f"{_setting(prefix, key, source[key])}: {exc}") from None
                origins[key] = prefix
    return values, origins


def _backtest_config(
    values: Mapping[str, Any], origins: Mapping[str, str], *, bot: bool
) -> BacktestConfig:
    """Costs, sizing and exits: the given values, else the bot's or a plain backtest's."""

    def rule(key: str, bot_default: float | None) -> float | None:
        chosen: float | None = values.get(key, bot_default if bot else None)
        return chosen

    bot_hold = _BOT_EXITS.max_hold
    hold_default = round(bot_hold.total_seconds()) if bot and bot_hold is not None else 0
    sizing = values.get("sizing", "all_in")
    size = values.get("size")
    _check_size(sizing, size, origins)
    return BacktestConfig(
        fee_rate=values.get("fee", DEFAULT_FEE),
        slippage_rate=values.get("slippage", DEFAULT_SLIPPAGE),
        initial_cash=values.get("cash", DEFAULT_CASH),
        sizing=sizing,
        size=size,
        exits=ExitRules(
            stop_loss=rule("stop_loss", _BOT_EXITS.stop_loss),
            take_profit=rule("take_profit", _BOT_EXITS.take_profit),
            trailing_stop=rule("trailing_stop", _BOT_EXITS.trailing_stop),
            trailing_activation=rule("trailing_activation", _BOT_EXITS.trailing_activation),
            max_hold_seconds=values.get("max_hold", hold_default),
        ),
    )


def _check_size(sizing: str, size: float | None, origins: Mapping[str, str]) -> None:
    if sizing == "all_in":
        if size is not None:
            raise ConfigError(
                f"{_setting(origins['size'], 'size', size)}: all_in sizing takes no size "
                '(set sizing = "fraction" or "fixed_cash")'
            )
        return
    if size is None:
        what = "the fraction of equity" if sizing == "fraction" else "the cash"
        setting = _setting(origins["sizing"], "sizing", sizing)
        raise ConfigError(f"{setting}: needs size ({what} per entry)")
    if sizing == "fraction" and size > 1.0:
        raise ConfigError(
            f"{_setting(origins['size'], 'size', size)}: fraction sizing needs 0 < size <= 1"
        )


# --- tables ---------------------------------------------------------------------------------


def _risk_tables(value: object, where: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The ``[risk.limits]`` and ``[risk.strategies.NAME]`` tables, their keys checked."""
    table = _table(value, where, "risk")
    for key in table:
        if key not in _RISK_TABLES:
            raise _unknown_key(where, key, _RISK_TABLES, prefix="risk.")
    limits = _table(table.get("limits", {}), where, "risk.limits")
    _check_limit_keys(limits, where, "risk.limits.")
    strategies: dict[str, dict[str, Any]] = {}
    for name, overrides in _table(table.get("strategies", {}), where, "risk.strategies").items():
        label = f"risk.strategies.{name}"
        strategies[name] = _table(overrides, where, label)
        _check_limit_keys(strategies[name], where, f"{label}.")
    return limits, strategies


def _check_limit_keys(table: Mapping[str, Any], where: str, prefix: str) -> None:
    for key in table:
        if key not in _RISK_LIMIT_KEYS:
            raise _unknown_key(where, key, _RISK_LIMIT_KEYS, prefix=prefix)


def _risk_config(
    settings: Settings,
    file_risk: tuple[dict[str, Any], dict[str, dict[str, Any]]],
    where: str,
    risk_file: object,
) -> RiskConfig:
    """The limits: ``risk_file``'s, else the configured ones with the file's ``[risk]`` on top.

    The configured limits are the settings' risk file and ``MARKETBOT_RISK_*`` variables, else
    the seed's defaults.
    """
    if risk_file is not None:
        return load_risk_config(settings, path=Path(str(risk_file)))
    base = load_risk_config(settings)
    file_limits, file_strategies = file_risk
    limits = {**base.limits.model_dump(), **file_limits}
    _validated_limits(limits, where, "risk.limits")
    strategies = {name: dict(table) for name, table in base.strategies.items()}
    for name, table in file_strategies.items():
        strategies[name] = {**strategies.get(name, {}), **table}
        _validated_limits({**limits, **strategies[name]}, where, f"risk.strategies.{name}")
    return RiskConfig(limits=RiskLimits(**limits), strategies=strategies)


def _validated_limits(values: Mapping[str, Any], where: str, label: str) -> RiskLimits:
    try:
        return RiskLimits.model_validate(dict(values))
    except ValidationError as exc:
        error = exc.errors()[0]
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["loc"]:
            key = f"{label}.{error['loc'][0]}"
            raise ConfigError(f"{where}{key} = {_shown(error['input'])}: {message}") from None
        raise ConfigError(f"{where}[{label}]: {message}") from None


def _strategies(value: object, where: str) -> tuple[StrategyEntry, ...]:
    """The ``[[strategies]]`` tables (numbered from 1 in messages)."""
    if not isinstance(value, list):
        raise ConfigError(f"{where}strategies: use [[strategies]] tables (name, symbol, ...)")
    return tuple(_strategy(table, where, number) for number, table in enumerate(value, 1))


def _strategy(value: object, where: str, number: int) -> StrategyEntry:
    label = f"strategies[{number}]"
    table = _table(value, where, label)
    for key in table:
        if key not in _STRATEGY_KEYS:
            raise _unknown_key(where, key, _STRATEGY_KEYS, prefix=f"{label}.")
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}{label}.name: each [[strategies]] table needs a name")
    texts: dict[str, str | None] = {}
    for key in ("symbol", "timeframe"):
        text = table.get(key)
        if text is not None and (not isinstance(text, str) or not text.strip()):
            raise ConfigError(f"{where}{label}.{key} = {_shown(text)}: must be text")
        texts[key] = text
    timeframe = texts["timeframe"]
    if timeframe is not None:
        try:
            timeframe_seconds(timeframe)
        except ConfigError:
            raise ConfigError(
                f"{where}{label}.timeframe = {_shown(timeframe)}: use a number and a unit "
                "s, m, h, d or w (e.g. 1h)"
            ) from None
    params = _table(table.get("params", {}), where, f"{label}.params")
    return StrategyEntry(
        name=name.strip(),
        symbol=texts["symbol"],
        timeframe=timeframe,
        params=MappingProxyType(dict(params)),
    )


def _table(value: object, where: str, label: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}{label} = {_shown(value)}: must be a table")
    return value


# --- messages -------------------------------------------------------------------------------


def _unknown_key(where: str, key: str, known: tuple[str, ...], *, prefix: str = "") -> ConfigError:
    """``unknown key 'stop_los' (did you mean stop_loss?)``, or the known keys."""
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {prefix}{close[0]}?" if close else f"keys: {', '.join(known)}"
    return ConfigError(f"{where}unknown key '{prefix}{key}' ({hint})")


def _setting(where: str, key: str, value: object) -> str:
    """A setting as its origin spells it.

    In a file as TOML, ``bot.toml: max_hold = "24x"``; an option as options have always been
    named in messages, ``max_hold='24x'``.
    """
    return f"{where}{key} = {_shown(value)}" if where else f"{key}={value!r}"


def _shown(value: object) -> str:
    """A value as TOML spells it: ``"24x"``, ``true``, ``1.5``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return str(value)
