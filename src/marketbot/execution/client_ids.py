r"""Client order ids: one deterministic id per (run, strategy, symbol, bar, intent, attempt).

The same decision always gets the same id, so after a crash the bot can ask the exchange
whether an order with that id exists before placing it again, and an exchange that already
holds the id refuses a duplicate. The id is::

    "mb-" + sha256(payload).hexdigest()[:29]          # 32 characters

where ``payload`` is the UTF-8 encoding of the six fields joined by the unit separator
``"\x1f"`` (U+001F), in this order:

1. ``run_id`` as given;
2. ``strategy`` as given;
3. ``symbol`` as given (``BTC/USDT``);
4. ``bar_time`` in UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (always six fraction digits; a
   naive datetime is taken as UTC, an aware one converted);
5. ``intent``, one of ``entry``, ``exit``, ``protect``, ``force_entry``, ``force_exit``;
6. ``attempt`` in decimal (``0`` for the first attempt, ``1`` for the next...).

32 characters of ``[a-z0-9-]`` fit every exchange's limit (Binance allows 36); 29 hex
digits are 116 bits, so two decisions never share an id by chance.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Final

from marketbot.core.clock import as_utc
from marketbot.core.errors import ConfigError

__all__ = [
    "CLIENT_ORDER_ID_LENGTH",
    "CLIENT_ORDER_ID_PREFIX",
    "Intent",
    "client_id_of",
    "client_order_id",
]

CLIENT_ORDER_ID_PREFIX: Final = "mb-"
CLIENT_ORDER_ID_LENGTH: Final = 32
_FIELD_SEPARATOR: Final = "\x1f"
_HEX_DIGITS: Final = CLIENT_ORDER_ID_LENGTH - len(CLIENT_ORDER_ID_PREFIX)


class Intent(StrEnum):
    """Why an order is placed: the bot's decision it carries out."""

    ENTRY = "entry"
    EXIT = "exit"
    PROTECT = "protect"
    FORCE_ENTRY = "force_entry"
    FORCE_EXIT = "force_exit"


def client_order_id(
    run_id: str,
    strategy: str,
    symbol: str,
    bar_time: datetime,
    intent: Intent | str,
    attempt: int,
) -> str:
    """The client order id of one decision: ``mb-`` and 29 hex digits (see the module doc).

    Args:
        run_id: The bot run (or replay) the decision belongs to.
        strategy: The strategy's name.
        symbol: The pair traded.
        bar_time: The open time of the bar whose close made the decision.
        intent: Entry, exit, protective stop, or a forced (manual) entry or exit.
        attempt: 0 for the first order of this decision, then 1, 2... for re-placements.

    Raises:
        ConfigError: an empty or separator-containing text field (or one with a lone
            surrogate, which UTF-8 cannot encode), an unknown intent, a
            ``bar_time`` that is not a datetime, or an ``attempt`` that is not an int >= 0.
    """
    texts = {"run_id": run_id, "strategy": strategy, "symbol": symbol}
    for name, value in texts.items():
        if not isinstance(value, str) or not value:
            raise ConfigError(f"`{name}` must be a non-empty string, got {value!r}")
        if _FIELD_SEPARATOR in value:
            raise ConfigError(f"`{name}` must not contain the unit separator \\x1f: {value!r}")
        if not _is_utf8_text(value):
            raise ConfigError(f"`{name}` must be text UTF-8 can encode (no lone surrogates)")
    if not isinstance(bar_time, datetime):
        raise ConfigError(f"`bar_time` must be a datetime, got {bar_time!r}")
    try:
        intent_value = Intent(intent).value
    except ValueError:
        known = ", ".join(item.value for item in Intent)
        raise ConfigError(f"`intent` must be one of {known}; got {intent!r}") from None
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
        raise ConfigError(f"`attempt` must be an int >= 0, got {attempt!r}")
    fields = (
        run_id,
        strategy,
        symbol,
        _iso_utc(bar_time),
        intent_value,
        str(attempt),
    )
    return client_id_of(_FIELD_SEPARATOR.join(fields))


def client_id_of(payload: str) -> str:
    """A client order id fixed by ``payload``: ``mb-`` and 29 hex digits of its sha256.

    The one form of the bot's ids; a replacement order or a venue's own exit derives its id
    from the order it follows, so a restart finds it instead of placing it twice.
    """
    digest = hashlib.sha256(payload.encode("utf-8")).hexdigest()[:_HEX_DIGITS]
    return CLIENT_ORDER_ID_PREFIX + digest


def _iso_utc(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC.

    Formatted by hand: strftime's %Y does not pad years below 1000 on every platform.
    """
    utc = as_utc(moment)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond:06d}Z"
    )


def _is_utf8_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
