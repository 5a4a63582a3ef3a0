"""The HTML report of an optimisation: one self-contained file that opens offline.

:func:`write_optimization_report` saves and :func:`render_optimization_report` returns one
page with the run's header (strategy, symbol, method, metric and its direction, combinations
evaluated and skipped, the best parameters and metric), a heatmap of the metric over two
parameters (or a line over one), the ranked table of the best combinations (sortable), and,
when given or present, the sensitivity curves, the walk-forward validation and the
overfitting diagnostics (deflated Sharpe ratio, PBO) of ``result.diagnostics``.

Heatmap and curves are inline SVG (geometry in :mod:`marketbot.optimize.report_charts`); the
walk-forward equity chart uses the vendored TradingView Lightweight Charts, inlined only when
there is a walk-forward section, its curve decimated to the minimum and maximum of each run of
bars as in the backtest report. The page makes no network request.

All user text (strategy, symbol, parameter names and values, notes) goes through Jinja2's
autoescaping and the chart data through ``tojson``, so nothing in a result injects markup.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from marketbot.backtest.report import axes_script, format_metric, package_template, write_html
from marketbot.backtest.report_charts import MAX_CHART_POINTS, min_max_indices
from marketbot.backtest.report_tables import format_value
from marketbot.core.metrics import METRIC_KEYS
from marketbot.optimize.report_charts import build_profile, metric_label, parameter_chart, plain

if TYPE_CHECKING:
    from marketbot.optimize.optimizer import OptimizationResult
    from marketbot.optimize.sensitivity import SensitivityResult
    from marketbot.optimize.walk_forward import WalkForwardResult, WalkForwardWindow

__all__ = ["DEFAULT_TOP", "render_optimization_report", "write_optimization_report"]

DEFAULT_TOP: Final = 50
"""Combinations the ranked table lists by default, the best first."""
_TABLE_METRICS: Final = (
    "return_pct",
    "cagr_pct",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown_pct",
    "profit_factor",
    "win_rate",
    "num_trades",
    "exposure_pct",
)
_NOT_PARAMETERS: Final = frozenset({*METRIC_KEYS, "eligible", "trial"})
_TEMPLATE_NAME: Final = "report_template.html.j2"
_CHART_LIBRARY: Final = ("assets", "vendor", "lightweight-charts")
_CHART_LIBRARY_FILE: Final = "lightweight-charts.standalone.production.js"
_BADGES: Final = {"EXCELLENT": "excellent", "GOOD": "good", "MARGINAL": "marginal"}
_VERDICTS: Final = {"good": "pass", "marginal": "inconclusive", "bad": "fail"}


@dataclass(frozen=True, slots=True)
class _Diagnostic:
    """How the report shows one overfitting diagnostic of ``result.diagnostics``."""

    title: str
    value_format: Callable[[float], str]
    bounds: tuple[float, float]  # (good, marginal); good < marginal when lower is better
    hint: str
    rows: tuple[tuple[str, str, str], ...]  # (label, field, format) of the inputs shown


_DIAGNOSTICS: Final = {
    "deflated_sharpe": _Diagnostic(
        "Deflated Sharpe ratio",
        "{:.3f}".format,
        (0.95, 0.5),
        "Probability that the best combination's true Sharpe ratio beats the best of N "
        "skill-less trials: 0.95 or more is likely real, below 0.5 likely luck.",
        (
            ("Observed Sharpe, per period", "observed_sharpe", "{:.4f}"),
            ("Best of N by luck (SR0)", "expected_max_sharpe", "{:.4f}"),
            ("Trials (N)", "num_trials", "{:,.0f}"),
            ("Returns (T)", "num_returns", "{:,.0f}"),
            ("Skewness", "skewness", "{:.2f}"),
            ("Kurtosis", "kurtosis", "{:.2f}"),
        ),
    ),
    "pbo": _Diagnostic(
        "Probability of backtest overfitting",
        lambda value: f"{value * 100:.1f} %",
        (0.2, 0.5),
        "How often the in-sample winner ranks in the bottom half out-of-sample (CSCV): "
        "below 20 % is robust, 50 % or more means the search found noise.",
        (
            ("Splits evaluated", "num_combinations", "{:,.0f}"),
            ("Blocks (S)", "num_splits", "{:,.0f}"),
            ("Combinations (N)", "num_columns", "{:,.0f}"),
            ("Periods (T)", "num_rows", "{:,.0f}"),
            ("Probability of loss", "probability_of_loss", "{:.2f}"),
            ("Degradation slope", "degradation_slope", "{:.3f}"),
        ),
    ),
}


def render_optimization_report(
    result: OptimizationResult,
    *,
    sensitivity: SensitivityResult | None = None,
    walk_forward: WalkForwardResult | None = None,
    top: int = DEFAULT_TOP,
) -> str:
    """The report of ``result`` as one self-contained HTML document.

    Args:
        result: A finished optimisation. Its ``diagnostics`` add the overfitting section
            when they hold ``deflated_sharpe`` or ``pbo`` (dicts, or objects with
            ``to_dict()``, as ``marketbot.optimize.diagnostics`` makes them).
        sensitivity: Adds the sensitivity curves (the metric against each parameter's values,
            the others at the best point).
        walk_forward: Adds the walk-forward section (per-window table, stitched out-of-sample
            equity chart).
        top: How many of the best eligible combinations the ranked table lists (at least 1).

    Returns:
        The HTML text, with styles, scripts and data inlined.
    """
    return package_template("marketbot.optimize", _TEMPLATE_NAME).render(
        **_context(result, sensitivity, walk_forward, max(1, top))
    )


def write_optimization_report(
    result: OptimizationResult,
    path: str | Path,
    *,
    sensitivity: SensitivityResult | None = None,
    walk_forward: WalkForwardResult | None = None,
    top: int = DEFAULT_TOP,
) -> Path:
    """Write the report of ``result`` to ``path`` (parent folders are created).

    Args:
        result: A finished optimisation.
        path: Where to write the ``.html`` file; an existing file is replaced.
        sensitivity: Adds the sensitivity curves, as for :func:`render_optimization_report`.
        walk_forward: Adds the walk-forward section.
        top: How many of the best eligible combinations the ranked table lists.

    Returns:
        The absolute path written.
    """
    html = render_optimization_report(
        result, sensitivity=sensitivity, walk_forward=walk_forward, top=top
    )
    return write_html(html, path)


@functools.cache
def _chart_library() -> str:
    folder = resources.files("marketbot").joinpath(*_CHART_LIBRARY)
    return folder.joinpath(_CHART_LIBRARY_FILE).read_text("utf-8")


def _context(
    result: OptimizationResult,
    sensitivity: SensitivityResult | None,
    walk_forward: WalkForwardResult | None,
    top: int,
) -> dict[str, Any]:
    table = result.results
    names = _parameter_names(result)
    varying = [name for name in names if table[name].nunique() > 1]
    best = _best_label(result, names)
    eligible = int(table["eligible"].sum())
    return {
        "title": f"{result.strategy} on {result.symbol}",
        "strategy": result.strategy,
        "symbol": result.symbol,
        "method": result.method,
        "metric_label": metric_label(result.metric),
        "direction": "lower is better" if result.minimise else "higher is better",
        "evaluated": f"{len(table):,}",
        "eligible": f"{eligible:,}",
        "ineligible": f"{len(table) - eligible:,}" if eligible < len(table) else "",
        "skipped": f"{result.skipped:,}",
        "best_params": [
            (str(key), format_value(plain(value)), key in varying)
            for key, value in (result.best_params or {}).items()
        ],
        "best_metric": format_metric(result.metric, result.best_metric),
        "kpis": _kpis(result, None if best is None else table.loc[best]),
        "chart": parameter_chart(result, names, varying, best),
        "ranked": _ranked_table(result, varying or names, top),
        "sensitivity": None if sensitivity is None else _sensitivity(sensitivity),
        "walk_forward": None if walk_forward is None else _walk_forward(walk_forward),
        "diagnostics": _diagnostics(result.diagnostics),
        "chart_library": "" if walk_forward is None else _chart_library(),
        "axes_script": "" if walk_forward is None else axes_script(),
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _parameter_names(result: OptimizationResult) -> list[str]:
    """The results table's parameter columns, in grid order."""
    columns = [str(c) for c in result.results.columns if c not in _NOT_PARAMETERS]
    return [name for name in columns if name in (result.best_params or {})] or columns


