"""``marketbot risk ...`` and ``marketbot bot ...``: commands queued as rows, on an SQLite file."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest

from marketbot.config import load_settings
from marketbot.store import Database
from marketbot.store.bot_commands import BotCommandInfo, BotCommandRepository
from tests.support.cli import isolated_data_dir, run_cli


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolated_data_dir(tmp_path, monkeypatch)


def stored_commands() -> list[BotCommandInfo]:
    with Database.from_settings(load_settings()) as database:
        database.migrate()
        return BotCommandRepository(database).pending()


@pytest.mark.parametrize(
    ("args", "kind", "stored_args"),
    [
        (["risk", "reset"], "reset_breaker", {}),
        (["risk", "halt"], "halt", {}),
        (["risk", "override"], "override", {}),
        (["risk", "resume"], "resume", {}),
        (["bot", "stop"], "stop", {}),
        (["bot", "reload"], "reload", {}),
        (["bot", "force-exit", "BTC/USDT"], "force_exit", {"symbol": "BTC/USDT"}),
        (["bot", "force-exit", "--all"], "force_exit", {"all": True}),
        (["bot", "force-entry", "ETH/USDT"], "force_entry", {"symbol": "ETH/USDT"}),
    ],
)
def test_command_when_given_a_reason_queues_a_row_with_by_and_reason(
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    kind: str,
    stored_args: dict[str, object],
) -> None:
    code, out, err = run_cli([*args, "--reason", "drill", "--by", "alice"], capsys)

    assert (code, err) == (0, "")
    (command,) = stored_commands()
    assert (command.kind, command.args, command.by, command.reason, command.status) == (
        kind,
        stored_args,
        "alice",
        "drill",
        "pending",
    )
    assert out.splitlines()[0].startswith(f"queued command {command.id}: {kind}")
    assert "acknowledges it at its next iteration" in out


def test_command_when_by_is_left_out_records_the_login_name(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(["risk", "halt", "--reason", "news at 14:00"], capsys)

    assert code == 0
    (command,) = stored_commands()
    assert command.by == getpass.getuser()
    assert f"by {getpass.getuser()}" in out


def test_commands_when_queued_one_after_another_are_pending_in_order(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for args in (["risk", "halt"], ["bot", "force-exit", "--all"], ["risk", "reset"]):
        assert run_cli([*args, "--reason", "r"], capsys)[0] == 0

    assert [command.kind for command in stored_commands()] == [
        "halt",
        "force_exit",
        "reset_breaker",
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["risk", "reset"],
        ["risk", "halt", "--by", "alice"],
        ["bot", "stop", "--reason", "  "],
        ["bot", "force-exit", "--all"],
    ],
)
def test_command_when_reason_is_missing_exits_1_with_one_line_and_stores_nothing(
    data_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    code, out, err = run_cli(args, capsys)

    assert (code, out) == (1, "")
    assert len(err.splitlines()) == 1
    assert err.startswith("error: ") and "give a reason (--reason TEXT)" in err
    assert not data_dir.exists()  # not even the database was created


@pytest.mark.parametrize(
    "args",
    [["bot", "force-exit"], ["bot", "force-exit", "BTC/USDT", "--all"]],
)
def test_force_exit_when_not_exactly_one_of_symbol_or_all_exits_1(
    data_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    code, out, err = run_cli([*args, "--reason", "flatten"], capsys)

    assert (code, out) == (1, "")
    assert err == "error: bot force-exit: name one SYMBOL or give --all (not both)\n"
    assert not data_dir.exists()


def test_force_entry_when_symbol_is_missing_is_a_usage_error(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["bot", "force-entry", "--reason", "test"], capsys)

    assert code == 2
    assert "Missing argument" in err
    assert not data_dir.exists()


def test_console_script_when_reason_is_missing_exits_1_without_traceback(
    tmp_path: Path,
) -> None:
    # As a user's shell runs it: the installed script, a fresh environment.
    import os
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items() if not key.startswith("MARKETBOT_")}
    env["MARKETBOT_DATA_DIR"] = str(tmp_path / "var")
    script = Path(sys.executable).parent / "marketbot"
    finished = subprocess.run(
        [str(script), "risk", "reset"], capture_output=True, text=True, env=env, timeout=120,
        check=False,
    )  # fmt: skip

    assert finished.returncode == 1
    assert finished.stderr == (
        "error: risk reset: give a reason (--reason TEXT); nothing was queued\n"
    )
    assert not (tmp_path / "var").exists()
