"""SQLAlchemy models: the seed's six tables, runs, the bot's records, books, alerts, web.

The tables live in one module per domain; this module gathers them, so that
``from marketbot.store.models import X`` works for every model and importing it registers
every table on :attr:`Base.metadata` (what Alembic's environment compares and migrates):

* :mod:`~marketbot.store.models_base`: the declarative base, naming convention, column types;
* :mod:`~marketbot.store.models_prices`: price series, Polymarket markets and order books;
* :mod:`~marketbot.store.models_runs`: stored backtests, optimisations, walk-forward runs;
* :mod:`~marketbot.store.models_bot`: the bot's runs, orders, trades and commands, the exit
  settings and the trade journal;
* :mod:`~marketbot.store.models_alerts`: alerts and events;
* :mod:`~marketbot.store.models_keys`: exchange credentials;
* :mod:`~marketbot.store.models_web`: the dashboard's users, sessions and jobs.

Each later migration (0002-0010) has its section in its domain's module; docs/store.md lists
every table.
"""

from __future__ import annotations

from marketbot.store.models_alerts import (
    ALERT_KINDS,
    ALERT_OPERATORS,
    EVENT_SEVERITIES,
    Alert,
    Event,
)
from marketbot.store.models_base import NAMING_CONVENTION, Base, UTCDateTime, utc_now
from marketbot.store.models_bot import (
    BOT_COMMAND_KINDS,
    BOT_COMMAND_STATUSES,
    BOT_MODES,
    ORDER_INTENTS,
    ORDER_SIDES,
    ORDER_STATUSES,
    ORDER_TYPES,
    TRADE_DIRECTIONS,
    VERIFICATION_STATUSES,
    BotCommand,
    BotOrder,
    BotOrderEvent,
    BotRiskEvent,
    BotRun,
    BotTrade,
    BotVerification,
    PositionConfig,
    TradeJournal,
)
from marketbot.store.models_keys import APIKey
from marketbot.store.models_prices import (
    CryptoPriceHistory,
    PolymarketBook,
    PolymarketHistory,
    PolymarketMarket,
)
from marketbot.store.models_runs import BacktestRun, OptimizationRun, WalkForwardRun
from marketbot.store.models_web import (
    JOB_KINDS,
    JOB_STATUSES,
    Job,
    WebLoginAttempt,
    WebSession,
    WebUser,
)

__all__ = [
    "ALERT_KINDS",
    "ALERT_OPERATORS",
    "BOT_COMMAND_KINDS",
    "BOT_COMMAND_STATUSES",
    "BOT_MODES",
    "EVENT_SEVERITIES",
    "JOB_KINDS",
    "JOB_STATUSES",
    "NAMING_CONVENTION",
    "ORDER_INTENTS",
    "ORDER_SIDES",
    "ORDER_STATUSES",
    "ORDER_TYPES",
    "TRADE_DIRECTIONS",
    "VERIFICATION_STATUSES",
    "APIKey",
    "Alert",
    "BacktestRun",
    "Base",
    "BotCommand",
    "BotOrder",
    "BotOrderEvent",
    "BotRiskEvent",
    "BotRun",
    "BotTrade",
    "BotVerification",
    "CryptoPriceHistory",
    "Event",
    "Job",
    "OptimizationRun",
    "PolymarketBook",
    "PolymarketHistory",
    "PolymarketMarket",
    "PositionConfig",
    "TradeJournal",
    "UTCDateTime",
    "WalkForwardRun",
    "WebLoginAttempt",
    "WebSession",
    "WebUser",
    "utc_now",
]
