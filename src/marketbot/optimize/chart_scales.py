"""Scales of the optimisation report's charts: round ticks, compact numbers, colours, axes.

Plain geometry and colour arithmetic, no markup: :class:`ColorScale` colours a metric from
worse to better (a diverging red-blue scale centred on 0 when the values straddle 0, else
sequential blue; reversed for minimised metrics), :func:`make_axis` lays out a heatmap axis
(binned beyond ``MAX_AXIS_VALUES`` values), :func:`nice_ticks` picks round tick values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from marketbot.backtest.report_tables import format_value

__all__ = [
    "AXIS_BINS",
    "MAX_AXIS_VALUES",
    "Axis",
    "ColorScale",
    "compact_number",
    "make_axis",
    "nice_ticks",
    "plain",
    "text_color",
]

MAX_AXIS_VALUES: Final = 100
"""Most distinct values a heatmap axis shows one by one; beyond, a numeric axis is binned."""
AXIS_BINS: Final = 50
"""Bins of a numeric axis that has more than ``MAX_AXIS_VALUES`` values."""
_SEQUENTIAL: Final = ("#dbe8fb", "#a9c9f5", "#5f9ae8", "#2b63d0", "#1e3a8a")  # worse to better
_NEGATIVE: Final = ("#f8fafc", "#fecaca", "#f87171", "#b91c1c")  # 0 down to the lowest
_POSITIVE: Final = ("#f8fafc", "#bfdbfe", "#3b82f6", "#1e3a8a")  # 0 up to the highest


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value, so it hashes, prints and compares like one."""
    return value.item() if isinstance(value, np.generic) else value


def compact_number(value: float) -> str:
    """A number in about five characters: ``1.43``, ``482``, ``66.5k``, ``1.2M``, ``∞``."""
    if math.isnan(value):
        return "—"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    size = abs(value)
    for limit, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M")):
        if size >= limit:
            return f"{value / limit:.3g}{suffix}"
    if size >= 1e4:
        return f"{value / 1e3:.1f}k"
    return f"{value:.0f}" if size >= 100 else f"{value:.1f}" if size >= 10 else f"{value:.2f}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round values (1, 2, 2.5 or 5 x 10^k apart) within ``low``..``high``."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low] if math.isfinite(low) else []
    raw = (high - low) / max(1, count)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    return [round(k * step, 12) for k in range(first, last + 1)]


@dataclass(frozen=True, slots=True)
class ColorScale:
    """Maps a metric value to a fill, darker blue meaning better.

    Attributes:
        low: The lowest finite value.
        high: The highest finite value.
        minimise: Smaller values are better (drawdowns).
        diverging: The values straddle 0: red below, white at 0, blue above.
    """

    low: float
    high: float
    minimise: bool
    diverging: bool

    @classmethod
    def of(cls, values: Sequence[float], *, minimise: bool) -> ColorScale:
        """The scale for ``values`` (non-finite ones do not widen the range)."""
        finite = [value for value in values if math.isfinite(value)]
        low, high = (min(finite), max(finite)) if finite else (0.0, 0.0)
        return cls(low, high, minimise, diverging=not minimise and low < 0 < high)

    def color(self, value: float) -> str:
        """The fill of ``value`` as ``#rrggbb``; +-inf take the ends of the scale."""
        if math.isnan(value):
            return "#ffffff"
        if self.diverging:
            if value >= 0:
                return _interpolate(_POSITIVE, _clip(value / self.high))
            return _interpolate(_NEGATIVE, _clip(value / self.low))
        span = self.high - self.low
        if math.isinf(value):
            share = 1.0 if value > 0 else 0.0
        else:
            share = 1.0 if span <= 0 else _clip((value - self.low) / span)
        return _interpolate(_SEQUENTIAL, 1.0 - share if self.minimise else share)

    def stops(self) -> list[tuple[float, str]]:
        """The legend's gradient: (percent along the bar, colour), worse on the left."""
        if self.diverging:
            negative = [(50.0 * (1 - i / 3), color) for i, color in enumerate(_NEGATIVE)]
            positive = [(50.0 + 50.0 * i / 3, color) for i, color in enumerate(_POSITIVE)]
            return sorted(negative[1:] + positive)
        return [(25.0 * i, color) for i, color in enumerate(_SEQUENTIAL)]


def _clip(share: float) -> float:
    return 0.0 if math.isnan(share) else min(1.0, max(0.0, share))


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _interpolate(stops: Sequence[str], share: float) -> str:
    position = share * (len(stops) - 1)
    index = min(int(position), len(stops) - 2)
    fraction = position - index
    pairs = zip(_rgb(stops[index]), _rgb(stops[index + 1]), strict=True)
    return "#{:02x}{:02x}{:02x}".format(*(round(a + (b - a) * fraction) for a, b in pairs))


def text_color(fill: str) -> str:
    """Dark or white text, whichever reads better on ``fill``."""
    red, green, blue = _rgb(fill)
    return "#0f172a" if (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255 > 0.55 else "#fff"


@dataclass(frozen=True, slots=True)
class Axis:
    """One chart axis: a parameter and its positions.

    Attributes:
        name: The parameter.
        labels: The text of each position (a value, or a bin's centre).
        position: Maps one of the parameter's values to its position.
        binned: Positions are equal bins of a numeric range.
        numbers: Each position as a number; None for categories (booleans, text).
    """

    name: str
    labels: tuple[str, ...]
    position: Callable[[Any], int]
    binned: bool
    numbers: tuple[float, ...] | None


def make_axis(name: str, values: Sequence[Any] | pd.Series) -> Axis:
    """The axis of parameter ``name`` over ``values`` (one per row, repeats allowed).

    Numbers sort ascending, booleans False first, other values keep their first appearance;
    more than ``MAX_AXIS_VALUES`` distinct numbers become ``AXIS_BINS`` equal bins.
    """
    distinct = list(dict.fromkeys(plain(value) for value in values))
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in distinct)
    if numeric and len(distinct) > MAX_AXIS_VALUES:
        low, width = float(min(distinct)), (float(max(distinct)) - float(min(distinct))) / AXIS_BINS
        centres = tuple(low + (i + 0.5) * width for i in range(AXIS_BINS))
        return Axis(
            name,
            tuple(
                str(round(c)) if all(isinstance(v, int) for v in distinct) else f"{c:.4g}"
                for c in centres
            ),
            lambda value: min(AXIS_BINS - 1, int((float(value) - low) / width)),
            binned=True,
            numbers=centres,
        )
    if numeric or all(isinstance(value, bool) for value in distinct):
        distinct.sort()
    index = {value: position for position, value in enumerate(distinct)}
    return Axis(
        name,
        tuple(format_value(value) for value in distinct),
        lambda value: index[plain(value)],
        binned=False,
        numbers=tuple(float(value) for value in distinct) if numeric else None,
    )
