"""Job handlers beyond the single backtest: comparison, optimisation, data collection."""

from __future__ import annotations

from marketbot.web.worker import JobHandler

MORE_HANDLERS: dict[str, JobHandler] = {}
