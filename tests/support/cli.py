"""Running the ``marketbot`` command in-process, on a data directory of the test's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketbot.cli import main


def isolated_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point MARKETBOT_DATA_DIR at a fresh folder (its own SQLite file) and return it."""
    monkeypatch.setenv("MARKETBOT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("MARKETBOT_DATABASE_URL", raising=False)
    return tmp_path / "var"


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``marketbot ARGS``; return the exit code, stdout and stderr."""
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
