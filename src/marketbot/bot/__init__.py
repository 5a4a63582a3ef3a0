"""The bot: its crash-safe state file, its single-instance lock and its test fault points.

The paper/live loop itself is built on these (see docs/recovery.md): the database is the
truth and is committed first; :func:`save_state` then writes the state file atomically;
:class:`BotLock` keeps a second bot off the same data directory; :func:`fault_point` lets a
test SIGKILL the process at the moments that matter.
"""

from marketbot.bot.faults import FAULT_POINTS, fault_point
from marketbot.bot.lock import BotLock, BotLockedError
from marketbot.bot.state import (
    BotState,
    PositionState,
    StateError,
    StatePaths,
    load_state,
    reset_state,
    save_state,
)

__all__ = [
    "FAULT_POINTS",
    "BotLock",
    "BotLockedError",
    "BotState",
    "PositionState",
    "StateError",
    "StatePaths",
    "fault_point",
    "load_state",
    "reset_state",
    "save_state",
]
