"""Record and replay: every exchange of a crawl kept in a cassette (``RecordingFetcher``),
and a crawl served from one with nothing leaving the machine (``ReplayFetcher``, which
never opens a socket).

An exchange is one ``Fetcher.fetch`` call: a request and either its response (a
redirect hop is its own exchange, as the framework follows redirects itself; robots.txt
is one too) or its failure, kept as the error kind and message (a timeout replays as a
timeout, and is retried as one). Requests are matched by fingerprint (method, canonical
URL, body); repeats of one fingerprint (retries, ``dont_filter``) replay in the order
they were recorded, and one more than was recorded is ``not-recorded``.

The cassette is ``DIR/cassette.sqlite``, one row per exchange in the order they
happened (``seq``), bodies stored as they were received. One SQLite file, not a
directory of JSON files: 32 workers append to it safely and atomically, a crawl of
thousands of pages stays one file (not tens of thousands), a replay looks a request
up by an index instead of reading everything, and ``sqlite3 DIR/cassette.sqlite
"SELECT seq, status, url FROM exchanges"`` still shows it to a person.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from requests.structures import CaseInsensitiveDict

from ..exceptions import (ConfigError, ConnectionFailed, FetchError, FetchTimeout,
                          ResponseTooLarge)
from ..http import Request
from ..response import Response
from .base import Fetcher
from .sqlitefile import SQLiteFile

__all__ = ["CASSETTE_FILE", "NOT_RECORDED", "Cassette", "CassetteMode", "RecordingFetcher", "ReplayFetcher",
           "recording_fetchers",
           "replay_fetchers"]

CASSETTE_FILE = "cassette.sqlite"
NOT_RECORDED = "not-recorded"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS exchanges (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    fp BLOB NOT NULL,
    method TEXT NOT NULL,
    url TEXT NOT NULL,
    request_headers TEXT NOT NULL,
    request_body BLOB,
    status INTEGER,            -- NULL: the exchange failed (error_kind says how)
    headers TEXT,
    body BLOB,
    error_kind TEXT,
    error_message TEXT,
    elapsed REAL NOT NULL,
    recorded_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS exchanges_fp ON exchanges (fp, seq);
"""

_ERRORS: dict[str, type[FetchError]] = {"timeout": FetchTimeout, "connection": ConnectionFailed,
                                        "dns": ConnectionFailed, "tls": ConnectionFailed,
                                        "too-large": ResponseTooLarge}


@dataclass(frozen=True)
class CassetteMode:
    """``run --record DIR`` (``replay`` False) or ``run --replay DIR [--strict]``."""

    dir: Path
    replay: bool
    strict: bool = False


