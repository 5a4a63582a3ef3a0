"""Metrics for people: label, formatted value with its unit, and the tooltip."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from marketbot.backtest.report import METRIC_FORMATS, format_metric


def metric_rows(metrics: Mapping[str, float | int | None]) -> list[dict[str, Any]]:
    """The known metrics in the report's order, grouped, formatted with their units."""
    rows = []
    for key, fmt in METRIC_FORMATS.items():
        if key not in metrics:
            continue
        rows.append(
            {
                "key": key,
                "label": fmt.label,
                "group": fmt.group,
                "unit": fmt.unit,
                "hint": fmt.hint,
                "text": format_metric(key, metrics[key]),
            }
        )
    return rows


def json_number(value: Any) -> Any:
    """A JSON-safe number: a non-finite float becomes None (profit factor with no loss)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Every metric with non-finite values as None."""
    return {key: json_number(value) for key, value in metrics.items()}
