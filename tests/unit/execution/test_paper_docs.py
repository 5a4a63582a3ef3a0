"""docs/execution.md's "Paper exchange" section stays honest: its example runs as written.

Its example is fenced as ``py`` so that test_execution_docs.py's count of the page's
``python`` examples stays that test's own.
"""

from __future__ import annotations

import re
from pathlib import Path

from marketbot.execution import paper_market

DOC = Path(__file__).resolve().parents[3] / "docs" / "execution.md"
TEXT = DOC.read_text(encoding="utf-8")
SECTION = TEXT[TEXT.index("## Paper exchange") :]
EXAMPLES = re.findall(r"```py\n(.*?)```", SECTION, re.DOTALL)


def test_paper_doc_when_run_its_example_holds() -> None:
    assert len(EXAMPLES) == 1
    exec(compile(EXAMPLES[0], f"{DOC}:paper example", "exec"), {})


def test_paper_doc_when_read_names_the_step_functions_the_venue_calls() -> None:
    called = {name for name in dir(paper_market) if name.endswith("_nb")}
    for name in ("open_exit_reason_nb", "intrabar_step_nb", "close_step_nb", "size_entry_nb",
                 "enter_position_nb", "entry_direction_nb", "exit_position_nb"):  # fmt: skip
        assert name in called, name
        assert f"`{name}`" in SECTION, name
