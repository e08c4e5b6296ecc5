"""The HTTP cache: a Fetcher (``CachingFetcher``) wrapping the real one, answering GET
and HEAD requests from responses kept in one SQLite file per spider (``HttpCache``),
under one of two policies:

    dummy    whatever is stored is served (until ``httpcache.expiration_s``); for
             developing a spider against pages fetched once
    rfc9111  a private cache as RFC 9111 describes it: Cache-Control (no-store,
             no-cache, max-age; s-maxage is for shared caches and ignored), Expires,
             heuristic freshness from Last-Modified, and revalidation of a stale
             entry with If-None-Match / If-Modified-Since, a 304 refreshing the
             stored headers and serving the stored body. A stale entry is never
             served unrevalidated, so must-revalidate holds by construction.

Rows are keyed by the request fingerprint (method, canonical URL, body); headers are
JSON, bodies zlib-compressed. Each response says how it was answered in
``Response.cached`` ("hit", "miss", "revalidated"): the recorder counts hits and misses
and does not hold a host's politeness delay for a hit, which sent nothing.
"""

from __future__ import annotations

import email.utils
import json
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from requests.structures import CaseInsensitiveDict

from ..config import HttpCacheSettings
from ..http import Request
from ..response import Response
from .base import Fetcher
from .sqlitefile import SQLiteFile

__all__ = ["CachingFetcher", "DummyPolicy", "HttpCache", "Rfc9111Policy", "Stored",
           "caching_fetchers"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    fp BLOB PRIMARY KEY,
    url TEXT NOT NULL,
    status INTEGER NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    stored_at REAL NOT NULL
) WITHOUT ROWID;
"""
_CACHEABLE_METHODS = ("GET", "HEAD")
# statuses RFC 9110 15.1 calls heuristically cacheable
_HEURISTIC_STATUSES = frozenset({200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501})
# a 304 updates the stored headers, except those describing the body it did not send
_NOT_UPDATED = frozenset({"content-length", "content-encoding", "transfer-encoding",
                          "content-range"})
_ZLIB_LEVEL = 1  # pages compress ~4x even at level 1, at a fraction of the CPU of level 6


@dataclass(frozen=True, slots=True)
class Stored:
    """A response as the cache holds it."""

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    stored_at: float


class HttpCache:
    """The cache file of one spider; safe to use from every worker thread."""

    def __init__(self, path: Path, expiration_s: float = 0.0) -> None:
        self.file = SQLiteFile(path, _SCHEMA)
        self.expiration_s = expiration_s

    @classmethod
    def for_spider(cls, s: HttpCacheSettings, spider: str) -> HttpCache:
        return cls(Path(s.dir.replace("{spider}", spider)) / "httpcache.sqlite", s.expiration_s)

    def get(self, fp: bytes, now: float) -> Stored | None:
        """The stored response of ``fp``, unless there is none or it expired."""
        row = self.file.conn().execute(
            "SELECT url, status, headers, body, stored_at FROM responses WHERE fp = ?",
            (fp,)).fetchone()
        if row is None:
            return None
        url, status, headers, body, stored_at = row
        if self.expiration_s and now - stored_at > self.expiration_s:
            return None
        return Stored(url, status, CaseInsensitiveDict(json.loads(headers)),
                      zlib.decompress(body), stored_at)

    def put(self, fp: bytes, response: Response, now: float) -> None:
        body = zlib.compress(response.content, _ZLIB_LEVEL)
        headers = json.dumps(dict(response.headers.items()))
        with self.file.writing() as conn:
            conn.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?)",
                         (fp, response.url, response.status, headers, body, now))

    def refresh(self, fp: bytes, headers: Mapping[str, str], now: float) -> None:
        """A 304 confirmed the entry: its headers updated, its age restarted."""
        with self.file.writing() as conn:
            conn.execute("UPDATE responses SET headers = ?, stored_at = ? WHERE fp = ?",
                         (json.dumps(dict(headers.items())), now, fp))

    def close_thread(self) -> None:
        self.file.close_thread()


class CachePolicy(Protocol):
    """What to store, what is fresh, and how to revalidate what is not."""

    def storable(self, request: Request, response: Response) -> bool: ...

    def fresh(self, request: Request, stored: Stored, now: float) -> bool: ...

    def validators(self, stored: Stored) -> dict[str, str]: ...


class DummyPolicy:
    """Everything is stored (but ``ignore_statuses``) and everything stored is served."""

    def __init__(self, ignore_statuses: tuple[int, ...] = ()) -> None:
        self.ignore = frozenset(ignore_statuses)

    def storable(self, request: Request, response: Response) -> bool:
        return response.status not in self.ignore

    def fresh(self, request: Request, stored: Stored, now: float) -> bool:
        return True

    def validators(self, stored: Stored) -> dict[str, str]:
        return {}


def cache_control(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The Cache-Control directives of ``headers``: lower-case names to (unquoted) values."""
    out: dict[str, str] = {}
    for part in ((headers or {}).get("Cache-Control") or "").split(","):
        name, _, value = part.strip().partition("=")
        if name:
            out[name.strip().lower()] = value.strip().strip('"')
    return out


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(int(value)))
    except ValueError:
        return None


