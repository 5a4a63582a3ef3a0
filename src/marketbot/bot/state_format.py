"""The bot's state file format: the state it holds, and its bytes, checksum and checks.

The file holds the seed's keys (``timestamp``, ``active_strategies``, ``open_positions``,
``pending_trades``, ``portfolio_value``, ``circuit_breaker_active``, ``save_count``) plus
``schema_version``, ``last_bar_time`` and ``checksum``. Writing and reading the files
atomically, with the backup, is :mod:`marketbot.bot.state`'s job.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from marketbot.core.clock import as_utc

SCHEMA_VERSION: Final = 1
DIRECTIONS: Final = ("long", "short")


class UnreadableStateError(Exception):
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
        return parse_state_bytes(data)
    except UnreadableStateError as exc:
        raise ValueError(str(exc)) from None


def parse_state_bytes(data: bytes) -> BotState:
    """:func:`decode_state` for the state files: a bad file is an :class:`UnreadableStateError`."""
    try:
        document = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise UnreadableStateError("corrupt", "not UTF-8 text") from None
    except ValueError as exc:
        raise UnreadableStateError("corrupt", f"not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise UnreadableStateError("corrupt", "not a JSON object")
    stored = document.pop("checksum", None)
    if not isinstance(stored, str):
        raise UnreadableStateError("corrupt", "no checksum")
    if not hmac.compare_digest(stored.encode(), checksum_of(document).encode()):
        raise UnreadableStateError("corrupt", "checksum mismatch")
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise UnreadableStateError(
            "unsupported", f"schema_version {version!r}, this marketbot reads {SCHEMA_VERSION}"
        )
    try:
        return _state_from_dict(document)
    except (KeyError, TypeError, ValueError) as exc:
        raise UnreadableStateError("corrupt", str(exc)) from None


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
