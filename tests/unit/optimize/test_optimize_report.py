"""The HTML optimisation report: heatmap cells, best mark, slices, sections, escaping, size."""

from __future__ import annotations

import dataclasses
import html
import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketbot import BacktestingEngine
from marketbot.backtest.report import format_metric
from marketbot.core.metrics import METRIC_KEYS
from marketbot.optimize.optimizer import OptimizationResult, StrategyOptimizer
from marketbot.optimize.report import (
    DEFAULT_TOP,
    render_optimization_report,
    write_optimization_report,
)
from marketbot.optimize.report_charts import (
    AXIS_BINS,
    MAX_TITLED_CELLS,
    ColorScale,
    compact_number,
    make_axis,
    nice_ticks,
)

GRID = {"fast": [5, 10, 20], "slow": [30, 50, 100]}
PAYLOAD = "<script>alert('x')</script>"
SIZE_CAP_BYTES = 1_000_000
VOID_ELEMENTS = {"meta", "link", "br", "hr", "img", "input", "col", "wbr", "source"}


class _Page(HTMLParser):
    """Collects the heatmap cells, the profile points and any unbalanced tag."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.cells: list[dict[str, str]] = []
        self.points: list[dict[str, str]] = []
        self._title_of: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        if tag == "use" and values.get("href") == "#hm-cell":
            self.cells.append({**values, "title": ""})
            self._title_of = self.cells[-1]
        elif tag == "circle" and "point" in values.get("class", ""):
            self.points.append({**values, "title": ""})
            self._title_of = self.points[-1]
        if tag not in VOID_ELEMENTS:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if self._title_of is not None and self.stack and self.stack[-1] == "title":
            self._title_of["title"] += data

    def handle_endtag(self, tag: str) -> None:
        if tag in ("use", "circle"):
            self._title_of = None
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
            return
        self.stack.pop()


def _parse(text: str) -> _Page:
    assert text.startswith("<!DOCTYPE html>")
    page = _Page()
    page.feed(text)
    page.close()
    assert page.errors == []
    assert page.stack == []
    return page


def _cell_texts(text: str) -> list[str]:
    block = text.split('<g class="cell-text"', 1)[1].split("</g>", 1)[0]
    return [html.unescape(t) for t in re.findall(r"<text [^>]*>([^<]*)</text>", block)]


def _heatmap_readout(text: str) -> dict[str, Any]:
    data = text.split("const HEATMAP = ", 1)[1].split(";</script>", 1)[0]
    readout: dict[str, Any] = json.loads(data)
    return readout


@pytest.fixture(scope="module")
def btc() -> pd.DataFrame:
    return pd.read_csv("data/sample/btc_usd_1d_bitstamp.csv")


@pytest.fixture(scope="module")
def grid_result(btc: pd.DataFrame) -> OptimizationResult:
    return StrategyOptimizer(jobs=1).optimize_strategy("sma_crossover", GRID, data=btc)


@pytest.fixture(scope="module")
def three_parameter_result(btc: pd.DataFrame) -> OptimizationResult:
    ranges = {**GRID, "short": [False, True]}
    return StrategyOptimizer(jobs=1).optimize_strategy("sma_crossover", ranges, data=btc)


def _synthetic(
    fast: np.ndarray, slow: np.ndarray, *, seed: int = 0, method: str = "grid", **extra: Any
) -> OptimizationResult:
    """A result with random metrics over the given parameter columns (any size, instantly)."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({"fast": fast, "slow": slow, **extra})
    for key in METRIC_KEYS:
        table[key] = rng.normal(1.0, 1.0, len(table))
    table["num_trades"] = rng.integers(0, 60, len(table))
    table["eligible"] = table["num_trades"] >= 5
    best = int(table.loc[table["eligible"], "sharpe"].idxmax())
    best_params = {name: table.at[best, name] for name in ("fast", "slow", *extra)}
    return OptimizationResult(
        "sma_crossover", "sharpe", False, best_params, float(table.at[best, "sharpe"]), table,
        method=method,
    )  # fmt: skip


