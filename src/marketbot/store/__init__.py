"""The store: SQLAlchemy models, migrations and the queries the rest of marketbot needs.

Build one :class:`Database` from the settings (``Database.from_settings``), call
:meth:`Database.migrate` once at start-up, and pass it to the repositories:
:class:`PriceRepository` for OHLCV series and :class:`BacktestRunRepository` for saved
backtests. See docs/store.md.
"""

from marketbot.core.timestamps import TimeLike
from marketbot.store.database import Database, alembic_config
from marketbot.store.models import (
    Alert,
    APIKey,
    BacktestRun,
    Base,
    CryptoPriceHistory,
    PolymarketBook,
    PolymarketHistory,
    PolymarketMarket,
    PositionConfig,
    TradeJournal,
    UTCDateTime,
)
from marketbot.store.polymarket import (
    PolymarketMarketInfo,
    PolymarketMarketSummary,
    PolymarketPricePoint,
    PolymarketRepository,
    TrackedPolymarketMarket,
)
from marketbot.store.polymarket_books import ImportSummary, PolymarketBookRepository
from marketbot.store.prices import PriceRepository, SeriesSummary, canonical_timeframe
from marketbot.store.runs import (
    BacktestOutcome,
    BacktestRecord,
    BacktestRunRepository,
    BacktestRunSummary,
    StoredBacktestRun,
    record_from_result,
)

__all__ = [
    "APIKey",
    "Alert",
    "BacktestOutcome",
    "BacktestRecord",
    "BacktestRun",
    "BacktestRunRepository",
    "BacktestRunSummary",
    "Base",
    "CryptoPriceHistory",
    "Database",
    "ImportSummary",
    "PolymarketBook",
    "PolymarketBookRepository",
    "PolymarketHistory",
    "PolymarketMarket",
    "PolymarketMarketInfo",
    "PolymarketMarketSummary",
    "PolymarketPricePoint",
    "PolymarketRepository",
    "PositionConfig",
    "PriceRepository",
    "SeriesSummary",
    "StoredBacktestRun",
    "TimeLike",
    "TrackedPolymarketMarket",
    "TradeJournal",
    "UTCDateTime",
    "alembic_config",
    "canonical_timeframe",
    "record_from_result",
]
