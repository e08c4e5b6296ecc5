"""Item outputs: JSON lines, JSON array, CSV and SQLite files (and JSON lines on stdout).

Every output is opened before the crawl starts, so a path that cannot be
written is a configuration error, not a crash halfway through. ``-o`` appends
to what is there; ``-O`` (``overwrite: true``) starts the file afresh.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import decimal
import io
import json
import logging
import os
import socket
import sqlite3
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, Protocol

from .exceptions import ConfigError, StorageError

__all__ = ["Output", "check_output", "item_to_dict", "open_output", "output_path", "output_type"]

log = logging.getLogger(__name__)

_TYPES = {".jsonl": "jsonl", ".jl": "jsonl", ".ndjson": "jsonl", ".json": "json",
          ".csv": "csv", ".db": "sqlite", ".sqlite": "sqlite", ".sqlite3": "sqlite"}
TYPES = ("jsonl", "json", "csv", "sqlite", "redis-stream")


class Output(Protocol):
    """Where items go: ``write`` each item (a plain dict), ``flush``, then ``close``."""

    path: str

    def write(self, item: dict[str, Any]) -> None: ...

    def flush(self) -> None: ...

    def position(self) -> int: ...

    def close(self) -> None: ...


def item_to_dict(item: Any) -> dict[str, Any]:
    """A plain dict of an item (a dict, a dataclass instance or any Mapping)."""
    if type(item) is dict:
        return item
    if isinstance(item, Mapping):
        return dict(item)
    return dataclasses.asdict(item)


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def dumps(value: Any) -> str:
    """Compact JSON that never fails on dates, decimals, sets or bytes."""
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def output_type(spec: Mapping[str, Any]) -> str:
    """The output's type: ``type`` if given, else from the path's extension."""
    kind = spec.get("type")
    if kind == "redis-stream":
        return kind
    path = str(spec["path"])
    if kind is None:
        if path == "-":
            return "jsonl"
        kind = _TYPES.get(Path(path).suffix.lower())
        if kind is None:
            raise ConfigError(f"output {path}: unknown type; use a .jsonl, .json, .csv or .db path, "
                              f"or give type: one of {', '.join(TYPES)}")
    if kind == "db":
        kind = "sqlite"
    if kind not in TYPES:
        raise ConfigError(f"output {path}: unknown type {kind!r} (one of {', '.join(TYPES)})")
    return kind


def open_output(spec: Mapping[str, Any], spider: str, *, resume_at: int | None = None,
                stream: Callable[[str], None] | None = None) -> Output:
    """Open the output ``spec`` names: appended to, overwritten (``overwrite: true``), or,
    when a job resumes, cut back to ``resume_at`` (its last committed position).
    ``stream`` receives items (JSON) for the redis-stream output."""
    raw_path = str(spec.get("path") or "-")
    kind = output_type(spec)
    if kind == "redis-stream":
        if stream is None:
            raise ConfigError("output type redis-stream needs a Redis backend (--backend)")
        return StreamOutput(stream)
    overwrite = bool(spec.get("overwrite", False)) and resume_at is None
    if raw_path == "-":
        return StdoutOutput()
    path = output_path(spec, spider)
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if os.path.isdir(path):
            raise ConfigError(f"output {path}: is a directory")
        if kind == "sqlite":
            return SqliteOutput(path, overwrite, spec.get("table") or spider, resume_at)
        if resume_at is not None:
            _cut_back(path, resume_at)
        if kind == "jsonl":
            return JsonLinesOutput(path, overwrite)
        if kind == "json":
            return JsonArrayOutput(path, overwrite)
        fields = spec.get("fields")
        if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
            raise ConfigError(f"output {path}: fields must be a list of column names")
        return CsvOutput(path, overwrite, fields)
    except OSError as e:
        raise ConfigError(f"output {path}: cannot open ({e.strerror or e})") from None
    except sqlite3.Error as e:
        raise ConfigError(f"output {path}: cannot open as SQLite ({e})") from None


def check_output(spec: Mapping[str, Any], spider: str, *, shared: bool = False) -> None:
    """Everything about an output that can be checked without touching its file, so a bad
    second output never leaves the first one truncated."""
    kind = output_type(spec)
    if kind == "redis-stream":
        if not shared:
            raise ConfigError("output type redis-stream needs a Redis backend (--backend)")
        return
    if str(spec["path"]) == "-":
        return
    path = Path(output_path(spec, spider))
    if path.is_dir():
        raise ConfigError(f"output {path}: is a directory")
    parent = next((p for p in [path.parent, *path.parent.parents] if p.exists()), None)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ConfigError(f"output {path}: cannot be created (no writable directory)")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"output {path}: not writable")
    fields = spec.get("fields")
    if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
        raise ConfigError(f"output {path}: fields must be a list of column names")


def output_path(spec: Mapping[str, Any], spider: str) -> str:
    """The output's path with ``{spider}`` filled in."""
    raw_path = str(spec.get("path") or "-")
    try:
        return raw_path.format(spider=spider, hostname=socket.gethostname(), pid=os.getpid())
    except (KeyError, IndexError, ValueError) as e:
        raise ConfigError(f"output {raw_path}: bad placeholder {e} (known: {{spider}}, "
                          "{hostname}, {pid})") from None


