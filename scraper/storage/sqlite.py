"""The SQLite backend (``sqlite:///DIR``, what ``--job-dir DIR`` opens): a WAL database
``DIR/job.sqlite`` holding a persistent crawl's frontier, seen-set, job state (identity,
output positions, stats) and dead letters, all committed together.

One process owns a job dir at a time (an exclusive lock on ``DIR/lock``), so its
host politeness state is the in-process ``MemoryHostState``. A
popped entry is leased, not deleted: it is acked in the same transaction that
records what its page produced, so a crash at any instant leaves every request
either done (with its results) or back in the queue on the next start.

A job.sqlite that cannot be opened, or is damaged (checked at open), is a
StorageUnusable naming the file; a SQLite error later is a StorageError, never a
raw sqlite3 exception.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..exceptions import StorageError, StorageLocked, StorageUnusable
from .base import Entry, Lease, push_unseen_locally
from .filelock import FileLock
from .memory import MemoryHostState

__all__ = ["SQLiteBackend", "SQLiteDeadLetters", "SQLiteFrontier", "SQLiteJobState",
           "SQLiteSeenSet", "open_sqlite"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS frontier (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    host TEXT NOT NULL,
    priority INTEGER NOT NULL,
    not_before REAL NOT NULL,
    data TEXT NOT NULL,
    lease TEXT,
    lease_until REAL
);
CREATE INDEX IF NOT EXISTS frontier_ready ON frontier (priority DESC, id) WHERE lease IS NULL;
CREATE INDEX IF NOT EXISTS frontier_leased ON frontier (lease_until) WHERE lease IS NOT NULL;
CREATE TABLE IF NOT EXISTS seen (fp BLOB PRIMARY KEY, at REAL NOT NULL DEFAULT 0) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outputs (path TEXT PRIMARY KEY, position INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dead (
    id INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL, reason TEXT NOT NULL, at REAL NOT NULL
);
"""


class _Db:
    """One connection shared by the frontier and seen-set of a job, behind one lock;
    ``transaction`` nests (only the outermost commits)."""

    def __init__(self, path: Path) -> None:
        try:
            self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                        timeout=30)
        except sqlite3.Error as e:
            raise StorageUnusable(f"cannot be opened ({e})", location=str(path)) from None
        try:
            self._prepare()
        except sqlite3.Error as e:
            self.conn.close()
            raise StorageUnusable(f"cannot be used as a job database ({e}); move it away to "
                                  "start the job afresh", location=str(path)) from None
        except StorageUnusable:
            self.conn.close()
            raise
        self.path = path
        self.lock = threading.RLock()
        self.depth = 0

    def _prepare(self) -> None:
        """Set the connection up and check the file: a damaged job database is found here,
        as one error at start, rather than as a failure halfway through a crawl."""
        conn = self.conn
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-16000")  # 16 MB page cache at most
        conn.executescript(_SCHEMA)
        # reads every page once (a fraction of a second per 100 MB): the cheap check that
        # finds torn and overwritten pages, not the full integrity_check of the indexes
        problems = [row[0] for row in conn.execute("PRAGMA quick_check(3)")]
        if problems != ["ok"]:
            raise sqlite3.DatabaseError("damaged: " + "; ".join(map(str, problems)))

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection, for a read, behind the lock; SQLite errors become StorageError."""
        with self.lock:
            try:
                yield self.conn
            except sqlite3.Error as e:
                raise StorageError(str(e), location=str(self.path)) from e

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A transaction (nested ones join the outermost); SQLite errors in it become
        StorageError naming the file, not a traceback."""
        with self.lock:
            outer = self.depth == 0
            if outer:
                try:
                    self.conn.execute("BEGIN IMMEDIATE")
                except sqlite3.Error as e:
                    raise StorageError(f"cannot begin a transaction ({e})",
                                       location=str(self.path)) from e
            self.depth += 1
            try:
                yield self.conn
            except BaseException as e:
                self.depth -= 1
                if outer:
                    self._rollback()
                if isinstance(e, sqlite3.Error):
                    raise StorageError(str(e), location=str(self.path)) from e
                raise
            self.depth -= 1
            if outer:
                try:
                    self.conn.execute("COMMIT")
                except sqlite3.Error as e:
                    raise StorageError(f"commit failed ({e})", location=str(self.path)) from e

    def _rollback(self) -> None:
        try:
            self.conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # a damaged file may refuse even that; the error that got here is raised