def _date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


class Rfc9111Policy(DummyPolicy):
    """RFC 9111 for a private cache (see the module docstring)."""

    def storable(self, request: Request, response: Response) -> bool:
        if not super().storable(request, response):
            return False
        cc = cache_control(response.headers)
        if "no-store" in cc or "no-store" in cache_control(request.headers):
            return False
        explicit = "max-age" in cc or "public" in cc or "Expires" in response.headers
        return explicit or response.status in _HEURISTIC_STATUSES

    def fresh(self, request: Request, stored: Stored, now: float) -> bool:
        asked = cache_control(request.headers)
        cc = cache_control(stored.headers)
        if "no-cache" in cc or "no-cache" in asked or asked.get("max-age") == "0":
            return False
        return self.lifetime(stored, cc) > self.age(stored, now)

    def lifetime(self, stored: Stored, cc: Mapping[str, str]) -> float:
        """Seconds the response is fresh for: max-age, else Expires - Date, else 10% of
        the time since Last-Modified (RFC 9111 4.2.2's heuristic)."""
        max_age = _seconds(cc.get("max-age"))
        if max_age is not None:
            return max_age
        date = _date(stored.headers.get("Date")) or stored.stored_at
        if "Expires" in stored.headers:
            expires = _date(stored.headers.get("Expires"))
            return max(0.0, expires - date) if expires is not None else 0.0  # invalid: stale
        modified = _date(stored.headers.get("Last-Modified"))
        if modified is not None and stored.status in _HEURISTIC_STATUSES:
            return max(0.0, (date - modified) / 10)
        return 0.0

    @staticmethod
    def age(stored: Stored, now: float) -> float:
        """The response's current age: what it had when stored, plus time in the cache."""
        initial = _seconds(stored.headers.get("Age")) or 0.0
        date = _date(stored.headers.get("Date"))
        apparent = max(0.0, stored.stored_at - date) if date is not None else 0.0
        return max(initial, apparent) + max(0.0, now - stored.stored_at)

    def validators(self, stored: Stored) -> dict[str, str]:
        out = {}
        etag = stored.headers.get("ETag")
        if etag:
            out["If-None-Match"] = etag
        modified = stored.headers.get("Last-Modified")
        if modified:
            out["If-Modified-Since"] = modified
        return out


class CachingFetcher:
    """A Fetcher answering from ``cache`` when ``policy`` allows, else from ``inner``
    (storing what it may). Implements ``fetch.base.Fetcher``."""

    def __init__(self, inner: Fetcher, cache: HttpCache, policy: CachePolicy) -> None:
        self.inner = inner
        self.cache = cache
        self.policy = policy

    def fetch(self, request: Request) -> Response:
        if request.method not in _CACHEABLE_METHODS:
            return self.inner.fetch(request)
        fp = request.fingerprint
        now = time.time()
        stored = self.cache.get(fp, now)
        if stored is not None and self.policy.fresh(request, stored, now):
            return _answer(stored, stored.headers, request, "hit")
        conditions = self.policy.validators(stored) if stored is not None else {}
        sent = request.replace(headers={**(request.headers or {}), **conditions}) if conditions \
            else request
        response = self.inner.fetch(sent)
        now = time.time()
        if response.status == 304 and stored is not None and conditions:
            headers: CaseInsensitiveDict[str] = CaseInsensitiveDict(stored.headers)
            headers.update({k: v for k, v in response.headers.items()
                            if k.lower() not in _NOT_UPDATED})
            self.cache.refresh(fp, headers, now)
            return _answer(stored, headers, request, "revalidated", response.elapsed)
        if sent is not request:  # the callback sees the request it made, with its meta
            response = Response(response.url, response.status, response.headers,
                                response.content, request, elapsed=response.elapsed)
        if self.policy.storable(request, response):
            self.cache.put(fp, response, now)
        response.cached = "miss"
        return response

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.cache.close_thread()


def _answer(stored: Stored, headers: Mapping[str, str], request: Request, how: str,
            elapsed: float = 0.0) -> Response:
    response = Response(stored.url, stored.status, headers, stored.body, request, elapsed=elapsed)
    response.cached = how
    return response


def caching_fetchers(factory: Callable[[int], Fetcher], s: HttpCacheSettings,
                     spider: str) -> Callable[[int], Fetcher]:
    """``factory``'s fetchers behind the spider's cache, as the settings describe it."""
    cache = HttpCache.for_spider(s, spider)
    policy: CachePolicy = (Rfc9111Policy(s.ignore_statuses) if s.policy == "rfc9111"
                           else DummyPolicy(s.ignore_statuses))
    return lambda index: CachingFetcher(factory(index), cache, policy)