def _best_label(result: OptimizationResult, names: Sequence[str]) -> Any:
    """The index label of the best row: the first whose parameters are ``best_params``."""
    table = result.results
    best_params = result.best_params or {}  # none without an eligible combination
    matches = pd.Series(True, index=table.index)
    for name in names:
        if name in best_params:
            matches &= table[name] == best_params[name]
    if matches.any():
        return matches.idxmax()
    ranked = result.ranked()
    return ranked.index[0] if len(ranked) else None


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _tone(key: str, value: float) -> str:
    """``pos``/``neg`` for returns, so the page colours gains and losses."""
    if key not in ("return_pct", "cagr_pct") or not math.isfinite(value) or value == 0:
        return ""
    return "pos" if value > 0 else "neg"


def _tile(label: str, key: str, value: Any) -> dict[str, str]:
    number = _number(value)
    return {"label": label, "value": format_metric(key, number), "tone": _tone(key, number)}


def _kpis(result: OptimizationResult, best_row: pd.Series | None) -> list[dict[str, str]]:
    """Headline tiles: the best metric and the best combination's return, risk and trades."""
    row: Mapping[Any, Any] = {} if best_row is None else best_row.to_dict()
    tiles = [_tile(f"Best {metric_label(result.metric)}", result.metric, result.best_metric)]
    for key in ("return_pct", "max_drawdown_pct", "profit_factor", "win_rate", "num_trades"):
        if key != result.metric and key in row:
            tiles.append(_tile(metric_label(key), key, row[key]))
    return tiles


