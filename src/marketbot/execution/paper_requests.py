"""The checks on an order request to the paper venue: a malformed one is an ExchangeError."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from marketbot.core.errors import ExchangeError
from marketbot.execution.models import OrderSide, OrderType

__all__ = ["POSITIONS_AT_SIGNAL", "checked_params", "checked_request", "is_positive_number"]

# What ``params["position_at_signal"]`` may say: the position the bot held at the signal.
POSITIONS_AT_SIGNAL = {None: 0, 0: 0, 1: 1, "flat": 0, "long": 1}


def is_positive_number(value: object) -> bool:
    """A finite int or float above 0 (a bool is not a number here)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def checked_request(
    type: OrderType | str,
    side: OrderSide | str,
    amount: float | None,
    price: float | None,
    stop_price: float | None,
    cost: float | None,
) -> tuple[OrderType, OrderSide]:
    """The order's type and side, or ExchangeError when the request is malformed."""
    try:
        order_type, order_side = OrderType(type), OrderSide(side)
    except ValueError as exc:
        raise ExchangeError(f"paper exchange: {exc}") from None
    if (amount is None) == (cost is None):
        raise ExchangeError("paper exchange: give exactly one of amount and cost")
    for name, value, needed in (
        ("amount", amount, False),
        ("cost", cost, False),
        ("price", price, order_type is OrderType.LIMIT),
        ("stop_price", stop_price, order_type is OrderType.STOP),
    ):
        if (value is not None or needed) and not is_positive_number(value):
            raise ExchangeError(f"paper exchange: {name}={value!r} must be a positive number")
    return order_type, order_side


def checked_params(params: Mapping[str, object] | None) -> dict[str, Any]:
    """The order's ``params`` as JSON values; ExchangeError for a bad bracket id or signal."""
    extras: dict[str, Any] = {}
    for key, value in (params or {}).items():
        is_json = value is None or isinstance(value, str | int | float | bool)
        extras[str(key)] = value if is_json else str(value)
    protect = extras.get("protect_client_order_id")
    if protect is not None and (not isinstance(protect, str) or not protect):
        raise ExchangeError("paper exchange: protect_client_order_id must be a non-empty string")
    at_signal = extras.get("position_at_signal")
    if not isinstance(at_signal, int | str | None) or at_signal not in POSITIONS_AT_SIGNAL:
        raise ExchangeError(
            f"paper exchange: position_at_signal={at_signal!r}: use 'flat' or 'long' (0 or 1)"
        )
    return extras
