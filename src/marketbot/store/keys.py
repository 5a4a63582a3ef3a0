"""The key store: exchange credentials encrypted at rest with Fernet under one master key.

The master key is ``MARKETBOT_MASTER_KEY`` when set, else the file ``master.key`` in the data
directory, created with mode 0600 (``O_EXCL``, so two processes never write two keys) the
first time a credential is saved. A key file that its group or others may read is refused:
it would be no better than the plaintext. Losing the master key loses every stored
credential (they can be set again); it is never written anywhere else.

Every credential ccxt's ``requiredCredentials`` can name has its own encrypted column; what
may be shown is only the mask: ``****`` and the API key's last 4 characters (the wallet
address's when there is no API key). Objects holding credentials print only that mask.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

import sqlalchemy as sa

from marketbot.core.errors import ConfigError
from marketbot.store.database import Database
from marketbot.store.models import APIKey, utc_now

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

__all__ = [
    "CREDENTIAL_NAMES",
    "MASTER_KEY_FILE",
    "MASTER_KEY_VARIABLE",
    "Credentials",
    "KeyStore",
    "KeySummary",
    "MasterKey",
    "mask",
]

MASTER_KEY_VARIABLE: Final = "MARKETBOT_MASTER_KEY"
MASTER_KEY_FILE: Final = "master.key"
_LOOSE_BITS: Final = stat.S_IRWXG | stat.S_IRWXO
_MAX_MESSAGE_CHARS: Final = 500

# ccxt's credential name -> (our attribute, the APIKey column, how a prompt names it).
CREDENTIAL_NAMES: Final = {
    "apiKey": ("api_key", "encrypted_key", "API key"),
    "secret": ("secret", "encrypted_secret", "secret"),
    "password": ("password", "encrypted_password", "password (passphrase)"),
    "uid": ("uid", "encrypted_uid", "uid (user or account id)"),
    "privateKey": ("private_key", "encrypted_private_key", "private key"),
    "walletAddress": ("wallet_address", "encrypted_wallet_address", "wallet address"),
}


def mask(api_key: str | None, wallet_address: str | None = None) -> str:
    """``****`` and the last 4 characters of the API key, else of the wallet address."""
    shown = api_key or wallet_address or ""
    return "****" + shown[-4:]


@dataclass(frozen=True, slots=True, repr=False)
class Credentials:
    """One account's credentials, in clear, in memory only; printed as its mask.

    Attributes are ccxt's ``requiredCredentials`` in snake case; None when not needed.
    """

    api_key: str | None = None
    secret: str | None = None
    password: str | None = None
    uid: str | None = None
    private_key: str | None = None
    wallet_address: str | None = None

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if value is not None and not value.strip():
                raise ConfigError(f"empty {item.name.replace('_', ' ')}: nothing stored")

    @classmethod
    def from_ccxt(cls, values: Mapping[str, str]) -> Credentials:
        """From ccxt's names (``apiKey``, ``secret``...); unknown names are refused."""
        unknown = sorted(set(values) - set(CREDENTIAL_NAMES))
        if unknown:
            raise ConfigError(f"unknown credential(s) {', '.join(unknown)}")
        return cls(**{CREDENTIAL_NAMES[name][0]: value for name, value in values.items()})

    def to_ccxt(self) -> dict[str, str]:
        """The credentials under ccxt's names, those given only (for the exchange's config)."""
        values = {name: getattr(self, attribute) for name, (attribute, _, _) in _ITEMS}
        return {name: value for name, value in values.items() if value is not None}

    def secrets(self) -> tuple[str, ...]:
        """Every credential given, for a log filter to hide."""
        return tuple(self.to_ccxt().values())

    @property
    def masked(self) -> str:
        """What may be shown: ``****`` and the API key's (or wallet address's) last 4."""
        return mask(self.api_key, self.wallet_address)

    def __repr__(self) -> str:
        return f"Credentials({self.masked})"

    __str__ = __repr__


_ITEMS: Final = tuple(CREDENTIAL_NAMES.items())


