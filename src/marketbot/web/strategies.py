"""Which strategies the dashboard may run: the built-ins and the data dir's strategies/*.py.

A request names a strategy by name only; a file path from a request is never loaded.
"""

from __future__ import annotations

from pathlib import Path

from marketbot.strategies.loader import builtin_strategies
from marketbot.web.errors import FieldError


def strategy_files(data_dir: Path) -> dict[str, Path]:
    """The strategy files of the data directory by name (``my_idea.py``)."""
    folder = data_dir / "strategies"
    if not folder.is_dir():
        return {}
    return {path.name: path for path in sorted(folder.glob("*.py")) if path.is_file()}


def available_strategies(data_dir: Path) -> list[str]:
    """Every name a request may use: built-ins first, then the data directory's files."""
    return [*builtin_strategies(), *strategy_files(data_dir)]


def strategy_spec(name: str, data_dir: Path, *, field: str = "body.strategy") -> str:
    """What ``load_strategy`` takes for an allowed name; a FieldError for any other."""
    if name in builtin_strategies():
        return name
    files = strategy_files(data_dir)
    if name in files:
        return str(files[name])
    raise FieldError(
        field,
        "unknown strategy: use a built-in ("
        + ", ".join(builtin_strategies())
        + ") or a file in the data directory's strategies folder",
    )