def _cell(text: str, sort: Any, tone: str = "") -> dict[str, str]:
    """A table cell: shown text, sort key (numbers as JavaScript reads them) and tone."""
    if isinstance(sort, float) and not math.isfinite(sort):
        sort = "" if math.isnan(sort) else "Infinity" if sort > 0 else "-Infinity"
    return {
        "text": text,
        "sort": repr(sort) if isinstance(sort, float) else str(sort),
        "tone": tone,
    }


def _metric_cell(key: str, value: Any) -> dict[str, str]:
    number = _number(value)
    return _cell(format_metric(key, number), number, _tone(key, number))


def _ranked_table(result: OptimizationResult, names: Sequence[str], top: int) -> dict[str, Any]:
    """The best ``top`` eligible combinations: rank, parameters, the metric and key metrics."""
    ranked = result.ranked()
    metrics = [result.metric, *(key for key in _TABLE_METRICS if key != result.metric)]
    metrics = [key for key in metrics if key in ranked.columns]
    rows = []
    for rank, (_, row) in enumerate(ranked.head(top).iterrows(), start=1):
        values = [plain(row[name]) for name in names]
        parameters = [_cell(format_value(v), v if _is_number(v) else str(v)) for v in values]
        rows.append(
            [_cell(str(rank), rank), *parameters, *(_metric_cell(k, row[k]) for k in metrics)]
        )
    shown = ranked.head(top)
    kinds = {n: "num" if all(map(_is_number, map(plain, shown[n]))) else "text" for n in names}
    return {
        "columns": [
            {"label": "#", "kind": "num", "key": False},
            *({"label": name, "kind": kinds[name], "key": False} for name in names),
            *(
                {"label": metric_label(k), "kind": "num", "key": k == result.metric}
                for k in metrics
            ),
        ],
        "rows": rows,
        "total": f"{len(ranked):,}",
        "shown": f"{len(rows):,}",
    }


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _sensitivity(sensitivity: SensitivityResult) -> dict[str, Any]:
    """One small profile per parameter, with its plateau score."""
    metric = sensitivity.metric
    charts = []
    for name, analysis in sensitivity.parameters.items():
        table = analysis.table
        raw = [plain(value) for value in table["value"]]
        values = [_number(value) for value in table["metric"]]
        numeric = all(_is_number(v) for v in raw)
        flags = table["is_best"] if "is_best" in table else [v == analysis.best_value for v in raw]
        trades = table["num_trades"] if "num_trades" in table else [math.nan] * len(raw)
        titles = [
            f"{name} = {format_value(v)} · {metric_label(metric)} {format_metric(metric, m)}"
            + ("" if math.isnan(_number(t)) else f" · {int(t):,} trades")
            for v, m, t in zip(raw, values, trades, strict=True)
        ]
        score = _number(analysis.plateau_score)
        profile = build_profile(
            [format_value(v) for v in raw],
            [float(v) for v in raw] if numeric else None,
            values,
            [True] * len(values),
            next((i for i, flag in enumerate(flags) if flag), None),
            titles=titles,
            size=(620, 240),
        )
        charts.append(
            {
                "parameter": name,
                "best": format_value(plain(analysis.best_value)),
                "plateau": "—" if math.isnan(score) else f"{score:.2f}",
                "grade": "" if math.isnan(score) else _grade(score, 0.8, 0.5),
                "profile": profile,
            }
        )
    return {"metric_label": metric_label(metric), "charts": charts}


