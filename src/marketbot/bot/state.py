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
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from marketbot.bot.faults import fault_point
from marketbot.core.clock import as_utc
from marketbot.core.errors import MarketbotError

STATE_DIR_NAME: Final = "state"
STATE_FILE_NAME: Final = "bot_state.json"
BACKUP_FILE_NAME: Final = "bot_state.backup.json"
SCHEMA_VERSION: Final = 1
DIRECTIONS: Final = ("long", "short")

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


class _UnreadableStateError(Exception):
    """A state file that cannot be used: ``headline`` (corrupt, missing...) and the detail."""

    def __init__(self, headline: str, detail: str = "") -> None:
        super().__init__(f"{headline} ({detail})" if detail else headline)
        self.headline = headline
        self.detail = detail


@dataclass(frozen=True, slots=True)
class PositionState:
    """An open position as the state file keeps it (and as ``status`` shows it).

    Attributes:
        position_id: Stable id (the entry's client order id, or the trade's id).
        strategy: The strategy that opened it.
        symbol: What is held.
        direction: ``long`` or ``short``.
        size: Units of the asset held.
        entry_price: Average entry fill price (quote currency).
        entry_time: When it was entered (UTC).
        extreme_price: The trailing stop's anchor (best price at earlier closes); None means
            the entry price.
        entry_client_order_id: The entry order's client order id, when known.
    """

    position_id: str
    strategy: str
    symbol: str
    direction: str
    size: float
    entry_price: float
    entry_time: datetime
    extreme_price: float | None = None
    entry_client_order_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "entry_time", as_utc(self.entry_time))
        _check_position(self)


@dataclass(frozen=True, slots=True)
class BotState:
    """Where the bot was at its last save.

    Attributes:
        timestamp: When the state was saved (UTC).
        portfolio_value: Equity in the quote currency at that time.
        active_strategies: The strategies the bot runs.
        open_positions: Positions held.
        pending_trades: Client order ids of orders sent and not final yet.
        circuit_breaker_active: Whether new entries were blocked.
        save_count: How many saves came before (the caller counts: ``save_state`` writes
            the number it is given).
        last_bar_time: Open time of the last closed bar the bot acted on (UTC).
    """

    timestamp: datetime
    portfolio_value: float
    active_strategies: tuple[str, ...] = ()
    open_positions: tuple[PositionState, ...] = ()
    pending_trades: tuple[str, ...] = ()
    circuit_breaker_active: bool = False
    save_count: int = 0
    last_bar_time: datetime | None = None

    def __post_init__(self) -> None:
        # Any sequence in, tuples kept: states compare equal however they were built.
        for name in ("active_strategies", "open_positions", "pending_trades"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "timestamp", as_utc(self.timestamp))
        if self.last_bar_time is not None:
            object.__setattr__(self, "last_bar_time", as_utc(self.last_bar_time))
        if not _finite(self.portfolio_value):
            raise ValueError(f"portfolio_value={self.portfolio_value!r}: must be finite")
        if isinstance(self.save_count, bool) or not isinstance(self.save_count, int):
            raise ValueError(f"save_count={self.save_count!r}: must be a whole number")
        if self.save_count < 0:
            raise ValueError(f"save_count={self.save_count}: must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        """The file's content without the checksum (times as ISO 8601 with +00:00)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "timestamp": _iso(self.timestamp),
            "active_strategies": list(self.active_strategies),
            "open_positions": [_position_dict(position) for position in self.open_positions],
            "pending_trades": list(self.pending_trades),
            "portfolio_value": float(self.portfolio_value),
            "circuit_breaker_active": bool(self.circuit_breaker_active),
            "save_count": self.save_count,
            "last_bar_time": None if self.last_bar_time is None else _iso(self.last_bar_time),
        }


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


# ---------------------------------------------------------------------------- encoding


