"""Jinja filters: numbers that never raise on None, NaN or text."""

from __future__ import annotations

import math
from typing import Any

from jinja2 import Environment


def number(value: Any, digits: int = 2, suffix: str = "") -> str:
    """``value`` with ``digits`` decimals and a suffix, or an em dash when it is not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—"
    if not math.isfinite(value):
        return "∞" if value > 0 else ("-∞" if value < 0 else "—")
    return f"{value:,.{digits}f}{suffix}"


def install_filters(environment: Environment) -> None:
    """Register the dashboard's filters."""
    environment.filters["num"] = number
