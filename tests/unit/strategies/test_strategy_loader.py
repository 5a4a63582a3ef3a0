"""The loader forgives what it can (a bare file, a missing comma) and names what it cannot."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from marketbot.core.errors import StrategyError
from marketbot.strategies.base import Signals, Strategy
from marketbot.strategies.loader import load_strategy

HEADER = "from marketbot import Parameter, Signals, Strategy\n\n\n"
ONE_CLASS = (
    f"{HEADER}class Only(Strategy):\n"
    "    parameters = (Parameter('window', 5, low=2, high=50))  # no trailing comma\n\n"
    "    def signals(self, frame, params):\n"
    "        up = frame['close'] > frame['close'].shift(params['window'])\n"
    "        return Signals(up, ~up)\n"
)


def test_load_strategy_when_bare_file_defines_one_class_loads_it(tmp_path: Path) -> None:
    path = tmp_path / "only.py"
    path.write_text(ONE_CLASS, encoding="utf-8")
    strategy = load_strategy(str(path))
    assert type(strategy).__name__ == "Only"
    assert strategy.name == "Only"
    assert strategy.label == f"{path}:Only"


def test_load_strategy_when_parameters_lack_the_trailing_comma_reads_the_one_parameter(
    tmp_path: Path,
) -> None:
    path = tmp_path / "only.py"
    path.write_text(ONE_CLASS, encoding="utf-8")
    assert load_strategy(f"{path}:Only").resolve_params({"window": "7"}) == {"window": 7}


def test_load_strategy_when_bare_file_defines_two_classes_asks_which(tmp_path: Path) -> None:
    path = tmp_path / "two.py"
    path.write_text(ONE_CLASS + "\n\nclass Other(Only):\n    pass\n", encoding="utf-8")
    expected = f"{path}: say which class, as file.py:ClassName (it defines Only, Other)"
    with pytest.raises(StrategyError) as raised:
        load_strategy(str(path))
    assert str(raised.value) == expected


def test_load_strategy_when_parameters_are_not_parameters_says_what_they_are(
    tmp_path: Path,
) -> None:
    path = tmp_path / "odd.py"
    odd = ONE_CLASS.replace("(Parameter('window', 5, low=2, high=50))", "(('window', 5),)")
    path.write_text(odd, encoding="utf-8")
    with pytest.raises(StrategyError, match=r"Only: parameters is a tuple of 1 item, expected"):
        load_strategy(f"{path}:Only")


def test_load_strategy_when_instance_has_wrong_warmup_signature_names_it() -> None:
    class NoParams(Strategy):
        def warmup_bars(self) -> int:  # type: ignore[override]
            return 3

        def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
            raise NotImplementedError

    with pytest.raises(StrategyError) as raised:
        load_strategy(NoParams())
    assert str(raised.value) == (
        "NoParams: warmup_bars(self) has the wrong arguments: "
        "expected def warmup_bars(self, params) -> int"
    )


def test_load_strategy_when_class_is_not_a_strategy_says_so() -> None:
    with pytest.raises(StrategyError, match=r"^dict: dict is not a marketbot Strategy subclass$"):
        load_strategy(dict)  # type: ignore[arg-type]
