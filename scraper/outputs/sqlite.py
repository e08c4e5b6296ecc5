"""Items as rows of a SQLite table."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from ..exceptions import StorageError
from ..items import scalar_or_json

__all__ = ["SqliteOutput"]

log = logging.getLogger(__name__)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class SqliteOutput:
    """Items as rows of a table named after the spider; a new key adds a column (names
    compared as SQLite does, ignoring case); lists and dicts are stored as JSON text.
    Rows are identified by SQLite's rowid, so an item may have a key of any name; the
    output's position is the last committed rowid."""

    def __init__(self, path: str, overwrite: bool, table: str, resume_at: int | None = None) -> None:
        self.path = path
        self.table = table
        self._t = _quote(table)
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        if overwrite:
            self.db.execute(f"DROP TABLE IF EXISTS {self._t}")
        self.columns: dict[str, str] = {}  # lower-cased name -> column name
        for row in self.db.execute(f"PRAGMA table_info({self._t})"):
            self.columns[row[1].lower()] = row[1]
        if resume_at is not None and self.columns:
            self.db.execute(f"DELETE FROM {self._t} WHERE rowid > ?", (resume_at,))
        self.db.commit()
        self._pending = 0
        self._warned: set[str] = set()

    def write(self, item: dict[str, Any]) -> None:
        row: dict[str, Any] = {}
        for key, value in item.items():
            column = self.columns.get(key.lower())
            if column is None:
                column = self._add_column(key)
            if column in row:
                if key not in self._warned:
                    self._warned.add(key)
                    log.warning("output %s: item keys %r and %r are the same SQLite column; "
                                "keeping the first", self.path, column, key)
                continue
            row[column] = _sql_value(value)
        if not row:
            return
        cols = ", ".join(_quote(k) for k in row)
        marks = ", ".join("?" for _ in row)
        try:
            self.db.execute(f"INSERT INTO {self._t} ({cols}) VALUES ({marks})", list(row.values()))
        except sqlite3.Error as e:
            raise StorageError(f"output {self.path}: {e}") from e
        self._pending += 1
        if self._pending >= 500:
            self.flush()

    def _add_column(self, key: str) -> str:
        try:
            if not self.columns:
                self.db.execute(f"CREATE TABLE IF NOT EXISTS {self._t} ({_quote(key)})")
            else:
                self.db.execute(f"ALTER TABLE {self._t} ADD COLUMN {_quote(key)}")
        except sqlite3.Error as e:
            raise StorageError(f"output {self.path}: {e}") from e
        self.columns[key.lower()] = key
        return key

    def flush(self) -> None:
        try:
            self.db.commit()
        except sqlite3.Error as e:
            raise StorageError(f"output {self.path}: {e}") from e
        self._pending = 0

    def position(self) -> int:
        """The highest committed rowid."""
        self.flush()
        if not self.columns:
            return 0
        row = self.db.execute(f"SELECT MAX(rowid) FROM {self._t}").fetchone()
        return int(row[0] or 0)

    def close(self) -> None:
        self.flush()
        self.db.close()


def _sql_value(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bytes):
        return value
    return scalar_or_json(value)