def checksum_of(rest: Mapping[str, Any]) -> str:
    """The sha256 hex of the canonical JSON of everything but the checksum."""
    canonical = json.dumps(rest, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def encode_state(state: BotState) -> bytes:
    """The state file's bytes: indented JSON with the checksum, ending in a newline."""
    rest = state.to_dict()
    document = {**rest, "checksum": checksum_of(rest)}
    return (json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def decode_state(data: bytes) -> BotState:
    """The state a file's bytes hold, checksum and every field checked.

    Raises:
        ValueError: the bytes are not a valid state file; the message says why.
    """
    try:
        return _decode(data)
    except _UnreadableStateError as exc:
        raise ValueError(str(exc)) from None


def _decode(data: bytes) -> BotState:
    try:
        document = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise _UnreadableStateError("corrupt", "not UTF-8 text") from None
    except ValueError as exc:
        raise _UnreadableStateError("corrupt", f"not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise _UnreadableStateError("corrupt", "not a JSON object")
    stored = document.pop("checksum", None)
    if not isinstance(stored, str):
        raise _UnreadableStateError("corrupt", "no checksum")
    if not hmac.compare_digest(stored.encode(), checksum_of(document).encode()):
        raise _UnreadableStateError("corrupt", "checksum mismatch")
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise _UnreadableStateError(
            "unsupported", f"schema_version {version!r}, this marketbot reads {SCHEMA_VERSION}"
        )
    try:
        return _state_from_dict(document)
    except (KeyError, TypeError, ValueError) as exc:
        raise _UnreadableStateError("corrupt", str(exc)) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


_STATE_KEYS: Final = frozenset(
    {
        "schema_version",
        "timestamp",
        "active_strategies",
        "open_positions",
        "pending_trades",
        "portfolio_value",
        "circuit_breaker_active",
        "save_count",
        "last_bar_time",
    }
)
_POSITION_KEYS: Final = frozenset(
    {
        "position_id",
        "strategy",
        "symbol",
        "direction",
        "size",
        "entry_price",
        "entry_time",
        "extreme_price",
        "entry_client_order_id",
    }
)


def _state_from_dict(data: Mapping[str, Any]) -> BotState:
    _exact_keys(data, _STATE_KEYS, "state")
    if not isinstance(data["circuit_breaker_active"], bool):
        raise ValueError("circuit_breaker_active: must be true or false")
    last_bar = data["last_bar_time"]
    return BotState(
        timestamp=_time(data["timestamp"], "timestamp"),
        portfolio_value=_float(data["portfolio_value"], "portfolio_value"),
        active_strategies=_strings(data["active_strategies"], "active_strategies"),
        open_positions=tuple(
            _position_from_dict(item, f"open_positions[{index}]")
            for index, item in enumerate(_list(data["open_positions"], "open_positions"))
        ),
        pending_trades=_strings(data["pending_trades"], "pending_trades"),
        circuit_breaker_active=data["circuit_breaker_active"],
        save_count=data["save_count"],
        last_bar_time=None if last_bar is None else _time(last_bar, "last_bar_time"),
    )


def _position_from_dict(data: Any, where: str) -> PositionState:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: must be an object")
    _exact_keys(data, _POSITION_KEYS, where)
    extreme, entry_id = data["extreme_price"], data["entry_client_order_id"]
    try:
        return PositionState(
            position_id=_string(data["position_id"], f"{where}.position_id"),
            strategy=_string(data["strategy"], f"{where}.strategy"),
            symbol=_string(data["symbol"], f"{where}.symbol"),
            direction=_string(data["direction"], f"{where}.direction"),
            size=_float(data["size"], f"{where}.size"),
            entry_price=_float(data["entry_price"], f"{where}.entry_price"),
            entry_time=_time(data["entry_time"], f"{where}.entry_time"),
            extreme_price=None if extreme is None else _float(extreme, f"{where}.extreme_price"),
            entry_client_order_id=(
                None if entry_id is None else _string(entry_id, f"{where}.entry_client_order_id")
            ),
        )
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _position_dict(position: PositionState) -> dict[str, Any]:
    return {
        "position_id": position.position_id,
        "strategy": position.strategy,
        "symbol": position.symbol,
        "direction": position.direction,
        "size": float(position.size),
        "entry_price": float(position.entry_price),
        "entry_time": _iso(position.entry_time),
        "extreme_price": None if position.extreme_price is None else float(position.extreme_price),
        "entry_client_order_id": position.entry_client_order_id,
    }


def _check_position(position: PositionState) -> None:
    if position.direction not in DIRECTIONS:
        raise ValueError(f"direction={position.direction!r}: must be long or short")
    if not _finite(position.size) or position.size <= 0:
        raise ValueError(f"size={position.size!r}: must be a finite number above 0")
    if not _finite(position.entry_price) or position.entry_price < 0:  # 0: a binary outcome
        raise ValueError(f"entry_price={position.entry_price!r}: must be a finite number >= 0")
    extreme = position.extreme_price
    if extreme is not None and (not _finite(extreme) or extreme <= 0):
        raise ValueError(f"extreme_price={extreme!r}: must be a finite number above 0")


def _exact_keys(data: Mapping[str, Any], expected: frozenset[str], where: str) -> None:
    missing, unexpected = sorted(expected - set(data)), sorted(set(data) - expected)
    if missing:
        raise ValueError(f"{where}: missing key(s) {', '.join(missing)}")
    if unexpected:
        raise ValueError(f"{where}: unexpected key(s) {', '.join(unexpected)}")


def _finite(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _float(value: Any, where: str) -> float:
    if not _finite(value):
        raise ValueError(f"{where}: must be a finite number, got {value!r}")
    return float(value)


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where}: must be text, got {value!r}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{where}: must be a list")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    return tuple(
        _string(item, f"{where}[{index}]") for index, item in enumerate(_list(value, where))
    )


def _time(value: Any, where: str) -> datetime:
    moment = datetime.fromisoformat(_string(value, where))
    if moment.tzinfo is None:
        raise ValueError(f"{where}: {value!r} has no UTC offset")
    return as_utc(moment)


def _iso(moment: datetime) -> str:
    return as_utc(moment).isoformat()


# ---------------------------------------------------------------------------- files


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
    except _UnreadableStateError as exc:
        main_problem = exc
    try:
        state = _read(paths.backup)
    except _UnreadableStateError as exc:
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
        raise _UnreadableStateError("missing") from None
    except OSError as exc:
        raise _UnreadableStateError("unreadable", str(exc.strerror or exc)) from None
    return _decode(data)


def _problem(path: Path) -> str | None:
    try:
        _read(path)
    except _UnreadableStateError as exc:
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
