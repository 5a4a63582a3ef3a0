"""The paper venue's ledger: one SQLite file that survives a SIGKILL as a venue's books do.

``$MARKETBOT_DATA_DIR/paper/ledger.db`` (:func:`paper_ledger_path`), written with the
standard library's ``sqlite3`` in WAL mode with ``synchronous=FULL``: every event of the venue
(an accepted or refused order, an edit, a cancel, a bar or a ticker with every fill and
cancel it caused) is one transaction, committed before the venue's method returns. A process
killed at any moment leaves the books as of the last event, never half of one.

Tables:

- ``paper_meta``: the settings the ledger was made with (JSON and their SHA-256), so that a
  ledger is never resumed under other fees, slippage, cash or exits;
- ``paper_orders``: one row per order (``client_order_id`` indexed, not unique: the venue
  refuses an id only while an order with it is open), the bracket carriers included;
- ``paper_fills``: one row per fill (the order's client id, amount, price, fee, bar, reason);
- ``paper_balances``: per asset ``free``, ``used`` (held by open orders) and ``total``
  (the exact book value the venue computes with; ``free = total - used``);
- ``paper_positions``: per symbol the step core's ``Position`` fields and the bracket
  carrier's ids;
- ``paper_symbols``: per symbol the venue's step count and last prices;
- ``paper_bars``: the bars processed, for ``fetch_ohlcv``.

Every row is a plain record (:mod:`marketbot.execution.paper_ledger_rows`);
:mod:`marketbot.execution.paper` decides what they hold.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import astuple, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from marketbot.backtest.step_nb import Position
from marketbot.core.errors import ConfigError, ExchangeError
from marketbot.execution.paper_ledger_rows import (
    BarRow,
    FillRow,
    LedgerChanges,
    LedgerContents,
    OrderRow,
    PositionRow,
    SymbolRow,
)

__all__ = [
    "BarRow",
    "FillRow",
    "LedgerChanges",
    "LedgerContents",
    "OrderRow",
    "PaperLedger",
    "PositionRow",
    "SymbolRow",
    "paper_ledger_path",
]

LEDGER_VERSION: Final = 1

_SCHEMA: Final = """
CREATE TABLE paper_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE paper_orders (
    id INTEGER PRIMARY KEY, client_order_id TEXT NOT NULL, symbol TEXT NOT NULL,
    side TEXT NOT NULL, type TEXT NOT NULL, status TEXT NOT NULL, timestamp TEXT NOT NULL,
    amount REAL, quote_amount REAL, price REAL, stop_price REAL, filled REAL NOT NULL,
    cost REAL NOT NULL, spent REAL NOT NULL, fee REAL NOT NULL, reserved REAL NOT NULL,
    last_trade_timestamp TEXT, reason TEXT NOT NULL, is_carrier INTEGER NOT NULL,
    active_from_step INTEGER NOT NULL, priority INTEGER NOT NULL, params TEXT NOT NULL
);
CREATE INDEX paper_orders_client_order_id ON paper_orders (client_order_id);
CREATE TABLE paper_fills (
    id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, client_order_id TEXT NOT NULL,
    symbol TEXT NOT NULL, side TEXT NOT NULL, amount REAL NOT NULL, price REAL NOT NULL,
    fee REAL NOT NULL, timestamp TEXT NOT NULL, bar_index INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX paper_fills_order_id ON paper_fills (order_id);
CREATE TABLE paper_balances (
    asset TEXT PRIMARY KEY, free REAL NOT NULL, used REAL NOT NULL, total REAL NOT NULL
);
CREATE TABLE paper_positions (
    symbol TEXT PRIMARY KEY, direction INTEGER NOT NULL, units REAL NOT NULL,
    entry_price REAL NOT NULL, entry_fee REAL NOT NULL, entry_bar INTEGER NOT NULL,
    entry_time_ns INTEGER NOT NULL, tag INTEGER NOT NULL, extreme REAL NOT NULL,
    stop_level REAL, target_level REAL, trail_level REAL,
    carrier_order_id INTEGER, protect_client_order_id TEXT NOT NULL,
    entry_order_id INTEGER NOT NULL, opened_intrabar_step INTEGER NOT NULL
);
CREATE TABLE paper_symbols (
    symbol TEXT PRIMARY KEY, steps INTEGER NOT NULL, last_price REAL, bid REAL, ask REAL,
    last_time TEXT
);
CREATE TABLE paper_bars (
    symbol TEXT NOT NULL, time TEXT NOT NULL, bar_index INTEGER NOT NULL, open REAL NOT NULL,
    high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL, volume REAL NOT NULL,
    PRIMARY KEY (symbol, time)
);
"""


def paper_ledger_path(data_dir: Path) -> Path:
    """The paper venue's ledger in a data directory: ``DATA_DIR/paper/ledger.db``."""
    return Path(data_dir) / "paper" / "ledger.db"


class PaperLedger:
    """The SQLite file of one paper account.

    Args:
        path: The ledger file; created with its folder when missing.
        settings_json: The venue's settings as canonical JSON.
        settings_hash: Their SHA-256; a ledger made with another is refused.
        opening_balances: ``(asset, free, used, total)`` rows of a new account.

    Raises:
        ConfigError: The ledger was made with other settings (the message names both) or
            by another ledger version, or the file is not a paper ledger.
        ExchangeError: SQLite cannot open the file.
    """

    def __init__(
        self,
        path: Path,
        *,
        settings_json: str,
        settings_hash: str,
        opening_balances: Iterable[tuple[str, float, float, float]],
    ) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False
            )
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=FULL")
            self._open(settings_json, settings_hash, list(opening_balances))
        except sqlite3.Error as exc:
            # "file is not a database" is the user's to fix; a locked or unreadable file not.
            error = ConfigError if type(exc) is sqlite3.DatabaseError else ExchangeError
            raise error(f"paper ledger {self.path}: {exc}") from exc

    def close(self) -> None:
        """Close the file (every event is already committed)."""
        self._connection.close()

    def _open(
        self,
        settings_json: str,
        settings_hash: str,
        opening_balances: list[tuple[str, float, float, float]],
    ) -> None:
        tables = {
            row[0]
            for row in self._connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if tables and "paper_meta" not in tables:
            raise ConfigError(
                f"{self.path} is not a paper ledger (it holds {', '.join(sorted(tables))}); "
                "give the paper exchange a file of its own"
            )
        if not tables:
            # A new account: schema, settings and opening balances in one transaction, so a
            # file is either a whole ledger or none.
            with self._transaction() as cursor:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        cursor.execute(statement)
                cursor.executemany(
                    "INSERT INTO paper_meta VALUES (?, ?)",
                    [
                        ("ledger_version", str(LEDGER_VERSION)),
                        ("settings_hash", settings_hash),
                        ("settings", settings_json),
                    ],
                )
                cursor.executemany(
                    "INSERT INTO paper_balances VALUES (?, ?, ?, ?)", opening_balances
                )
            return
        meta = dict(self._connection.execute("SELECT key, value FROM paper_meta").fetchall())
        if meta.get("ledger_version") != str(LEDGER_VERSION):
            raise ConfigError(
                f"paper ledger {self.path} has version {meta.get('ledger_version')}; this "
                f"marketbot reads version {LEDGER_VERSION}"
            )
        if meta.get("settings_hash") != settings_hash:
            raise ConfigError(
                _settings_mismatch(self.path, meta.get("settings", "{}"), settings_json)
            )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        cursor = self._connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            yield cursor
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")

    def write(self, changes: LedgerChanges) -> None:
        """Store one event's changes in one transaction (committed when this returns).

        Raises:
            ExchangeError: SQLite failed; nothing of the event is stored.
        """
        try:
            with self._transaction() as cursor:
                _write(cursor, changes)
        except sqlite3.Error as exc:
            raise ExchangeError(f"paper ledger {self.path}: {exc}") from exc

    def load(self) -> LedgerContents:
        """Everything in the ledger (orders and fills oldest first)."""
        read = self._connection.execute
        meta = dict(read("SELECT key, value FROM paper_meta").fetchall())
        quote = json.loads(meta["settings"])["quote"]
        cash_row = read("SELECT total FROM paper_balances WHERE asset = ?", (quote,)).fetchone()
        return LedgerContents(
            cash=float(cash_row[0]),
            orders=[_order_from_row(row) for row in read("SELECT * FROM paper_orders ORDER BY id")],
            fills=[_fill_from_row(row) for row in read("SELECT * FROM paper_fills ORDER BY id")],
            positions=[_position_from_row(row) for row in read("SELECT * FROM paper_positions")],
            symbols=[_symbol_from_row(row) for row in read("SELECT * FROM paper_symbols")],
            bars=[
                _bar_from_row(row) for row in read("SELECT * FROM paper_bars ORDER BY symbol, time")
            ],
        )


def _settings_mismatch(path: Path, stored_json: str, current_json: str) -> str:
    stored, current = _flatten(json.loads(stored_json)), _flatten(json.loads(current_json))
    differences = [
        f"{key}: {stored.get(key)!r} in the ledger, {current.get(key)!r} now"
        for key in sorted(set(stored) | set(current))
        if stored.get(key) != current.get(key)
    ]
    return (
        f"paper ledger {path} was made with other settings ({'; '.join(differences)}); "
        "resume it with its own settings or start a new ledger file"
    )


def _flatten(value: object, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        flat: dict[str, object] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


# -- rows to and from SQLite -------------------------------------------------------------------


def _write(cursor: sqlite3.Cursor, changes: LedgerChanges) -> None:
    order_columns = [item.name for item in fields(OrderRow)]
    cursor.executemany(
        f"INSERT OR REPLACE INTO paper_orders ({', '.join(order_columns)}) "
        f"VALUES ({', '.join('?' * len(order_columns))})",
        [_order_values(order) for order in changes.orders],
    )
    cursor.executemany(
        "INSERT INTO paper_fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (*astuple(fill)[:8], fill.timestamp.isoformat(), fill.bar_index, fill.reason)
            for fill in changes.fills
        ],
    )
    cursor.executemany(
        "INSERT OR REPLACE INTO paper_balances VALUES (?, ?, ?, ?)", changes.balances
    )
    for symbol, row in changes.positions.items():
        cursor.execute("DELETE FROM paper_positions WHERE symbol = ?", (symbol,))
        if row is not None:
            cursor.execute(
                f"INSERT INTO paper_positions VALUES ({', '.join('?' * 16)})",
                (
                    symbol,
                    *row.position,
                    row.carrier_order_id,
                    row.protect_client_order_id,
                    row.entry_order_id,
                    row.opened_intrabar_step,
                ),
            )
    cursor.executemany(
        "INSERT OR REPLACE INTO paper_symbols VALUES (?, ?, ?, ?, ?, ?)",
        [
            (s.symbol, s.steps, s.last_price, s.bid, s.ask, _iso(s.last_time))
            for s in changes.symbols
        ],
    )
    cursor.executemany(
        "INSERT INTO paper_bars VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(bar.symbol, bar.time.isoformat(), *astuple(bar)[2:]) for bar in changes.bars],
    )


def _order_values(order: OrderRow) -> tuple[object, ...]:
    values: list[object] = []
    for item in fields(OrderRow):
        value = getattr(order, item.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif item.name == "params":
            value = json.dumps(value, sort_keys=True, default=str)
        elif isinstance(value, bool):
            value = int(value)
        values.append(value)
    return tuple(values)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


def _order_from_row(row: tuple[Any, ...]) -> OrderRow:
    values = dict(zip([item.name for item in fields(OrderRow)], row, strict=True))
    values["timestamp"] = datetime.fromisoformat(values["timestamp"])
    values["last_trade_timestamp"] = _time(values["last_trade_timestamp"])
    values["is_carrier"] = bool(values["is_carrier"])
    values["params"] = json.loads(values["params"])
    return OrderRow(**values)


def _fill_from_row(row: tuple[Any, ...]) -> FillRow:
    fill_id, order_id, client_id, symbol, side, amount, price, fee, at, bar_index, reason = row
    return FillRow(
        int(fill_id), int(order_id), client_id, symbol, side, float(amount), float(price),
        float(fee), datetime.fromisoformat(at), int(bar_index), reason,
    )  # fmt: skip


def _level(value: float | None) -> float:
    # SQLite stores NaN as NULL: a level that is off.
    return math.nan if value is None else float(value)


def _position_from_row(row: tuple[Any, ...]) -> PositionRow:
    (symbol, direction, units, entry_price, entry_fee, entry_bar, entry_time_ns, tag, extreme,
     stop_level, target_level, trail_level, carrier_id, protect_id, entry_order_id,
     opened_intrabar_step) = row  # fmt: skip
    position = Position(
        int(direction),
        float(units),
        float(entry_price),
        float(entry_fee),
        int(entry_bar),
        int(entry_time_ns),
        int(tag),
        float(extreme),
        _level(stop_level),
        _level(target_level),
        _level(trail_level),
    )
    return PositionRow(
        symbol, position, carrier_id, protect_id, int(entry_order_id), int(opened_intrabar_step)
    )


def _symbol_from_row(row: tuple[Any, ...]) -> SymbolRow:
    symbol, steps, last_price, bid, ask, last_time = row
    return SymbolRow(symbol, int(steps), last_price, bid, ask, _time(last_time))


def _bar_from_row(row: tuple[Any, ...]) -> BarRow:
    symbol, time, bar_index, *prices = row
    return BarRow(symbol, datetime.fromisoformat(time), int(bar_index), *map(float, prices))
