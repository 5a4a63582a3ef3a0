"""The daily update: every collector brings what it tracks up to date, on a schedule.

:class:`DailyUpdater` runs CoinGecko's, the exchanges' and Polymarket's updates in turn; a
failure in one series is reported and the rest still update. :func:`build_daily_scheduler`
runs a job once a day at a fixed UTC hour with APScheduler (and once at start), for
``marketbot data update --daemon``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC
from typing import TYPE_CHECKING, Any

from marketbot.config import Settings
from marketbot.core.clock import Clock
from marketbot.core.errors import ConfigError, MarketbotError
from marketbot.net import RetryPolicy
from marketbot.sources.collector import (
    HistoricalDataCollector,
    SeriesUpdate,
    coingecko_currency,
)
from marketbot.sources.exchange_candles import ExchangeCandleDownloader
from marketbot.sources.exchange_client import ExchangeClient
from marketbot.sources.polymarket import PolymarketCollector
from marketbot.store.database import Database
from marketbot.store.polymarket import PolymarketRepository
from marketbot.store.prices import PriceRepository, SeriesSummary

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

__all__ = ["DAILY_JOB_ID", "DailyUpdater", "build_daily_scheduler"]

DAILY_JOB_ID = "marketbot-daily-update"
_LOG = logging.getLogger(__name__)
Progress = Callable[[int, int], None]


class DailyUpdater:
    """Brings every stored series up to date: CoinGecko coins, exchange pairs, Polymarket.

    Args:
        settings: API URLs, keys and rates.
        database: Where the series are stored.
        clock: What "now" is.
        sleep: How to wait between retries and for the rate limit.
    """

    def __init__(
        self,
        settings: Settings,
        database: Database,
        *,
        clock: Clock | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self._clock = clock
        self._sleep = sleep

    def run(self, progress: Progress | None = None) -> list[SeriesUpdate]:
        """Update everything once; one entry per series or market, failures included."""
        series = PriceRepository(self.database).list_series()
        updates = self._update_coingecko(series, progress)
        updates += self._update_exchanges(series)
        updates += self._update_polymarket()
        for update in updates:
            _LOG.info("%s", update)
        return updates

    def _update_coingecko(
        self, stored: list[SeriesSummary], progress: Progress | None
    ) -> list[SeriesUpdate]:
        """Every CoinGecko series, one collector per quote currency."""
        currencies = sorted(
            {currency for s in stored if (currency := coingecko_currency(s.source)) is not None}
        )
        updates: list[SeriesUpdate] = []
        for currency in currencies:
            try:
                collector = HistoricalDataCollector.from_settings(
                    self.settings,
                    self.database,
                    vs_currency=currency,
                    clock=self._clock,
                    sleep=self._sleep,
                )
            except MarketbotError as exc:
                updates.append(SeriesUpdate(f"coingecko ({currency})", 0, error=str(exc)))
                continue
            try:
                updates += collector.update_all(progress=progress, stored=stored)
            finally:
                collector.close()
        return updates

    def _update_exchanges(self, stored: list[SeriesSummary]) -> list[SeriesUpdate]:
        """Every stored exchange pair (a ``BASE/QUOTE`` symbol under a ccxt exchange id)."""
        candidates = [
            series
            for series in stored
            if "/" in series.symbol and coingecko_currency(series.source) is None
        ]
        if not candidates:
            return []  # ccxt takes seconds to import: only when there is an exchange series
        import ccxt

        by_exchange: dict[str, list[SeriesSummary]] = {}
        for series in candidates:
            if series.source in ccxt.exchanges:
                by_exchange.setdefault(series.source, []).append(series)
        updates: list[SeriesUpdate] = []
        for exchange_id, series_list in by_exchange.items():
            updates += self._update_exchange(exchange_id, series_list)
        return updates

    def _update_exchange(
        self, exchange_id: str, series_list: list[SeriesSummary]
    ) -> list[SeriesUpdate]:
        labels = [f"{exchange_id}/{s.symbol}/{s.timeframe}" for s in series_list]
        sleep = self._sleep if self._sleep is not None else time.sleep
        urls = self.settings.exchange_api_urls.get(exchange_id)
        try:
            client = ExchangeClient(
                exchange_id,
                api_urls=urls,
                policy=RetryPolicy.from_settings(self.settings, sleep=sleep),
                clock=self._clock,
            )
        except MarketbotError as exc:  # e.g. a bad URL override: every pair of it fails
            return [SeriesUpdate(label, 0, error=str(exc)) for label in labels]
        updates = []
        with client:
            downloader = ExchangeCandleDownloader(client, PriceRepository(self.database))
            for label, series in zip(labels, series_list, strict=True):
                try:
                    summary = downloader.update(series.symbol, series.timeframe)
                except MarketbotError as exc:
                    updates.append(SeriesUpdate(label, 0, error=str(exc)))
                else:
                    detail = f"{label}: {summary}"
                    updates.append(SeriesUpdate(label, summary.bars_stored, detail=detail))
        return updates

    def _update_polymarket(self) -> list[SeriesUpdate]:
        if not PolymarketRepository(self.database).list_markets():
            return []
        try:
            with PolymarketCollector.from_settings(
                self.settings, self.database, clock=self._clock, sleep=self._sleep
            ) as collector:
                summary = collector.update_all()
        except MarketbotError as exc:
            return [SeriesUpdate("polymarket", 0, error=str(exc))]
        updates = [
            SeriesUpdate(
                f"polymarket/{market.market.slug}", market.points, detail=market.describe()
            )
            for market in summary.collected
        ]
        updates += [
            SeriesUpdate(f"polymarket/{slug}", 0, error=message)
            for slug, message in summary.failures
        ]
        return updates


def build_daily_scheduler(
    job: Callable[[], Any],
    *,
    hour_utc: int,
    run_at_start: bool = True,
    scheduler: BaseScheduler | None = None,
) -> BaseScheduler:
    """A scheduler that runs ``job`` every day at ``hour_utc``:00 UTC (and once at start).

    Runs that were missed (the machine slept) are run once when it wakes, within an hour;
    two runs never overlap.

    Args:
        job: What to run.
        hour_utc: Hour of the day, 0-23, UTC.
        run_at_start: Also run the job as soon as the scheduler starts.
        scheduler: The APScheduler scheduler to add the job to; a blocking one by default.

    Raises:
        ConfigError: ``hour_utc`` is not 0-23.
    """
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.cron import CronTrigger

    if isinstance(hour_utc, bool) or not isinstance(hour_utc, int) or not 0 <= hour_utc <= 23:
        raise ConfigError(f"the update hour must be 0-23 (UTC), got {hour_utc!r}")
    if scheduler is None:
        scheduler = BlockingScheduler(timezone=UTC)
    exclusive_job = _one_at_a_time(job)
    options: dict[str, Any] = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600}
    scheduler.add_job(
        exclusive_job,
        CronTrigger(hour=hour_utc, minute=0, timezone=UTC),
        id=DAILY_JOB_ID,
        **options,
    )
    if run_at_start:
        scheduler.add_job(exclusive_job, id=f"{DAILY_JOB_ID}-at-start", **options)
    return scheduler


def _one_at_a_time(job: Callable[[], Any]) -> Callable[[], Any]:
    """``job``, skipped (and logged) while a previous run is still going."""
    running = threading.Lock()

    def run_exclusively() -> Any:
        if not running.acquire(blocking=False):
            _LOG.warning("the previous update is still running; this run is skipped")
            return None
        try:
            return job()
        finally:
            running.release()

    return run_exclusively