@dataclass(frozen=True, slots=True)
class KeySummary:
    """What may be shown about one stored key: never a credential, only its mask.

    Attributes:
        exchange: The ccxt exchange id.
        label: Which of the exchange's keys (``default``, ``testnet``...).
        masked_key: ``****`` and the API key's last 4 characters.
        created_at: When it was saved (UTC).
        last_tested_at: When ``keys test`` last ran on it, or None.
        last_test_ok: Whether that test passed, or None.
        last_test_message: ``ok`` or why it failed, or None.
    """

    exchange: str
    label: str
    masked_key: str
    created_at: datetime
    last_tested_at: datetime | None
    last_test_ok: bool | None
    last_test_message: str | None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (ISO times)."""
        return {
            "exchange": self.exchange,
            "label": self.label,
            "masked_key": self.masked_key,
            "created_at": self.created_at.isoformat(),
            "last_tested_at": self.last_tested_at.isoformat() if self.last_tested_at else None,
            "last_test_ok": self.last_test_ok,
            "last_test_message": self.last_test_message,
        }


class MasterKey:
    """Where the Fernet master key comes from: the variable, else the key file.

    Args:
        data_dir: The data directory holding ``master.key``.
        value: ``MARKETBOT_MASTER_KEY`` when set (it wins over the file), else None.
    """

    def __init__(self, data_dir: Path, value: str | None = None) -> None:
        self.path = Path(data_dir) / MASTER_KEY_FILE
        self._value = value or None
        self._fernet: Fernet | None = None

    @classmethod
    def from_environment(
        cls, data_dir: Path, environ: Mapping[str, str] | None = None
    ) -> MasterKey:
        """The master key of this process: ``MARKETBOT_MASTER_KEY``, else the key file."""
        env = os.environ if environ is None else environ
        return cls(data_dir, env.get(MASTER_KEY_VARIABLE, "").strip() or None)

    def __repr__(self) -> str:
        source = MASTER_KEY_VARIABLE if self._value else str(self.path)
        return f"MasterKey(from {source})"

    def fernet(self, *, create: bool) -> Fernet | None:
        """The cipher; None when there is no key yet and ``create`` is False.

        Raises:
            ConfigError: the variable is not a Fernet key, or the key file is readable by
                its group or others, or is not a Fernet key (each named).
        """
        if self._fernet is None:
            key = self._value.encode() if self._value else self._read_file(create=create)
            if key is None:
                return None
            self._fernet = _cipher(key, MASTER_KEY_VARIABLE if self._value else str(self.path))
        return self._fernet

    def _read_file(self, *, create: bool) -> bytes | None:
        from cryptography.fernet import Fernet

        if create and not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "wb") as file:
                    file.write(Fernet.generate_key() + b"\n")
                    file.flush()
                    os.fsync(file.fileno())
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            return None
        if mode & _LOOSE_BITS:
            raise ConfigError(
                f"{self.path} is readable by others (mode {stat.S_IMODE(mode):03o}): "
                f"run chmod 600 {self.path}"
            )
        return self.path.read_bytes().strip()


def _cipher(key: bytes, source: str) -> Fernet:
    from cryptography.fernet import Fernet

    try:
        return Fernet(key)
    except ValueError:
        raise ConfigError(
            f"{source} is not a Fernet key (44 characters of url-safe base64); make one with "
            "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key()"
            ".decode())'"
        ) from None


class KeyStore:
    """Save, read, list, test-record and delete exchange credentials.

    Args:
        database: The migrated database.
        master_key: Where the encryption key comes from.
        clock: "Now" for ``created_at`` and test times.
    """

    def __init__(
        self,
        database: Database,
        master_key: MasterKey,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.database = database
        self.master_key = master_key
        self._clock = clock

    def __repr__(self) -> str:
        return f"KeyStore({self.master_key!r})"

    def save(
        self, exchange: str, credentials: Credentials, *, label: str = "default"
    ) -> KeySummary:
        """Store (or replace) the credentials of ``exchange``/``label``; return the summary.

        Raises:
            ConfigError: no API key and no wallet address, an empty exchange or label, or a
                master key problem (see :meth:`MasterKey.fernet`); nothing is stored then.
        """
        _check_names(exchange, label)
        if credentials.api_key is None and credentials.wallet_address is None:
            raise ConfigError(f"{exchange}/{label}: an API key or a wallet address is needed")
        fernet = self.master_key.fernet(create=True)
        assert fernet is not None  # created above
        with self.database.session() as session, session.begin():
            # One master key must open every stored key: a wrong one is refused here, before
            # it can save a key that the others' key would not open.
            _check_master_key(session, fernet)
            row = _find(session, exchange, label)
            if row is None:
                row = APIKey(exchange=exchange, label=label)
                session.add(row)
            for _, (attribute, column, _) in _ITEMS:
                value = getattr(credentials, attribute)
                setattr(row, column, fernet.encrypt(value.encode()) if value else None)
            row.masked_key = credentials.masked
            row.created_at = self._clock()
            row.last_tested_at = row.last_test_ok = row.last_test_message = None
            session.flush()
            return _summary(row)

    def get(self, exchange: str, *, label: str = "default") -> Credentials | None:
        """The decrypted credentials, or None when none are stored.

        Raises:
            ConfigError: "cannot decrypt binance/default: the master key differs from the one
                it was saved with", or a master key problem.
        """
        with self.database.session() as session:
            row = _find(session, exchange, label)
            if row is None:
                return None
            tokens = {attribute: getattr(row, column) for _, (attribute, column, _) in _ITEMS}
        fernet = self.master_key.fernet(create=False)
        if fernet is None:
            raise ConfigError(
                f"cannot decrypt {exchange}/{label}: no master key ({MASTER_KEY_VARIABLE} is "
                f"unset and {self.master_key.path} does not exist)"
            )
        return Credentials(
            **{name: _decrypt(fernet, token, exchange, label) for name, token in tokens.items()}
        )

    def list(self) -> list[KeySummary]:
        """Every stored key's summary, by exchange then label (nothing is decrypted)."""
        with self.database.session() as session:
            rows = session.scalars(sa.select(APIKey).order_by(APIKey.exchange, APIKey.label))
            return [_summary(row) for row in rows]

    def summary(self, exchange: str, *, label: str = "default") -> KeySummary | None:
        """One key's summary, or None when none is stored."""
        with self.database.session() as session:
            row = _find(session, exchange, label)
            return _summary(row) if row is not None else None

    def record_test(
        self, exchange: str, *, ok: bool, message: str, label: str = "default"
    ) -> KeySummary:
        """Keep the outcome of a ``keys test`` (the message cut to 500 characters).

        Raises:
            ConfigError: no key is stored under this exchange and label.
        """
        with self.database.session() as session, session.begin():
            row = _find(session, exchange, label)
            if row is None:
                raise ConfigError(_missing(exchange, label))
            row.last_tested_at = self._clock()
            row.last_test_ok = ok
            row.last_test_message = message[:_MAX_MESSAGE_CHARS]
            session.flush()
            return _summary(row)

    def delete(self, exchange: str, *, label: str = "default") -> bool:
        """Forget a key; False when there was none."""
        with self.database.session() as session, session.begin():
            row = _find(session, exchange, label)
            if row is None:
                return False
            session.delete(row)
            return True


