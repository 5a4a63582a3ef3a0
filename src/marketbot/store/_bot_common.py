"""What the bot's record repositories share: value checks and row conversion.

Private to the store: ``store.bot``, ``store.bot_orders`` and ``store.bot_commands`` use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any, Final, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketbot.core.errors import DataError
from marketbot.store._codec import from_json_value, to_json_value
from marketbot.store.models import BotRun

Clock = Callable[[], datetime]


def one_of(value: str, allowed: Sequence[str], what: str) -> str:
    """``value`` if it is one of ``allowed``, else a DataError naming ``what`` and them."""
    if value not in allowed:
        raise DataError(f"{what} {value!r}: use one of {', '.join(allowed)}")
    return value


def text(value: str | None, what: str, max_length: int) -> str:
    """``value`` if it is non-blank text that fits its column, else a DataError."""
    if value is None or not value.strip():
        raise DataError(f"{what} must not be empty")
    if len(value) > max_length:
        raise DataError(f"{what} is {len(value)} characters long, at most {max_length} fit")
    return value


def number(value: float | None, what: str, *, positive: bool = False) -> float | None:
    """``value`` as a finite float (above 0 when ``positive``); None stays None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(f"{what} must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or (positive and number <= 0):
        raise DataError(
            f"{what}={value!r}: must be a finite number{' above 0' if positive else ''}"
        )
    return number


def json_object(value: Mapping[str, Any], what: str) -> dict[str, Any]:
    """A JSON-ready copy of a mapping (non-finite floats as strings), else a DataError."""
    if not isinstance(value, Mapping):
        raise DataError(f"{what}: must be a mapping, got {type(value).__name__}")
    encoded: dict[str, Any] = to_json_value(value, where=what)
    return encoded


_Info = TypeVar("_Info")
# Model attribute names that differ from the value classes' field names.
_RENAMED: Final = {"order_type": "type"}
_JSON_FIELDS: Final = frozenset({"params", "config", "details", "args"})


def info_from_row(cls: type[_Info], row: Any) -> _Info:
    """A value class filled from a model row by field name (JSON columns decoded)."""
    values = {}
    for item in fields(cls):  # type: ignore[arg-type]
        value = getattr(row, _RENAMED.get(item.name, item.name))
        values[item.name] = from_json_value(value) if item.name in _JSON_FIELDS else value
    return cls(**values)


def refused(what: str, exc: IntegrityError) -> DataError:
    """The DataError for a write the database refused (a constraint, a foreign key)."""
    return DataError(f"{what}: refused by the store, nothing was stored: {exc.orig}")


def run_row(session: Session, bot_run_id: int) -> BotRun:
    """The run with this id, or a DataError saying there is none."""
    row = session.get(BotRun, bot_run_id)
    if row is None:
        raise DataError(f"no bot run with id {bot_run_id}")
    return row
