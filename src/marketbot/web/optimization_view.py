"""An optimisation run for the page: ranking, heatmap cells, sensitivity, walk-forward."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from marketbot.web.metrics_view import json_number


def _score(row: dict[str, Any], metric: str, minimise: bool) -> float:
    value = row.get(metric)
    if not isinstance(value, int | float) or math.isnan(value) or not row.get("eligible", True):
        return -math.inf
    return -float(value) if minimise else float(value)


def parameter_names(results: Sequence[dict[str, Any]], best_params: dict[str, Any]) -> list[str]:
    """The searched parameters, in the order of the best combination."""
    return [name for name in best_params if results and name in results[0]]


def ranking(
    results: Sequence[dict[str, Any]], metric: str, minimise: bool, top: int = 20
) -> list[dict[str, Any]]:
    """The best ``top`` combinations by the metric, best first (ineligible ones last)."""
    ordered = sorted(results, key=lambda row: _score(row, metric, minimise), reverse=True)
    return [{k: json_number(v) for k, v in row.items()} for row in ordered[:top]]


def _sort_key(value: Any) -> tuple[int, float, str]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def heatmap(
    results: Sequence[dict[str, Any]], x: str, y: str, metric: str, minimise: bool
) -> dict[str, Any]:
    """The metric over two parameters: per cell the best combination's value."""
    best: dict[tuple[Any, Any], float] = {}
    for row in results:
        if x not in row or y not in row:
            continue
        key = (row[x], row[y])
        score = _score(row, metric, minimise)
        if key not in best or score > best[key]:
            best[key] = score
    xs = sorted({k[0] for k in best}, key=_sort_key)
    ys = sorted({k[1] for k in best}, key=_sort_key)
    cells = [
        {"x": str(kx), "y": str(ky),
         "v": None if math.isinf(score) else round(-score if minimise else score, 6)}
        for (kx, ky), score in best.items()
    ]  # fmt: skip
    return {"x": x, "y": y, "xs": [str(v) for v in xs], "ys": [str(v) for v in ys],
            "cells": cells, "metric": metric}  # fmt: skip


def sensitivity(
    results: Sequence[dict[str, Any]], names: Sequence[str], metric: str, minimise: bool
) -> list[dict[str, Any]]:
    """Per parameter: the best metric at each of its values, and the spread between them."""
    out = []
    for name in names:
        by_value: dict[Any, float] = {}
        for row in results:
            score = _score(row, metric, minimise)
            value = row.get(name)
            if value not in by_value or score > by_value[value]:
                by_value[value] = score
        finite = {k: (-s if minimise else s) for k, s in by_value.items() if not math.isinf(s)}
        spread = max(finite.values()) - min(finite.values()) if finite else None
        out.append(
            {"name": name, "spread": spread,
             "values": [{"value": str(k), "metric": v}
                        for k, v in sorted(finite.items(), key=lambda item: _sort_key(item[0]))]}
        )  # fmt: skip
    return out


def diagnostics_rows(diagnostics: Any) -> list[tuple[str, str]]:
    """The overfitting diagnostics as label/value pairs (deflated Sharpe, PBO...)."""
    rows: list[tuple[str, str]] = []
    if not isinstance(diagnostics, dict):
        return rows
    for section, values in diagnostics.items():
        if isinstance(values, dict):
            for key, value in values.items():
                if isinstance(value, float):
                    rows.append((f"{section}: {key}", f"{value:.4g}"))
                elif isinstance(value, int | bool | str) and value != "":
                    rows.append((f"{section}: {key}", str(value)))
        elif isinstance(values, int | float):
            rows.append((section, f"{values:g}"))
    return rows