class SQLiteFrontier:
    """A persistent frontier: entries in a table, leased to this process while in flight."""

    def __init__(self, db: _Db, owner: str, hosts: MemoryHostState,
                 lease_seconds: float = 600.0) -> None:
        self._db = db
        self.owner = owner
        self.hosts = hosts
        self.lease_seconds = lease_seconds
        self._pending: int | None = None

    def push(self, entries: Iterable[Entry]) -> None:
        rows = [(e.host, e.priority, e.not_before, e.data) for e in entries]
        if not rows:
            return
        if not all(isinstance(r[3], str) for r in rows):
            raise StorageError("SQLiteFrontier stores serialised (str) entries only")
        with self._db.transaction() as c:
            c.executemany("INSERT INTO frontier (host, priority, not_before, data) "
                          "VALUES (?, ?, ?, ?)", rows)
            if self._pending is not None:
                self._pending += len(rows)

    def pop(self, limit: int, *, now: float, closed: Collection[str] = (),
            jitter: float = 1.0) -> list[Lease]:
        if limit <= 0:
            return []
        hosts = self.hosts
        full = set(closed) | hosts.full(now)
        blocked = list(full)
        sql = ("SELECT id, host, priority, not_before, data FROM frontier "
               "WHERE lease IS NULL AND not_before <= ?")
        args: list[Any] = [now]
        if blocked and len(blocked) < 500:
            sql += f" AND host NOT IN ({','.join('?' * len(blocked))})"
            args += blocked
        sql += " ORDER BY priority DESC, id"
        out: list[Lease] = []
        with self._db.transaction() as c:
            cursor = c.execute(sql, args)
            for row_id, host, priority, not_before, data in cursor:
                if host in full:
                    continue
                if not hosts.take(host, row_id, now, jitter):
                    full.add(host)
                    continue
                out.append(Lease(row_id, Entry(host, data, priority, not_before)))
                if len(out) >= limit:
                    break
            cursor.close()
            if out:
                until = time.time() + self.lease_seconds
                c.executemany("UPDATE frontier SET lease = ?, lease_until = ? WHERE id = ?",
                              [(self.owner, until, lease.id) for lease in out])
                if self._pending is not None:
                    self._pending -= len(out)
        return out

    def ack(self, lease_ids: Iterable[Any]) -> None:
        ids = [(i,) for i in lease_ids]
        if ids:
            with self._db.transaction() as c:
                c.executemany("DELETE FROM frontier WHERE id = ?", ids)

    def release(self, lease_ids: Iterable[Any]) -> None:
        ids = [(i,) for i in lease_ids]
        if ids:
            with self._db.transaction() as c:
                c.executemany("UPDATE frontier SET lease = NULL, lease_until = NULL "
                              "WHERE id = ? AND lease IS NOT NULL", ids)
                if self._pending is not None:
                    self._pending += len(ids)

    def renew(self, lease_ids: Iterable[Any]) -> None:
        """Push the deadline of leases still being worked on."""
        until = time.time() + self.lease_seconds
        with self._db.transaction() as c:
            c.executemany("UPDATE frontier SET lease_until = ? WHERE id = ? AND lease = ?",
                          [(until, i, self.owner) for i in lease_ids])

    def requeue_expired(self, now: float | None = None) -> int:
        """Put back leases whose deadline passed (their owner died); returns how many."""
        with self._db.transaction() as c:
            n = c.execute("UPDATE frontier SET lease = NULL, lease_until = NULL "
                          "WHERE lease IS NOT NULL AND lease_until <= ?",
                          (time.time() if now is None else now,)).rowcount
        self._pending = None
        return n

    def requeue_all(self) -> int:
        """Put back every lease (on start, when this process owns the job dir alone)."""
        with self._db.transaction() as c:
            n = c.execute("UPDATE frontier SET lease = NULL, lease_until = NULL "
                          "WHERE lease IS NOT NULL").rowcount
        self._pending = None
        return n

    def pending(self) -> int:
        if self._pending is None:
            with self._db.reading() as conn:
                self._pending = conn.execute(
                    "SELECT COUNT(*) FROM frontier WHERE lease IS NULL").fetchone()[0]
        return self._pending

    def leased(self) -> int:
        with self._db.reading() as conn:
            return int(conn.execute(
                "SELECT COUNT(*) FROM frontier WHERE lease IS NOT NULL").fetchone()[0])

    def next_ready(self) -> float | None:
        with self._db.reading() as conn:
            row = conn.execute(
                "SELECT MIN(not_before) FROM frontier WHERE lease IS NULL AND not_before > ?",
                (time.time(),)).fetchone()
        return row[0] if row else None


class SQLiteSeenSet:
    """Fingerprints in a WITHOUT ROWID table; an insert that changes a row is the
    test-and-set. With ``ttl``, a fingerprint older than that counts as unseen (and is
    stamped anew), so recurring crawls revisit pages."""

    _ADD = "INSERT OR IGNORE INTO seen (fp, at) VALUES (?, ?)"
    _ADD_TTL = ("INSERT INTO seen (fp, at) VALUES (?, ?) "
                "ON CONFLICT(fp) DO UPDATE SET at = excluded.at WHERE seen.at < ?")

    def __init__(self, db: _Db, ttl: float | None = None) -> None:
        self._db = db
        self.ttl = ttl

    def add(self, fingerprint: bytes) -> bool:
        return self.add_many([fingerprint])[0]

    def add_many(self, fingerprints: Sequence[bytes]) -> list[bool]:
        now = time.time()
        with self._db.transaction() as c:
            if self.ttl:
                cutoff = now - self.ttl
                return [c.execute(self._ADD_TTL, (fp, now, cutoff)).rowcount == 1
                        for fp in fingerprints]
            return [c.execute(self._ADD, (fp, now)).rowcount == 1 for fp in fingerprints]

    def __contains__(self, fingerprint: object) -> bool:
        with self._db.reading() as conn:
            return conn.execute("SELECT 1 FROM seen WHERE fp = ?",
                                         (fingerprint,)).fetchone() is not None

    def __len__(self) -> int:
        with self._db.reading() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM seen").fetchone()[0])