def test_write_report_when_grid_of_two_parameters_draws_every_combination(
    grid_result: OptimizationResult, tmp_path: Path
) -> None:
    path = write_optimization_report(grid_result, tmp_path / "reports" / "opt.html")

    text = path.read_text(encoding="utf-8")
    assert path.is_absolute()
    page = _parse(text)
    assert len(page.cells) == 9
    by_params = {
        (int(row.fast), int(row.slow)): row.sharpe for row in grid_result.results.itertuples()
    }
    titles = {cell["title"] for cell in page.cells}
    for (fast, slow), sharpe in by_params.items():
        expected = f"fast = {fast} · slow = {slow} · Sharpe ratio {format_metric('sharpe', sharpe)}"
        assert any(title.startswith(expected) for title in titles)
    assert all(re.fullmatch(r"#[0-9a-f]{6}", cell["fill"]) for cell in page.cells)
    assert len({cell["fill"] for cell in page.cells}) > 3  # coloured by value, not one colour
    assert sorted(_cell_texts(text)) == sorted(compact_number(v) for v in by_params.values())
    readout = _heatmap_readout(text)
    assert readout["x"] == ["30", "50", "100"] and readout["y"] == ["5", "10", "20"]
    assert all(value is not None for row in readout["cells"] for value in row)


def test_render_when_grid_ran_marks_the_best_cell_point_and_row(
    grid_result: OptimizationResult,
) -> None:
    text = render_optimization_report(grid_result)

    page = _parse(text)
    best = [cell for cell in page.cells if cell.get("class") == "best"]
    assert len(best) == 1
    fast, slow = grid_result.best_params["fast"], grid_result.best_params["slow"]
    assert best[0]["title"].startswith(f"fast = {fast} · slow = {slow} ·")
    assert best[0]["title"].endswith("the best")
    darkest = min(
        page.cells, key=lambda cell: sum(int(cell["fill"][i : i + 2], 16) for i in (1, 3, 5))
    )
    assert darkest is best[0]  # darker blue is better
    assert text.count('class="best-mark"') == 1
    first_row = text.split('<tr data-row class="best-row">', 1)[1].split("</tr>", 1)[0]
    assert f">{fast}</td>" in first_row and f">{slow}</td>" in first_row
    assert html.escape(format_metric("sharpe", grid_result.best_metric)) in first_row
    assert f"fast = <b>{fast}</b>" in text


def test_render_when_one_parameter_varies_draws_a_profile_with_the_best_marked(
    btc: pd.DataFrame,
) -> None:
    result = StrategyOptimizer(jobs=1).optimize_strategy(
        "sma_crossover", {"fast": [5, 10, 20, 25]}, data=btc
    )

    text = render_optimization_report(result)

    page = _parse(text)
    assert page.cells == []
    assert "const HEATMAP" not in text
    assert "Sharpe ratio by fast" in text
    assert len(page.points) == 4
    best = [point for point in page.points if "best" in point["class"]]
    assert len(best) == 1
    assert best[0]["title"].startswith(f"fast = {result.best_params['fast']} ·")
    values = [float(v) for v in result.results.sort_values("fast")["sharpe"]]
    assert [p["title"].split(" · ")[1] for p in page.points] == [
        f"Sharpe ratio {format_metric('sharpe', v)}" for v in values
    ]


def test_render_when_three_parameters_shows_the_best_slice(
    three_parameter_result: OptimizationResult,
) -> None:
    result = three_parameter_result
    short = result.best_params["short"]

    text = render_optimization_report(result)

    page = _parse(text)
    assert len(result.results) == 18
    assert len(page.cells) == 9  # fast x slow, short fixed
    assert f"<b>short = {short}</b> fixed at the best combination" in text
    in_slice = result.results[result.results["short"] == short]
    assert sorted(_cell_texts(text)) == sorted(compact_number(v) for v in in_slice["sharpe"])
    assert sum(cell.get("class") == "best" for cell in page.cells) == 1
    assert '<th class="text" data-kind="text"><button type="button">short</button>' in text
    assert render_optimization_report(result, top=5).count("<tr data-row") == 5