def _grade(value: float, good: float, marginal: float, *, lower_is_better: bool = False) -> str:
    """``good``, ``marginal`` or ``bad`` against two bounds (inclusive)."""
    if lower_is_better:
        value, good, marginal = -value, -good, -marginal
    return "good" if value >= good else "marginal" if value >= marginal else "bad"


def _walk_forward(walk_forward: WalkForwardResult) -> dict[str, Any]:
    """Per-window table, summary tiles and the stitched out-of-sample equity chart."""
    metric = walk_forward.metric
    windows = walk_forward.windows
    stamps = [pd.Timestamp(w.in_sample_start) for w in windows]
    stamps += [pd.Timestamp(w.out_of_sample_end) for w in windows]
    time_format = "%Y-%m-%d" if all(s == s.normalize() for s in stamps) else "%Y-%m-%d %H:%M"
    rows = [_window_row(window, metric, time_format) for window in windows]
    oos_metrics, efficiency = walk_forward.out_of_sample_metrics, _number(walk_forward.efficiency)
    verdict = str(getattr(walk_forward.recommendation, "value", walk_forward.recommendation))
    label = metric_label(metric)
    return {
        "metric_label": label,
        "mode": "anchored" if walk_forward.anchored else "rolling",
        "lengths": (str(walk_forward.in_sample), str(walk_forward.out_of_sample)),
        "count": f"{len(windows):,}",
        "rows": rows,
        "kpis": [
            _tile(f"In-sample {label} (mean)", metric, walk_forward.in_sample_metrics.get(metric)),
            _tile(f"Out-of-sample {label}", metric, oos_metrics.get(metric)),
            {"label": "Efficiency (OOS / IS)", "tone": "", "value": _ratio_text(efficiency)},
            _tile("Out-of-sample return", "return_pct", oos_metrics.get("return_pct")),
            _tile(
                "Out-of-sample max drawdown",
                "max_drawdown_pct",
                oos_metrics.get("max_drawdown_pct"),
            ),
            _tile("Out-of-sample trades", "num_trades", oos_metrics.get("num_trades")),
        ],
        "recommendation": verdict,
        "badge": _BADGES.get(verdict.upper(), "failed"),
        "notes": [str(note) for note in walk_forward.notes],
        "chart": _equity_chart(walk_forward.equity, [w.out_of_sample_start for w in windows]),
    }


