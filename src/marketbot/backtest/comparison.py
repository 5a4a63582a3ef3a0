"""Saved backtest runs side by side: each headline metric per run, the best marked.

Pure: it takes runs already read from the store (a :class:`~marketbot.store.runs.
BacktestRunSummary` fits :class:`ComparableRun`) and returns rows; the CLI and the web
dashboard format them. Only runs on the same bars are compared: a higher Sharpe on another
symbol, timeframe or period says nothing about which strategy or parameters are better, so
:func:`compare_runs` refuses such runs, naming what differs.

Which value is best: the highest for returns, ratios and win rate; the smallest magnitude for
the drawdown; the best verdict (EXCELLENT > GOOD > MARGINAL > FAILED); none for the trade
count, where more is neither better nor worse. Ties are all marked; NaN is never best.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, Protocol

import pandas as pd

from marketbot.backtest.result import verdict_line
from marketbot.core.errors import ConfigError
from marketbot.core.recommendation import Recommendation

__all__ = [
    "COMPARED_METRICS",
    "MAX_COMPARED_RUNS",
    "MIN_COMPARED_RUNS",
    "VERDICT_KEY",
    "ComparableRun",
    "ComparedMetric",
    "ComparisonRow",
    "RunComparison",
    "best_flags",
    "check_run_count",
    "check_same_data",
    "compare_runs",
]

MIN_COMPARED_RUNS: Final = 2
MAX_COMPARED_RUNS: Final = 4

Better = Literal["higher", "smaller_magnitude", "none"]


class ComparableRun(Protocol):
    """What a comparison reads of a saved run (``BacktestRunSummary`` has this shape)."""

    @property
    def id(self) -> int:
        """The run's id."""

    @property
    def strategy(self) -> str:
        """Strategy name."""

    @property
    def symbol(self) -> str:
        """The asset traded (``data`` for a run on a file)."""

    @property
    def source(self) -> str:
        """Where the bars came from."""

    @property
    def timeframe(self) -> str:
        """Bar length label."""

    @property
    def start(self) -> datetime:
        """First bar tested (UTC)."""

    @property
    def end(self) -> datetime:
        """Last bar tested (UTC)."""

    @property
    def data_file(self) -> str | None:
        """The CSV file's name for a run on a file."""

    @property
    def data_sha256(self) -> str | None:
        """The sha256 of that file's content."""

    @property
    def params(self) -> Mapping[str, Any]:
        """Strategy parameters."""

    @property
    def metrics(self) -> Mapping[str, float]:
        """Metric name to number."""

    @property
    def recommendation(self) -> str:
        """The verdict."""


@dataclass(frozen=True, slots=True)
class ComparedMetric:
    """One metric row of a comparison.

    Attributes:
        key: The metric's key (docs/metrics.md).
        label: The row label.
        better: ``higher``, ``smaller_magnitude`` or ``none`` (no value is marked).
    """

    key: str
    label: str
    better: Better


COMPARED_METRICS: Final = (
    ComparedMetric("return_pct", "Total return", "higher"),
    ComparedMetric("buy_hold_return_pct", "Buy & hold return", "higher"),
    ComparedMetric("cagr_pct", "CAGR", "higher"),
    ComparedMetric("win_rate", "Win rate", "higher"),
    ComparedMetric("sharpe", "Sharpe ratio", "higher"),
    ComparedMetric("sortino", "Sortino ratio", "higher"),
    ComparedMetric("max_drawdown_pct", "Max drawdown", "smaller_magnitude"),
    ComparedMetric("profit_factor", "Profit factor", "higher"),
    ComparedMetric("num_trades", "Trades", "none"),
)
"""The metric rows, in order; a ``verdict`` row follows them."""

VERDICT_KEY: Final = "verdict"
_VERDICT_RANK: Final = {str(verdict): rank for rank, verdict in enumerate(reversed(Recommendation))}


@dataclass(frozen=True, slots=True)
class ComparisonRow:
    """One row: a metric (or the verdict) of every run, and which runs are best on it.

    Attributes:
        key: The metric key, or ``verdict``.
        label: The row label.
        values: Per run, in the order given: the metric (NaN when the run lacks it) or, for
            the verdict, its text (``FAILED; buy & hold made more (+81.2 %)``).
        best: Per run, whether it is (one of) the best on this row.
    """

    key: str
    label: str
    values: tuple[float | str, ...]
    best: tuple[bool, ...]


@dataclass(frozen=True, slots=True)
class RunComparison:
    """Runs on the same bars, side by side.

    Attributes:
        run_ids: The runs' ids, in the order given (the columns).
        rows: The metric rows of :data:`COMPARED_METRICS`, then the verdict.
    """

    run_ids: tuple[int, ...]
    rows: tuple[ComparisonRow, ...]


