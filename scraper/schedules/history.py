"""The run history of scheduled crawls: a SQLite file (``schedule_dir/history.sqlite``)
with one row per run, or per fire time skipped, and each schedule's last fire time
(what misfire handling counts from).

Only the scheduler writes; ``python -m scraper runs`` and ``serve``'s web server read
it at the same time (WAL mode). A run's ``status`` is one of ``STATUSES``; its ``job``
is the id the Scrapyd-compatible API knows it by (given to ``schedule.json``, else
random). The schedules a user paused (``serve``'s dashboard) are kept here too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..exceptions import StorageError

__all__ = ["STATUSES", "History", "RunRecord"]

#: running: started, not ended yet · ok: exited 0 on its own · failed: any other end
#: (a crash, exit 1, a config error) · timeout: stopped for going over run_timeout ·
#: stopped: stopped because the scheduler stopped · skipped: its fire time came while
#: the spider's previous run was going · lost: the scheduler died while it ran ·
#: cancelled: stopped by a user (``serve``: cancel.json or the dashboard)
STATUSES = ("running", "ok", "failed", "timeout", "stopped", "skipped", "lost", "cancelled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    schedule TEXT NOT NULL,
    spider TEXT NOT NULL,
    trigger TEXT NOT NULL,
    fire_time REAL,
    started REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL,
    exit_status INTEGER,
    reason TEXT,
    pages INTEGER,
    items INTEGER,
    errors INTEGER,
    crawl_started TEXT,
    crawl_pages INTEGER,
    crawl_items INTEGER,
    crawl_errors INTEGER,
    job_dir TEXT,
    pid INTEGER,
    summary_path TEXT,
    log_path TEXT,
    note TEXT
);
CREATE INDEX IF NOT EXISTS runs_schedule ON runs (schedule, id);
CREATE INDEX IF NOT EXISTS runs_spider ON runs (spider, id);
CREATE TABLE IF NOT EXISTS schedules (
    name TEXT PRIMARY KEY, spec TEXT NOT NULL, last_fire REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS paused (
    name TEXT PRIMARY KEY, since REAL NOT NULL
);
"""
# added after the first release: a history written before gets the column when opened
_MIGRATIONS = (("job", "ALTER TABLE runs ADD COLUMN job TEXT"),)
_INDEXES = "CREATE UNIQUE INDEX IF NOT EXISTS runs_job ON runs (job);"


@dataclass(frozen=True)
class RunRecord:
    """One row of the history.

    ``pages``/``items``/``errors`` are this run's own; ``crawl_*`` are what its
    summary reported, which for a resumed job dir are the job's running totals.
    """

    id: int
    schedule: str
    spider: str
    trigger: str
    fire_time: float | None
    started: float
    finished: float | None
    status: str
    exit_status: int | None
    reason: str | None
    pages: int | None
    items: int | None
    errors: int | None
    crawl_started: str | None
    crawl_pages: int | None
    crawl_items: int | None
    crawl_errors: int | None
    job_dir: str | None
    pid: int | None
    summary_path: str | None
    log_path: str | None
    note: str | None
    job: str | None = None

    @property
    def duration(self) -> float | None:
        return None if self.finished is None else self.finished - self.started


_COLUMNS = ", ".join(f.name for f in fields(RunRecord))


