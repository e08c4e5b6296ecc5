"""One SQLite file shared by every worker thread of a crawl (the HTTP cache and the
cassette are each one): a connection per thread, opened on first use in that thread
(a sqlite3 connection belongs to the thread that made it), WAL so that readers never
wait for the writer, and writes serialised by one lock so that 32 threads do not spin
in SQLite's busy handler (the busy timeout still covers another process).

Nothing is ever loaded whole: callers read and write single rows by key.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..exceptions import StorageError

__all__ = ["SQLiteFile"]

_BUSY_TIMEOUT_S = 60.0
_CACHE_KIB = 256  # SQLite's page cache per connection


class SQLiteFile:
    """The file at ``path`` with ``schema`` applied once, at construction."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        self._local = threading.local()
        self._write_lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._open()
            try:
                conn.execute("PRAGMA journal_mode=WAL")  # kept by the file from now on
                conn.executescript(schema)
            finally:
                conn.close()
        except (OSError, sqlite3.Error) as e:
            raise StorageError(f"cannot use {path}: {e}") from e

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoints, fast
        # single-row lookups by key need few pages of their own (the OS caches the file);
        # SQLite's default 2 MiB per connection is 64 MiB for 32 workers
        conn.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        return conn

    def conn(self) -> sqlite3.Connection:
        """This thread's connection (autocommit: each statement is its own transaction)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._open()
        return conn

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection inside one write transaction, under the write lock."""
        conn = self.conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close_thread(self) -> None:
        """Close this thread's connection (a worker ending)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            conn.close()
