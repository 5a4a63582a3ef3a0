"""Fault points, and the state file's atomic write under a SIGKILL at each of them.

Every kill happens in a child process (``python -c``): a fault point that fired in the test
process would kill pytest itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from marketbot.bot.faults import FAULT_POINTS, parse_fault_point
from marketbot.bot.state import BotState, StatePaths, decode_state, load_state, save_state
from marketbot.core.errors import ConfigError

T0 = datetime(2026, 2, 8, tzinfo=UTC)
OLD = BotState(timestamp=T0, portfolio_value=10_000.0, save_count=1)


def run_child(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"MARKETBOT_TESTING", "MARKETBOT_FAULT_POINT"}
    }
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=environment | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


REACH_AFTER_SEND_THREE_TIMES = """
    from marketbot.bot.faults import fault_point
    for n in (1, 2, 3):
        print(n, flush=True)
        fault_point("after_send")
    print("survived", flush=True)
"""


# ---------------------------------------------------------------------------- fault points


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("after_send", ("after_send", 1)), ("after_rename:3", ("after_rename", 3))],
)
def test_parse_fault_point_when_valid_gives_name_and_count(
    spec: str, expected: tuple[str, int]
) -> None:
    assert parse_fault_point(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("after_sned", "unknown fault point 'after_sned'"),
        ("after_send:0", "N must be a whole number >= 1"),
        ("after_send:x", "N must be a whole number >= 1"),
    ],
)
def test_parse_fault_point_when_malformed_raises(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_fault_point(spec)


def test_fault_point_when_reached_the_nth_time_sigkills_the_process() -> None:
    child = run_child(
        REACH_AFTER_SEND_THREE_TIMES, MARKETBOT_TESTING="1", MARKETBOT_FAULT_POINT="after_send:2"
    )

    assert child.returncode == -signal.SIGKILL
    assert child.stdout.split() == ["1", "2"]


def test_fault_point_when_not_testing_is_a_no_op() -> None:
    child = run_child(REACH_AFTER_SEND_THREE_TIMES, MARKETBOT_FAULT_POINT="after_send")

    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == ["1", "2", "3", "survived"]


def test_fault_point_when_another_point_is_named_lets_this_one_pass() -> None:
    child = run_child(
        REACH_AFTER_SEND_THREE_TIMES, MARKETBOT_TESTING="1", MARKETBOT_FAULT_POINT="after_fsync"
    )

    assert child.returncode == 0, child.stderr


def test_fault_point_when_name_unknown_raises_value_error() -> None:
    from marketbot.bot.faults import fault_point

    with pytest.raises(ValueError, match="unknown fault point 'after_lunch'"):
        fault_point("after_lunch")


# ---------------------------------------------------------------------------- atomic write

SAVE_NEW_STATE = """
    from datetime import UTC, datetime
    from pathlib import Path
    from marketbot.bot.state import BotState, save_state

    state_dir = Path({state_dir!r})
    for count in (2, 3):
        save_state(state_dir, BotState(
            timestamp=datetime(2026, 2, 9, tzinfo=UTC), portfolio_value=20_000.0,
            save_count=count,
        ))
    print("saved", flush=True)
"""
STATE_FILE_POINTS = ("after_temp_write", "after_fsync", "after_rename")


def new_state(save_count: int) -> BotState:
    return BotState(
        timestamp=datetime(2026, 2, 9, tzinfo=UTC), portfolio_value=20_000.0, save_count=save_count
    )


@pytest.mark.parametrize("point", STATE_FILE_POINTS)
@pytest.mark.parametrize("nth", [1, 2])
def test_save_state_when_killed_at_a_fault_point_leaves_a_readable_state(
    tmp_path: Path, point: str, nth: int
) -> None:
    files = StatePaths(tmp_path / "state")
    save_state(files.state_dir, OLD)

    child = run_child(
        SAVE_NEW_STATE.format(state_dir=str(files.state_dir)),
        MARKETBOT_TESTING="1",
        MARKETBOT_FAULT_POINT=f"{point}:{nth}",
    )

    assert child.returncode == -signal.SIGKILL, child.stderr
    # Before the rename the killed save changed nothing; after it, its state is the current
    # one. Either way the file is whole and checks out, and so is the backup.
    before = OLD if nth == 1 else new_state(2)
    expected = new_state(nth + 1) if point == "after_rename" else before
    assert decode_state(files.main.read_bytes()) == expected
    assert load_state(files.state_dir) == expected
    if files.backup.exists():
        decode_state(files.backup.read_bytes())


def test_save_state_when_the_fault_point_is_elsewhere_saves_both_states(tmp_path: Path) -> None:
    # The child of the test above, not killed: two saves, the second's backup is the first.
    assert set(STATE_FILE_POINTS) <= set(FAULT_POINTS)
    files = StatePaths(tmp_path / "state")
    child = run_child(
        SAVE_NEW_STATE.format(state_dir=str(files.state_dir)),
        MARKETBOT_TESTING="1",
        MARKETBOT_FAULT_POINT="after_send",
    )
    assert child.returncode == 0, child.stderr
    assert load_state(files.state_dir) == new_state(3)
    assert decode_state(files.backup.read_bytes()) == new_state(2)
