"""Items as rows of a SQLite table: a column per item key (added when a new key comes) and
a column of our own, ``"_scraper_id" INTEGER PRIMARY KEY``, that numbers the rows. The
output's position is the last committed id and a resumed job deletes the rows after
it; item keys only ever name user columns, so an item may have a key of any name
(``rowid`` included). Which job writes each table is kept in ``_scraper_jobs``.

A table written by an earlier version has no id column: it is used as it is, its rows
numbered by SQLite's rowid under whichever of its names (rowid, oid, _rowid_) no user
column hides.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..exceptions import BadItem, ConfigError, StorageError
from ..items import scalar_or_json
from .base import JobMark, utf8

__all__ = ["ID_COLUMN", "JOBS_TABLE", "SqliteOutput", "drop_table_claim", "read_table_claim"]

log = logging.getLogger(__name__)

#: Our row number column; an item key of that name (in any case) is not written.
ID_COLUMN = "_scraper_id"
#: The table naming the job that writes each table of the file.
JOBS_TABLE = "_scraper_jobs"
_ROWID_NAMES = ("rowid", "oid", "_rowid_")
_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_INT64 = (-(2**63), 2**63 - 1)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def fold(name: str) -> str:
    """A column name as SQLite compares it: ASCII letters ignoring case, others as they are."""
    return name.translate(_FOLD)


@dataclass(frozen=True)
class _Row:
    """An encoded item: the columns to add first, then the row's columns and values, and the
    keys left out because another key of the item (or our id) has their column."""

    new: tuple[str, ...]
    columns: tuple[str, ...]
    values: tuple[Any, ...]
    left_out: tuple[tuple[str, str], ...]


class SqliteOutput:
    """Items as rows of a table named after the spider (or ``table``); a new key adds a
    column (names compared as SQLite does, ignoring ASCII case); lists and dicts are
    stored as JSON text; integers beyond 64 bits as their decimal text."""

    def __init__(self, path: str, overwrite: bool, table: str, resume_at: int | None = None,
                 job: JobMark | None = None) -> None:
        if fold(table) == JOBS_TABLE:
            raise ConfigError(f"output {path}: the table name {table!r} is the output's own; "
                              "give another (table: NAME)")
        self.path = path
        self.table = table
        self._t = _quote(table)
        self.columns: dict[str, str] = {}  # folded name -> user column name
        self.exists = False
        self.legacy = False  # written by an earlier version: no id column of ours
        self.db = sqlite3.connect(path, check_same_thread=False)
        try:
            self._open(overwrite, resume_at, job)
        except BaseException:
            self.db.close()
            raise
        self.max_columns = self.db.getlimit(sqlite3.SQLITE_LIMIT_COLUMN)
        self.max_length = self.db.getlimit(sqlite3.SQLITE_LIMIT_LENGTH)
        self._pending = 0
        self._warned: set[str] = set()

    def _open(self, overwrite: bool, resume_at: int | None, job: JobMark | None) -> None:
        self.db.execute("PRAGMA journal_mode=WAL")
        if overwrite:
            self.db.execute(f"DROP TABLE IF EXISTS {self._t}")
        self._read_table()
        if resume_at is not None and self.exists:
            self.db.execute(f"DELETE FROM {self._t} WHERE {self._id()} > ?", (resume_at,))
        if job is not None:
            _write_table_claim(self.db, self.table, job)
        elif overwrite:
            drop_table_claim(self.db, self.table)  # the table is new: no job's items are in it
        self.db.commit()

    def _read_table(self) -> None:
        own_id = False
        for _cid, name, kind, _notnull, _default, pk in self.db.execute(
                f"PRAGMA table_info({self._t})"):
            self.exists = True
            if fold(name) == ID_COLUMN and pk == 1 and str(kind).upper() == "INTEGER":
                own_id = True
            else:
                self.columns[fold(name)] = name
        self.legacy = self.exists and not own_id
        if self.legacy and self._free_rowid_name(self.columns) is None:
            raise ConfigError(f"output {self.path}: table {self.table!r} was written by an "
                              "earlier version and has user columns rowid, oid and _rowid_, so "
                              "its rows cannot be numbered; use -O to start it afresh, or "
                              "another table (table: NAME)")

    def _id(self) -> str:
        """The expression that numbers the table's rows."""
        if not self.legacy:
            return _quote(ID_COLUMN)
        return self._free_rowid_name(self.columns) or "rowid"

    @staticmethod
    def _free_rowid_name(columns: Mapping[str, str]) -> str | None:
        return next((n for n in _ROWID_NAMES if n not in columns), None)

    # -- writing -------------------------------------------------------------------
    def encode(self, item: dict[str, Any]) -> _Row:
        row: dict[str, Any] = {}
        new: dict[str, str] = {}
        left_out: list[tuple[str, str]] = []
        for key, value in item.items():
            column = self._column(key, new)
            if column is None or column in row:
                left_out.append((key, column or ID_COLUMN))
                continue
            row[column] = self._value(key, value)
        self._check_width(new)
        return _Row(tuple(new.values()), tuple(row), tuple(row.values()), tuple(left_out))

    def _column(self, key: str, new: dict[str, str]) -> str | None:
        """The column of ``key`` (added to ``new`` if there is none yet); None for our id's."""
        folded = fold(key)
        if folded == ID_COLUMN:
            return None
        column = self.columns.get(folded) or new.get(folded)
        if column is None:
            if "\x00" in key:
                raise BadItem(f"output {self.path}: key {key!r} holds a NUL character, which "
                              "a SQLite column name cannot")
            utf8(key, self.path)
            new[folded] = column = key
        return column

    def _value(self, key: str, value: Any) -> Any:
        try:
            out = _sql_value(value)
        except (TypeError, ValueError, RecursionError) as e:
            raise BadItem(f"output {self.path}: the value of {key!r} cannot be stored "
                          f"({e})") from None
        if isinstance(out, int) and not _INT64[0] <= out <= _INT64[1]:
            out = str(out)  # SQLite integers are 64-bit: a bigger one is kept exactly, as text
        size = len(utf8(out, self.path)) if isinstance(out, str) else (
            len(out) if isinstance(out, bytes) else 0)
        if size > self.max_length:
            raise BadItem(f"output {self.path}: the value of {key!r} is {size} bytes, more "
                          f"than SQLite's limit of {self.max_length}")
        return out

    def _check_width(self, new: Mapping[str, str]) -> None:
        if not new:
            return
        width = len(self.columns) + len(new) + (0 if self.legacy else 1)
        if width > self.max_columns:
            raise BadItem(f"output {self.path}: the item would give table {self.table!r} "
                          f"{width} columns, more than SQLite's limit of {self.max_columns}")
        if self.legacy and self._free_rowid_name({**self.columns, **new}) is None:
            raise BadItem(f"output {self.path}: in a table written by an earlier version, "
                          "keys rowid, oid and _rowid_ cannot all be columns")

    def put(self, encoded: _Row) -> None:
        for key, column in encoded.left_out:
            if key not in self._warned:
                self._warned.add(key)
                what = ("is the output's own row number column" if column == ID_COLUMN
                        else f"names the same SQLite column as {column!r}")
                log.warning("output %s: item key %r %s; its values are not written",
                            self.path, key, what)
        try:
            self._add_columns(encoded.new)
            if encoded.columns:
                cols = ", ".join(_quote(k) for k in encoded.columns)
                marks = ", ".join("?" for _ in encoded.columns)
                self.db.execute(f"INSERT INTO {self._t} ({cols}) VALUES ({marks})",
                                encoded.values)
            else:
                self.db.execute(f"INSERT INTO {self._t} DEFAULT VALUES")
        except sqlite3.Error as e:
            raise StorageError(f"output {self.path}: {e}") from e
        self._pending += 1
        if self._pending >= 500:
            self.flush()

    def write(self, item: dict[str, Any]) -> None:
        self.put(self.encode(item))

    def _add_columns(self, names: tuple[str, ...]) -> None:
        if not self.exists:
            cols = ", ".join([f"{_quote(ID_COLUMN)} INTEGER PRIMARY KEY",
                              *(_quote(n) for n in names)])
            self.db.execute(f"CREATE TABLE IF NOT EXISTS {self._t} ({cols})")
            self.exists = True
        else:
            for name in names:
                self.db.execute(f"ALTER TABLE {self._t} ADD COLUMN {_quote(name)}")
        for name in names:
            self.columns[fold(name)] = name

    def flush(self) -> None:
        try:
            self.db.commit()
        except sqlite3.Error as e:
            raise StorageError(f"output {self.path}: {e}") from e
        self._pending = 0

    def position(self) -> int:
        """The id of the last committed row."""
        self.flush()
        if not self.exists:
            return 0
        try:
            row = self.db.execute(f"SELECT MAX({self._id()}) FROM {self._t}").fetchone()
        except sqlite3.Error as e:
            raise StorageError(f"output {self.path}: {e}") from e
        return int(row[0] or 0)

    def close(self) -> None:
        self.flush()
        self.db.close()