def _check_names(exchange: str, label: str) -> None:
    if not exchange.strip():
        raise ConfigError("the exchange id must not be empty")
    if not label.strip() or len(label) > 100:
        raise ConfigError(f"--label {label!r}: use 1 to 100 characters")


def _missing(exchange: str, label: str) -> str:
    suffix = "" if label == "default" else f" --label {label}"
    return f"no API key for {exchange}/{label}: run marketbot keys set {exchange}{suffix}"


def _find(session: sa.orm.Session, exchange: str, label: str) -> APIKey | None:
    query = sa.select(APIKey).where(APIKey.exchange == exchange, APIKey.label == label)
    return session.scalars(query).one_or_none()


def _check_master_key(session: sa.orm.Session, fernet: Fernet) -> None:
    row = session.scalars(sa.select(APIKey).order_by(APIKey.id).limit(1)).one_or_none()
    if row is not None:
        _decrypt(fernet, row.encrypted_key or row.encrypted_wallet_address, row.exchange, row.label)


def _decrypt(fernet: Fernet, token: bytes | None, exchange: str, label: str) -> str | None:
    from cryptography.fernet import InvalidToken

    if token is None:
        return None
    try:
        return fernet.decrypt(token).decode()
    except InvalidToken:
        raise ConfigError(
            f"cannot decrypt {exchange}/{label}: the master key differs from the one it was "
            "saved with"
        ) from None


def _summary(row: APIKey) -> KeySummary:
    return KeySummary(
        exchange=row.exchange,
        label=row.label,
        masked_key=row.masked_key,
        created_at=row.created_at,
        last_tested_at=row.last_tested_at,
        last_test_ok=row.last_test_ok,
        last_test_message=row.last_test_message,
    )


def iter_credential_prompts(required: Mapping[str, bool]) -> Iterator[tuple[str, str]]:
    """``(ccxt name, prompt text)`` of each credential an exchange requires, in our order."""
    for name, (_, _, prompt) in _ITEMS:
        if required.get(name):
            yield name, prompt
