"""Driving the paper bot as an operator does: the real console script, its data directory.

A :class:`BotDir` is one ``$MARKETBOT_DATA_DIR`` with the bundled daily BTC already stored
(copied from a database imported once). It starts ``marketbot run --replay`` as a child
process (so it can be SIGKILLed, or killed by a fault point), runs the other commands in
process (``status --json``, ``risk reset``...), and reads the paper ledger and the bot's
``orders`` table with ``sqlite3``, as a post-mortem would.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from marketbot.cli import main
from tests.support.frames import SAMPLE_DIR

MARKETBOT = Path(sys.executable).parent / "marketbot"
ACCEPTANCE_CONFIG = (
    'sizing = "fixed_cash"\nsize = 1000\nstop_loss = 0.05\ntrailing_stop = 0.1\n'
    "take_profit = false\nmax_hold = false\n"
)
STRATEGY_ARGS = (
    "--strategy", "sma_crossover", "--symbol", "bitcoin", "--timeframe", "1d",
    "--param", "fast=10", "--param", "slow=50",
)  # fmt: skip
DATABASE_FILE = "marketbot.db"


def import_daily_btc(folder: Path) -> Path:
    """A data directory in ``folder`` holding the bundled daily BTC; returns its database."""
    data_dir = folder / "var"
    csv = SAMPLE_DIR / "btc_usd_1d_bitstamp.csv"
    code, _, err = cli_in_process(data_dir, ["data", "import", str(csv), "--symbol", "bitcoin"])
    assert code == 0, err
    return data_dir / DATABASE_FILE


def cli_in_process(
    data_dir: Path, args: list[str], env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """``marketbot ARGS`` in this process, on ``data_dir``: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    # `run` adds its log handlers (stderr, DATA_DIR/logs/bot.log) unless the process has
    # them already: the command runs without the ones of earlier commands and its own are
    # taken off afterwards, so each logs to its own stderr and data directory.
    logger = logging.getLogger("marketbot")
    handlers, level = list(logger.handlers), logger.level
    for handler in handlers:
        logger.removeHandler(handler)
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("MARKETBOT_"):
                patch.delenv(name)
        patch.setenv("MARKETBOT_DATA_DIR", str(data_dir))
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        with redirect_stdout(out), redirect_stderr(err):
            try:
                main(args)
                code = 0
            except SystemExit as exc:
                code = int(exc.code or 0)
            finally:
                for handler in list(logger.handlers):
                    logger.removeHandler(handler)
                    handler.close()
                for handler in handlers:
                    logger.addHandler(handler)
                logger.setLevel(level)
    return code, out.getvalue(), err.getvalue()


