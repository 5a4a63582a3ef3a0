"""``marketbot keys`` end to end, in-process, on a data directory of the test's own.

Credentials come one per line on stdin (not a terminal), never from options; ``keys test``
signs a real ccxt request to the local fake Binance, which checks the signature.
"""

from __future__ import annotations

import io
import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.support.cli import isolated_data_dir, run_cli
from tests.support.fake_binance import FakeBinanceSpot

API_KEY, SECRET = "AKTEST0000wxyz", "SKTEST9f8e-sentinel"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MARKETBOT_MASTER_KEY", raising=False)
    return isolated_data_dir(tmp_path, monkeypatch)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBinanceSpot]:
    with FakeBinanceSpot(api_key=API_KEY, secret=SECRET) as server:
        monkeypatch.setenv("MARKETBOT_EXCHANGE_API_URLS", json.dumps({"binance": server.api_urls}))
        yield server


def keys(
    args: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    stdin: str = "",
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return run_cli(["keys", *args], capsys)


def stored(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    code, out, _ = keys(["list", "--json"], capsys, monkeypatch)
    assert code == 0
    return list(json.loads(out))


def files_containing(folder: Path, *texts: str) -> list[str]:
    return sorted(
        path.name
        for path in folder.rglob("*")
        if path.is_file() and any(text.encode() in path.read_bytes() for text in texts)
    )


def test_keys_set_when_piped_stores_the_key_encrypted_and_lists_only_its_mask(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = keys(["set", "binance"], capsys, monkeypatch, f"{API_KEY}\n{SECRET}\n")

    assert (code, out, err) == (0, "saved binance/default (****wxyz)\n", "")
    assert stat.S_IMODE((data_dir / "master.key").stat().st_mode) == 0o600
    [row] = stored(capsys, monkeypatch)
    assert row["exchange"] == "binance" and row["label"] == "default"
    assert row["masked_key"] == "****wxyz"
    assert (row["last_tested_at"], row["last_test_ok"]) == (None, None)
    code, table, _ = keys(["list"], capsys, monkeypatch)
    assert code == 0 and "****wxyz" in table and API_KEY not in table
    assert files_containing(data_dir, SECRET, API_KEY) == []


def test_keys_test_when_the_exchange_accepts_the_key_prints_ok_and_records_it(
    data_dir: Path,
    fake: FakeBinanceSpot,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys(["set", "binance"], capsys, monkeypatch, f"{API_KEY}\n{SECRET}\n")

    code, out, err = keys(["test", "binance"], capsys, monkeypatch)

    assert (code, out, err) == (0, "ok\n", "")
    assert fake.paths() == ["GET /api/v3/exchangeInfo", "GET /api/v3/account"]
    [row] = stored(capsys, monkeypatch)
    assert (row["last_test_ok"], row["last_test_message"]) == (True, "ok")
    assert row["last_tested_at"] is not None


def test_keys_test_when_the_exchange_refuses_the_key_exits_1_with_the_reason_recorded(
    data_dir: Path,
    fake: FakeBinanceSpot,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys(["set", "binance"], capsys, monkeypatch, f"{API_KEY}\nwrong-{SECRET}\n")

    code, out, err = keys(["test", "binance"], capsys, monkeypatch)

    assert (code, out) == (1, "")
    assert err.startswith("error: binance/default: ")
    assert "Signature for this request is not valid" in err
    assert err.count("\n") == 1 and SECRET not in err
    [row] = stored(capsys, monkeypatch)
    assert row["last_test_ok"] is False
    assert "Signature for this request is not valid" in row["last_test_message"]
    assert files_containing(data_dir, SECRET) == []


def test_keys_delete_when_stored_forgets_it_and_then_refuses(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    keys(["set", "binance", "--label", "testnet"], capsys, monkeypatch, f"{API_KEY}\n{SECRET}\n")

    assert keys(["delete", "binance", "--label", "testnet"], capsys, monkeypatch)[:2] == (
        0,
        "deleted binance/testnet\n",
    )
    assert stored(capsys, monkeypatch) == []
    code, _, err = keys(["delete", "binance", "--label", "testnet"], capsys, monkeypatch)
    assert (code, err) == (1, "error: no API key for binance/testnet\n")


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["set", "binance"], f"{API_KEY}\n\n", "error: empty secret: nothing stored\n"),
        (["set", "binance"], "", "error: empty API key: nothing stored\n"),
        (["set", "okx"], f"{API_KEY}\n{SECRET}\n", "error: empty password (passphrase)"),
        (["set", "binanse"], "", "error: unknown exchange 'binanse'; close matches: binance"),
        (["test", "binance"], "", "error: no API key for binance: run marketbot keys set"),
    ],
)
def test_keys_when_input_is_bad_exits_1_with_one_line_and_stores_nothing(
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    stdin: str,
    message: str,
) -> None:
    code, out, err = keys(args, capsys, monkeypatch, stdin)

    assert (code, out) == (1, "")
    assert err.startswith(message) and err.count("\n") == 1
    assert stored(capsys, monkeypatch) == []


def test_keys_set_when_the_master_key_differs_refuses_and_stores_nothing(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARKETBOT_MASTER_KEY", Fernet.generate_key().decode())
    keys(["set", "binance"], capsys, monkeypatch, f"{API_KEY}\n{SECRET}\n")
    monkeypatch.setenv("MARKETBOT_MASTER_KEY", Fernet.generate_key().decode())

    code, _, err = keys(["set", "kraken"], capsys, monkeypatch, "KRAKEN0001\nkraken-secret\n")

    assert code == 1
    assert err == (
        "error: cannot decrypt binance/default: the master key differs from the one it "
        "was saved with\n"
    )
    assert [row["exchange"] for row in stored(capsys, monkeypatch)] == ["binance"]
    assert not (data_dir / "master.key").exists()


def test_keys_set_when_the_key_file_is_loose_refuses_naming_it(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    keys(["set", "binance"], capsys, monkeypatch, f"{API_KEY}\n{SECRET}\n")
    path = data_dir / "master.key"
    os.chmod(path, 0o640)

    code, _, err = keys(["set", "kraken"], capsys, monkeypatch, "KRAKEN0001\nkraken-secret\n")

    assert code == 1
    assert err == f"error: {path} is readable by others (mode 640): run chmod 600 {path}\n"
    assert [row["exchange"] for row in stored(capsys, monkeypatch)] == ["binance"]
