"""Points in time as the data layer takes them: anything pandas reads, made a UTC Timestamp."""

from __future__ import annotations

from datetime import datetime
from typing import TypeAlias

import numpy as np
import pandas as pd

from marketbot.core.errors import ConfigError
from marketbot.core.timeframes import NANOSECONDS_PER_SECOND

__all__ = ["TimeLike", "epoch_seconds_to_index", "parse_utc"]

TimeLike: TypeAlias = pd.Timestamp | datetime | str
"""A point in time: a Timestamp, a datetime or an ISO 8601 string; naive means UTC."""


def parse_utc(value: TimeLike, what: str) -> pd.Timestamp:
    """``value`` as a tz-aware UTC Timestamp; a naive one is taken to be UTC already.

    Args:
        value: The point in time.
        what: Its name for the error message, e.g. ``start``.

    Raises:
        ConfigError: ``value`` is not a date or time (``"start: not a date or time: 'soon'"``).
    """
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{what}: not a date or time: {value!r}") from exc
    if pd.isna(stamp):
        raise ConfigError(f"{what}: not a date or time: {value!r}")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def epoch_seconds_to_index(seconds: np.ndarray) -> pd.DatetimeIndex:
    """Whole seconds since the epoch (as the store keeps them) as a UTC ``timestamp`` index."""
    nanoseconds = np.asarray(seconds, dtype=np.int64) * NANOSECONDS_PER_SECOND
    return pd.DatetimeIndex(nanoseconds.view("datetime64[ns]"), name="timestamp").tz_localize("UTC")