class History:
    """The history database; ``readonly`` opens an existing one without creating anything."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self._cols = _COLUMNS
        try:
            if readonly:
                self.conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                            isolation_level=None, timeout=10)
                # a scheduler that has just created the file may not have its tables yet
                self._empty = not self.conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE name = 'schedules'").fetchall()
                have = {row[1] for row in self.conn.execute("PRAGMA table_info(runs)")}
                if not self._empty and "job" not in have:  # written by an older version
                    self._cols = _COLUMNS.removesuffix(", job") + ", NULL AS job"
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=10)
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
                self.conn.executescript(f"BEGIN; {_SCHEMA} COMMIT;")
                self._migrate()
                self._empty = False
            self.conn.row_factory = sqlite3.Row
        except (sqlite3.Error, OSError) as e:
            raise StorageError(f"run history {self.path}: cannot open ({e})") from e

    def _migrate(self) -> None:
        have = {row[1] for row in self.conn.execute("PRAGMA table_info(runs)")}
        for column, sql in _MIGRATIONS:
            if column not in have:
                self.conn.execute(sql)
        self.conn.executescript(_INDEXES)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
        except sqlite3.Error as e:
            raise StorageError(f"run history {self.path}: {e}") from e

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        if self._empty:
            return []
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as e:
            raise StorageError(f"run history {self.path}: {e}") from e

    # -- runs ------------------------------------------------------------------
    def start_run(self, *, schedule: str, spider: str, trigger: str, fire_time: float | None,
                  started: float, job_dir: str | None = None, job: str | None = None) -> int:
        """A new row in status ``running``; its id names the run (``job``: its API id)."""
        with self._tx() as c:
            cur = c.execute("INSERT INTO runs (schedule, spider, trigger, fire_time, started, "
                            "status, job_dir, job) VALUES (?, ?, ?, ?, ?, 'running', ?, ?)",
                            (schedule, spider, trigger, fire_time, started, job_dir, job))
            return int(cur.lastrowid or 0)

    def find_job(self, job: str) -> RunRecord | None:
        """The run whose API id is ``job`` (a run recorded without one: its number)."""
        rows = self._query(f"SELECT {self._cols} FROM runs WHERE job = ?", (job,))
        if not rows and job.isdigit():
            rows = self._query(f"SELECT {self._cols} FROM runs WHERE id = ? AND job IS NULL",
                               (int(job),))
        return RunRecord(**dict(rows[0])) if rows else None

    def update(self, run_id: int, **values: Any) -> None:
        """Set columns of run ``run_id`` (pid, paths, and everything known at its end)."""
        unknown = set(values) - ({f.name for f in fields(RunRecord)} - {"id"})
        if unknown or not values:
            raise ValueError(f"unknown run columns: {sorted(unknown)}")
        cols = ", ".join(f"{k} = ?" for k in values)
        with self._tx() as c:
            c.execute(f"UPDATE runs SET {cols} WHERE id = ?", (*values.values(), run_id))

    def record_skip(self, *, schedule: str, spider: str, trigger: str, fire_time: float | None,
                    at: float, reason: str, note: str) -> int:
        """A fire time that made no run (overlap): a row in status ``skipped``."""
        with self._tx() as c:
            cur = c.execute("INSERT INTO runs (schedule, spider, trigger, fire_time, started, "
                            "finished, status, reason, note) VALUES (?, ?, ?, ?, ?, ?, 'skipped', "
                            "?, ?)", (schedule, spider, trigger, fire_time, at, at, reason, note))
            return int(cur.lastrowid or 0)

    def get(self, run_id: int) -> RunRecord | None:
        rows = self._query(f"SELECT {self._cols} FROM runs WHERE id = ?", (run_id,))
        return RunRecord(**dict(rows[0])) if rows else None

    def runs(self, name: str | None = None, limit: int | None = None,
             status: str | None = None) -> list[RunRecord]:
        """Runs newest first; ``name`` matches a schedule or a spider."""
        where: list[str] = []
        params: list[Any] = []
        if name is not None:
            where.append("(schedule = ? OR spider = ?)")
            params += [name, name]
        if status is not None:
            where.append("status = ?")
            params.append(status)
        sql = f"SELECT {self._cols} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [RunRecord(**dict(r)) for r in self._query(sql, tuple(params))]

    def previous_job_run(self, job_dir: str, before: int) -> RunRecord | None:
        """The last ended run before ``before`` that used ``job_dir`` and wrote a summary."""
        rows = self._query(f"SELECT {self._cols} FROM runs WHERE job_dir = ? AND id < ? AND "
                           "crawl_started IS NOT NULL ORDER BY id DESC LIMIT 1", (job_dir, before))
        return RunRecord(**dict(rows[0])) if rows else None

    def last_success(self) -> dict[str, float]:
        """Spider → end time of its last ``ok`` run."""
        rows = self._query("SELECT spider, MAX(finished) AS t FROM runs WHERE status = 'ok' "
                           "GROUP BY spider")
        return {r["spider"]: r["t"] for r in rows if r["t"] is not None}

    def prune(self, schedule: str, keep: int) -> list[RunRecord]:
        """Delete all but the newest ``keep`` ended runs of ``schedule``; returns the deleted."""
        rows = self._query(f"SELECT {self._cols} FROM runs WHERE schedule = ? AND status != "
                           "'running' ORDER BY id DESC LIMIT -1 OFFSET ?", (schedule, keep))
        old = [RunRecord(**dict(r)) for r in rows]
        if old:
            with self._tx() as c:
                c.executemany("DELETE FROM runs WHERE id = ?", [(r.id,) for r in old])
        return old

    # -- schedules -------------------------------------------------------------
    def last_fire(self, schedule: str, spec: str) -> float | None:
        """The last fire time handled for ``schedule``; None if never, or if its timing
        (``spec``) changed since (a changed schedule starts afresh)."""
        rows = self._query("SELECT spec, last_fire FROM schedules WHERE name = ?", (schedule,))
        if not rows or rows[0]["spec"] != spec:
            return None
        return float(rows[0]["last_fire"])

    def set_last_fire(self, schedule: str, spec: str, t: float) -> None:
        with self._tx() as c:
            c.execute("INSERT INTO schedules (name, spec, last_fire) VALUES (?, ?, ?) "
                      "ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, "
                      "last_fire = excluded.last_fire", (schedule, spec, t))

    # -- paused schedules (serve's dashboard) -----------------------------------
    def paused(self) -> dict[str, float]:
        """Schedule name → when it was paused."""
        if self._empty or not self._query("SELECT 1 FROM sqlite_master WHERE name = 'paused'"):
            return {}  # read-only, on a history that an older version wrote
        return {r["name"]: float(r["since"]) for r in self._query("SELECT name, since FROM paused")}

    def set_paused(self, schedule: str, paused: bool, at: float) -> None:
        with self._tx() as c:
            if paused:
                c.execute("INSERT OR IGNORE INTO paused (name, since) VALUES (?, ?)",
                          (schedule, at))
            else:
                c.execute("DELETE FROM paused WHERE name = ?", (schedule,))

    def close(self) -> None:
        try:
            self.conn.close()
        except sqlite3.Error:  # pragma: no cover - closing never fails in practice
            pass
