"""``marketbot web serve`` and ``web set-password``: run the dashboard, manage its admin."""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from marketbot.config import Settings

web_app = typer.Typer(
    help="The web dashboard: serve it, set its password.",
    no_args_is_help=True,
)

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(
    host: str, tls_cert: Path | None, tls_key: Path | None, *, allow_insecure_remote: bool
) -> None:
    """Refuse to serve a non-loopback address without TLS or the explicit flag.

    Raises:
        ConfigError: naming ``--tls-cert``/``--tls-key`` and ``--allow-insecure-remote``.
    """
    from marketbot.core.errors import ConfigError

    if (tls_cert is None) != (tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together: give both files or neither")
    if tls_cert is not None and allow_insecure_remote:
        raise ConfigError(
            "--allow-insecure-remote is for serving without TLS: drop it with --tls-cert"
        )
    for option, path in (("--tls-cert", tls_cert), ("--tls-key", tls_key)):
        if path is not None and not path.is_file():
            raise ConfigError(f"{option} {path}: no such file")
    if not is_loopback(host) and tls_cert is None and not allow_insecure_remote:
        raise ConfigError(
            f"--host {host} is reachable from other machines: serve it over TLS with "
            "--tls-cert FILE --tls-key FILE, or accept plain HTTP with --allow-insecure-remote"
        )


def secure_data_dir(settings: Settings) -> None:
    """Umask 077; the data dir 0700; the database (+ -wal/-shm), key file and logs 0600."""
    os.umask(0o077)
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    private = [*data_dir.glob("marketbot.db*"), data_dir / "master.key"]
    private += [*data_dir.glob("logs/*"), *data_dir.glob("*.log")]
    for path in private:
        if path.is_file():
            path.chmod(0o600)


@web_app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    tls_cert: Annotated[Path | None, typer.Option(help="TLS certificate (PEM).")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
    allow_insecure_remote: Annotated[
        bool, typer.Option(help="Serve plain HTTP on a non-loopback address.")
    ] = False,
) -> None:
    """Serve the dashboard (uvicorn) with its job worker; prints a setup token on first run."""
    import secrets

    import uvicorn

    from marketbot.config import load_settings
    from marketbot.store.database import Database
    from marketbot.store.web_auth import WebAuthRepository
    from marketbot.web import WebSettings, create_app
    from marketbot.web.settings import SETUP_TOKEN_LIFETIME, SetupToken

    check_bind(host, tls_cert, tls_key, allow_insecure_remote=allow_insecure_remote)
    settings = load_settings()
    secure_data_dir(settings)
    database = Database.from_settings(settings)
    database.migrate()
    auth = WebAuthRepository(database)
    setup_token = None
    if auth.user_count() == 0:
        setup_token = SetupToken(secrets.token_urlsafe(24), auth.now() + SETUP_TOKEN_LIFETIME)
    database.dispose()
    secure_data_dir(settings)
    scheme = "https" if tls_cert is not None else "http"
    url_host = f"[{host}]" if ":" in host else host
    typer.echo(f"marketbot dashboard on {scheme}://{url_host}:{port}/", err=True)
    if setup_token is not None:
        typer.echo(
            f"no user yet: open {scheme}://{url_host}:{port}/setup within 15 minutes and give "
            f"the setup token {setup_token.value}\n"
            "(or run `marketbot web set-password --username NAME`)",
            err=True,
        )
    app = create_app(
        WebSettings(settings=settings, tls=tls_cert is not None, setup_token=setup_token)
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        ssl_certfile=None if tls_cert is None else str(tls_cert),
        ssl_keyfile=None if tls_key is None else str(tls_key),
        log_level="info",
        server_header=False,
        proxy_headers=False,
    )


@web_app.command("set-password")
def set_password(
    username: Annotated[str, typer.Option(help="The admin's name.")],
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from standard input (one line).")
    ] = False,
) -> None:
    """Create or replace the dashboard's admin and sign out every session."""
    from argon2 import PasswordHasher

    from marketbot.cli.common import open_database
    from marketbot.store.web_auth import WebAuthRepository, check_username
    from marketbot.web.passwords import check_password

    name = check_username(username)
    if password_stdin:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    check_password(password)
    WebAuthRepository(open_database()).set_admin(name, PasswordHasher().hash(password))
    typer.echo(f"password set for {name}; every dashboard session is signed out")