@dataclass
class BotDir:
    """One bot's data directory, its run configuration and the processes started on it.

    Attributes:
        root: A folder of the test's own; the data directory is ``root/var``.
        config: The run configuration file's text.
        start: START of the replay.
        end: END of the replay (may grow between runs).
        logs: Each child's combined stdout and stderr, in start order.
    """

    root: Path
    config: str = ACCEPTANCE_CONFIG
    start: str = "2018-01-01"
    end: str = "2021-01-01"
    logs: list[Path] = field(default_factory=list)

    @classmethod
    def with_database(cls, root: Path, database: Path, **kwargs: Any) -> BotDir:
        """A fresh data directory in ``root`` holding a copy of ``database``."""
        bot = cls(root, **kwargs)
        bot.data_dir.mkdir(parents=True)
        copy_database(database, bot.data_dir / DATABASE_FILE)
        bot.config_file.write_text(bot.config)
        return bot

    @property
    def data_dir(self) -> Path:
        """``$MARKETBOT_DATA_DIR``."""
        return self.root / "var"

    @property
    def config_file(self) -> Path:
        """The run configuration (``bot.toml``)."""
        return self.root / "bot.toml"

    @property
    def ledger(self) -> Path:
        """The paper exchange's ledger."""
        return self.data_dir / "paper" / "ledger.db"

    @property
    def database(self) -> Path:
        """The bot's SQLite database."""
        return self.data_dir / DATABASE_FILE

    @property
    def lock_file(self) -> Path:
        """The bot's lock file (holds the holder's pid)."""
        return self.data_dir / "state" / "bot.lock"

    def run_args(self, *extra: str) -> list[str]:
        """``run`` with the strategy, the config and ``--replay START END``."""
        return ["run", *STRATEGY_ARGS, "--config", str(self.config_file),
                "--replay", self.start, self.end, *extra]  # fmt: skip

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The child's environment: ours without MARKETBOT_*, then the data directory."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETBOT_")}
        env["MARKETBOT_DATA_DIR"] = str(self.data_dir)
        env.update(extra or {})
        return env

    def spawn(self, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start ``marketbot run`` as a child process (output to a log file of its own)."""
        log = self.root / f"run-{len(self.logs):02d}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            return subprocess.Popen(
                [str(MARKETBOT), *self.run_args(*extra)],
                env=self.env(env), stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def run(self, *extra: str, env: dict[str, str] | None = None, timeout: float = 120) -> int:
        """Run ``marketbot run`` in a child process to its end; return its exit code."""
        child = self.spawn(*extra, env=env)
        try:
            return child.wait(timeout=timeout)
        finally:
            stop(child)

    def last_log(self) -> str:
        """The last child's output (for assertion messages)."""
        return self.logs[-1].read_text(errors="replace") if self.logs else ""

    def cli(self, *args: str) -> tuple[int, str, str]:
        """Another ``marketbot`` command, in this process."""
        return cli_in_process(self.data_dir, list(args))

    def status(self) -> dict[str, Any]:
        """``marketbot status --json``."""
        code, out, err = self.cli("status", "--json")
        assert code == 0, err
        return dict(json.loads(out))

    def ledger_client_ids(self) -> list[str]:
        """Client order ids of every order the paper exchange holds."""
        return _column(self.ledger, "SELECT client_order_id FROM paper_orders ORDER BY id")

    def bot_client_ids(self) -> list[str]:
        """Client order ids in the bot's ``orders`` table."""
        return _column(self.database, "SELECT client_order_id FROM orders ORDER BY id")

    def run_count(self) -> int:
        """Rows in ``bot_runs``."""
        return len(_column(self.database, "SELECT id FROM bot_runs"))

    def last_bar_time(self) -> str | None:
        """The current run's ``last_bar_time`` as stored (None before any bar)."""
        times = _column(
            self.database,
            "SELECT last_bar_time FROM bot_runs WHERE archived_at IS NULL ORDER BY id DESC",
        )
        return times[0] if times else None

    def risk_events(self) -> list[tuple[str, str]]:
        """``risk_events`` as (kind, at) in the order they were stored."""
        return [
            (str(kind), str(at)[:10])
            for kind, at in _rows(self.database, "SELECT kind, at FROM risk_events ORDER BY id")
        ]

    def orders(self) -> list[tuple[str, str, str, str]]:
        """The bot's ``orders`` as (intent, side, status, bar date), oldest first."""
        rows = _rows(self.database, "SELECT intent, side, status, bar_time FROM orders ORDER BY id")
        return [(str(i), str(side), str(status), str(at)[:10]) for i, side, status, at in rows]

    def commands(self) -> list[tuple[str, str, str | None]]:
        """``bot_commands`` as (kind, status, result), oldest first."""
        rows = _rows(self.database, "SELECT kind, status, result FROM bot_commands ORDER BY id")
        return [(str(kind), str(status), result) for kind, status, result in rows]

    def lock_holder(self) -> int | None:
        """The pid written in the lock file, if any."""
        try:
            text = self.lock_file.read_text().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() else None


def copy_database(source: Path, target: Path) -> None:
    """Copy an SQLite file with what its write-ahead log holds (the backup API)."""
    reader, writer = sqlite3.connect(source), sqlite3.connect(target)
    try:
        reader.backup(writer)
    finally:
        writer.close()
        reader.close()


def stop(child: subprocess.Popen[bytes]) -> None:
    """Make sure a child is gone (SIGKILL if it still runs) and reaped."""
    if child.poll() is None:
        child.kill()
    child.wait(timeout=60)


def kill_after(child: subprocess.Popen[bytes], delay: float) -> int:
    """SIGKILL ``child`` after ``delay`` seconds (if it still runs); return its exit code."""
    time.sleep(delay)
    if child.poll() is None:
        os.kill(child.pid, signal.SIGKILL)
    return child.wait(timeout=60)


def wait_for_lock(bot: BotDir, child: subprocess.Popen[bytes], timeout: float = 60) -> float:
    """Poll until ``child`` holds the bot's lock; return the seconds waited."""
    began = time.perf_counter()
    while bot.lock_holder() != child.pid:
        if child.poll() is not None:
            raise AssertionError(f"the bot exited before taking the lock:\n{bot.last_log()}")
        if time.perf_counter() - began > timeout:
            raise AssertionError(f"the bot did not take the lock in {timeout} s")
        time.sleep(0.002)
    return time.perf_counter() - began


def duplicates(ids: list[str]) -> list[str]:
    """The ids that occur more than once."""
    return sorted(item for item, count in Counter(ids).items() if count > 1)


def wait_until(
    condition: Callable[[], bool], child: subprocess.Popen[bytes], timeout: float = 120
) -> None:
    """Poll ``condition`` every few milliseconds while ``child`` runs."""
    began = time.perf_counter()
    while not condition():
        if child.poll() is not None:
            raise AssertionError(f"the bot exited (code {child.returncode}) first")
        if time.perf_counter() - began > timeout:
            raise AssertionError(f"not reached in {timeout} s")
        time.sleep(0.005)


def _column(path: Path, query: str) -> list[Any]:
    return [row[0] for row in _rows(path, query)]


def _rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    if not path.exists():
        return []
    connection = sqlite3.connect(path, timeout=30)
    try:
        return list(connection.execute(query))
    finally:
        connection.close()
