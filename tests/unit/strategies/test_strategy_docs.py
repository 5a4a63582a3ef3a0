"""docs/strategies.md stays honest: its Python examples load and trade as they are written."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from marketbot import BacktestingEngine
from marketbot.strategies.loader import load_strategy
from tests.support.frames import random_walk_frame

DOC = Path(__file__).resolve().parents[3] / "docs" / "strategies.md"
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def class_methods(source: str) -> list[str]:
    """The names of the methods the code's one class defines."""
    classes = [node for node in ast.parse(source).body if isinstance(node, ast.ClassDef)]
    assert len(classes) == 1
    return [node.name for node in classes[0].body if isinstance(node, ast.FunctionDef)]


def test_strategies_doc_when_read_shows_the_smallest_strategy_first() -> None:
    assert len(PYTHON_BLOCKS) >= 2
    assert class_methods(PYTHON_BLOCKS[0]) == ["signals"]


@pytest.mark.parametrize("block", range(len(PYTHON_BLOCKS)))
def test_strategies_doc_when_example_loaded_from_a_file_backtests_with_trades(
    block: int, tmp_path: Path
) -> None:
    path = tmp_path / "my_strategy.py"
    path.write_text(PYTHON_BLOCKS[block], encoding="utf-8")
    strategy = load_strategy(str(path))  # a bare file: it defines one class
    frame = random_walk_frame(300, seed=5, freq="1D", volatility=0.03)
    result = BacktestingEngine().run_backtest(strategy, data=frame)
    assert result.metrics["num_trades"] > 0