def compare_runs(runs: Sequence[ComparableRun]) -> RunComparison:
    """Compare 2 to 4 runs on the same bars, marking the best value of each row.

    Raises:
        ConfigError: fewer than 2 or more than 4 runs, a run given twice, or runs on
            different data (the message names the runs and what differs).
    """
    check_run_count(len(runs))
    seen: set[int] = set()
    for run in runs:
        if run.id in seen:
            raise ConfigError(f"run {run.id} is given twice: compare different runs")
        seen.add(run.id)
    check_same_data(runs)
    rows = [_metric_row(spec, runs) for spec in COMPARED_METRICS]
    ranks = [float(_VERDICT_RANK.get(run.recommendation, -1)) for run in runs]
    rows.append(
        ComparisonRow(
            key=VERDICT_KEY,
            label="Verdict",
            values=tuple(verdict_line(run.recommendation, run.metrics) for run in runs),
            best=best_flags(ranks, "higher"),
        )
    )
    return RunComparison(run_ids=tuple(run.id for run in runs), rows=tuple(rows))


def check_run_count(count: int) -> None:
    """Refuse fewer than 2 or more than 4 runs (checked before any run is read).

    Raises:
        ConfigError: ``compare 2 to 4 runs, got 5``.
    """
    if not MIN_COMPARED_RUNS <= count <= MAX_COMPARED_RUNS:
        raise ConfigError(f"compare {MIN_COMPARED_RUNS} to {MAX_COMPARED_RUNS} runs, got {count}")


def _metric_row(spec: ComparedMetric, runs: Sequence[ComparableRun]) -> ComparisonRow:
    values = tuple(float(run.metrics.get(spec.key, math.nan)) for run in runs)
    return ComparisonRow(
        key=spec.key, label=spec.label, values=values, best=best_flags(values, spec.better)
    )


def best_flags(values: Sequence[float], better: Better) -> tuple[bool, ...]:
    """Which values are best: the highest, or the smallest magnitude; ties all best.

    NaN is never best; ``none`` (or all NaN) marks nothing. +inf counts as the highest (a
    profit factor without a losing trade).
    """
    if better == "none":
        return tuple(False for _ in values)
    scores = [value if better == "higher" else -abs(value) for value in values]
    candidates = [score for score in scores if not math.isnan(score)]
    if not candidates:
        return tuple(False for _ in values)
    top = max(candidates)
    return tuple(score == top for score in scores)


def check_same_data(runs: Sequence[ComparableRun]) -> None:
    """Refuse runs that did not trade on the same bars.

    The same bars means: the same source, symbol, data file (by content when both runs have
    a sha256, else by name), timeframe, and first and last bar.

    Raises:
        ConfigError: naming the first run that differs from the first run, and how.
    """
    first = runs[0]
    for run in runs[1:]:
        differences = [
            f"{label} {text(first)} vs {text(run)}"
            for label, key, text in _DATA_FIELDS
            if key(run) != key(first)
        ]
        if differences:
            raise ConfigError(
                f"runs {first.id} and {run.id} are on different data ({', '.join(differences)}): "
                "compare runs on the same bars"
            )


def _data_file_key(run: ComparableRun) -> str | None:
    # The content decides when both runs know it: a renamed copy is the same data.
    return run.data_sha256 if run.data_sha256 is not None else run.data_file


def _data_file_text(run: ComparableRun) -> str:
    if run.data_file is None:
        return "none"
    digest = f" (sha256 {run.data_sha256[:12]}…)" if run.data_sha256 else ""
    return run.data_file + digest


def _time_text(value: datetime) -> str:
    stamp = pd.Timestamp(value)
    midnight = stamp == stamp.normalize()
    return f"{stamp:%Y-%m-%d}" if midnight else f"{stamp:%Y-%m-%d %H:%M}"


_DATA_FIELDS: Final[
    tuple[tuple[str, Callable[[ComparableRun], object], Callable[[ComparableRun], str]], ...]
] = (
    ("source", lambda run: run.source, lambda run: run.source),
    ("symbol", lambda run: run.symbol, lambda run: run.symbol),
    ("data file", _data_file_key, _data_file_text),
    ("timeframe", lambda run: run.timeframe, lambda run: run.timeframe),
    ("first bar", lambda run: pd.Timestamp(run.start), lambda run: _time_text(run.start)),
    ("last bar", lambda run: pd.Timestamp(run.end), lambda run: _time_text(run.end)),
)
