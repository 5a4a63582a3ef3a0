"""One bot per data directory: an exclusive ``flock`` on ``state/bot.lock``.

The lock file holds the holder's pid, so a second bot is refused with a message naming it.
The kernel drops a flock when its holder dies, however it dies, so a crashed bot never leaves
a stale lock behind; the file itself stays (deleting it would let two bots lock two
different files of the same name).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from marketbot.core.errors import MarketbotError

LOCK_FILE_NAME: Final = "bot.lock"


class BotLockedError(MarketbotError):
    """Another process holds the bot lock.

    Attributes:
        path: The lock file.
        pid: The holder's pid as written in the file; None if it could not be read.
    """

    def __init__(self, path: Path, pid: int | None) -> None:
        holder = f"pid {pid}" if pid is not None else "a process whose pid is not written yet"
        super().__init__(
            f"another bot is running ({holder}) and holds {path}: stop it first "
            "(marketbot bot stop --reason ...), one bot per data directory"
        )
        self.path = path
        self.pid = pid


def read_holder_pid(path: Path) -> int | None:
    """The pid written in a lock file, or None when it is missing, empty or not a number."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


class BotLock:
    """An exclusive, non-blocking lock on a file; use it as a context manager.

    Args:
        path: The lock file (created if missing, with its folder).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> Self:
        """The lock of the bot whose state lives in ``state_dir``."""
        return cls(state_dir / LOCK_FILE_NAME)

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock and write this process's pid into the file.

        Raises:
            BotLockedError: another process (or another BotLock) holds it; names its pid.
            OSError: the folder or file cannot be created.
        """
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # No O_TRUNC: until the lock is ours, the file holds the holder's pid.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BotLockedError(self.path, read_holder_pid(self.path)) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd = fd

    def release(self) -> None:
        """Let the lock go (a no-op when not held); the file and its pid stay."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
