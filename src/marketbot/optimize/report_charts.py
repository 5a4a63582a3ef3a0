"""The charts of the optimisation report as plain geometry: the heatmap and metric profiles.

Nothing here writes markup: each function turns numbers into coordinates, colours and short
texts that ``report_template.html.j2`` draws as inline SVG, so all text is still escaped by
Jinja2's autoescaping.

- :func:`parameter_chart`: the metric over the two parameters with the most distinct
  values, one cell per combination, coloured from worse to better (a diverging red-blue
  scale centred on 0 when the values straddle 0, else sequential blue; minimised metrics are
  reversed, so darker blue is always better). More parameters: a grid shows the best slice
  (the others at the best combination), a smart search each cell's best trial. The best cell
  is outlined, ineligible ones (fewer trades than ``min_trades``) grey and hatched, and
  combinations never evaluated leave the background showing. A numeric axis with more than
  ``MAX_AXIS_VALUES`` values is cut into ``AXIS_BINS`` bins. One varying parameter gives a
  profile instead.
- :func:`build_profile`: the metric against one parameter's values, a line through points
  with the best marked (the one-parameter chart and each sensitivity curve).

+-inf values (a profit factor with no losing trade) take the better end of the colour scale
or the edge of a profile, and read ``∞``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import pandas as pd

from marketbot.backtest.report import METRIC_FORMATS, format_metric
from marketbot.backtest.report_tables import format_value
from marketbot.optimize.chart_scales import (
    AXIS_BINS,
    MAX_AXIS_VALUES,
    Axis,
    ColorScale,
    compact_number,
    make_axis,
    nice_ticks,
    plain,
    text_color,
)

if TYPE_CHECKING:
    from marketbot.optimize.optimizer import OptimizationResult

__all__ = [
    "AXIS_BINS",
    "MAX_AXIS_VALUES",
    "MAX_TITLED_CELLS",
    "Axis",
    "ColorScale",
    "build_profile",
    "compact_number",
    "make_axis",
    "metric_label",
    "nice_ticks",
    "parameter_chart",
    "plain",
]

MAX_TITLED_CELLS: Final = 400
"""Heatmaps up to this many cells carry a tooltip per cell; larger ones only the hover line."""
_PLOT: Final = (880, 520)  # most width and height of the cells, SVG units
_MAX_CELL: Final = (132, 48)
_TOP, _RIGHT, _BOTTOM = 16, 16, 50
_TEXT_MIN_CELL: Final = (40, 18)
_LABEL_CHARS: Final = 14
_INELIGIBLE_FILL: Final = "url(#hm-ineligible)"


def metric_label(key: str) -> str:
    """The report's label of a metric (``Sharpe ratio``), or the key itself."""
    return METRIC_FORMATS[key].label if key in METRIC_FORMATS else key


def parameter_chart(
    result: OptimizationResult, names: Sequence[str], varying: Sequence[str], best: Any
) -> dict[str, Any]:
    """The heatmap (two or more varying parameters), a profile (one) or nothing (none).

    Args:
        result: The optimisation.
        names: Its parameter columns, in grid order.
        varying: Those with more than one value.
        best: The index label of the best row (None when nothing is eligible).
    """
    table = result.results
    if not varying:
        return {"kind": "none"}
    if len(varying) == 1:
        return _profile_chart(result, make_axis(varying[0], table[varying[0]]), best)
    counts = {name: table[name].nunique() for name in varying}
    chosen = sorted(varying, key=lambda name: -counts[name])[:2]
    # The axis with more values runs across (ties: the later parameter), the other down.
    x_name, y_name = sorted(chosen, key=lambda name: (counts[name], names.index(name)))[::-1]
    x_axis, y_axis = make_axis(x_name, table[x_name]), make_axis(y_name, table[y_name])
    others = [name for name in names if name not in (x_name, y_name)]
    sliced = result.method == "grid" and not (x_axis.binned or y_axis.binned) and best is not None
    rows = table
    for name in others if sliced else ():
        rows = rows[rows[name] == table.at[best, name]]
    return {
        "kind": "heatmap",
        "mode": "slice" if sliced else "projection",
        "fixed": [(name, format_value(plain(table.at[best, name]))) for name in others]
        if sliced
        else [],
        "others": others,
        "binned": [axis.name for axis in (x_axis, y_axis) if axis.binned],
        **_heatmap(result, rows, x_axis, y_axis, best, [] if sliced else others),
    }