def test_render_when_min_trades_excludes_rows_greys_their_cells(btc: pd.DataFrame) -> None:
    result = StrategyOptimizer(jobs=1).optimize_strategy(
        "sma_crossover", GRID, data=btc, min_trades=40
    )
    ineligible = int((~result.results["eligible"]).sum())
    assert 0 < ineligible < 9

    text = render_optimization_report(result)

    page = _parse(text)
    greyed = [cell for cell in page.cells if cell.get("class") == "ineligible"]
    assert len(greyed) == ineligible
    assert all(cell["fill"] == "url(#hm-ineligible)" for cell in greyed)
    assert all("ineligible" in cell["title"] for cell in greyed)
    assert "too few trades" in text
    assert f"{9 - ineligible} eligible combinations" in text


def test_render_when_constraint_skips_a_combination_leaves_its_cell_empty(
    btc: pd.DataFrame,
) -> None:
    result = StrategyOptimizer(jobs=1).optimize_strategy(
        "sma_crossover", {"fast": [5, 30], "slow": [20, 50]}, data=btc
    )

    text = render_optimization_report(result)

    assert result.skipped == 1
    assert len(_parse(text).cells) == 3
    assert "not evaluated" in text
    assert [None in row for row in _heatmap_readout(text)["cells"]].count(True) == 1


def test_render_when_strategy_or_parameter_value_holds_script_escapes_it(
    grid_result: OptimizationResult,
) -> None:
    results = grid_result.results.assign(fast=grid_result.results["fast"].astype(object))
    results.loc[results.index[0], "fast"] = PAYLOAD
    first = results.iloc[0]
    best_params = {**grid_result.best_params, "fast": PAYLOAD, "slow": int(first["slow"])}
    result = dataclasses.replace(
        grid_result, strategy=PAYLOAD, symbol=PAYLOAD, results=results, best_params=best_params
    )

    text = render_optimization_report(result)

    assert PAYLOAD not in text
    assert "&lt;script&gt;alert(" in text
    assert "\\u003cscript\\u003e" in text  # in the heatmap's hover data, through tojson
    assert text.count("<script>") == 2  # the heatmap's data and the page's code
    _parse(text)


def test_render_when_profit_factor_is_inf_shows_infinity_and_sorts_it_last(
    grid_result: OptimizationResult,
) -> None:
    results = grid_result.results.copy()
    results.loc[results.index[4], "profit_factor"] = math.inf
    result = dataclasses.replace(
        grid_result,
        metric="profit_factor",
        results=results,
        best_params={"fast": int(results.at[results.index[4], "fast"]),
                     "slow": int(results.at[results.index[4], "slow"]), "short": False},
        best_metric=math.inf,
    )  # fmt: skip

    text = render_optimization_report(result)

    assert "∞" in _cell_texts(text)
    assert 'data-v="Infinity"' in text
    assert 'Best Profit factor</span>\n    <span class="value">∞' in text
    best = [cell for cell in _parse(text).cells if cell.get("class") == "best"]
    assert best and "Profit factor ∞" in best[0]["title"]
    assert "NaN" not in text and "nan" not in _cell_texts(text)


def test_render_when_10000_combinations_stays_small_and_caps_the_table() -> None:
    fast, slow = np.meshgrid(np.arange(2, 102), np.arange(110, 310, 2), indexing="ij")
    result = _synthetic(fast.ravel(), slow.ravel())

    text = render_optimization_report(result)

    assert len(text.encode("utf-8")) < SIZE_CAP_BYTES
    page = _parse(text)
    assert len(page.cells) == 10_000
    assert all(cell["title"] == "" for cell in page.cells)  # hover line instead of tooltips
    assert MAX_TITLED_CELLS < 10_000
    assert text.count("<tr data-row") == DEFAULT_TOP
    assert f"The best {DEFAULT_TOP} of" in text
    readout = _heatmap_readout(text)
    assert len(readout["x"]) == len(readout["y"]) == 100