def _sql_value(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bytes):
        return value
    return scalar_or_json(value)


# -- which job writes a table ------------------------------------------------------
_CLAIMS = (f"CREATE TABLE IF NOT EXISTS {_quote(JOBS_TABLE)} "
           '("table" TEXT PRIMARY KEY, job TEXT NOT NULL, job_dir TEXT NOT NULL)')


def read_table_claim(path: str, table: str) -> dict[str, Any] | None:
    """The job that wrote ``table`` of the database file ``path`` (only read); None when no
    job is recorded or the table holds no rows."""
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return None
    try:
        # not mode=ro: a read-only reader of a WAL database leaves its -shm and -wal behind
        con = sqlite3.connect(path)
    except sqlite3.Error:
        return None  # opening it to write says what is wrong
    try:
        if con.execute(f"SELECT 1 FROM {_quote(table)} LIMIT 1").fetchone() is None:
            return None
        row = con.execute(f'SELECT job, job_dir FROM {_quote(JOBS_TABLE)} WHERE "table" = ?',
                          (table,)).fetchone()
    except sqlite3.Error:  # no such table (nothing written yet), or not a database
        return None
    finally:
        con.close()
    return {"job": row[0], "job_dir": row[1]} if row else None


def _write_table_claim(db: sqlite3.Connection, table: str, mark: JobMark) -> None:
    db.execute(_CLAIMS)
    db.execute(f'INSERT OR REPLACE INTO {_quote(JOBS_TABLE)} ("table", job, job_dir) '
               "VALUES (?, ?, ?)", (table, mark.id, mark.location))


def drop_table_claim(db: sqlite3.Connection, table: str) -> None:
    """Forget which job wrote ``table`` (it was started afresh without a job)."""
    try:
        db.execute(f'DELETE FROM {_quote(JOBS_TABLE)} WHERE "table" = ?', (table,))
    except sqlite3.OperationalError:
        pass  # no claims table: nothing to forget
