"""docs/recovery.md and docs/bot_commands.md say what the code does: keys, points, kinds."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from marketbot.bot.faults import FAULT_POINTS
from marketbot.bot.state import BotState, PositionState
from marketbot.store.models import BOT_COMMAND_KINDS

DOCS = Path(__file__).parents[3] / "docs"
STATE = BotState(
    timestamp=datetime(2026, 1, 1, tzinfo=UTC),
    portfolio_value=1.0,
    open_positions=(
        PositionState("p", "s", "x", "long", 1.0, 1.0, datetime(2026, 1, 1, tzinfo=UTC)),
    ),
)


def test_recovery_doc_when_read_shows_the_state_file_s_exact_keys() -> None:
    text = (DOCS / "recovery.md").read_text(encoding="utf-8")
    block = re.search(r"```json\n(.*?)```", text, re.DOTALL)
    assert block is not None
    example = json.loads(block.group(1))
    saved = STATE.to_dict()

    assert set(example) == set(saved) | {"checksum"}
    assert set(example["open_positions"][0]) == set(saved["open_positions"][0])
    for key in example:
        assert f"| `{key}` |" in text, key


def test_recovery_doc_when_read_lists_every_fault_point() -> None:
    text = (DOCS / "recovery.md").read_text(encoding="utf-8")
    for point in FAULT_POINTS:
        assert f"| `{point}` |" in text, point


def test_bot_commands_doc_when_read_lists_every_command_kind() -> None:
    text = (DOCS / "bot_commands.md").read_text(encoding="utf-8")
    for kind in BOT_COMMAND_KINDS:
        assert f"| `{kind}` |" in text, kind
