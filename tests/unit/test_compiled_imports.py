"""The compiled modules import only numpy, numba, a few standard modules and each other.

Every ``src/marketbot/**/*_nb.py`` and the two kernels (``backtest/kernel.py``,
``backtest/portfolio_kernel.py``) are numba code over plain arrays: what they import is
pinned here, statement by statement (``import`` and ``from ... import`` anywhere in the
module, read with ``ast``). The import-linter contracts in pyproject.toml forbid the heavy
modules; this test pins the exact allow-list, so that a compiled module cannot reach for a
private helper of a Python-side module (as ``fast_grid_nb`` once imported
``strategies.indicators._kahan_add_nb``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SOURCE / "marketbot"
KERNELS = ("backtest/kernel.py", "backtest/portfolio_kernel.py")
STANDARD = {"__future__", "math", "typing", "collections.abc"}
THIRD_PARTY = ("numpy", "numba")  # and their submodules (numpy.typing)
CONSTANTS = "marketbot.core.codes"


def _compiled_modules() -> list[Path]:
    return sorted({*PACKAGE.rglob("*_nb.py"), *(PACKAGE / kernel for kernel in KERNELS)})


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(SOURCE).with_suffix("").parts)


COMPILED = {_module_name(path) for path in _compiled_modules()}


def _allowed(module: str) -> bool:
    return (
        module in STANDARD
        or any(module == name or module.startswith(f"{name}.") for name in THIRD_PARTY)
        or module == CONSTANTS
        or module in COMPILED
    )


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import statement; a relative import is named as written."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            found.append((node.lineno, module))
    return found


def test_compiled_modules_when_listed_include_every_kernel_and_rule_module() -> None:
    expected = {
        "marketbot.backtest.kernel",
        "marketbot.backtest.portfolio_kernel",
        "marketbot.backtest.step_nb",
        "marketbot.core.costs_nb",
        "marketbot.core.metrics_nb",
        "marketbot.optimize.fast_grid_nb",
        "marketbot.optimize.grid_stats_nb",
        "marketbot.optimize.pbo_nb",
        "marketbot.risk.exits_nb",
        "marketbot.risk.limits_nb",
        "marketbot.risk.sizing_nb",
        "marketbot.strategies.indicators_nb",
    }
    assert expected <= COMPILED


@pytest.mark.parametrize("path", _compiled_modules(), ids=_module_name)
def test_compiled_module_when_parsed_imports_only_the_allow_list(path: Path) -> None:
    refused = [
        f"{path.relative_to(SOURCE)}:{line}: {module}"
        for line, module in _imports(path)
        if not _allowed(module)
    ]
    assert not refused, (
        "a compiled module may import only numpy, numba, math, typing, collections.abc, "
        f"{CONSTANTS} and other compiled modules; found: {refused}"
    )
