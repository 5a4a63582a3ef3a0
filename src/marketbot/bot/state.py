"""The bot's state file: what a restarted bot needs besides the database, written atomically.

The database is the truth and is committed first; the state file is a fast summary of where
the bot was (``$MARKETBOT_DATA_DIR/state/bot_state.json``, the previous good one in
``bot_state.backup.json``). The file holds the seed's keys (``timestamp``,
``active_strategies``, ``open_positions``, ``pending_trades``, ``portfolio_value``,
``circuit_breaker_active``, ``save_count``) plus ``schema_version``, ``last_bar_time`` and
``checksum``: the sha256 hex of ``json.dumps(rest, sort_keys=True, separators=(",", ":"))``
where ``rest`` is every other key.

A save writes a temporary file, fsyncs it, turns the current good file into the backup (a
hard link, so the current file never disappears), renames the temporary file over the current
one and fsyncs the folder. A crash at any point leaves the previous state or the new one
readable, never a torn file. Loading checks the checksum and every field; a bad file falls
back to the backup (logging ``state file ... corrupt, using backup ...``); both bad is a
:class:`StateError` naming both files and ``--reset-state``. See docs/recovery.md.

The file's content and its checks are in :mod:`marketbot.bot.state_format`.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from marketbot.bot.faults import fault_point
from marketbot.bot.state_format import (
    DIRECTIONS,
    SCHEMA_VERSION,
    BotState,
    PositionState,
    UnreadableStateError,
    checksum_of,
    decode_state,
    encode_state,
    parse_state_bytes,
)
from marketbot.core.clock import as_utc
from marketbot.core.errors import MarketbotError

__all__ = [
    "BACKUP_FILE_NAME",
    "DIRECTIONS",
    "SCHEMA_VERSION",
    "STATE_DIR_NAME",
    "STATE_FILE_NAME",
    "BotState",
    "PositionState",
    "StateError",
    "StatePaths",
    "checksum_of",
    "decode_state",
    "encode_state",
    "load_state",
    "reset_state",
    "save_state",
]

STATE_DIR_NAME: Final = "state"
STATE_FILE_NAME: Final = "bot_state.json"
BACKUP_FILE_NAME: Final = "bot_state.backup.json"

_log = logging.getLogger(__name__)


class StateError(MarketbotError):
    """Neither the state file nor its backup can be used; the message names both.

    Attributes:
        main: The state file.
        backup: Its backup.
    """

    def __init__(self, main: Path, main_problem: str, backup: Path, backup_problem: str) -> None:
        super().__init__(
            f"cannot recover the bot's state: {main} is {main_problem} and its backup "
            f"{backup} is {backup_problem}; repair or remove them, or start the bot with "
            "--reset-state to set both aside and rebuild the state from the database"
        )
        self.main = main
        self.backup = backup


@dataclass(frozen=True, slots=True)
class StatePaths:
    """The files of one bot's state folder."""

    state_dir: Path

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> StatePaths:
        """The state folder of a data directory: ``DATA_DIR/state``."""
        return cls(Path(data_dir) / STATE_DIR_NAME)

    @property
    def main(self) -> Path:
        """``bot_state.json``: the current state."""
        return self.state_dir / STATE_FILE_NAME

    @property
    def backup(self) -> Path:
        """``bot_state.backup.json``: the state before the last save."""
        return self.state_dir / BACKUP_FILE_NAME

    @property
    def temp(self) -> Path:
        """Where a save writes before the rename (a leftover after a crash is ignored)."""
        return self.state_dir / f".{STATE_FILE_NAME}.tmp"

    @property
    def backup_temp(self) -> Path:
        """Where the new backup is linked before it replaces the old one."""
        return self.state_dir / f".{BACKUP_FILE_NAME}.tmp"


def save_state(state_dir: Path, state: BotState) -> Path:
    """Write ``state`` atomically; the previous good state becomes the backup.

    Order: temporary file, fsync, link the current good file as the backup, rename the
    temporary file over the current one, fsync the folder. A crash anywhere leaves a
    readable state (old or new). A current file that is itself bad is not made the backup,
    so a good backup is never replaced by a bad one.

    Returns:
        The state file's path.

    Raises:
        OSError: the folder or a file cannot be written.
    """
    paths = StatePaths(Path(state_dir))
    data = encode_state(state)
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        fault_point("after_temp_write")
        os.fsync(fd)
    finally:
        os.close(fd)
    fault_point("after_fsync")
    if _problem(paths.main) is None:
        _make_backup(paths)
    os.replace(paths.temp, paths.main)
    fault_point("after_rename")
    _fsync_dir(paths.state_dir)
    return paths.main


def load_state(state_dir: Path) -> BotState | None:
    """The saved state: the state file, else its backup; None when neither exists.

    Falling back to the backup logs a warning ``state file ... corrupt, using backup ...``.

    Raises:
        StateError: both files exist or one of them does, and neither is usable; the
            message names both and ``--reset-state``.
    """
    paths = StatePaths(Path(state_dir))
    if not paths.main.exists() and not paths.backup.exists():
        return None
    try:
        return _read(paths.main)
    except UnreadableStateError as exc:
        main_problem = exc
    try:
        state = _read(paths.backup)
    except UnreadableStateError as exc:
        raise StateError(paths.main, str(main_problem), paths.backup, str(exc)) from None
    _log.warning(
        "state file %s %s, using backup %s%s",
        paths.main,
        main_problem.headline,
        paths.backup,
        f" ({main_problem.detail})" if main_problem.detail else "",
    )
    return state


def reset_state(state_dir: Path, now: datetime) -> list[Path]:
    """Set the state file and its backup aside, for ``--reset-state``; returns the new names.

    Both are renamed with ``.reset-<UTC time>`` (kept for a post-mortem, not deleted); the
    bot then starts from the database alone.
    """
    paths = StatePaths(Path(state_dir))
    stamp = as_utc(now).strftime("%Y%m%dT%H%M%SZ")
    moved = []
    for path in (paths.main, paths.backup):
        if path.exists():
            target = path.with_name(f"{path.stem}.reset-{stamp}{path.suffix}")
            os.replace(path, target)
            moved.append(target)
    if moved:
        _fsync_dir(paths.state_dir)
    return moved


def _read(path: Path) -> BotState:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UnreadableStateError("missing") from None
    except OSError as exc:
        raise UnreadableStateError("unreadable", str(exc.strerror or exc)) from None
    return parse_state_bytes(data)


def _problem(path: Path) -> str | None:
    try:
        _read(path)
    except UnreadableStateError as exc:
        return str(exc)
    return None


def _make_backup(paths: StatePaths) -> None:
    """Make the backup the same file as the current one, replacing the old backup at once."""
    paths.backup_temp.unlink(missing_ok=True)
    try:
        os.link(paths.main, paths.backup_temp)
    except OSError:
        # A file system without hard links: a copy, made durable before it replaces the old.
        shutil.copyfile(paths.main, paths.backup_temp)
        with paths.backup_temp.open("rb+") as copy:
            os.fsync(copy.fileno())
    os.replace(paths.backup_temp, paths.backup)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