def test_render_when_smart_search_shows_each_cells_best_and_bins_a_wide_axis() -> None:
    rng = np.random.default_rng(3)
    fast = rng.integers(2, 60, 300)
    slow = rng.uniform(61.0, 400.0, 300)
    result = _synthetic(fast, slow, method="optuna", trial=np.arange(300))

    text = render_optimization_report(result)

    page = _parse(text)
    assert "Each cell shows its best trial" in text
    assert "slow: too many distinct values, cut into equal bins" in text
    readout = _heatmap_readout(text)
    assert len(readout["x"]) == AXIS_BINS
    assert "trial" not in readout["x"] and ">trial<" not in text  # not a parameter
    assert len(page.cells) <= len(set(fast)) * AXIS_BINS
    assert sum(cell.get("class") == "best" for cell in page.cells) == 1


def test_render_when_sensitivity_given_draws_a_curve_per_parameter(
    btc: pd.DataFrame, three_parameter_result: OptimizationResult
) -> None:
    from marketbot.optimize.sensitivity import sensitivity

    analysis = sensitivity(StrategyOptimizer(jobs=1), three_parameter_result, data=btc)

    text = render_optimization_report(three_parameter_result, sensitivity=analysis)

    section = text.split('id="sensitivity"', 1)[1].split("</section>", 1)[0]
    assert section.count('<svg class="profile"') == len(analysis.parameters) == 3
    assert section.count('class="point best"') == 3
    for name, item in analysis.parameters.items():
        assert f"<h3>{name}</h3>" in section
        assert "plateau score" in section and item.parameter == name


def test_render_when_walk_forward_given_shows_windows_and_stitched_equity(
    btc: pd.DataFrame,
) -> None:
    from marketbot.optimize.walk_forward import walk_forward

    optimizer = StrategyOptimizer(jobs=1)
    result = optimizer.optimize_strategy("sma_crossover", GRID, data=btc)
    validation = walk_forward(
        optimizer, "sma_crossover", GRID, data=btc, in_sample="730d", out_of_sample="365d"
    )

    text = render_optimization_report(result, walk_forward=validation)

    _parse(text)
    section = text.split('id="walk-forward"', 1)[1].split("</section>", 1)[0]
    rows = re.findall(r"<tr data-row>(.*?)</tr>", section)
    assert len(rows) == len(validation.windows) > 1
    first = validation.windows[0]
    assert f"{first.in_sample_start:%Y-%m-%d} → {first.in_sample_end:%Y-%m-%d}" in rows[0]
    assert f"{first.out_of_sample_start:%Y-%m-%d} → {first.out_of_sample_end:%Y-%m-%d}" in rows[0]
    assert f"fast = {first.params['fast']} · slow = {first.params['slow']}" in rows[0]
    assert html.escape(format_metric("sharpe", first.out_of_sample_metrics["sharpe"])) in rows[0]
    data = json.loads(text.split("const WALK_FORWARD = ", 1)[1].split(";</script>", 1)[0])
    assert data["bars"] == len(validation.equity)
    assert max(data["window"]) == len(validation.windows)
    assert data["value"][-1] == pytest.approx(validation.equity.iloc[-1], abs=0.01)
    assert "window.LightweightCharts" in text
    assert f">{validation.recommendation.value}</span>" in text
    # The backtest report's axes: round log ticks, whole edge labels, room at the edges.
    assert "const ReportAxes" in text and "ReportAxes.logScale(chart, series" in text


def test_render_when_diagnostics_present_shows_deflated_sharpe_and_pbo(
    btc: pd.DataFrame, grid_result: OptimizationResult
) -> None:
    from marketbot.optimize.diagnostics import overfitting_diagnostics

    engine = BacktestingEngine()
    combinations = [
        {**grid_result.best_params, "fast": int(row.fast), "slow": int(row.slow)}
        for row in grid_result.results.itertuples()
    ]
    diagnostics = overfitting_diagnostics(
        grid_result.results, combinations, "sharpe",
        lambda params: engine.run_backtest("sma_crossover", data=btc, params=dict(params),
                                           save=False).equity_curve,
    )  # fmt: skip
    result = dataclasses.replace(grid_result, diagnostics=diagnostics)

    text = render_optimization_report(result)

    section = text.split('id="overfitting"', 1)[1].split("</section>", 1)[0]
    deflated = diagnostics["deflated_sharpe"]["deflated_sharpe"]
    assert f'<div class="big">{deflated:.3f}</div>' in section
    assert f'<div class="big">{diagnostics["pbo"]["pbo"] * 100:.1f} %</div>' in section
    assert f"best {diagnostics['top_k']} combinations over {diagnostics['days']:,} days" in section


