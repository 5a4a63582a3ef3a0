"""Typed, frozen settings read from the environment (prefix ``MARKETBOT_``).

Every key is validated at load time; a bad value raises :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from marketbot.core.errors import ConfigError
from marketbot.core.risk_limits import RiskConfig, risk_config_from_mapping


class Settings(BaseSettings):
    """Process-wide settings. Construct one in the app layer and pass it down.

    Attributes:
        data_dir: Folder for the SQLite database, reports and key files.
        database_url: Any SQLAlchemy URL; empty means SQLite ``marketbot.db`` in ``data_dir``.
        risk_file: TOML file of risk limits (default: ``risk.toml`` in ``data_dir`` if present).
        coingecko_url: CoinGecko API root (a proxy or the paid ``pro-api`` host also work).
        coingecko_api_key: Optional demo-plan key, sent as the ``x-cg-demo-api-key`` header.
        coingecko_calls_per_minute: CoinGecko rate budget (the free demo plan allows 30).
        coingecko_history_days: How far back the CoinGecko plan answers (365 on the demo
            plan); older missing bars are reported, not requested. 0 means no limit.
        polymarket_gamma_url: Polymarket Gamma API root (markets and events).
        polymarket_clob_url: Polymarket CLOB API root (price history).
        polymarket_calls_per_minute: Polymarket rate budget.
        http_timeout_seconds: Timeout of one HTTP attempt.
        update_hour_utc: Hour of the day (UTC) at which ``data update --daemon`` runs.
        exchange_api_urls: Per ccxt exchange id, replacements for its API roots (keys of
            ccxt's ``urls['api']``), e.g. ``{"binance": {"public": "https://proxy/api/v3"}}``;
            from the environment as JSON.
        notify_urls: Apprise notification URLs, comma separated (secret: a URL may hold a
            password); empty means notices go to the log only.
        notify_events: Which notices are sent to ``notify_urls``, comma separated, from
            ``emergency``, ``alert``, ``fill``, ``lifecycle`` (all are logged).
    """

    model_config = SettingsConfigDict(env_prefix="MARKETBOT_", frozen=True, extra="ignore")

    data_dir: Path = Field(default=Path("var"))
    database_url: str = ""
    risk_file: Path | None = None
    coingecko_url: str = "https://api.coingecko.com/api/v3"
    coingecko_api_key: SecretStr | None = None
    coingecko_calls_per_minute: int = Field(default=30, ge=1)
    coingecko_history_days: int = Field(default=365, ge=0)
    polymarket_gamma_url: str = "https://gamma-api.polymarket.com"
    polymarket_clob_url: str = "https://clob.polymarket.com"
    polymarket_calls_per_minute: int = Field(default=60, ge=1)
    http_timeout_seconds: float = Field(default=30.0, gt=0)
    update_hour_utc: int = Field(default=1, ge=0, le=23)
    exchange_api_urls: dict[str, dict[str, str]] = Field(default_factory=dict)
    notify_urls: SecretStr | None = None
    notify_events: str = "emergency,alert"

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


_RISK_ENV_PREFIX = "MARKETBOT_RISK_"


def load_risk_config(
    settings: Settings, *, path: Path | None = None, environ: Mapping[str, str] | None = None
) -> RiskConfig:
    """Risk limits from a TOML file and the environment (environment wins), validated.

    The file has a ``[limits]`` table with any ``RiskLimits`` field and optional
    ``[strategies.NAME]`` tables overriding fields for one strategy. Environment variables
    ``MARKETBOT_RISK_<FIELD>`` (e.g. ``MARKETBOT_RISK_MAX_DAILY_LOSS_USD=250``) override the
    global limits. With neither, the seed's defaults apply.

    Raises:
        ConfigError: unreadable TOML, an unknown key, or an invalid limit (named).
    """
    file = path or settings.risk_file
    if file is None and (settings.data_dir / "risk.toml").is_file():
        file = settings.data_dir / "risk.toml"
    data: dict[str, Any] = {}
    if file is not None:
        try:
            data = tomllib.loads(Path(file).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"risk file not found: {file}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from exc
    env = os.environ if environ is None else environ
    overrides = {
        key[len(_RISK_ENV_PREFIX) :].lower(): value
        for key, value in env.items()
        if key.startswith(_RISK_ENV_PREFIX) and key != "MARKETBOT_RISK_FILE"
    }
    if overrides:
        data["limits"] = {**data.get("limits", {}), **overrides}
    where = str(file) if file is not None else "environment"
    return risk_config_from_mapping(data, where=where)
