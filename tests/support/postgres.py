"""A throwaway PostgreSQL cluster for the store tests.

The test session starts one cluster (initdb + pg_ctl) in a temporary directory, listening on a
free port on 127.0.0.1 with trust authentication, and removes it at the end. Each test gets its
own database in it. ``initdb`` refuses to run as root, so as root the server binaries run as
the ``postgres`` system user, in a directory that user owns.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import psycopg

DEFAULT_BIN_DIR: Final = Path("/usr/lib/postgresql/15/bin")
REQUIRE_ENV: Final = "MARKETBOT_REQUIRE_POSTGRES"
SUPERUSER: Final = "postgres"
# Durability is pointless for a cluster that lives for one test session; this makes it fast.
_FAST_UNSAFE_OPTIONS: Final = (
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
    "-c max_connections=50 -c shared_buffers=32MB"
)


class PostgresUnavailableError(RuntimeError):
    """The cluster cannot be started here; the message says why."""


def find_bin_dir() -> Path:
    """The directory holding initdb and pg_ctl (``MARKETBOT_PG_BIN`` overrides the default)."""
    override = os.environ.get("MARKETBOT_PG_BIN")
    candidates = [Path(override)] if override else [DEFAULT_BIN_DIR]
    if not override:
        candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    raise PostgresUnavailableError(
        f"PostgreSQL server binaries (initdb, pg_ctl) not found in "
        f"{', '.join(str(c) for c in candidates) or DEFAULT_BIN_DIR}; "
        "install the postgresql package or set MARKETBOT_PG_BIN"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresCluster:
    """A running cluster; create with :meth:`start`, end with :meth:`stop`."""

    bin_dir: Path
    root: Path
    port: int
    run_as: str | None
    _database_counter: int = field(default=0)

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self.root / "data"

    @classmethod
    def start(cls, bin_dir: Path | None = None) -> PostgresCluster:
        """Initialise and start a cluster in a new temporary directory.

        Raises:
            PostgresUnavailableError: binaries missing, or the server did not start.
        """
        bin_dir = bin_dir or find_bin_dir()
        run_as = SUPERUSER if os.geteuid() == 0 else None
        root = Path(tempfile.mkdtemp(prefix="marketbot-pg-"))
        if run_as is not None:
            try:
                user = pwd.getpwnam(run_as)
            except KeyError as exc:
                shutil.rmtree(root, ignore_errors=True)
                raise PostgresUnavailableError(
                    "running as root needs the 'postgres' system user to run initdb"
                ) from exc
            os.chown(root, user.pw_uid, user.pw_gid)
        cluster = cls(bin_dir=bin_dir, root=root, port=0, run_as=run_as)
        try:
            cluster._initdb()
            cluster._start_server()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _command(self, *args: str) -> list[str]:
        prefix = ["runuser", "-u", self.run_as, "--"] if self.run_as else []
        return [*prefix, *args]

    def _run(self, *args: str) -> None:
        completed = subprocess.run(
            self._command(*args), capture_output=True, text=True, check=False, cwd=self.root
        )
        if completed.returncode != 0:
            raise PostgresUnavailableError(
                f"{Path(args[0]).name} failed ({completed.returncode}): "
                f"{completed.stderr.strip() or completed.stdout.strip()}"
            )

    def _initdb(self) -> None:
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        )

    def _start_server(self, attempts: int = 3) -> None:
        # Another process may take the free port between probing and binding: try again.
        last_error: PostgresUnavailableError | None = None
        for _ in range(attempts):
            self.port = _free_port()
            options = (
                f"-p {self.port} -c listen_addresses=127.0.0.1 "
                f"-c unix_socket_directories={self.root} {_FAST_UNSAFE_OPTIONS}"
            )
            try:
                self._run(
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.root / "server.log"),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                )
                return
            except PostgresUnavailableError as exc:
                last_error = exc
                time.sleep(0.2)
        log = self.root / "server.log"
        detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise PostgresUnavailableError(f"{last_error}\n{detail}")

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL for ``database`` in this cluster."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        import psycopg  # only needed when PostgreSQL tests run

        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True
        )

    def create_database(self, template: str | None = None) -> str:
        """Create a new database and return its name.

        Args:
            template: Copy this database (which nobody may be connected to) instead of
                starting empty; copying a migrated database is faster than migrating.
        """
        self._database_counter += 1
        name = f"test_{os.getpid()}_{self._database_counter}"
        copy = f' TEMPLATE "{template}"' if template else ""
        with self._admin() as connection:
            connection.execute(f'CREATE DATABASE "{name}"{copy}')
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever still uses it."""
        with self._admin() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server (if running) and delete the cluster's directory."""
        if (self.data_dir / "postmaster.pid").exists():
            subprocess.run(
                self._command(
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "immediate",
                    "stop",
                ),
                capture_output=True,
                check=False,
                cwd=self.root,
            )
        shutil.rmtree(self.root, ignore_errors=True)
