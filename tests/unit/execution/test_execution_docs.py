"""docs/execution.md stays honest: each Python example runs as written and its asserts hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "execution.md"
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def test_execution_doc_when_read_has_an_example_for_events_verifier_timeouts_and_ids() -> None:
    assert len(PYTHON_BLOCKS) == 4


@pytest.mark.parametrize("block", range(len(PYTHON_BLOCKS)))
def test_execution_doc_when_an_example_runs_its_asserts_hold(block: int) -> None:
    exec(compile(PYTHON_BLOCKS[block], f"{DOC}:example {block + 1}", "exec"), {})
