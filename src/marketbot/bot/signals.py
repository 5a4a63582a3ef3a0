"""SIGINT and SIGTERM stop a bot once its current iteration is saved, never in the middle."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

_log = logging.getLogger("marketbot.bot")


@contextmanager
def stop_on_signals(request_stop: Callable[[], None], unit: str = "bar") -> Iterator[None]:
    """While inside, SIGINT and SIGTERM call ``request_stop``; the old handlers come back after.

    The runner checks its stop flag after each saved ``unit`` (bar, instant).
    """

    def stop(signum: int, frame: FrameType | None) -> None:
        _log.warning("signal %d: stopping once this %s is saved", signum, unit)
        request_stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
