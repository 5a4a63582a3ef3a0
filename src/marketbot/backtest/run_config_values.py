"""The value checks of a run configuration file's scalar keys: one parser per key.

Each parser turns a TOML value into the run's value or raises :class:`BadValueError` saying
why; :mod:`run_config` adds the file and the key to make the one-line message.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final, get_args

from marketbot.backtest.config import parse_duration_seconds
from marketbot.core.errors import ConfigError
from marketbot.risk.rebalancer import RebalanceSchedule

__all__ = ["PARSERS", "SIZINGS", "BadValueError"]

SIZINGS: Final = ("all_in", "fraction", "fixed_cash")


class BadValueError(Exception):
    """Why one value is refused; the loader adds where it came from and the key."""


def _number(value: object, why: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadValueError(why)
    number = float(value)
    if not math.isfinite(number):
        raise BadValueError(why)
    return number


def _cost_rate(value: object) -> float:
    why = "must be a fraction in [0, 1)"
    rate = _number(value, why)
    if not 0.0 <= rate < 1.0:
        raise BadValueError(why)
    return rate


def _positive(value: object) -> float:
    amount = _number(value, "must be a positive number")
    if amount <= 0.0:
        raise BadValueError("must be a positive number")
    return amount


def _sizing(value: object) -> str:
    if value not in SIZINGS:
        raise BadValueError(f"use one of {', '.join(SIZINGS)}")
    return str(value)


def _exit_fraction(value: object) -> float | None:
    if value is False:
        return None
    why = "must be a fraction between 0 and 1"
    rate = _number(value, f"{why}, or false (off)")
    if not 0.0 < rate < 1.0:
        raise BadValueError(why)
    return rate


def _activation(value: object) -> float | None:
    if value is False:
        return None
    why = "must be a fraction >= 0, or false (off)"
    rate = _number(value, why)
    if rate < 0.0:
        raise BadValueError(why)
    return rate


def _duration(value: object) -> int:
    """Whole seconds; 0 for false (off)."""
    if value is False:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadValueError("use seconds or a duration like 24h, 30s, 3d, or false (off)")
    try:
        return parse_duration_seconds(value, name="duration")
    except ConfigError:
        raise BadValueError(
            "use a positive number of seconds or a duration like 24h, 30s, 3d, or false (off)"
        ) from None


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise BadValueError("use true or false")
    return value


def _rebalance(value: object) -> str | None:
    schedules = get_args(RebalanceSchedule)
    if value is False:
        return None
    if value not in schedules:
        raise BadValueError(f"use one of {', '.join(schedules)}, or false (never)")
    return str(value)


PARSERS: Final[Mapping[str, Callable[[object], object]]] = MappingProxyType(
    {
        "fee": _cost_rate,
        "slippage": _cost_rate,
        "cash": _positive,
        "sizing": _sizing,
        "size": _positive,
        "stop_loss": _exit_fraction,
        "take_profit": _exit_fraction,
        "trailing_stop": _exit_fraction,
        "trailing_activation": _activation,
        "max_hold": _duration,
        "order_timeout": _duration,
        "max_slippage": _exit_fraction,
        "rebalance": _rebalance,
        "exit_poll": _duration,
        "stop_on_exchange": _flag,
    }
)
