"""Helpers of ``marketbot optimize``: parsing grids and windows, walk-forward, the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from marketbot.cli_progress import progress_bar


def window_lengths(windows: str) -> tuple[int | str, int | str]:
    """``IS:OOS`` as two window lengths: bar counts (digits) or durations (``365d``)."""
    from marketbot.core.errors import ConfigError

    in_text, sep, out_text = windows.partition(":")
    if not sep or not in_text or not out_text:
        raise ConfigError(f"--walk-forward {windows!r}: use IS:OOS, e.g. 365d:90d or 2000:500")

    def length(text: str) -> int | str:
        return int(text) if text.isdigit() else text

    return length(in_text), length(out_text)


def run_walk_forward(
    optimizer: Any,
    strategy: str,
    ranges: dict[str, Any],
    metric: str,
    windows: tuple[int | str, int | str],
    anchored: bool,
    where: dict[str, Any],
    options: dict[str, Any],
    *,
    quiet: bool,
) -> Any:
    """Walk-forward validation of the grid on one symbol or CSV, with a progress bar."""
    from marketbot.core.errors import ConfigError
    from marketbot.optimize.walk_forward import walk_forward

    if where["symbols"] is not None:
        raise ConfigError("--walk-forward takes one --symbol or --data, not a universe")
    with progress_bar("walk-forward", quiet=quiet) as advance:
        return walk_forward(
            optimizer, strategy, ranges, metric, in_sample=windows[0],
            out_of_sample=windows[1], anchored=anchored, data=where["data"],
            symbol=where["symbol"], progress=advance, **options,
        )  # fmt: skip


def write_report_with_sensitivity(
    optimizer: Any,
    result: Any,
    walk: Any,
    path: Path,
    where: dict[str, Any],
    costs: dict[str, Any],
    start: str | None,
    end: str | None,
    timeframe: str | None,
) -> None:
    """The optimisation report, with sensitivity around the best point and walk-forward."""
    from marketbot.optimize.report import write_optimization_report
    from marketbot.optimize.sensitivity import sensitivity

    curves = sensitivity(
        optimizer, result, **where, start_date=start, end_date=end, timeframe=timeframe, **costs
    )
    write_optimization_report(result, path, sensitivity=curves, walk_forward=walk)


def parse_grid(grid: list[str] | None, ranges: list[str] | None) -> dict[str, Any]:
    """``--grid KEY=V1,V2`` and ``--range KEY=LOW:HIGH[:STEP]`` as optimiser ranges."""
    from marketbot.core.errors import ConfigError
    from marketbot.optimize.smart_search import ParamRange

    parsed: dict[str, Any] = {}
    for item in grid or []:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise ConfigError(f"--grid {item!r}: use KEY=V1,V2,... e.g. --grid fast=5,10,20")
        parsed[key.strip()] = [v.strip() for v in values.split(",") if v.strip()]
    for item in ranges or []:
        key, sep, bounds = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--range {item!r}: use KEY=LOW:HIGH[:STEP], e.g. slow=50:200:10")
        try:
            parsed[key.strip()] = ParamRange.parse(bounds)
        except ConfigError as exc:
            raise ConfigError(f"--range {item!r}: {exc}") from exc
    if not parsed:
        raise ConfigError("give at least one --grid KEY=V1,V2 or --range KEY=LOW:HIGH[:STEP]")
    return parsed