class SQLiteJobState:
    """A job's identity, stats and output positions, in the job database."""

    def __init__(self, db: _Db, location: str) -> None:
        self._db = db
        self.location = location

    def get_meta(self, key: str) -> Any:
        with self._db.reading() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_meta(self, key: str, value: Any) -> None:
        with self._db.transaction() as c:
            c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def output_positions(self) -> dict[str, int]:
        with self._db.reading() as conn:
            return dict(conn.execute("SELECT path, position FROM outputs"))

    def save_output_positions(self, positions: Mapping[str, int]) -> None:
        with self._db.transaction() as c:
            c.executemany("INSERT OR REPLACE INTO outputs (path, position) VALUES (?, ?)",
                          list(positions.items()))


class SQLiteDeadLetters:
    """Requests that failed after their last retry, in the job database."""

    def __init__(self, db: _Db) -> None:
        self._db = db

    def add(self, rows: Sequence[tuple[str, str]]) -> None:
        if rows:
            now = time.time()
            with self._db.transaction() as c:
                c.executemany("INSERT INTO dead (data, reason, at) VALUES (?, ?, ?)",
                              [(d, r, now) for d, r in rows])

    def list(self) -> list[tuple[Any, str, str]]:
        with self._db.reading() as conn:
            return list(conn.execute("SELECT id, data, reason FROM dead ORDER BY id"))

    def remove(self, ids: Sequence[Any]) -> None:
        with self._db.transaction() as c:
            c.executemany("DELETE FROM dead WHERE id = ?", [(i,) for i in ids])


class SQLiteBackend:
    """A job dir: every concern of a crawl in ``DIR/job.sqlite``, locked to one process."""

    shared = False
    serialises = True
    robots = None
    counters = None
    items = None

    def __init__(self, directory: str | Path, *, lease_seconds: float = 600.0,
                 seen_ttl: float | None = None, lock: bool = True) -> None:
        self.dir = Path(directory)
        self.url = f"sqlite://{self.dir}"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageUnusable(f"cannot create ({e.strerror or e})", location=str(directory)) from None
        if not os.access(self.dir, os.W_OK):
            raise StorageUnusable("not writable", location=str(directory))
        self._lock: FileLock | None = None
        if lock:
            self._lock = FileLock(self.dir / "lock")
            try:
                self._lock.acquire()
            except StorageLocked as e:
                raise StorageLocked(f"{e.reason}; one crawl per job dir at a time",
                                    location=str(directory)) from None
        try:
            self._db = _Db(self.dir / "job.sqlite")
        except BaseException:
            if self._lock is not None:
                self._lock.release()
            raise
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.hosts = MemoryHostState()
        self.frontier = SQLiteFrontier(self._db, self.owner, self.hosts, lease_seconds)
        self.seen = SQLiteSeenSet(self._db, seen_ttl)
        self.job = SQLiteJobState(self._db, str(self.dir))
        self.dead = SQLiteDeadLetters(self._db)

    def transaction(self) -> Any:
        return self._db.transaction()

    def push_unseen(self, entries: Sequence[Entry],
                    fingerprints: Sequence[bytes | None]) -> list[bool]:
        with self._db.transaction():  # joins the caller's transaction: marks and pushes commit together
            return push_unseen_locally(self.seen, self.frontier, entries, fingerprints)

    def round_trips(self) -> int | None:
        return None

    def clear(self) -> int:
        n = 0
        with self._db.transaction() as c:
            for table in ("frontier", "seen", "outputs", "dead", "meta"):
                n += c.execute(f"DELETE FROM {table}").rowcount
        return n

    def close(self) -> None:
        with self._db.lock:
            try:
                self._db.conn.close()
            except sqlite3.Error:
                pass
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def open_sqlite(url: str, options: Any) -> SQLiteBackend:
    """The registry's factory: ``sqlite:///abs/dir`` or ``sqlite://relative/dir``."""
    path = url.split("://", 1)[1]
    if not path:
        raise StorageUnusable("expected sqlite:///path/to/job-dir", location=url)
    return SQLiteBackend(path, lease_seconds=options.lease_seconds, seen_ttl=options.seen_ttl,
                         lock=options.lock)
