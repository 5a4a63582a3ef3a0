"""``marketbot run --strategy NAME --market SLUG`` without ``--replay``: live paper."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from marketbot.core.errors import ConfigError

if TYPE_CHECKING:
    from marketbot.backtest.binary_config import BinaryConfig
    from marketbot.config import Settings
    from marketbot.store.database import Database
    from marketbot.strategies.binary import BinaryStrategy


def run_live_paper(
    database: Database,
    settings: Settings,
    strategy: BinaryStrategy,
    params: Mapping[str, Any],
    markets: Sequence[str],
    config: BinaryConfig,
    *,
    fresh: bool,
    reset_state: bool,
) -> None:
    """Poll the markets' CLOB books and trade them on paper until stopped."""
    raise ConfigError("live paper trading of binary markets: give --replay START END for now")
