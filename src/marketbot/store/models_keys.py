"""The table of exchange credentials, encrypted at rest."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from marketbot.store.models_base import Base, UTCDateTime, utc_now


class APIKey(Base):
    """An exchange's credentials, encrypted at rest; there is deliberately no plaintext column.

    Each ``encrypted_*`` column is a Fernet token of one credential ccxt's
    ``requiredCredentials`` can name (null when the exchange does not need it);
    ``masked_key`` is what the UI may show (``****`` and the API key's, or else the wallet
    address's, last 4 characters). The last ``keys test`` is kept beside them (migration 0008).
    """

    __tablename__ = "api_keys"
    __table_args__ = (sa.UniqueConstraint("exchange", "label"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    exchange: Mapped[str] = mapped_column(sa.String(64))
    label: Mapped[str] = mapped_column(sa.String(100), default="default")
    encrypted_key: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    encrypted_secret: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    masked_key: Mapped[str] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    encrypted_password: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    encrypted_uid: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    encrypted_private_key: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    encrypted_wallet_address: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    last_tested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_test_ok: Mapped[bool | None] = mapped_column(sa.Boolean)
    last_test_message: Mapped[str | None] = mapped_column(sa.Text)

    def __repr__(self) -> str:
        return f"APIKey({self.exchange}/{self.label}, {self.masked_key})"
