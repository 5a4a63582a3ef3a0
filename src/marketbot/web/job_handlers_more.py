"""Job handlers beyond the single backtest: comparison, optimisation, data collection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marketbot.web.schemas import CollectRequest, FillGapsRequest
from marketbot.web.worker import JobHandler, JobRun


def run_collect_job(run: JobRun) -> Mapping[str, Any]:
    """Collect CoinGecko history of one coin (through net/, at the configured URL)."""
    from marketbot.sources.collector import HistoricalDataCollector

    request = CollectRequest.model_validate(run.params)
    run.progress(0.1, f"asking CoinGecko for {request.days} days of {request.symbol}")
    with HistoricalDataCollector.from_settings(run.settings, run.database) as collector:
        summary = collector.collect_crypto_history(request.symbol, request.days)
    run.progress(1.0, str(summary))
    return {
        "series": f"{summary.source}/{summary.symbol}/{summary.timeframe}",
        "bars_stored": summary.bars_stored,
        "message": str(summary),
        "url": "/data",
    }


def run_fill_gaps_job(run: JobRun) -> Mapping[str, Any]:
    """Fetch only the missing bars of a stored CoinGecko series, window by window."""
    from marketbot.sources.collector import HistoricalDataCollector

    request = FillGapsRequest.model_validate(run.params)
    run.progress(0.02, f"finding the gaps of {request.symbol}")

    def advance(done: int, total: int) -> None:
        run.progress(done / total if total else 1.0, f"window {done} of {total}")

    with HistoricalDataCollector.from_settings(run.settings, run.database) as collector:
        summary = collector.fill_gaps(request.symbol, timeframe=request.timeframe, progress=advance)
    return {"message": str(summary), "url": "/data"}


def _more() -> dict[str, JobHandler]:
    from marketbot.web.compare_jobs import run_compare_job
    from marketbot.web.optimize_jobs import run_optimize_job

    return {
        "collect": run_collect_job,
        "fill_gaps": run_fill_gaps_job,
        "compare": run_compare_job,
        "optimize": run_optimize_job,
    }


MORE_HANDLERS: dict[str, JobHandler] = _more()
