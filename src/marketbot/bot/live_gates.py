"""The gates a live run must pass before anything is sent to an exchange.

In order: ``--exchange`` given; an exchange pair quoted in USD, USDT or USDC (not a stored
CoinGecko id like ``bitcoin``); a stored API key for the exchange; and the latest stored
verdict on this strategy, these parameters, this pair and timeframe of GOOD or better. The
verdict is a backtest's, or the out-of-sample verdict of a walk-forward when one is newer.
``--force`` overrides the verdict gate (and only it); it needs ``--reason``, and the caller
records it as an emergency. Each refusal is one :class:`LiveGateError` line naming what to do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from marketbot.core.errors import ConfigError
from marketbot.core.recommendation import Recommendation
from marketbot.execution.order_rules import LIVE_QUOTE_CURRENCIES
from marketbot.store.database import Database
from marketbot.store.keys import KeyStore
from marketbot.store.runs import BacktestRunRepository
from marketbot.store.walk_forward_runs import WalkForwardRunRepository

__all__ = ["LiveClearance", "LiveGateError", "LiveRequest", "StoredVerdict", "check_live_gates"]

_PASSING: Final = (Recommendation.EXCELLENT, Recommendation.GOOD)
# How many recent runs of the strategy on the pair are searched for a parameter match.
_RUNS_SEARCHED: Final = 500


class LiveGateError(ConfigError):
    """A live run refused before anything was sent; the message says what to do."""


@dataclass(frozen=True, slots=True)
class LiveRequest:
    """What ``run --live`` asks for.

    Attributes:
        exchange: The ccxt exchange id, or None when ``--exchange`` was not given.
        symbol: The pair (``BTC/USDT``).
        timeframe: The bar length (``1h``).
        strategy: The strategy's name.
        params: The strategy's parameters as the run will use them (defaults filled in).
        force: ``--force``: trade whatever the stored verdict.
        reason: ``--reason``: why, required with ``force``.
        key_label: Which stored key of the exchange (``default``, ``testnet``).
    """

    exchange: str | None
    symbol: str
    timeframe: str
    strategy: str
    params: Mapping[str, Any]
    force: bool = False
    reason: str | None = None
    key_label: str = "default"


@dataclass(frozen=True, slots=True)
class StoredVerdict:
    """The latest stored verdict that matched: which run, when, and what it said."""

    kind: str  # "backtest" or "walk-forward"
    run_id: int
    created_at: datetime
    recommendation: str

    def __str__(self) -> str:
        when = self.created_at.strftime("%Y-%m-%d %H:%M")
        return f"{self.kind} run {self.run_id} ({when} UTC): {self.recommendation}"


@dataclass(frozen=True, slots=True)
class LiveClearance:
    """A live run allowed: the verdict it rests on, and whether ``--force`` was used.

    Attributes:
        verdict: The latest matching stored verdict, or None (only when forced).
        forced: True when the verdict gate was overridden; ``reason`` says why.
        reason: The ``--reason`` text, or None.
    """

    verdict: StoredVerdict | None
    forced: bool
    reason: str | None


def check_live_gates(request: LiveRequest, *, database: Database, keys: KeyStore) -> LiveClearance:
    """Check every gate in order; return the clearance or raise the first refusal.

    Raises:
        LiveGateError: the first gate that fails, one line saying how to pass it.
    """
    exchange = _check_exchange(request)
    _check_pair(request.symbol)
    if keys.summary(exchange, label=request.key_label) is None:
        suffix = "" if request.key_label == "default" else f" --label {request.key_label}"
        raise LiveGateError(f"no API key for {exchange}: run marketbot keys set {exchange}{suffix}")
    if request.force and not (request.reason and request.reason.strip()):
        raise LiveGateError("--force needs --reason TEXT (it is recorded as an emergency)")
    verdict = latest_verdict(database, request)
    if verdict is not None and Recommendation(verdict.recommendation) in _PASSING:
        return LiveClearance(verdict=verdict, forced=False, reason=request.reason)
    if request.force:
        return LiveClearance(verdict=verdict, forced=True, reason=request.reason)
    subject = (
        f"{request.strategy} {_params_text(request.params)} on {request.symbol} {request.timeframe}"
    )
    if verdict is None:
        raise LiveGateError(
            f"no stored backtest of {subject}: backtest it on the exchange's data first "
            "(live needs a verdict of GOOD or better), or pass --force --reason TEXT"
        )
    raise LiveGateError(
        f"the latest verdict on {subject} is {verdict}: live needs GOOD or better; "
        "--force --reason TEXT overrides it"
    )


def _check_exchange(request: LiveRequest) -> str:
    if not request.exchange or not request.exchange.strip():
        raise LiveGateError("live needs --exchange (a ccxt exchange id, e.g. binance)")
    return request.exchange.strip()


def _check_pair(symbol: str) -> None:
    base, sep, quote = symbol.partition("/")
    if not sep or not base or not quote or "/" in quote:
        raise LiveGateError(f"live needs an exchange pair like BTC/USDT, not {symbol!r}")
    if quote not in LIVE_QUOTE_CURRENCIES:
        raise LiveGateError(
            f"live needs a pair quoted in {', '.join(LIVE_QUOTE_CURRENCIES)}, not {symbol!r}"
        )


def latest_verdict(database: Database, request: LiveRequest) -> StoredVerdict | None:
    """The newest stored verdict on exactly this strategy, parameters, pair and timeframe."""
    candidates: list[StoredVerdict] = []
    backtests = BacktestRunRepository(database).list_runs(
        _RUNS_SEARCHED, strategy=request.strategy, symbol=request.symbol
    )
    for run in backtests:
        if (
            run.symbol == request.symbol
            and run.data_file is None
            and run.timeframe == request.timeframe
            and same_params(run.params, request.params)
        ):
            created = run.created_at.to_pydatetime()
            candidates.append(StoredVerdict("backtest", run.id, created, run.recommendation))
            break
    walks = WalkForwardRunRepository(database).list_runs(
        _RUNS_SEARCHED,
        strategy=request.strategy,
        symbol=request.symbol,
        timeframe=request.timeframe,
    )
    for walk in walks:
        if same_params(walk.params, request.params):
            candidates.append(
                StoredVerdict("walk-forward", walk.id, walk.created_at, walk.recommendation)
            )
            break
    return max(candidates, key=lambda verdict: verdict.created_at, default=None)


def same_params(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """True when both hold the same names and values (10 and 10.0 are the same number)."""
    if set(stored) != set(wanted):
        return False
    return all(_same_value(stored[name], wanted[name]) for name in stored)


def _same_value(left: object, right: object) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    numbers = (int, float)
    if (
        isinstance(left, numbers)
        and isinstance(right, numbers)
        and not isinstance(left, bool)
        and not isinstance(right, bool)
    ):
        return math.isclose(float(left), float(right), rel_tol=0.0, abs_tol=0.0) or (
            math.isnan(float(left)) and math.isnan(float(right))
        )
    return left == right or str(left) == str(right)


def _params_text(params: Mapping[str, Any]) -> str:
    inner = ", ".join(f"{name}={value}" for name, value in sorted(params.items()))
    return f"({inner})"