class Cassette:
    """The cassette file of ``DIR``; safe to use from every worker thread."""

    def __init__(self, directory: Path, *, fresh: bool) -> None:
        path = directory / CASSETTE_FILE
        if fresh:  # a cassette is one crawl: recording again starts it over
            for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                p.unlink(missing_ok=True)
        elif not path.is_file():
            raise ConfigError(f"--replay {directory}: no cassette there (record one with "
                              f"--record {directory})")
        self.file = SQLiteFile(path, _SCHEMA)
        self._lock = threading.Lock()
        self._played: dict[bytes, int] = {}  # fingerprint -> exchanges replayed so far

    def record(self, request: Request, response: Response | None, error: FetchError | None,
               elapsed: float) -> None:
        row = (request.fingerprint, request.method, request.url,
               json.dumps(dict(request.headers or {})), request.body,
               response.status if response is not None else None,
               json.dumps(dict(response.headers.items())) if response is not None else None,
               response.content if response is not None else None,
               error.kind if error is not None else None,
               str(error) if error is not None else None, elapsed, time.time())
        with self.file.writing() as conn:
            conn.execute("INSERT INTO exchanges (fp, method, url, request_headers, request_body, "
                         "status, headers, body, error_kind, error_message, elapsed, recorded_at) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)

    def next(self, request: Request) -> tuple[int | None, str | None, bytes | None, str | None,
                                              str | None] | None:
        """The next recorded exchange of ``request``'s fingerprint (status, headers,
        body, error kind, error message), or None when there is no more."""
        fp = request.fingerprint
        with self._lock:  # two workers repeating one request take successive exchanges
            n = self._played.get(fp, 0)
            self._played[fp] = n + 1
        row: tuple[int | None, str | None, bytes | None, str | None, str | None] | None = \
            self.file.conn().execute(
                "SELECT status, headers, body, error_kind, error_message FROM exchanges "
                "WHERE fp = ? ORDER BY seq LIMIT 1 OFFSET ?", (fp, n)).fetchone()
        return row

    def recorded(self, request: Request) -> int:
        """How many exchanges of ``request``'s fingerprint the cassette holds."""
        count: int = self.file.conn().execute("SELECT COUNT(*) FROM exchanges WHERE fp = ?",
                                              (request.fingerprint,)).fetchone()[0]
        return count

    def export(self, out: Path) -> int:
        """Every exchange as readable files in ``out`` (made empty first), for a pull
        request's diff: ``<fingerprint>-<n>.json`` (request, status, headers or error,
        sorted keys) and, for a body, ``<fingerprint>-<n>.body`` as received. Names come
        from the request, not from when it was fetched, so two recordings of one site
        diff page by page; timings are left out. Returns the number of exchanges."""
        if out.exists():
            for old in out.iterdir():
                if old.suffix in (".json", ".body"):
                    old.unlink()
        out.mkdir(parents=True, exist_ok=True)
        rows = self.file.conn().execute(
            "SELECT fp, method, url, request_headers, request_body, status, headers, body, "
            "error_kind, error_message FROM exchanges ORDER BY seq").fetchall()
        counts: dict[bytes, int] = {}
        for fp, method, url, req_headers, req_body, status, headers, body, kind, message in rows:
            n = counts[fp] = counts.get(fp, 0) + 1
            stem = out / f"{fp.hex()}-{n}"
            record = {"method": method, "url": url, "request_headers": json.loads(req_headers)}
            if req_body:
                record["request_body"] = req_body.decode("utf-8", "replace")
            if status is None:
                record.update(error_kind=kind, error_message=message)
            else:
                record.update(status=status, headers=json.loads(headers or "{}"))
                stem.with_suffix(".body").write_bytes(body or b"")
            stem.with_suffix(".json").write_text(
                json.dumps(record, indent=1, sort_keys=True, ensure_ascii=False) + "\n",
                encoding="utf-8")
        return len(rows)

    def close_thread(self) -> None:
        self.file.close_thread()


class RecordingFetcher:
    """Fetches with ``inner`` and records every exchange, failures included."""

    def __init__(self, inner: Fetcher, cassette: Cassette) -> None:
        self.inner = inner
        self.cassette = cassette

    def fetch(self, request: Request) -> Response:
        started = time.monotonic()
        try:
            response = self.inner.fetch(request)
        except FetchError as e:
            self.cassette.record(request, None, e, time.monotonic() - started)
            raise
        self.cassette.record(request, response, None, response.elapsed)
        return response

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.cassette.close_thread()


class ReplayFetcher:
    """Answers every request from the cassette; sends nothing. A request it does not
    hold is a FetchError of kind ``not-recorded``."""

    #: nothing goes to a host: its politeness delay is not held after these exchanges
    offline = True

    def __init__(self, cassette: Cassette) -> None:
        self.cassette = cassette

    def fetch(self, request: Request) -> Response:
        row = self.cassette.next(request)
        if row is None:
            n = self.cassette.recorded(request)
            why = "is not in the cassette" if n == 0 else f"was recorded {n} time(s), asked once more"
            raise FetchError(f"{request.method} {request.url} {why}", request=request,
                             kind=NOT_RECORDED)
        status, headers, body, kind, message = row
        if status is None:
            kind = kind or "fetch"
            cls = _ERRORS.get(kind, FetchError)
            raise cls(message or kind, request=request, kind=kind)
        response = Response(request.url, status, CaseInsensitiveDict(json.loads(headers or "{}")),
                            body or b"", request)
        response.cached = "replayed"
        return response

    def close(self) -> None:
        self.cassette.close_thread()


def replay_fetchers(mode: CassetteMode) -> Callable[[int], Fetcher]:
    """Fetchers reading the cassette of ``mode.dir``: no Session is even made."""
    cassette = Cassette(mode.dir, fresh=False)
    return lambda index: ReplayFetcher(cassette)


def recording_fetchers(factory: Callable[[int], Fetcher],
                       mode: CassetteMode) -> Callable[[int], Fetcher]:
    """``factory``'s fetchers, every exchange recorded in a fresh cassette in ``mode.dir``."""
    cassette = Cassette(mode.dir, fresh=True)
    return lambda index: RecordingFetcher(factory(index), cassette)