def test_render_when_diagnostics_are_objects_or_invalid_reads_them(
    grid_result: OptimizationResult,
) -> None:
    from marketbot.optimize.overfitting import deflated_sharpe_ratio

    invalid = deflated_sharpe_ratio(0.1, 0.01, 9, 1, 0.0, 3.0)  # one return: undefined
    result = dataclasses.replace(grid_result, diagnostics={"deflated_sharpe": invalid})

    text = render_optimization_report(result)

    section = text.split('id="overfitting"', 1)[1].split("</section>", 1)[0]
    assert "grade-invalid" in section and "not computed" in section
    assert html.escape(invalid.note) in section
    assert "Probability of backtest overfitting" not in section


def test_render_when_optimiser_ran_diagnostics_shows_the_overfitting_section(
    grid_result: OptimizationResult,
) -> None:
    assert "deflated_sharpe" in grid_result.diagnostics and "pbo" in grid_result.diagnostics
    assert 'id="overfitting"' in render_optimization_report(grid_result)


def test_render_when_no_optional_input_leaves_their_sections_and_the_library_out(
    grid_result: OptimizationResult,
) -> None:
    text = render_optimization_report(dataclasses.replace(grid_result, diagnostics={}))

    for section in ('id="sensitivity"', 'id="walk-forward"', 'id="overfitting"'):
        assert section not in text
    assert "LightweightCharts" not in text
    assert "ReportAxes" not in text
    assert re.search(r"<(script|link|img)[^>]+(src|href)=", text) is None
    assert len(text) < 60_000


@given(st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.booleans())
def test_color_scale_when_any_value_gives_a_hex_colour(
    value: float, minimise: bool, straddles: bool
) -> None:
    scale = ColorScale.of([-1.0 if straddles else 0.5, 2.0], minimise=minimise)

    assert re.fullmatch(r"#[0-9a-f]{6}", scale.color(value))


def test_color_scale_when_minimised_gives_the_darkest_colour_to_the_lowest() -> None:
    maximised = ColorScale.of([1.0, 2.0, 3.0], minimise=False)
    minimised = ColorScale.of([1.0, 2.0, 3.0], minimise=True)
    diverging = ColorScale.of([-2.0, 0.0, 4.0], minimise=False)

    assert maximised.color(3.0) == minimised.color(1.0) == "#1e3a8a"
    assert maximised.color(math.inf) == maximised.color(3.0)
    assert diverging.diverging and diverging.color(0.0) == "#f8fafc"
    assert diverging.color(-2.0) == "#b91c1c" and diverging.color(4.0) == "#1e3a8a"


def test_make_axis_when_values_are_numbers_bools_or_many_orders_or_bins_them() -> None:
    numbers = make_axis("fast", pd.Series([20, 5, 10, 5]))
    flags = make_axis("short", [True, False, True])
    wide = make_axis("slow", list(np.linspace(0.0, 99.0, 400)))

    assert numbers.labels == ("5", "10", "20") and numbers.position(np.int64(10)) == 1
    assert flags.labels == ("False", "True") and flags.position(True) == 1
    assert wide.binned and len(wide.labels) == AXIS_BINS
    assert wide.position(0.0) == 0 and wide.position(99.0) == AXIS_BINS - 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1.4259, "1.43"), (-0.5, "-0.50"), (12.34, "12.3"), (482.2, "482"), (66482.8, "66.5k"),
     (2_500_000.0, "2.5M"), (math.inf, "∞"), (-math.inf, "-∞"), (math.nan, "—")],
)  # fmt: skip
def test_compact_number_when_magnitude_differs_stays_short(value: float, expected: str) -> None:
    assert compact_number(value) == expected


def test_nice_ticks_when_range_is_given_returns_round_steps_inside_it() -> None:
    assert nice_ticks(1.16, 1.45, 4) == [1.2, 1.3, 1.4]
    assert nice_ticks(-3.0, 7.0, 5) == [-2.0, 0.0, 2.0, 4.0, 6.0]
    assert nice_ticks(2.0, 2.0) == [2.0]