def _cut_back(path: str, position: int) -> None:
    """Drop what was written after the last committed position (a crash's leftovers)."""
    size = os.path.getsize(path) if os.path.exists(path) else 0
    if size > position:
        os.truncate(path, position)
    elif size < position:
        log.warning("output %s is shorter than the job recorded (%d < %d bytes); it was "
                    "changed outside the crawl; appending to it as it is", path, size, position)


class _FileOutput:
    """A file written in binary append mode, so its byte position is exact."""

    def __init__(self, path: str, overwrite: bool) -> None:
        self.path = path
        self.file: IO[bytes] = open(path, "wb" if overwrite else "ab")

    def flush(self) -> None:
        try:
            self.file.flush()
        except OSError as e:
            raise StorageError(f"output {self.path}: {e.strerror or e}") from e

    def position(self) -> int:
        """Bytes written so far, flushed to the OS (what a job records as committed)."""
        self.flush()
        return self.file.tell()

    def close(self) -> None:
        if not self.file.closed:
            self.flush()
            self.file.close()

    def _write(self, text: str) -> None:
        try:
            self.file.write(text.encode("utf-8"))
        except OSError as e:
            raise StorageError(f"output {self.path}: {e.strerror or e}") from e


class JsonLinesOutput(_FileOutput):
    """One JSON object per line."""

    def write(self, item: dict[str, Any]) -> None:
        self._write(dumps(item) + "\n")


class StreamOutput:
    """Items appended to the crawl's Redis stream, in the same transaction that acks their
    page: exactly once, whichever process writes them."""

    path = "-"

    def __init__(self, sink: Callable[[str], None]) -> None:
        self.sink = sink

    def write(self, item: dict[str, Any]) -> None:
        self.sink(dumps(item))

    def flush(self) -> None:
        pass

    def position(self) -> int:
        return 0

    def close(self) -> None:
        pass


class StdoutOutput:
    """JSON lines on standard output (``-o -``): data only, flushed per item."""

    path = "-"

    def write(self, item: dict[str, Any]) -> None:
        sys.stdout.write(dumps(item) + "\n")

    def flush(self) -> None:
        sys.stdout.flush()

    def position(self) -> int:
        self.flush()
        return 0

    def close(self) -> None:
        self.flush()


class JsonArrayOutput(_FileOutput):
    """A JSON array; appending to an existing array continues it, so the file stays valid.
    Its position excludes the closing bracket, which ``close`` writes."""

    def __init__(self, path: str, overwrite: bool) -> None:
        self.count = 0
        if not overwrite and os.path.isfile(path) and os.path.getsize(path) > 0:
            self._reopen_array(path)
        super().__init__(path, overwrite)
        if self.file.tell() == 0:
            self._write("[")

    def _reopen_array(self, path: str) -> None:
        with open(path, "rb+") as f:
            stripped = f.read().rstrip()
            if stripped.endswith(b"]"):
                stripped = stripped[:-1].rstrip()
            if not stripped.startswith(b"["):
                raise ConfigError(f"output {path}: exists and is not a JSON array "
                                  "(use -O to overwrite it)")
            f.seek(len(stripped))
            f.truncate()
            self.count = 0 if stripped == b"[" else 1

    def write(self, item: dict[str, Any]) -> None:
        self._write(("\n" if self.count == 0 else ",\n") + dumps(item))
        self.count += 1

    def close(self) -> None:
        if not self.file.closed:
            self._write("\n]\n")
        super().close()


class CsvOutput(_FileOutput):
    """CSV with a header row. Columns come from ``fields``, else from the existing header,
    else from the first item; a key that is not a column is dropped with one warning."""

    def __init__(self, path: str, overwrite: bool, fields: list[str] | None) -> None:
        existing: list[str] | None = None
        if not overwrite and os.path.isfile(path) and os.path.getsize(path) > 0:
            with open(path, encoding="utf-8", newline="") as f:
                existing = next(csv.reader(f), None)
        super().__init__(path, overwrite)
        self.fields: list[str] | None = existing or fields
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)
        self._warned: set[str] = set()
        if self.fields and not existing:
            self._row(self.fields)

    def write(self, item: dict[str, Any]) -> None:
        if self.fields is None:
            self.fields = list(item)
            self._row(self.fields)
        extra = [k for k in item if k not in self.fields and k not in self._warned]
        for key in extra:
            self._warned.add(key)
            log.warning("output %s: item key %r is not a column (columns: %s); its values are "
                        "not written", self.path, key, ", ".join(self.fields))
        self._row([_cell(item.get(k)) for k in self.fields])

    def _row(self, row: list[Any]) -> None:
        self._writer.writerow(row)
        self._write(self._buffer.getvalue())
        self._buffer.seek(0)
        self._buffer.truncate()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str | int | float):
        return value
    return _scalar_or_json(value)


def _scalar_or_json(value: Any) -> Any:
    """Containers as JSON text; other values (dates, decimals, bytes) as their plain text."""
    if isinstance(value, list | dict | tuple | set | frozenset) or (
            dataclasses.is_dataclass(value) and not isinstance(value, type)):
        return dumps(value)
    return _json_default(value)


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
    return _scalar_or_json(value)

