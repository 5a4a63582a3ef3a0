"""docs/optimizer.md's grid hook example runs, and the fast grid serves it exactly."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd

from marketbot.backtest.config import BacktestConfig, ExitRules
from marketbot.backtest.engine import TradingWindow
from marketbot.core.bars import normalize_ohlcv
from marketbot.optimize.fast_grid import evaluate_fast
from tests.support.frames import sample_daily_btc

DOCS = Path(__file__).resolve().parents[3] / "docs" / "optimizer.md"
SECTION = "## Speed: the fast grid and the grid hook"


def _example(tmp_path: Path) -> ModuleType:
    """The section's code block, imported from a file (numba caches by file)."""
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the grid hook section has no python example"
    path = tmp_path / "grid_hook_example.py"
    path.write_text(match.group(1), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("grid_hook_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_optimizer_docs_when_the_grid_hook_example_runs_matches_one_by_one(
    tmp_path: Path,
) -> None:
    strategy = _example(tmp_path).CloseAboveBand()
    frame = normalize_ohlcv(sample_daily_btc())
    window = TradingWindow.of(frame, start=pd.Timestamp("2016-01-01", tz="UTC"))
    config = BacktestConfig(fee_rate=0.001, exits=ExitRules(stop_loss=0.08))
    combinations = [
        strategy.resolve_params({"window": window_bars, "band": band})
        for window_bars in (5, 20, 50)
        for band in (0.0, 0.02)
    ]

    fast = evaluate_fast(window, strategy, combinations, config)

    assert fast == [window.run(strategy, params, config).metrics for params in combinations]
