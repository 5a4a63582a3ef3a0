"""Fault points: places where a test can kill the bot, to prove that a crash there is safe.

With ``MARKETBOT_TESTING=1`` and ``MARKETBOT_FAULT_POINT=NAME[:N]`` in the environment, the
process SIGKILLs itself the Nth time (default 1) it reaches the point NAME. SIGKILL, not an
exception: nothing is flushed, no ``finally`` runs, as in a power cut or an OOM kill. Without
``MARKETBOT_TESTING=1`` every fault point is a no-op, whatever else the environment says.

The points: ``after_temp_write``, ``after_fsync`` and ``after_rename`` in the state file's
atomic write; ``after_intent_commit`` (an order's intent row committed, not sent yet) and
``after_send`` (sent, the reply not stored yet) in the bot's loop.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from typing import Final

from marketbot.core.errors import ConfigError

TESTING_VARIABLE: Final = "MARKETBOT_TESTING"
FAULT_POINT_VARIABLE: Final = "MARKETBOT_FAULT_POINT"
FAULT_POINTS: Final = (
    "after_temp_write",
    "after_fsync",
    "after_rename",
    "after_intent_commit",
    "after_send",
)

# How often each point was reached in this process. Module state on purpose: the count is
# per process by definition (a fresh process starts from zero), and the points sit in code
# that has no object to carry it.
_reached: Counter[str] = Counter()


def parse_fault_point(spec: str) -> tuple[str, int]:
    """``NAME[:N]`` as (name, n); n defaults to 1.

    Raises:
        ConfigError: an unknown name or an N that is not a whole number of at least 1.
    """
    name, _, count = spec.strip().partition(":")
    if name not in FAULT_POINTS:
        raise ConfigError(
            f"{FAULT_POINT_VARIABLE}={spec!r}: unknown fault point {name!r} "
            f"(known: {', '.join(FAULT_POINTS)})"
        )
    if not count:
        return name, 1
    if not count.isdigit() or int(count) < 1:
        raise ConfigError(f"{FAULT_POINT_VARIABLE}={spec!r}: N must be a whole number >= 1")
    return name, int(count)


def fault_point(name: str) -> None:
    """Mark that the process reached ``name``; under test, maybe die here (SIGKILL).

    Raises:
        ValueError: ``name`` is not one of ``FAULT_POINTS`` (a programming error).
        ConfigError: under test, ``MARKETBOT_FAULT_POINT`` is malformed.
    """
    if name not in FAULT_POINTS:
        raise ValueError(f"unknown fault point {name!r}")
    if os.environ.get(TESTING_VARIABLE) != "1":
        return
    spec = os.environ.get(FAULT_POINT_VARIABLE, "").strip()
    if not spec:
        return
    target, count = parse_fault_point(spec)
    if target != name:
        return
    _reached[name] += 1
    if _reached[name] == count:
        os.kill(os.getpid(), signal.SIGKILL)
