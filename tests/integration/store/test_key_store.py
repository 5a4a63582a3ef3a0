"""The key store: Fernet round trip, masks, the master key's file and variable, no plaintext."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from marketbot.core.errors import ConfigError
from marketbot.store import APIKey, Database
from marketbot.store.keys import Credentials, KeyStore, MasterKey, mask

API_KEY = "AKTEST0000wxyz"
SECRET = "SKTEST9f8e-sentinel-secret"
PASSWORD = "PWsentinel-pass"


def binance_keys() -> Credentials:
    return Credentials(api_key=API_KEY, secret=SECRET)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "var"


@pytest.fixture
def sqlite_database(migrated_sqlite_template: Path, data_dir: Path) -> Database:
    data_dir.mkdir(parents=True)
    path = data_dir / "marketbot.db"
    shutil.copyfile(migrated_sqlite_template, path)
    return Database(f"sqlite:///{path}")


def test_key_store_when_saved_and_read_returns_the_same_credentials(
    database: Database, data_dir: Path
) -> None:
    store = KeyStore(database, MasterKey(data_dir))
    okx = Credentials(api_key="okx-key-1234", secret="okx-secret", password=PASSWORD)
    store.save("binance", binance_keys())
    store.save("okx", okx, label="trading")

    assert store.get("binance") == binance_keys()
    assert store.get("okx", label="trading") == okx
    assert store.get("okx") is None
    assert [(s.exchange, s.label, s.masked_key) for s in store.list()] == [
        ("binance", "default", "****wxyz"),
        ("okx", "trading", "****1234"),
    ]


def test_key_store_when_saved_again_replaces_the_key_and_clears_its_last_test(
    database: Database, data_dir: Path
) -> None:
    store = KeyStore(database, MasterKey(data_dir))
    store.save("binance", binance_keys())
    store.record_test("binance", ok=False, message="Invalid API-key")
    store.save("binance", Credentials(api_key="NEWKEY9999", secret="new-secret"))

    summary = store.summary("binance")
    assert summary is not None
    assert (summary.masked_key, summary.last_test_ok, summary.last_tested_at) == (
        "****9999",
        None,
        None,
    )
    assert store.get("binance") == Credentials(api_key="NEWKEY9999", secret="new-secret")


def test_key_store_when_tested_records_time_result_and_message(
    database: Database, data_dir: Path
) -> None:
    store = KeyStore(database, MasterKey(data_dir))
    store.save("binance", binance_keys())
    store.record_test("binance", ok=True, message="ok")

    summary = store.summary("binance")
    assert summary is not None
    assert (summary.last_test_ok, summary.last_test_message) == (True, "ok")
    assert summary.last_tested_at is not None
    assert summary.to_dict()["masked_key"] == "****wxyz"
    with pytest.raises(ConfigError, match="no API key for kraken/default"):
        store.record_test("kraken", ok=True, message="ok")


def test_key_store_when_deleted_forgets_the_key(database: Database, data_dir: Path) -> None:
    store = KeyStore(database, MasterKey(data_dir))
    store.save("binance", binance_keys())

    assert store.delete("binance") is True
    assert store.delete("binance") is False
    assert store.get("binance") is None
    assert store.list() == []


def test_credentials_when_printed_show_only_the_mask() -> None:
    keys = Credentials(api_key=API_KEY, secret=SECRET, password=PASSWORD)
    row = APIKey(exchange="binance", label="default", masked_key=keys.masked)

    for text in (repr(keys), str(keys), f"{keys}", repr([keys]), repr(row)):
        assert "****wxyz" in text
        assert API_KEY not in text and SECRET not in text and PASSWORD not in text


def test_mask_when_there_is_no_api_key_uses_the_wallet_address() -> None:
    wallet = Credentials(wallet_address="0xabcdef0123", private_key="0xprivate")

    assert wallet.masked == "****0123"
    assert mask(None, None) == "****"
    assert wallet.to_ccxt() == {"privateKey": "0xprivate", "walletAddress": "0xabcdef0123"}


@pytest.mark.parametrize("field", ["api_key", "secret", "password"])
def test_credentials_when_a_field_is_blank_are_refused_naming_it(field: str) -> None:
    values = {"api_key": API_KEY, "secret": SECRET, field: "  "}

    with pytest.raises(ConfigError, match=f"empty {field.replace('_', ' ')}: nothing stored"):
        Credentials(**values)


def test_key_store_when_the_master_key_differs_refuses_to_decrypt(
    database: Database, data_dir: Path
) -> None:
    KeyStore(database, MasterKey(data_dir, Fernet.generate_key().decode())).save(
        "binance", binance_keys()
    )
    other = KeyStore(database, MasterKey(data_dir, Fernet.generate_key().decode()))

    message = (
        "cannot decrypt binance/default: the master key differs from the one it was saved with"
    )
    with pytest.raises(ConfigError, match=message):
        other.get("binance")
    # Nor may it save a key the first master key could not open: nothing is stored.
    with pytest.raises(ConfigError, match=message):
        other.save("kraken", Credentials(api_key="KRAKEN1234", secret="kraken-secret"))
    assert [summary.exchange for summary in other.list()] == ["binance"]


def test_master_key_file_when_first_needed_is_created_0600_and_reused(
    database: Database, data_dir: Path
) -> None:
    master = MasterKey(data_dir)
    assert master.fernet(create=False) is None
    assert not master.path.exists()

    KeyStore(database, master).save("binance", binance_keys())

    assert stat.S_IMODE(master.path.stat().st_mode) == 0o600
    key = master.path.read_bytes()
    assert KeyStore(database, MasterKey(data_dir)).get("binance") == binance_keys()
    assert master.path.read_bytes() == key


def test_master_key_file_when_group_or_others_may_read_it_is_refused_naming_it(
    database: Database, data_dir: Path
) -> None:
    KeyStore(database, MasterKey(data_dir)).save("binance", binance_keys())
    path = data_dir / "master.key"
    os.chmod(path, 0o644)

    with pytest.raises(ConfigError, match=rf"{path} is readable by others \(mode 644\)"):
        KeyStore(database, MasterKey(data_dir)).get("binance")


def test_master_key_variable_when_not_a_fernet_key_is_refused_without_echoing_it(
    data_dir: Path,
) -> None:
    master = MasterKey.from_environment(data_dir, {"MARKETBOT_MASTER_KEY": "hunter2-not-a-key"})

    with pytest.raises(ConfigError) as caught:
        master.fernet(create=True)
    assert str(caught.value).startswith("MARKETBOT_MASTER_KEY is not a Fernet key")
    assert "hunter2" not in str(caught.value)
    assert not master.path.exists()


def test_key_store_when_keys_are_saved_leaves_no_plaintext_in_any_file(
    sqlite_database: Database, data_dir: Path
) -> None:
    store = KeyStore(sqlite_database, MasterKey(data_dir))
    store.save("okx", Credentials(api_key=API_KEY, secret=SECRET, password=PASSWORD))
    store.record_test("okx", ok=False, message="refused")
    # Read before the database closes, so the -wal file still holds the pages.
    files = [path for path in data_dir.rglob("*") if path.is_file()]
    contents = {path.name: path.read_bytes() for path in files}
    sqlite_database.dispose()

    assert {"marketbot.db", "marketbot.db-wal", "master.key"} <= set(contents)
    for name, content in contents.items():
        for sentinel in (SECRET, PASSWORD, API_KEY):
            assert sentinel.encode() not in content, f"{sentinel} in {name}"
