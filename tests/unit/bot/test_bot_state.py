"""The bot's state file: format, checksum, atomic save with backup, recovery from corruption."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketbot.bot.state import (
    BotState,
    PositionState,
    StateError,
    StatePaths,
    decode_state,
    encode_state,
    load_state,
    reset_state,
    save_state,
)

T0 = datetime(2026, 2, 8, 7, 14, 39, tzinfo=UTC)
SEED_KEYS = {
    "timestamp",
    "active_strategies",
    "open_positions",
    "pending_trades",
    "portfolio_value",
    "circuit_breaker_active",
    "save_count",
}
POSITION = PositionState(
    position_id="mb-3f2a",
    strategy="momentum",
    symbol="BTC/USDT",
    direction="long",
    size=0.015,
    entry_price=64_250.5,
    entry_time=T0 - timedelta(hours=5),
    extreme_price=65_000.0,
    entry_client_order_id="mb-3f2a",
)
STATE = BotState(
    timestamp=T0,
    portfolio_value=10_000.0,
    active_strategies=("momentum", "sma_crossover"),
    open_positions=(POSITION,),
    pending_trades=("mb-77",),
    circuit_breaker_active=False,
    save_count=142,
    last_bar_time=T0 - timedelta(hours=1),
)


def paths(tmp_path: Path) -> StatePaths:
    return StatePaths.in_data_dir(tmp_path / "var")


# ---------------------------------------------------------------------------- format


def test_state_file_when_saved_holds_the_seed_keys_and_the_documented_checksum(
    tmp_path: Path,
) -> None:
    files = paths(tmp_path)

    written = save_state(files.state_dir, STATE)

    assert written == tmp_path / "var" / "state" / "bot_state.json"
    document = json.loads(written.read_text(encoding="utf-8"))
    assert set(document) == SEED_KEYS | {"schema_version", "last_bar_time", "checksum"}
    rest = {key: value for key, value in document.items() if key != "checksum"}
    expected = hashlib.sha256(
        json.dumps(rest, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    assert document["checksum"] == expected
    assert document["timestamp"] == "2026-02-08T07:14:39+00:00"
    assert document["open_positions"][0]["direction"] == "long"
    assert (document["schema_version"], document["save_count"]) == (1, 142)


def test_load_state_when_saved_returns_the_same_state(tmp_path: Path) -> None:
    files = paths(tmp_path)
    save_state(files.state_dir, STATE)

    assert load_state(files.state_dir) == STATE


def test_load_state_when_no_file_exists_returns_none(tmp_path: Path) -> None:
    assert load_state(paths(tmp_path).state_dir) is None


def test_bot_state_when_built_from_lists_and_naive_times_normalises_them() -> None:
    state = BotState(
        timestamp=datetime(2026, 1, 1),  # naive: UTC
        portfolio_value=1,
        active_strategies=["a"],  # type: ignore[arg-type]
    )
    assert state.timestamp == datetime(2026, 1, 1, tzinfo=UTC)
    assert state.active_strategies == ("a",)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"portfolio_value": float("nan")}, "portfolio_value=nan: must be finite"),
        ({"save_count": -1}, "save_count=-1"),
    ],
)
def test_bot_state_when_invalid_is_refused(changes: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"timestamp": T0, "portfolio_value": 1.0} | changes
    with pytest.raises(ValueError, match=message):
        BotState(**values)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- save, backup


def test_save_state_when_saved_twice_keeps_the_previous_state_as_backup(tmp_path: Path) -> None:
    files = paths(tmp_path)
    newer = BotState(timestamp=T0 + timedelta(hours=1), portfolio_value=10_050.0, save_count=143)

    save_state(files.state_dir, STATE)
    assert not files.backup.exists()
    save_state(files.state_dir, newer)

    assert decode_state(files.main.read_bytes()) == newer
    assert decode_state(files.backup.read_bytes()) == STATE
    assert not files.temp.exists() and not files.backup_temp.exists()


def test_save_state_when_current_file_is_corrupt_does_not_make_it_the_backup(
    tmp_path: Path,
) -> None:
    files = paths(tmp_path)
    save_state(files.state_dir, STATE)
    save_state(files.state_dir, STATE)  # the backup is now a good copy
    files.main.write_text("{ torn", encoding="utf-8")

    newer = BotState(timestamp=T0 + timedelta(hours=1), portfolio_value=1.0)
    save_state(files.state_dir, newer)

    assert decode_state(files.main.read_bytes()) == newer
    assert decode_state(files.backup.read_bytes()) == STATE


# ---------------------------------------------------------------------------- recovery


def test_load_state_when_main_is_corrupt_uses_the_backup_and_logs_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = paths(tmp_path)
    save_state(files.state_dir, STATE)
    save_state(files.state_dir, BotState(timestamp=T0, portfolio_value=1.0))
    files.main.write_bytes(files.main.read_bytes()[:40])  # a torn write

    with caplog.at_level(logging.WARNING, logger="marketbot.bot.state"):
        state = load_state(files.state_dir)

    assert state == STATE
    assert f"state file {files.main} corrupt, using backup {files.backup}" in caplog.text


def test_load_state_when_a_value_was_edited_detects_the_checksum_mismatch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = paths(tmp_path)
    save_state(files.state_dir, STATE)
    save_state(files.state_dir, STATE)
    document = json.loads(files.main.read_text(encoding="utf-8"))
    document["portfolio_value"] = 1_000_000.0  # valid JSON, valid type, wrong checksum
    files.main.write_text(json.dumps(document), encoding="utf-8")

    with pytest.raises(ValueError, match="checksum mismatch"):
        decode_state(files.main.read_bytes())
    with caplog.at_level(logging.WARNING, logger="marketbot.bot.state"):
        assert load_state(files.state_dir) == STATE
    assert "corrupt, using backup" in caplog.text and "checksum mismatch" in caplog.text


def test_load_state_when_main_is_missing_uses_the_backup(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = paths(tmp_path)
    save_state(files.state_dir, STATE)
    save_state(files.state_dir, STATE)
    files.main.unlink()

    with caplog.at_level(logging.WARNING, logger="marketbot.bot.state"):
        assert load_state(files.state_dir) == STATE
    assert f"state file {files.main} missing, using backup {files.backup}" in caplog.text


def test_load_state_when_both_files_are_corrupt_names_both_and_reset_state(
    tmp_path: Path,
) -> None:
    files = paths(tmp_path)
    save_state(files.state_dir, STATE)
    save_state(files.state_dir, STATE)
    files.main.write_text("not json", encoding="utf-8")
    files.backup.write_bytes(b"\xff\xfe")

    with pytest.raises(StateError) as caught:
        load_state(files.state_dir)

    message = str(caught.value)
    assert str(files.main) in message and str(files.backup) in message
    assert "--reset-state" in message
    assert "not valid JSON" in message and "not UTF-8" in message
    assert (caught.value.main, caught.value.backup) == (files.main, files.backup)


def test_load_state_when_only_a_corrupt_backup_exists_raises(tmp_path: Path) -> None:
    files = paths(tmp_path)
    files.state_dir.mkdir(parents=True)
    files.backup.write_text("{}", encoding="utf-8")

    with pytest.raises(StateError, match=r"bot_state.json is missing and its backup"):
        load_state(files.state_dir)


def test_load_state_when_schema_version_is_newer_refuses_it(tmp_path: Path) -> None:
    rest = STATE.to_dict() | {"schema_version": 2}
    canonical = json.dumps(rest, sort_keys=True, separators=(",", ":"))
    document = rest | {"checksum": hashlib.sha256(canonical.encode()).hexdigest()}

    with pytest.raises(ValueError, match="schema_version 2, this marketbot reads 1"):
        decode_state(json.dumps(document).encode())


def test_reset_state_when_files_exist_sets_both_aside(tmp_path: Path) -> None:
    files = paths(tmp_path)
    save_state(files.state_dir, STATE)
    save_state(files.state_dir, STATE)

    moved = reset_state(files.state_dir, T0)

    assert [path.name for path in moved] == [
        "bot_state.reset-20260208T071439Z.json",
        "bot_state.backup.reset-20260208T071439Z.json",
    ]
    assert load_state(files.state_dir) is None
    assert decode_state(moved[0].read_bytes()) == STATE


# ---------------------------------------------------------------------------- properties

times = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
prices = st.floats(min_value=1e-9, max_value=1e12, allow_nan=False)
positions = st.builds(
    PositionState,
    position_id=st.text(),
    strategy=st.text(),
    symbol=st.text(),
    direction=st.sampled_from(["long", "short"]),
    size=prices,
    entry_price=prices,
    entry_time=times,
    extreme_price=st.none() | prices,
    entry_client_order_id=st.none() | st.text(),
)
states = st.builds(
    BotState,
    timestamp=times,
    portfolio_value=st.floats(allow_nan=False, allow_infinity=False),
    active_strategies=st.lists(st.text(), max_size=3).map(tuple),
    open_positions=st.lists(positions, max_size=3).map(tuple),
    pending_trades=st.lists(st.text(), max_size=3).map(tuple),
    circuit_breaker_active=st.booleans(),
    save_count=st.integers(min_value=0, max_value=2**53),
    last_bar_time=st.none() | times,
)


@given(states)
def test_any_state_when_encoded_and_decoded_is_unchanged(state: BotState) -> None:
    assert decode_state(encode_state(state)) == state


@given(state=states, data=st.data())
def test_any_byte_change_when_decoded_is_detected_or_changes_nothing(
    state: BotState, data: st.DataObject
) -> None:
    # A changed byte is refused, or it is one the checksum cannot see because the state is
    # the same (a space for a newline between keys, 1e-05 spelt 1E-05): never a wrong state.
    encoded = bytearray(encode_state(state))
    index = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1), label="index")
    byte = data.draw(
        st.integers(min_value=0, max_value=255).filter(lambda b: b != encoded[index]),
        label="byte",
    )
    encoded[index] = byte

    try:
        decoded = decode_state(bytes(encoded))
    except ValueError:
        return
    assert decoded == state
