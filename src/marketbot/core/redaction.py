"""Secrets kept out of logs: a logging filter that blanks every known secret string.

The CLI registers the credentials it loads (and any other secret text) with one
:class:`SecretRedactor` installed on the root logger's handlers, so that a message, its
arguments or a traceback that happens to quote a secret is written with ``****`` instead.
A filter on the handlers (not on a logger) sees the records of every logger, propagated ones
included.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Final

__all__ = ["REDACTED", "SecretRedactor"]

REDACTED: Final = "****"
# Shorter strings (a "1" uid, say) would blank unrelated text and protect nothing.
_MIN_SECRET_CHARS: Final = 4


class SecretRedactor(logging.Filter):
    """A logging filter that replaces each registered secret by ``****`` in every record.

    Args:
        secrets: The strings to hide; more can be added with :meth:`add`.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        self._fallback: logging.Handler | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Hide these strings too (those under 4 characters are ignored)."""
        with self._lock:
            known = set(self._secrets)
            known.update(text for text in secrets if len(text) >= _MIN_SECRET_CHARS)
            # Longest first, so that a secret containing another is hidden whole.
            self._secrets = tuple(sorted(known, key=len, reverse=True))

    def redact(self, text: str) -> str:
        """``text`` with every registered secret replaced by ``****``."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message (and traceback text) without secrets; keep it."""
        if not self._secrets:
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # A bad format string: the handler reports it (its text quotes no argument).
            record.msg = self.redact(str(record.msg))
            return True
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # Formatted now and cached on the record, so handlers print the redacted copy.
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True

    def install(self, logger: logging.Logger | None = None) -> None:
        """Attach to every handler of ``logger`` (the root logger by default).

        A root logger without handlers (the CLI's) would print warnings through logging's
        last-resort handler, which no filter reaches; it gets an equivalent one first
        (stderr, WARNING, the bare message).
        """
        target = logger if logger is not None else logging.getLogger()
        if logger is None and not target.handlers:
            self._fallback = logging.StreamHandler()
            self._fallback.setLevel(logging.WARNING)
            target.addHandler(self._fallback)
        for handler in target.handlers:
            if self not in handler.filters:
                handler.addFilter(self)

    def uninstall(self, logger: logging.Logger | None = None) -> None:
        """Detach from every handler of ``logger`` (the root logger by default)."""
        target = logger if logger is not None else logging.getLogger()
        for handler in target.handlers:
            handler.removeFilter(self)
        if self._fallback is not None:
            target.removeHandler(self._fallback)
            self._fallback = None
