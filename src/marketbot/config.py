"""Typed, frozen settings read from the environment (prefix ``MARKETBOT_``).

Every key is validated at load time; a bad value raises :class:`ConfigError` naming the key.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from marketbot.core.errors import ConfigError


class Settings(BaseSettings):
    """Process-wide settings. Construct one in the app layer and pass it down.

    Attributes:
        data_dir: Folder for the SQLite database, reports and key files.
        database_url: Any SQLAlchemy URL; empty means SQLite ``marketbot.db`` in ``data_dir``.
    """

    model_config = SettingsConfigDict(env_prefix="MARKETBOT_", frozen=True, extra="ignore")

    data_dir: Path = Field(default=Path("var"))
    database_url: str = ""

    @property
    def resolved_database_url(self) -> str:
        """The database URL to connect to: the setting, or the SQLite file in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'marketbot.db').resolve()}"


def load_settings() -> Settings:
    """Read settings from the environment, turning validation errors into a ConfigError.

    Raises:
        ConfigError: a ``MARKETBOT_*`` variable holds a value of the wrong kind.
    """
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"MARKETBOT_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid setting: {problems}") from exc
