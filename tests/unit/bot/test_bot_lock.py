"""The bot lock: one bot per data directory, a second one refused with the holder's pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from marketbot.bot.lock import BotLock, BotLockedError, read_holder_pid
from marketbot.core.errors import MarketbotError

HOLD_THE_LOCK = """
    import sys
    from pathlib import Path
    from marketbot.bot.lock import BotLock

    lock = BotLock(Path(sys.argv[1]))
    lock.acquire()
    print("locked", flush=True)
    sys.stdin.read()  # hold it until the parent closes stdin
"""


@contextmanager
def holder(path: Path) -> Iterator[subprocess.Popen[str]]:
    """A child process that holds the lock at ``path`` until the block ends."""
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLD_THE_LOCK), str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=30)
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()


def test_lock_when_another_process_holds_it_is_refused_naming_its_pid(tmp_path: Path) -> None:
    path = tmp_path / "state" / "bot.lock"

    with holder(path) as child, pytest.raises(BotLockedError) as caught:
        BotLock(path).acquire()

    assert caught.value.pid == child.pid
    assert f"another bot is running (pid {child.pid})" in str(caught.value)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, MarketbotError)


def test_lock_when_the_holder_was_killed_can_be_taken(tmp_path: Path) -> None:
    path = tmp_path / "state" / "bot.lock"
    with holder(path) as child:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)

    with BotLock(path) as lock:
        assert lock.held
        assert read_holder_pid(path) == os.getpid()


def test_lock_when_taken_twice_in_one_process_refuses_the_second(tmp_path: Path) -> None:
    path = tmp_path / "bot.lock"
    with BotLock(path), pytest.raises(BotLockedError, match=f"pid {os.getpid()}"):
        BotLock(path).acquire()


def test_lock_when_released_can_be_taken_again_and_keeps_its_file(tmp_path: Path) -> None:
    lock = BotLock.in_state_dir(tmp_path / "state")
    lock.acquire()
    lock.acquire()  # a no-op when held
    lock.release()
    lock.release()  # a no-op when not held

    assert not lock.held and lock.path.exists()
    with BotLock(lock.path):
        pass


def test_read_holder_pid_when_file_has_no_number_returns_none(tmp_path: Path) -> None:
    path = tmp_path / "bot.lock"
    assert read_holder_pid(path) is None
    path.write_text("", encoding="ascii")
    assert read_holder_pid(path) is None
