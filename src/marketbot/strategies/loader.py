"""Finding a strategy: a built-in name, a class, an instance, or ``path/to/file.py:ClassName``."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path

from marketbot.core.errors import StrategyError
from marketbot.strategies.base import Strategy
from marketbot.strategies.builtin import MeanReversion, Momentum, SmaCrossover

StrategySpec = str | type[Strategy] | Strategy


def builtin_strategies() -> dict[str, type[Strategy]]:
    """The built-in strategies by name, in the order ``marketbot strategies`` lists them."""
    return {cls.name: cls for cls in (SmaCrossover, Momentum, MeanReversion)}


def load_strategy(spec: StrategySpec) -> Strategy:
    """Return a strategy instance for a name, a class, an instance or a ``file.py:Class``.

    Raises:
        StrategyError: the name is unknown, the file or class cannot be found, or the class
            is not a Strategy.
    """
    if isinstance(spec, Strategy):
        return spec
    if inspect.isclass(spec):
        if not issubclass(spec, Strategy):
            raise StrategyError(f"{spec.__name__} is not a marketbot Strategy subclass")
        return spec()
    if not isinstance(spec, str):
        raise StrategyError(f"cannot use {spec!r} as a strategy")
    if ":" in spec and spec.split(":", 1)[0].endswith(".py"):
        return _load_from_file(spec)
    builtins = builtin_strategies()
    if spec not in builtins:
        known = ", ".join(builtins)
        raise StrategyError(
            f"unknown strategy {spec!r} (built-ins: {known}; or use path/to/file.py:ClassName)"
        )
    return builtins[spec]()


def _load_from_file(spec: str) -> Strategy:
    path_text, class_name = spec.rsplit(":", 1)
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise StrategyError(f"strategy file not found: {path}")
    module_name = f"marketbot_user_strategy_{abs(hash(path.resolve()))}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise StrategyError(f"cannot import strategy file {path}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise StrategyError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    found = getattr(module, class_name, None)
    if found is None:
        raise StrategyError(f"{path} has no class {class_name!r}")
    if not (inspect.isclass(found) and issubclass(found, Strategy)):
        raise StrategyError(f"{path}:{class_name} is not a marketbot Strategy subclass")
    instance = found()
    if not instance.name:
        # A user's class need not set a name; its class name serves in reports.
        type(instance).name = class_name
    return instance