def _window_row(window: WalkForwardWindow, metric: str, time_format: str) -> list[dict[str, str]]:
    """One walk-forward window: its ranges, the chosen parameters, IS and OOS results."""
    oos = window.out_of_sample_metrics
    efficiency = _number(window.efficiency)
    chosen = " · ".join(f"{k} = {format_value(plain(v))}" for k, v in window.params.items())

    def span(first: pd.Timestamp, last: pd.Timestamp) -> dict[str, str]:
        return _cell(f"{first.strftime(time_format)} → {last.strftime(time_format)}", first)

    return [
        _cell(str(window.number), window.number),
        span(window.in_sample_start, window.in_sample_end),
        span(window.out_of_sample_start, window.out_of_sample_end),
        _cell(chosen, chosen),
        _metric_cell(metric, window.in_sample_metrics.get(metric)),
        _metric_cell(metric, oos.get(metric)),
        _metric_cell("return_pct", oos.get("return_pct")),
        _metric_cell("num_trades", oos.get("num_trades")),
        _cell(_ratio_text(efficiency), efficiency),
    ]


def _ratio_text(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.2f}"


def _equity_chart(equity: pd.Series, starts: Sequence[pd.Timestamp]) -> dict[str, Any]:
    """The stitched curve for the line chart: decimated (extremes kept), windows banded.

    Returns ``time`` (UNIX seconds), ``value``, ``window`` (the window number of each point,
    for the alternating bands; each window's first bar is kept), ``intraday``, and
    ``bars``/``points`` (before and after decimation).
    """
    index = pd.DatetimeIndex(equity.index)
    index = index.tz_localize("UTC") if index.tz is None else index
    seconds = index.as_unit("ns").asi8 // 1_000_000_000
    values = equity.to_numpy(dtype=np.float64)
    first = pd.DatetimeIndex([pd.Timestamp(start) for start in starts])
    first = first.tz_localize("UTC") if first.tz is None else first
    first_rows = np.minimum(index.searchsorted(first), max(0, len(values) - 1))
    keep = np.union1d(min_max_indices(values, MAX_CHART_POINTS // 2), first_rows)
    window = np.searchsorted(first_rows, keep, side="right")
    return {
        "time": seconds[keep].tolist(),
        "value": [round(float(v), 2) if math.isfinite(v) else None for v in values[keep]],
        "window": window.tolist(),
        "intraday": bool(np.any(seconds % 86_400 != 0)),
        "bars": len(values),
        "points": len(keep),
    }


def _as_mapping(value: Any, key: str) -> dict[str, Any] | None:
    """A diagnostic as a dict: a mapping, an object with ``to_dict()``, or a bare number."""
    if hasattr(value, "to_dict") and not isinstance(value, Mapping):
        value = value.to_dict()
    if isinstance(value, Mapping):
        return dict(value)
    number = _number(value)
    return None if math.isnan(number) else {key: number}


def _diagnostics(diagnostics: Mapping[str, Any]) -> dict[str, Any] | None:
    """The deflated Sharpe ratio and PBO cards, when the optimisation computed them."""
    cards = []
    for key, spec in _DIAGNOSTICS.items():
        fields = _as_mapping(diagnostics.get(key), key)
        if fields is None:
            continue
        value = _number(fields.get(key))
        valid = fields.get("valid", True) is not False and math.isfinite(value)
        good, marginal = spec.bounds
        grade = _grade(value, good, marginal, lower_is_better=good < marginal) if valid else ""
        cards.append(
            {
                "title": spec.title,
                "value": spec.value_format(value) if math.isfinite(value) else "—",
                "grade": grade or "invalid",
                "verdict": _VERDICTS.get(grade, "not computed"),
                "hint": spec.hint,
                "rows": [
                    (label, pattern.format(_number(fields[name])))
                    for label, name, pattern in spec.rows
                    if name in fields and math.isfinite(_number(fields[name]))
                ],
                "note": str(fields.get("note") or ""),
            }
        )
    if not cards:
        return None
    top_k, days = _number(diagnostics.get("top_k")), _number(diagnostics.get("days"))
    basis = ""
    if math.isfinite(top_k) and math.isfinite(days):
        basis = f"Daily returns of the best {top_k:,.0f} combinations over {days:,.0f} days."
    return {"cards": cards, "basis": basis}
