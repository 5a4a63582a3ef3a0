"""``run_backtest`` for binary strategies: which markets, which settings, run and save.

``BacktestingEngine.run_backtest`` hands a call over here when the strategy is a
:class:`BinaryStrategy` or the call names markets (``market=``, ``markets=`` or
``data=BinaryMarkets``): one account over the chosen markets (binary_backtest.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from marketbot.backtest.binary_backtest import backtest_markets
from marketbot.backtest.binary_config import BinaryConfig, build_binary_config
from marketbot.backtest.binary_markets import BinaryMarkets
from marketbot.backtest.result import BacktestResult
from marketbot.core.errors import ConfigError
from marketbot.strategies.base import Strategy
from marketbot.strategies.binary import BinaryStrategy
from marketbot.strategies.loader import StrategySpec, load_strategy

if TYPE_CHECKING:
    from marketbot.backtest.engine import BacktestingEngine
    from marketbot.store.database import Database

MarketChoice = str | Sequence[str] | BinaryMarkets | None
"""``markets=``: a list of slugs, ``"all"`` (every stored market with books) or the markets."""


def wants_binary(strategy: StrategySpec, market: object, markets: object, data: object) -> bool:
    """Whether a ``run_backtest`` call is a binary one (by its strategy or its data)."""
    if market is not None or markets is not None or isinstance(data, BinaryMarkets):
        return True
    return (
        isinstance(strategy, BinaryStrategy)
        or (isinstance(strategy, type) and issubclass(strategy, BinaryStrategy))
        or (isinstance(strategy, str) and isinstance(load_strategy(strategy), BinaryStrategy))
    )


def is_ohlcv_config(config: object) -> bool:
    """Whether ``config`` is not a binary one (so ``run_backtest`` keeps its OHLCV path)."""
    return not isinstance(config, BinaryConfig)


def load_binary_strategy(spec: StrategySpec) -> BinaryStrategy:
    """The strategy of a binary run.

    Raises:
        ConfigError: it is an OHLCV strategy.
    """
    strategy: Strategy = load_strategy(spec)
    if not isinstance(strategy, BinaryStrategy):
        raise ConfigError(
            f"strategy {strategy.label!r} trades OHLCV bars, not binary markets: "
            "give it symbol= (or --symbol), not market= / markets= (or --market)"
        )
    return strategy


def select_markets(
    database: Callable[[], Database] | None,
    market: str | None,
    markets: MarketChoice,
    data: object,
) -> BinaryMarkets:
    """The markets a run names: ``data=BinaryMarkets``, ``market=``, ``markets=``, or all stored.

    Raises:
        ConfigError: more than one way of naming markets, or OHLCV data.
        DataError: a named market is not stored with books, or none is.
    """
    given = [name for name, value in (("market", market), ("markets", markets), ("data", data))
             if value is not None]  # fmt: skip
    if len(given) > 1:
        raise ConfigError(f"give one of market=, markets= or data=, not {' and '.join(given)}")
    if data is not None:
        if not isinstance(data, BinaryMarkets):
            raise ConfigError(
                "a binary strategy runs on markets: data= must be BinaryMarkets "
                "(BinaryMarkets.from_csv(markets_csv, books_csv)), not OHLCV bars"
            )
        return data
    if isinstance(markets, BinaryMarkets):
        return markets
    if database is None:
        raise ConfigError("no database to load stored markets from")
    store = database()
    if market is not None:
        return BinaryMarkets.from_store(store, [market])
    if markets is None or (isinstance(markets, str) and markets == "all"):
        return BinaryMarkets.from_store(store)
    names = [markets] if isinstance(markets, str) else list(markets)
    if not names:
        raise ConfigError("markets= is empty: name at least one market slug, or 'all'")
    return BinaryMarkets.from_store(store, names)


def run_binary_backtest(  # noqa: PLR0913 - run_backtest's keywords, passed on
    engine: BacktestingEngine,
    strategy: StrategySpec,
    *,
    market: str | None,
    markets: MarketChoice,
    data: object,
    params: Mapping[str, object] | None,
    config: object | None,
    ohlcv_given: tuple[object, object, object, object, object],
    save: bool | None,
    options: Mapping[str, Any],
) -> BacktestResult:
    """Backtest a binary strategy as ``run_backtest`` does (see the module docstring).

    Raises:
        ConfigError: an OHLCV strategy, symbols or dates (markets are chosen instead),
            OHLCV-only settings, or several ways of naming markets.
        DataError: no such market, or no stored market with books.
    """
    instance = load_binary_strategy(strategy)
    start, end, symbol, symbols, timeframe = ohlcv_given
    if symbol is not None or symbols is not None or timeframe is not None:
        raise ConfigError(
            f"{instance.name} trades binary markets: give market= or markets=, not "
            "symbol=, symbols= or timeframe= (those name OHLCV bars)"
        )
    if start is not None or end is not None:
        raise ConfigError(
            "start and end dates do not apply to binary markets: choose the markets instead"
        )
    binary_config = build_binary_config(config, options)
    resolved = instance.resolve_params(params)
    stored = data is None and not isinstance(markets, BinaryMarkets)
    chosen = select_markets(lambda: engine.database, market, markets, data)
    result = backtest_markets(instance, chosen, resolved, binary_config, engine.thresholds)
    if save if save is not None else stored:
        _save(engine.database, result)
    return result


def _save(database: Database, result: BacktestResult) -> None:
    from marketbot.store.runs import BacktestRunRepository, record_from_result

    BacktestRunRepository(database).save(
        record_from_result(result, timeframe=None, source="polymarket")
    )