def _best_first(result: OptimizationResult, rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per distinct ``keys``: eligible before ineligible, then the best metric."""
    ordered = rows.assign(_ineligible=~rows["eligible"].astype(bool)).sort_values(
        ["_ineligible", result.metric], ascending=[True, result.minimise], kind="stable"
    )
    return ordered.drop_duplicates(subset=keys, keep="first")


def _heatmap(
    result: OptimizationResult,
    rows: pd.DataFrame,
    x_axis: Axis,
    y_axis: Axis,
    best: Any,
    others: Sequence[str],
) -> dict[str, Any]:
    """Cells, axes, legend and hover data of the heatmap SVG (units are SVG pixels)."""
    metric = result.metric
    placed = rows.assign(
        _column=rows[x_axis.name].map(x_axis.position), _row=rows[y_axis.name].map(y_axis.position)
    )
    kept = _best_first(result, placed, ["_column", "_row"])
    columns, count_rows = len(x_axis.labels), len(y_axis.labels)
    left = 40 + 7 * min(_LABEL_CHARS, max(len(label) for label in y_axis.labels))
    width = max(2, min(_MAX_CELL[0], _PLOT[0] // columns))
    height = max(2, min(_MAX_CELL[1], _PLOT[1] // count_rows))
    values = [float(value) for value in kept[metric]]
    eligible = kept["eligible"].astype(bool).tolist()
    scale = ColorScale.of(
        [v for v, ok in zip(values, eligible, strict=True) if ok], minimise=result.minimise
    )
    best_at = (
        (placed.at[best, "_column"], placed.at[best, "_row"]) if best in placed.index else None
    )
    titled = len(kept) <= MAX_TITLED_CELLS
    readout: list[list[str | None]] = [[None] * columns for _ in range(count_rows)]
    cells = []
    for (label, row), value, ok in zip(kept.iterrows(), values, eligible, strict=True):
        column, line, trades = int(row["_column"]), int(row["_row"]), int(row["num_trades"])
        fill = scale.color(value) if ok else _INELIGIBLE_FILL
        title = ""
        if titled:
            at = [
                f"{y_axis.name} = {y_axis.labels[line]}",
                f"{x_axis.name} = {x_axis.labels[column]}",
            ]
            at += [f"{name} = {format_value(plain(row[name]))}" for name in others]
            title = " · ".join([*at, f"{metric_label(metric)} {format_metric(metric, value)}"])
            title += f" · {trades:,} trades" + ("" if ok else " (too few: ineligible)")
            title += " · the best" if label == best else ""
        cells.append(
            {
                "x": left + column * width,
                "y": _TOP + line * height,
                "fill": fill,
                "text": compact_number(value),
                "text_fill": text_color(fill) if ok else "#64748b",
                "title": title,
                "kind": "best" if (column, line) == best_at else "" if ok else "ineligible",
            }
        )
        readout[line][column] = f"{compact_number(value)}|{trades}" + ("" if ok else "|i")
    plot_width, plot_height = width * columns, height * count_rows
    return {
        "svg": {
            "width": left + plot_width + _RIGHT,
            "height": _TOP + plot_height + _BOTTOM,
            "left": left,
            "top": _TOP,
            "plot_width": plot_width,
            "plot_height": plot_height,
        },
        "cell_width": width,
        "cell_height": height,
        "cells": cells,
        "titled": titled,
        "show_text": width >= _TEXT_MIN_CELL[0] and height >= _TEXT_MIN_CELL[1],
        "font_size": 12 if width >= 56 else 10,
        "x_title": x_axis.name,
        "y_title": y_axis.name,
        "x_labels": _axis_labels(x_axis.labels, width, left, across=True),
        "y_labels": _axis_labels(y_axis.labels, height, _TOP, across=False),
        "best": next(({"x": c["x"], "y": c["y"]} for c in cells if c["kind"] == "best"), None),
        "legend": _legend(scale, [v for v, ok in zip(values, eligible, strict=True) if ok]),
        "shown": f"{len(cells):,}",
        "has_ineligible": not all(eligible),
        "has_missing": len(cells) < columns * count_rows,
        "readout": {
            "x": list(x_axis.labels),
            "y": list(y_axis.labels),
            "cells": readout,
            "x_name": x_axis.name,
            "y_name": y_axis.name,
            "left": left,
            "top": _TOP,
            "cell_width": width,
            "cell_height": height,
        },
    }


def _axis_labels(
    labels: Sequence[str], cell: int, offset: int, *, across: bool
) -> list[dict[str, Any]]:
    """Labels centred on their cells, thinned to every k-th when they would overlap."""
    longest = min(_LABEL_CHARS, max((len(label) for label in labels), default=1))
    step = max(1, math.ceil((longest * 7.0 + 10 if across else 14.0) / cell))
    return [
        {"at": offset + index * cell + cell / 2, "text": _shorten(labels[index])}
        for index in range(0, len(labels), step)
    ]


def _shorten(text: str) -> str:
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"


def _legend(scale: ColorScale, values: Sequence[float]) -> dict[str, Any]:
    if not any(math.isfinite(value) for value in values):
        return {"stops": scale.stops(), "worse": "—", "better": "—", "zero": False}
    worse, better = (scale.high, scale.low) if scale.minimise else (scale.low, scale.high)
    infinite = not scale.minimise and any(value == math.inf for value in values)
    return {
        "stops": scale.stops(),
        "worse": compact_number(worse),
        "better": "∞" if infinite else compact_number(better),
        "zero": scale.diverging,
    }


def _profile_chart(result: OptimizationResult, axis: Axis, best: Any) -> dict[str, Any]:
    """The metric against the one varying parameter (each value's best row)."""
    table = result.results
    placed = table.assign(_position=table[axis.name].map(axis.position))
    kept = _best_first(result, placed, ["_position"]).sort_values("_position")
    positions = [int(p) for p in kept["_position"]]
    values = [float(v) for v in kept[result.metric]]
    best_position = axis.position(table.at[best, axis.name]) if best in table.index else None
    titles = [
        f"{axis.name} = {axis.labels[p]} · {metric_label(result.metric)} "
        f"{format_metric(result.metric, v)} · {int(t):,} trades"
        for p, v, t in zip(positions, values, kept["num_trades"], strict=True)
    ]
    return {
        "kind": "profile",
        "parameter": axis.name,
        "binned": [axis.name] if axis.binned else [],
        "has_ineligible": not bool(kept["eligible"].all()),
        "profile": build_profile(
            [axis.labels[p] for p in positions],
            None if axis.numbers is None else [axis.numbers[p] for p in positions],
            values,
            kept["eligible"].astype(bool).tolist(),
            positions.index(best_position) if best_position in positions else None,
            titles=titles,
        ),
    }


def build_profile(
    labels: Sequence[str],
    positions: Sequence[float] | None,
    values: Sequence[float],
    eligible: Sequence[bool],
    best_index: int | None,
    *,
    titles: Sequence[str],
    size: tuple[int, int] = (1000, 300),
) -> dict[str, Any]:
    """Geometry of a metric-against-parameter line chart.

    Args:
        labels: Each point's parameter value as text.
        positions: Each point's numeric x (proportional spacing); None spaces them evenly.
        values: Each point's metric; +-inf sit on the top or bottom edge.
        eligible: False draws the point hollow and grey (too few trades).
        best_index: The point marked as the best, if any.
        titles: Each point's tooltip.
        size: SVG width and height.

    Returns:
        ``width``/``height``, the plot box (``left``, ``top``, ``plot_width``,
        ``plot_height``), ``path`` (through the finite points; none for categories),
        ``points`` (x, y, title,
        kind, label), ``y_ticks``/``x_ticks`` (at, text), ``zero`` (the y of 0, or None) and
        ``best`` (its point, or None).
    """
    width, height = size
    left, top, plot_width, plot_height = 64, 26, width - 64 - 18, height - 26 - 44
    finite = [value for value in values if math.isfinite(value)] or [0.0, 1.0]
    pad = (max(finite) - min(finite)) * 0.08 or max(abs(max(finite)) * 0.1, 1.0)
    ticks = nice_ticks(min(finite) - pad, max(finite) + pad, 4)
    low, high = min(finite) - pad, max(finite) + pad

    def y_of(value: float) -> float:
        if math.isinf(value):
            return top if value > 0 else top + plot_height
        return round(top + plot_height * (high - value) / (high - low), 1)

    xs = _x_positions(positions, len(values), left, plot_width)
    points = [
        {
            "x": round(x, 1),
            "y": y_of(value),
            "title": title,
            "kind": "best" if i == best_index else "" if ok else "ineligible",
            "label": compact_number(value) if len(values) <= 24 else "",
        }
        for i, (x, value, ok, title) in enumerate(zip(xs, values, eligible, titles, strict=True))
    ]
    path = [f"{p['x']},{p['y']}" for p, v in zip(points, values, strict=True) if math.isfinite(v)]
    step = max(1, math.ceil(len(values) / max(1, plot_width // 64)))
    return {
        "width": width,
        "height": height,
        "left": left,
        "top": top,
        "plot_width": plot_width,
        "plot_height": plot_height,
        # Categories (booleans, text) have no order to draw a line along: dots only.
        "path": "M" + " L".join(path) if path and positions is not None else "",
        "points": points,
        "y_ticks": [{"at": y_of(t), "text": compact_number(t)} for t in ticks if low <= t <= high],
        "x_ticks": [
            {"at": round(xs[i], 1), "text": _shorten(labels[i])}
            for i in range(0, len(values), step)
        ],
        "zero": y_of(0.0) if low < 0 < high else None,
        "best": points[best_index] if best_index is not None else None,
    }


def _x_positions(
    positions: Sequence[float] | None, count: int, left: int, plot_width: int
) -> list[float]:
    """Proportional to ``positions`` when they differ, else each point centred in its slot."""
    if positions is not None and count > 1 and max(positions) > min(positions):
        inset = min(40.0, plot_width / (2 * count))
        low, span = min(positions), max(positions) - min(positions)
        return [left + inset + (plot_width - 2 * inset) * (p - low) / span for p in positions]
    slot = plot_width / max(count, 1)
    return [left + slot * (i + 0.5) for i in range(count)]
