"""The secret-redacting log filter: messages, arguments, tracebacks, every logger."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from marketbot.core.redaction import SecretRedactor

SECRET = "SKTEST9f8e-sentinel"


@pytest.fixture
def stream_logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    logger = logging.getLogger("test_redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_redactor_when_a_secret_is_in_the_message_or_its_arguments_writes_stars(
    stream_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = stream_logger
    SecretRedactor([SECRET, "AKTEST0000wxyz"]).install(logger)

    logger.info("key %s secret %s", "AKTEST0000wxyz", SECRET)
    logger.warning(f"request failed: secret={SECRET}&x=1")

    written = stream.getvalue()
    assert SECRET not in written and "AKTEST0000wxyz" not in written
    assert written.splitlines() == [
        "test_redaction key **** secret ****",
        "test_redaction request failed: secret=****&x=1",
    ]


def test_redactor_when_an_exception_quotes_a_secret_redacts_the_traceback(
    stream_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = stream_logger
    SecretRedactor([SECRET]).install(logger)

    try:
        raise ValueError(f"bad signature for {SECRET}")
    except ValueError:
        logger.exception("call failed")

    written = stream.getvalue()
    assert "ValueError: bad signature for ****" in written
    assert SECRET not in written


def test_redactor_when_secrets_overlap_hides_the_longer_whole() -> None:
    redactor = SecretRedactor(["abcd", "abcdefgh", "xy"])

    # "xy" is too short to hide: it would blank unrelated text.
    assert redactor.redact("abcdefgh abcd xy") == "**** **** xy"


def test_redactor_when_installed_on_a_bare_root_logger_catches_other_loggers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    saved = list(root.handlers)
    for handler in saved:
        root.removeHandler(handler)
    redactor = SecretRedactor([SECRET])
    try:
        redactor.install()
        added = list(root.handlers)
        logging.getLogger("marketbot.some.module").warning("leaked %s", SECRET)
        redactor.uninstall()
        left = list(root.handlers)
    finally:
        for handler in [handler for handler in root.handlers if handler not in saved]:
            root.removeHandler(handler)
        for handler in saved:
            root.addHandler(handler)

    assert (len(added), left) == (1, [])  # the stand-in for the last-resort handler goes too
    err = capsys.readouterr().err
    assert "leaked ****" in err and SECRET not in err


def test_redactor_when_the_format_string_is_bad_still_redacts_and_does_not_raise(
    stream_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = stream_logger
    SecretRedactor([SECRET]).install(logger)
    logging.raiseExceptions = False  # as in production: a bad record is dropped quietly
    try:
        logger.info(f"{SECRET} %s %s", "only one argument")
    finally:
        logging.raiseExceptions = True

    assert SECRET not in stream.getvalue()
