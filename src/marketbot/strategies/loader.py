"""Finding a strategy: a built-in name, a class, an instance, or ``path/to/file.py:ClassName``.

Loading checks the contract before any data is read, so a user's mistake is one
StrategyError line naming the file, the class and what is wrong: the file missing or not
importable (with the line), the class missing (listing those the file does define), not a
Strategy, ``signals`` not written or taking the wrong arguments, a constructor that needs
arguments.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Final

from marketbot.core.errors import StrategyError
from marketbot.strategies.base import Parameter, Strategy
from marketbot.strategies.builtin import (
    BinaryMomentum,
    MeanReversion,
    Momentum,
    PolymarketArbitrage,
    SmaCrossover,
)
from marketbot.strategies.checks import code_file, describe_exception, describe_value

StrategySpec = str | type[Strategy] | Strategy

# The methods marketbot calls on a strategy, with the arguments it passes after self.
_EXPECTED_METHODS: Final = {
    "signals": (2, "def signals(self, frame, params) -> Signals"),
    "warmup_bars": (1, "def warmup_bars(self, params) -> int"),
    "check_params": (1, "def check_params(self, params) -> None"),
}


def builtin_strategies() -> dict[str, type[Strategy]]:
    """The built-in strategies by name, in the order ``marketbot strategies`` lists them."""
    return {cls.name: cls for cls in (SmaCrossover, Momentum, MeanReversion)}


def binary_builtin_strategies() -> dict[str, type[Strategy]]:
    """The built-in strategies of binary (prediction) markets by name."""
    return {cls.name: cls for cls in (PolymarketArbitrage, BinaryMomentum)}


def load_strategy(spec: StrategySpec) -> Strategy:
    """Return a strategy instance for a name, a class, an instance or a ``file.py:Class``.

    A bare ``file.py`` is enough when the file defines exactly one Strategy subclass.

    Raises:
        StrategyError: the name is unknown, the file cannot be read or imported, the class
            is missing, is not a Strategy, or does not keep the contract (see the module
            docstring); the message is one line naming the file and the class.
    """
    if isinstance(spec, Strategy):
        _check_methods(spec, spec.label)
        return spec
    if inspect.isclass(spec):
        return _instantiate(spec, spec.__name__)
    if not isinstance(spec, str):
        raise StrategyError(f"cannot use {describe_value(spec)} as a strategy")
    path_text, colon, class_name = spec.rpartition(":")
    if colon and path_text.endswith(".py"):
        return _load_from_file(path_text, class_name)
    if spec.endswith(".py"):
        return _load_from_file(spec, None)
    builtins = builtin_strategies() | binary_builtin_strategies()
    if spec not in builtins:
        known = ", ".join(builtins)
        raise StrategyError(
            f"unknown strategy {spec!r} (built-ins: {known}; or use path/to/file.py:ClassName)"
        )
    return builtins[spec]()


def _load_from_file(path_text: str, class_name: str | None) -> Strategy:
    label = f"{path_text}:{class_name}" if class_name else path_text
    path = Path(path_text).expanduser()
    if not path.exists():
        raise StrategyError(f"{label}: no such file")
    if not path.is_file():
        raise StrategyError(f"{label}: not a file")
    module = _import_file(path, label)
    found = _find_class(module, label, class_name)
    label = f"{path_text}:{class_name or found.__name__}"
    instance = _instantiate(found, label)
    cls = type(instance)
    cls.loaded_from = label
    if not instance.name:
        # A user's class need not set a name; its class name serves in reports.
        cls.name = found.__name__
    return instance


def _import_file(path: Path, label: str) -> ModuleType:
    module_name = f"marketbot_user_strategy_{abs(hash(path.resolve()))}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise StrategyError(f"{label}: cannot import the file (is it a Python file?)")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(module_name, None)
        where = Path(exc.filename).name if exc.filename else path.name
        raise StrategyError(
            f"{label}: syntax error in {where}, line {exc.lineno}: {exc.msg}"
        ) from exc
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise StrategyError(
            f"{label}: importing the file raised {describe_exception(exc, str(path))}"
        ) from exc
    return module


def _find_class(module: ModuleType, label: str, class_name: str | None) -> type[Strategy]:
    defined = _strategy_classes(module)
    if class_name is None:
        if len(defined) == 1:
            return defined[0]
        names = ", ".join(cls.__name__ for cls in defined)
        found_text = f"it defines {names}" if defined else "it defines no Strategy subclass"
        raise StrategyError(f"{label}: say which class, as file.py:ClassName ({found_text})")
    found = getattr(module, class_name, None)
    if found is None:
        names = ", ".join(cls.__name__ for cls in defined)
        found_text = (
            f"Strategy subclasses there: {names}" if defined else "it defines no Strategy subclass"
        )
        raise StrategyError(f"{label}: the file has no class {class_name!r} ({found_text})")
    if not inspect.isclass(found):
        raise StrategyError(f"{label}: {class_name} is {describe_value(found)}, not a class")
    if not issubclass(found, Strategy):
        raise StrategyError(
            f"{label}: {class_name} is not a Strategy subclass "
            f"(write `class {class_name}(Strategy):` after `from marketbot import Strategy`)"
        )
    return found


def _strategy_classes(module: ModuleType) -> list[type[Strategy]]:
    """The Strategy subclasses a module defines itself (not those it imports)."""
    return [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, Strategy)
        and value.__module__ == module.__name__
    ]


def _instantiate(cls: type[object], label: str) -> Strategy:
    if not issubclass(cls, Strategy):
        raise StrategyError(f"{label}: {cls.__name__} is not a marketbot Strategy subclass")
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        expected = "; ".join(_EXPECTED_METHODS.get(name, (0, name))[1] for name in missing)
        names = ", ".join(f"{name}()" for name in missing)
        raise StrategyError(f"{label}: {names} not implemented: expected {expected}")
    _check_constructor(cls, label)
    try:
        instance = cls()
    except Exception as exc:
        where = code_file(getattr(cls, "__init__", None))
        raise StrategyError(
            f"{label}: {cls.__name__}() raised {describe_exception(exc, where)}"
        ) from exc
    _check_methods(instance, label)
    _check_parameters(cls, label)
    return instance


def _check_constructor(cls: type[Strategy], label: str) -> None:
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return  # no signature to read (a C-level constructor): let the call decide
    required = [
        name
        for name, parameter in signature.parameters.items()
        if parameter.default is inspect.Parameter.empty
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]
    if required:
        raise StrategyError(
            f"{label}: {cls.__name__}() needs arguments ({', '.join(required)}), but marketbot "
            "creates strategies without arguments: declare them as "
            "parameters = (Parameter(...),) and read them from params in signals()"
        )


def _check_methods(instance: Strategy, label: str) -> None:
    for name, (arguments, expected) in _EXPECTED_METHODS.items():
        method = getattr(instance, name, None)
        if not callable(method):
            raise StrategyError(
                f"{label}: {name} is {describe_value(method)}, not a method: expected {expected}"
            )
        try:
            signature = inspect.signature(method)
        except (TypeError, ValueError):
            continue
        try:
            signature.bind(*([None] * arguments))
        except TypeError:
            shown = _declared_signature(type(instance), name, signature)
            raise StrategyError(
                f"{label}: {name}{shown} has the wrong arguments: expected {expected}"
            ) from None


def _declared_signature(cls: type[Strategy], name: str, bound: inspect.Signature) -> str:
    """The method's arguments as written, with ``self`` when it takes it."""
    try:
        signature = inspect.signature(getattr(cls, name))
    except (TypeError, ValueError):
        signature = bound
    return str(signature.replace(return_annotation=inspect.Signature.empty))


def _check_parameters(cls: type[Strategy], label: str) -> None:
    declared = cls.parameters
    if isinstance(declared, Parameter):
        # `parameters = (Parameter(...))` without the trailing comma: the intent is plain.
        cls.parameters = (declared,)
        return
    if not isinstance(declared, tuple | list) or not all(
        isinstance(parameter, Parameter) for parameter in declared
    ):
        raise StrategyError(
            f"{label}: parameters is {describe_value(declared)}, expected a tuple of "
            "Parameter(name, default, ...)"
        )
