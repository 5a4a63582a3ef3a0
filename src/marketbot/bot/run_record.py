"""Which bot run a start continues, or the runs it archives before starting a new one.

Every runner (one strategy, several sleeves, binary markets) keeps one current run: a start
continues the current run of its strategy and symbol when nothing else is current and
``--fresh`` was not given; other current runs are refused unless ``--fresh`` archives them,
together with the paper account's ledger. What makes a stored run "the same" is each
runner's own (its identity, its message).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from marketbot.core.errors import ConfigError
from marketbot.store.bot import BotRunInfo, BotRunRepository


def current_and_others(
    runs: BotRunRepository, strategy: str, symbol: str, *, fresh: bool, archives: str
) -> tuple[BotRunInfo | None, list[BotRunInfo]]:
    """The current run of ``strategy`` on ``symbol`` (or None) and the other current runs.

    Raises:
        ConfigError: another run is current and ``fresh`` is not set (``archives`` says
            what ``--fresh`` archives).
    """
    current = runs.current_run(strategy, symbol)
    others = [r for r in runs.current_runs() if current is None or r.id != current.id]
    if others and not fresh:
        names = ", ".join(f"{r.strategy} on {r.symbol} (run {r.id})" for r in others)
        raise ConfigError(
            f"another bot run is current ({names}): finish it, or start this one with "
            f"--fresh (archives {archives})"
        )
    return current, others


def archive_runs(
    runs: BotRunRepository, current: BotRunInfo | None, others: list[BotRunInfo]
) -> None:
    """Archive the runs a new run replaces."""
    for stale in [*([] if current is None else [current]), *others]:
        runs.archive(stale.id)


def archive_ledger(ledger: Path) -> None:
    """Set the paper account's ledger aside (``ledger.archived-<time>.db``, with -wal, -shm)."""
    if not ledger.exists():
        return
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for suffix in ("", "-wal", "-shm"):
        path = ledger.with_name(ledger.name + suffix)
        if path.exists():
            path.rename(path.with_name(f"{ledger.stem}.archived-{stamp}.db{suffix}"))
