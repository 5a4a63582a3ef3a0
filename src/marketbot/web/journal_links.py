"""What a journal entry's ``trade_ref`` points at: a closed bot trade or a backtest's trade."""

from __future__ import annotations

from typing import Any

from marketbot.core.errors import DataError
from marketbot.store.database import Database
from marketbot.store.runs import BacktestRunRepository
from marketbot.store.web_queries import bot_trade


class TradeLinks:
    """Resolves trade references, reading each backtest run once per request."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._runs: dict[int, tuple[str, str, list[dict[str, Any]]] | None] = {}

    def resolve(self, reference: str | None) -> dict[str, Any] | None:
        """The linked trade (symbol, strategy, times, prices, P&L), or None if it is gone."""
        if not reference:
            return None
        kind, _, rest = reference.partition(":")
        if kind == "trade" and rest.isdigit():
            return bot_trade(self._database, int(rest))
        run_text, _, number_text = rest.partition(":")
        if kind != "run" or not run_text.isdigit() or not number_text.isdigit():
            return None
        run = self._run(int(run_text))
        number = int(number_text)
        if run is None or not 1 <= number <= len(run[2]):
            return None
        strategy, symbol, trades = run
        return {"strategy": strategy, "symbol": symbol, **trades[number - 1]}

    def _run(self, run_id: int) -> tuple[str, str, list[dict[str, Any]]] | None:
        if run_id not in self._runs:
            try:
                record = BacktestRunRepository(self._database).get(run_id).record
                self._runs[run_id] = (
                    record.strategy,
                    record.symbol,
                    [dict(t) for t in record.trades],
                )
            except DataError:
                self._runs[run_id] = None
        return self._runs[run_id]
