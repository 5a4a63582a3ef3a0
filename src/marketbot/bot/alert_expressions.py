"""Alert expressions, parsed into a condition or refused naming the token.

Three forms: ``[price] SYMBOL METRIC OP X``, ``strategy NAME METRIC OP X`` and
``portfolio METRIC OP X``. ``price`` may be left out (``bitcoin close > 20000``); SYMBOL is
written as stored (``bitcoin``, ``BTC/USDT``). X is a number, optionally with ``$``,
thousands commas, or a trailing ``%`` on a percent metric (``drawdown_pct > 10%``).
Operators may stand apart or touch their neighbours (``close>20000``).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from marketbot.core.errors import ConfigError

ALERT_KINDS: Final = ("price", "strategy", "portfolio")
OPERATORS: Final[dict[str, Callable[[float, float], bool]]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
# Each kind's metrics and the unit of their values.
METRICS: Final[dict[str, dict[str, str]]] = {
    "price": {"close": "price", "last": "price", "change_pct": "pct"},
    "strategy": {
        "entry_signal": "signal",
        "size_fraction": "fraction",
        "pnl_usd": "usd",
        "win_rate": "pct",
        "open_positions": "count",
    },
    "portfolio": {
        "total_value": "usd",
        "daily_pnl": "usd",
        "exposure_usd": "usd",
        "drawdown_pct": "pct",
    },
}
_TOKEN = re.compile(r"\s*(>=|<=|>|<|[^\s<>]+)")
_NUMBER = re.compile(r"^[-+]?\$?[-+]?(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?(e[-+]?\d+)?%?$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class AlertCondition:
    """What an alert compares: ``metric`` of ``subject`` ``operator`` ``threshold``.

    Attributes:
        kind: ``price``, ``strategy`` or ``portfolio``.
        subject: The symbol (price), the strategy's name (strategy), None (portfolio).
        metric: One of the kind's metrics (:data:`METRICS`).
        operator: ``>``, ``>=``, ``<`` or ``<=``.
        threshold: The number compared with, in ``unit``.
        unit: The metric's unit: ``price``, ``pct`` (12.5 is 12.5 %), ``usd``, ``fraction``,
            ``count`` or ``signal`` (1 when the strategy signals an entry, else 0).
    """

    kind: str
    subject: str | None
    metric: str
    operator: str
    threshold: float
    unit: str

    def holds(self, value: float) -> bool:
        """Whether ``value`` satisfies the condition."""
        return OPERATORS[self.operator](value, self.threshold)

    def describe(self) -> str:
        """The condition as an expression (``bitcoin close > 20000``)."""
        number = f"{self.threshold:g}" if abs(self.threshold) < 1e15 else repr(self.threshold)
        if self.kind == "price":
            return f"{self.subject} {self.metric} {self.operator} {number}"
        if self.kind == "strategy":
            return f"strategy {self.subject} {self.metric} {self.operator} {number}"
        return f"portfolio {self.metric} {self.operator} {number}"


def parse_alert_expression(expression: str) -> AlertCondition:
    """Parse an alert expression.

    Raises:
        ConfigError: one line naming the token that is wrong and what is allowed there.
    """
    tokens = _tokens(expression)
    if not tokens:
        raise _bad(expression, f"it is empty; write e.g. {_EXAMPLES}")
    first = tokens[0]
    if first.lower() in ("strategy", "portfolio"):
        kind, rest = first.lower(), tokens[1:]
    elif first.lower() == "price":
        kind, rest = "price", tokens[1:]
    else:
        kind, rest = "price", tokens
    subject: str | None = None
    if kind != "portfolio":
        if not rest or rest[0] in OPERATORS:
            what = "a symbol" if kind == "price" else "a strategy name"
            raise _bad(expression, f"{what} is missing after {first!r}")
        subject, rest = rest[0], rest[1:]
    metric_token, rest = _metric(expression, kind, rest)
    if not rest:
        raise _bad(expression, f"an operator is missing after {metric_token!r}; use {_OPS}")
    op, rest = rest[0], rest[1:]
    if op not in OPERATORS:
        raise _bad(expression, f"{op!r} is not an operator; use {_OPS}")
    if not rest:
        raise _bad(expression, f"a number is missing after {op!r}")
    unit = METRICS[kind][metric_token]
    threshold = _number(expression, rest[0], unit)
    if len(rest) > 1:
        raise _bad(expression, f"{rest[1]!r} after the number: the expression ends there")
    return AlertCondition(kind, subject, metric_token, op, threshold, unit)


_OPS: Final = ", ".join(OPERATORS)
_EXAMPLES: Final = (
    "'bitcoin close > 20000', 'strategy sma_crossover pnl_usd < -100' or "
    "'portfolio drawdown_pct >= 10'"
)


def _tokens(expression: str) -> list[str]:
    return [match.group(1) for match in _TOKEN.finditer(expression.strip())]


def _metric(expression: str, kind: str, rest: list[str]) -> tuple[str, list[str]]:
    allowed = METRICS[kind]
    listed = ", ".join(allowed)
    if not rest:
        raise _bad(expression, f"a {kind} metric is missing; use one of {listed}")
    token = rest[0]
    if token in OPERATORS:
        if kind == "price":
            return "close", rest  # `bitcoin > 20000`: the latest close
        raise _bad(expression, f"a {kind} metric is missing before {token!r}; use one of {listed}")
    if token.lower() not in allowed:
        other = _ALL_METRICS.get(token.lower())
        hint = f" ({token} is a {other} metric)" if other is not None else ""
        kinds = ", ".join(ALERT_KINDS)
        raise _bad(
            expression,
            f"{token!r} is not a {kind} metric; use one of {listed}{hint} "
            f"(kinds: {kinds}; price may be left out)",
        )
    return token.lower(), rest[1:]


_ALL_METRICS: Final = {metric: kind for kind, metrics in METRICS.items() for metric in metrics}


def _number(expression: str, token: str, unit: str) -> float:
    if not _NUMBER.match(token) or not any(c.isdigit() for c in token):
        raise _bad(expression, f"{token!r} is not a number")
    if token.endswith("%") and unit != "pct":
        raise _bad(expression, f"{token!r}: a percent sign only goes with a _pct or rate metric")
    value = float(token.replace("$", "").replace(",", "").rstrip("%"))
    if not math.isfinite(value):
        raise _bad(expression, f"{token!r} is not a finite number")
    return value


def _bad(expression: str, problem: str) -> ConfigError:
    return ConfigError(f"alert expression {expression!r}: {problem}")
