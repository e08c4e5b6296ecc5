"""The Redis backend: one crawl shared by many processes on many machines.

Every key lives under ``scraper:{spider}:`` (``reset`` deletes that prefix with
SCAN, never KEYS):

    crawl      STRING  the crawl's identity: a random id, created with the crawl
    q          ZSET  entry id → -priority (FIFO within a priority: ids are zero-padded
                     sequence numbers, then six random hex digits)
    delayed    ZSET  entry id → not-before time
    leases     ZSET  entry id → lease deadline (an entry leased by a process)
    e          HASH  entry id → "priority\\thost\\tnot_before\\tdata"
    seq        STRING  entry id counter
    seen       SET   fingerprints (or seen:{fp} keys with an expiry when seen_ttl is set)
    slots:{h}  ZSET  lease id → deadline: requests in flight to host h, cluster-wide
    hostnext   HASH  host → time before which the host gets no request (spacing, back-off)
    hostparams HASH  host → "limit\\tspacing" when they differ from the defaults
    robots     HASH  host → "status\\ttext" (robots.txt, fetched once for the cluster)
    stats      HASH  cluster-wide counters
    dead       HASH  dead-letter id → "reason\\tdata"  (deadseq: their id counter)
    items      STREAM  items, when the redis-stream output is used
    tx:{token} STRING  a committed transaction, for a while (a retried commit is a no-op)

Each step that must be atomic is one Lua script (``redis_scripts``). Popping
promotes due delayed entries, then leases the highest-priority entries whose host
has a free cluster-wide slot, taking the slot in the same step. New requests enter
through ``push_unseen``: the seen-set's test-and-set and the push of the new entries
in one script, so a process killed at any instant leaves no URL marked seen without
its entry queued. A transaction records its writes and applies them in one script
at the end (acks, retries, items, counters together). A process that dies leaves
leases (and slots) with deadlines; any process puts them back when they expire.

Three ways a shared store can fail, each ending this process with one line:

- unreachable: every call retries on connection errors with back-off, for at most
  ``redis_retry_window`` seconds in all (redis-py's own retries are off, so they
  do not multiply); then the backend is failed, and every later call fails at once.
- lost: the pop, count, push and commit scripts check the crawl's identity key
  first, in the same step; when it is gone (or names another crawl) the crawl's
  state is gone, and the process stops instead of reporting ``finished``.
- refused: any other Redis error (wrong password, a command refused) at once.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any
from urllib.parse import urlsplit

from ..exceptions import StorageError, StorageUnusable
from . import redis_scripts as lua
from .base import Entry, Lease
from .registry import mask_url

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError:  # pragma: no cover - redis is a dependency; this is for a broken install
    redis = None  # type: ignore[assignment]  # a broken install: _connect says so

__all__ = ["RedisBackend", "RedisCounters", "RedisDeadLetters", "RedisFrontier",
           "RedisHostState", "RedisItemStream", "RedisRobotsCache", "RedisSeenSet", "check_url",
           "open_redis"]

# Entries per script call or recorded command: a script's `unpack` takes up to ~8,000
# values, and one long call would hold up every other client of the server.
_CHUNK = 1000
_BACKOFF_FIRST, _BACKOFF_MAX = 0.05, 1.0


def check_url(url: str) -> str:
    """A redis://, rediss:// or unix:// URL, or StorageUnusable naming it (password masked)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError as e:
        raise StorageUnusable(f"not a valid URL ({e})", location=mask_url(url)) from None
    if parts.scheme not in ("redis", "rediss", "unix") or (parts.scheme != "unix" and not parts.hostname):
        raise StorageUnusable("expected redis://HOST:PORT/DB (or rediss:// for TLS)",
                              location=mask_url(url))
    return url


def _connect(url: str, retry_window: float, name: str | None = None) -> Any:
    if redis is None:  # pragma: no cover
        raise StorageUnusable("needs the redis package (pip install redis)", location=mask_url(url))
    # One attempt per call here: _Conn retries whole calls against one deadline (redis-py
    # retries each command and each reconnect, and those nest). A try blocks at most a
    # third of the window and never over 5 s, so the last one ends soon after the deadline.
    timeout = min(5.0, max(1.0, retry_window / 3))
    try:
        return redis.Redis.from_url(
            check_url(url), socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0), retry_on_error=[], health_check_interval=30,
            client_name=name)
    except ValueError as e:  # a query option redis-py cannot read; its text has no password
        raise StorageUnusable(f"not a usable Redis URL ({e})", location=mask_url(url)) from None


def _retryable(e: Exception) -> bool:
    # a refused password or permission is an answer, not an outage: no retry
    return isinstance(e, redis.ConnectionError | redis.TimeoutError) and not isinstance(
        e, redis.AuthenticationError | redis.exceptions.AuthorizationError)


class _Conn:
    """The connection to the crawl's Redis: calls retried against one deadline, the
    crawl's identity, the open transaction's recorded writes, a round-trip counter."""

    def __init__(self, client: Any, url: str, prefix: str, retry_window: float) -> None:
        self.client = client
        self.url = mask_url(url)
        self.location = f"redis at {self.url}"
        self.prefix = prefix
        self.retry_window = retry_window
        self.round_trips = 0
        self.pipe: Any = None
        self.depth = 0
        self.lock = threading.RLock()
        self.failed: StorageError | None = None
        self.id_key = prefix + "crawl"
        self.crawl_id = ""
        # a commit's token outlives any retry of that commit
        self.token_ms = int((2 * retry_window + 60) * 1000)
        self._exec = client.register_script(lua.EXEC)

    def call(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """``fn(*args, **kw)``, retried on connection errors until ``redis_retry_window``
        has passed since the first try; then (or on the crawl's loss) the connection is
        failed for good and every later call raises at once."""
        if self.failed is not None:
            raise StorageError(self.failed.reason, location=self.location)
        self.round_trips += 1
        deadline = time.monotonic() + self.retry_window
        wait = _BACKOFF_FIRST
        while True:
            try:
                return fn(*args, **kw)
            except redis.RedisError as e:
                if not _retryable(e):
                    raise self._error(e) from e
                if time.monotonic() + wait > deadline:
                    self.failed = StorageError(
                        f"unreachable for {self.retry_window:g} s (redis_retry_window): "
                        f"{type(e).__name__}: {e}", location=self.location)
                    raise self.failed from e
            time.sleep(wait)
            wait = min(wait * 2, _BACKOFF_MAX)

    def _error(self, e: Exception) -> StorageError:
        text = str(e)
        if not text.startswith(lua.LOST_MARK):
            return StorageError(f"{type(e).__name__}: {text}", location=self.location)
        if text.endswith("replaced"):
            what = (f"key {self.id_key} names another crawl: Redis lost this crawl's state "
                    "and a process started the crawl afresh")
        else:
            what = (f"key {self.id_key} is gone: Redis restarted without persistence, was "
                    "flushed, evicted keys, or `reset` ran")
        self.failed = StorageError(f"the crawl's state was lost ({what}); stopping before "
                                   "the crawl is finished", location=self.location)
        return self.failed

    def identify(self) -> None:
        """Join the crawl whose identity key is there, or start one (a new id); after
        ``clear`` the next checked call does this again (the crawl starts afresh)."""
        raw = self.call(self.client.register_script(lua.IDENTITY), keys=[self.id_key],
                        args=[uuid.uuid4().hex])
        self.crawl_id = raw.decode() if isinstance(raw, bytes) else str(raw)

    def pipelined(self, build: Callable[[Any], None]) -> list[Any]:
        """The answers of the commands ``build`` puts on a pipeline (rebuilt for each try:
        a pipeline forgets its commands when it runs)."""
        def run() -> list[Any]:
            with self.client.pipeline(transaction=False) as p:
                build(p)
                return list(p.execute()) if p.command_stack else []
        result: list[Any] = self.call(run)
        return result

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """Writes made inside are recorded and applied together, once, when the outermost
        transaction ends (checked against the crawl's identity in the same step)."""
        with self.lock:
            outer = self.depth == 0
            if outer:
                self.pipe = self.client.pipeline(transaction=False)  # records, never runs
            self.depth += 1
            try:
                yield self.pipe
            except BaseException:
                self.depth -= 1
                if outer:
                    self.pipe.reset()
                    self.pipe = None
                raise
            self.depth -= 1
            if outer:
                pipe, self.pipe = self.pipe, None
                stack = [args for args, _ in pipe.command_stack]
                pipe.reset()
                if stack:
                    self._commit(stack)

    def _commit(self, commands: list[tuple[Any, ...]]) -> None:
        if not self.crawl_id:
            self.identify()
        args: list[Any] = [self.crawl_id, f"{self.prefix}tx:{uuid.uuid4().hex}", self.token_ms]
        for command in commands:
            args.append(len(command))
            args.extend(command)
        self.call(self._exec, keys=[self.id_key], args=args)

    def checked(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """A script whose last key and argument are the identity key and crawl id."""
        if not self.crawl_id:
            self.identify()
        return self.call(script, keys=[*keys, self.id_key], args=[*args, self.crawl_id])


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]


def _id_suffix() -> str:
    """Random hex digits after an entry id's sequence number. Ids stay in push order (the
    number comes first), and a Redis rolled back to an older snapshot, whose counter
    hands out numbers again, does not hand out an id a running process still holds a
    lease on (its ack would delete another entry)."""
    return uuid.uuid4().hex[:6]


def _stored(e: Entry) -> str:
    return f"{e.priority}\t{e.host}\t{e.not_before}\t{e.data}"


class RedisHostState:
    """Per-host politeness for the whole cluster: slots are ZSETs of lease ids with
    deadlines, next-allowed times and per-host (limit, spacing) are hashes. The
    frontier's pop takes slots with the same Lua rule as ``take``."""

    def __init__(self, conn: _Conn, prefix: str, lease_seconds: float) -> None:
        self._c = conn
        self.prefix = prefix
        self.lease_seconds = lease_seconds
        self.limit = 8
        self.spacing = 0.0
        self._take = conn.client.register_script(lua.TAKE)
        self._back_off = conn.client.register_script(lua.BACK_OFF)

    def set_defaults(self, limit: int, spacing: float) -> None:
        self.limit, self.spacing = limit, spacing

    def configure(self, host: str, limit: int, spacing: float) -> None:
        with self._c.transaction() as w:
            w.hset(self.prefix + "hostparams", host, f"{limit}\t{spacing}")

    def take(self, host: str, token: Any, now: float, jitter: float = 1.0) -> bool:
        return bool(self._c.call(self._take, args=[self.prefix, now, host, token,
                                                   now + self.lease_seconds, self.limit,
                                                   self.spacing, jitter]))

    def give(self, host: str, token: Any) -> None:
        with self._c.transaction() as w:
            w.zrem(f"{self.prefix}slots:{host}", token)

    def hold(self, host: str, until: float) -> None:
        self._c.call(self._back_off, keys=[self.prefix + "hostnext"], args=[host, until])

    def renew(self, slots: Mapping[str, Sequence[Any]], until: float) -> None:
        def build(p: Any) -> None:
            for host, tokens in slots.items():
                if tokens:
                    p.zadd(f"{self.prefix}slots:{host}", {t: until for t in tokens}, xx=True)
        self._c.pipelined(build)

    def next_change(self, now: float) -> float | None:
        return None  # other processes move the shared times: the engine polls


class RedisFrontier:
    """The shared frontier; its pop takes the cluster-wide host slot of each entry."""

    def __init__(self, conn: _Conn, prefix: str, hosts: RedisHostState,
                 lease_seconds: float = 60.0) -> None:
        self._c = conn
        self.prefix = prefix
        self.hosts = hosts
        self.lease_seconds = lease_seconds
        k = prefix
        self.q, self.delayed, self.leases, self.entries = k + "q", k + "delayed", k + "leases", k + "e"
        cl = conn.client
        self._pop = cl.register_script(lua.POP)
        self._requeue = cl.register_script(lua.REQUEUE)
        self._release = cl.register_script(lua.RELEASE)
        self._counts = cl.register_script(lua.COUNTS)

    def push(self, entries: Iterable[Entry]) -> None:
        """Queue entries with the open transaction (their ids are taken at once)."""
        entries = list(entries)
        if not entries:
            return
        if not all(isinstance(e.data, str) for e in entries):
            raise StorageError("RedisFrontier stores serialised (str) entries only")
        c = self._c
        last = c.call(c.client.incrby, self.prefix + "seq", len(entries))
        first = last - len(entries) + 1
        now, suffix = time.time(), _id_suffix()
        mapping, ready, waiting = {}, {}, {}
        for i, e in enumerate(entries):
            eid = f"{first + i:015d}{suffix}"
            mapping[eid] = _stored(e)
            if e.not_before > now:
                waiting[eid] = e.not_before
            else:
                ready[eid] = -e.priority
        with c.transaction() as w:
            for part in _chunks(list(mapping)):
                w.hset(self.entries, mapping={eid: mapping[eid] for eid in part})
            for key, scores in ((self.q, ready), (self.delayed, waiting)):
                for part in _chunks(list(scores)):
                    w.zadd(key, {eid: scores[eid] for eid in part})

    def pop(self, limit: int, *, now: float, closed: Collection[str] = (),
            jitter: float = 1.0) -> list[Lease]:
        if limit <= 0:
            return []
        hosts = self.hosts
        raw = self._c.checked(self._pop, [self.q, self.delayed, self.leases, self.entries],
                              [self.prefix, now, limit, now + self.lease_seconds, hosts.limit,
                               hosts.spacing, jitter, json.dumps(sorted(closed))])
        out = []
        for i in range(0, len(raw), 2):
            eid = raw[i].decode() if isinstance(raw[i], bytes) else raw[i]
            prio, host, not_before, data = _split(raw[i + 1])
            out.append(Lease(eid, Entry(host, data, prio, not_before)))
        return out

    def ack(self, lease_ids: Iterable[Any]) -> None:
        ids = list(lease_ids)
        if ids:
            with self._c.transaction() as w:
                for part in _chunks(ids):
                    w.zrem(self.leases, *part)
                    w.hdel(self.entries, *part)

    def release(self, lease_ids: Iterable[Any]) -> None:
        ids = list(lease_ids)
        if ids:
            self._c.call(self._release, keys=[self.q, self.leases, self.entries], args=ids)

    def renew(self, lease_ids: Iterable[Any]) -> None:
        ids = list(lease_ids)
        if ids:
            until = time.time() + self.lease_seconds
            self._c.call(self._c.client.zadd, self.leases, {i: until for i in ids}, xx=True)

    def requeue_expired(self, now: float | None = None) -> int:
        return int(self._c.call(self._requeue, keys=[self.q, self.leases, self.entries],
                                args=[time.time() if now is None else now]))

    def requeue_all(self) -> int:
        return self.requeue_expired(float("inf"))

    def counts(self) -> tuple[int, int]:
        """(pending, leased), checked against the crawl's identity: the answers the end
        of a crawl is decided on must not come from a Redis that lost the crawl."""
        pending, leased = self._c.checked(self._counts, [self.q, self.delayed, self.leases], [])
        return int(pending), int(leased)

    def pending(self) -> int:
        return self.counts()[0]

    def leased(self) -> int:
        return self.counts()[1]

    def next_ready(self) -> float | None:
        first = self._c.call(self._c.client.zrange, self.delayed, 0, 0, withscores=True)
        return float(first[0][1]) if first else None


def _split(raw: bytes | str) -> tuple[int, str, float, str]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    prio, host, not_before, data = text.split("\t", 3)
    return int(prio), host, float(not_before), data


class RedisSeenSet:
    """Fingerprints in a SET (SADD is the test-and-set), or, with ``seen_ttl``, one key
    per fingerprint set with NX and an expiry so pages become new again after the TTL.
    The engine marks fingerprints through ``RedisBackend.push_unseen`` (marks and pushes
    together); ``add``/``add_many`` mark alone."""

    def __init__(self, conn: _Conn, prefix: str, ttl: float | None = None) -> None:
        self._c = conn
        self.key = prefix + "seen"
        self.ttl = ttl

    def member(self, fingerprint: bytes) -> bytes | str:
        """What stands for ``fingerprint``: the SET member, or the suffix of its key."""
        return fingerprint.hex() if self.ttl else fingerprint

    def add(self, fingerprint: bytes) -> bool:
        return self.add_many([fingerprint])[0]

    def add_many(self, fingerprints: Sequence[bytes]) -> list[bool]:
        if not fingerprints:
            return []

        def build(p: Any) -> None:
            for fp in fingerprints:
                if self.ttl:
                    p.set(f"{self.key}:{fp.hex()}", 1, nx=True, px=int(self.ttl * 1000))
                else:
                    p.sadd(self.key, fp)
        return [bool(r) for r in self._c.pipelined(build)]

    def __contains__(self, fingerprint: object) -> bool:
        if not isinstance(fingerprint, bytes):
            return False
        c = self._c
        if self.ttl:
            return bool(c.call(c.client.exists, f"{self.key}:{fingerprint.hex()}"))
        return bool(c.call(c.client.sismember, self.key, fingerprint))

    def __len__(self) -> int:
        c = self._c
        if self.ttl:
            return int(c.call(lambda: sum(1 for _ in c.client.scan_iter(
                match=f"{self.key}:*", count=1000))))
        return int(c.call(c.client.scard, self.key))


class RedisRobotsCache:
    """robots.txt answers for the cluster, fetched by whichever process claims a host."""

    def __init__(self, conn: _Conn, prefix: str) -> None:
        self._c = conn
        self.prefix = prefix

    def get(self, host: str) -> tuple[int | None, str] | None:
        raw = self._c.call(self._c.client.hget, self.prefix + "robots", host)
        if raw is None:
            return None
        status, _, text = raw.decode("utf-8", "replace").partition("\t")
        return (int(status) if status else None), text

    def claim(self, host: str, seconds: float) -> bool:
        return bool(self._c.call(self._c.client.set, f"{self.prefix}robots-lock:{host}", 1,
                                 nx=True, px=int(seconds * 1000)))

    def put(self, host: str, status: int | None, text: str) -> None:
        with self._c.transaction() as w:
            w.hset(self.prefix + "robots", host, f"{status or ''}\t{text}")


class RedisCounters:
    """The cluster's counters in one hash."""

    def __init__(self, conn: _Conn, prefix: str) -> None:
        self._c = conn
        self.key = prefix + "stats"

    def add(self, delta: Mapping[str, int]) -> None:
        if delta:
            with self._c.transaction() as w:
                for key, n in delta.items():
                    w.hincrby(self.key, key, n)

    def totals(self) -> dict[str, int]:
        raw = self._c.call(self._c.client.hgetall, self.key)
        return {k.decode(): int(v) for k, v in raw.items()}


class RedisItemStream:
    """Items appended to the crawl's stream in the transaction that acks their page."""

    def __init__(self, conn: _Conn, prefix: str) -> None:
        self._c = conn
        self.key = prefix + "items"

    def add(self, item: str) -> None:
        with self._c.transaction() as w:
            w.xadd(self.key, {"item": item})


class RedisDeadLetters:
    """Requests that failed after their last retry, kept for ``retry-failed``."""

    def __init__(self, conn: _Conn, prefix: str) -> None:
        self._c = conn
        self.key = prefix + "dead"
        self.seq = prefix + "deadseq"

    def add(self, rows: Sequence[tuple[str, str]]) -> None:
        if not rows:
            return
        c = self._c
        last = int(c.call(c.client.incrby, self.seq, len(rows)))
        mapping = {f"{last - len(rows) + 1 + i:015d}": f"{reason}\t{data}"
                   for i, (data, reason) in enumerate(rows)}
        with c.transaction() as w:
            for part in _chunks(list(mapping)):
                w.hset(self.key, mapping={k: mapping[k] for k in part})

    def list(self) -> list[tuple[Any, str, str]]:
        raw = self._c.call(self._c.client.hgetall, self.key)
        out = []
        for k, v in sorted(raw.items()):
            reason, _, data = v.decode().partition("\t")
            out.append((k.decode(), data, reason))
        return out

    def remove(self, ids: Sequence[Any]) -> None:
        # with the transaction: `retry-failed` removes them in the step that requeues them
        with self._c.transaction() as w:
            for part in _chunks(list(ids)):
                w.hdel(self.key, *part)


class RedisBackend:
    """Every concern of one crawl in Redis, under ``scraper:{spider}:``."""

    serialises = True
    shared = True
    job = None

    def __init__(self, url: str, spider: str, *, lease_seconds: float = 60.0,
                 seen_ttl: float | None = None, retry_window: float = 30.0) -> None:
        # named so `CLIENT LIST` on the server shows which crawl and process each one is
        client = _connect(url, retry_window,
                          name=f"scraper:{spider}:{socket.gethostname()}:{os.getpid()}")
        self.prefix = f"scraper:{spider}:"
        self._c = _Conn(client, url, self.prefix, retry_window)
        self.url = mask_url(url)
        self._c.identify()  # the first round trip: it also proves the server answers
        self.hosts = RedisHostState(self._c, self.prefix, lease_seconds)
        self.frontier = RedisFrontier(self._c, self.prefix, self.hosts, lease_seconds)
        self.seen = RedisSeenSet(self._c, self.prefix, seen_ttl)
        self.robots = RedisRobotsCache(self._c, self.prefix)
        self.counters = RedisCounters(self._c, self.prefix)
        self.items = RedisItemStream(self._c, self.prefix)
        self.dead = RedisDeadLetters(self._c, self.prefix)
        self._push_unseen = client.register_script(lua.PUSH_UNSEEN)

    def round_trips(self) -> int | None:
        return self._c.round_trips

    def transaction(self) -> AbstractContextManager[Any]:
        return self._c.transaction()

    def push_unseen(self, entries: Sequence[Entry],
                    fingerprints: Sequence[bytes | None]) -> list[bool]:
        """The seen-set's test-and-set and the push of the new entries in one script (per
        1,000 entries), run at once even inside a transaction: its answer is needed to
        go on, and what it writes is consistent on its own."""
        if len(entries) != len(fingerprints):
            raise ValueError("push_unseen: one fingerprint (or None) per entry")
        if not all(isinstance(e.data, str) for e in entries):
            raise StorageError("RedisFrontier stores serialised (str) entries only")
        f, seen, now = self.frontier, self.seen, time.time()
        keys = [seen.key, f.q, f.delayed, f.entries, self.prefix + "seq"]
        ttl_ms = int(seen.ttl * 1000) if seen.ttl else 0
        out: list[bool] = []
        for start in range(0, len(entries), _CHUNK):
            args: list[Any] = [ttl_ms, _id_suffix()]
            for e, fp in zip(entries[start:start + _CHUNK], fingerprints[start:start + _CHUNK]):
                waiting = e.not_before > now
                args += [b"" if fp is None else seen.member(fp), _stored(e),
                         "d" if waiting else "q", e.not_before if waiting else -e.priority]
            out += [bool(n) for n in self._c.checked(self._push_unseen, keys, args)]
        return out

    def clear(self) -> int:
        """Delete every key of the crawl (SCAN over its prefix, never KEYS)."""
        client = self._c.client

        def delete_all() -> int:
            n = 0
            batch: list[bytes] = []
            for key in client.scan_iter(match=self.prefix + "*", count=1000):
                batch.append(key)
                if len(batch) >= 500:
                    n += client.delete(*batch)
                    batch = []
            if batch:
                n += client.delete(*batch)
            return n
        n = int(self._c.call(delete_all))
        self._c.crawl_id = ""  # its identity went with it
        return n

    def close(self) -> None:
        try:
            self._c.client.close()
        except Exception:
            pass


def open_redis(url: str, options: Any) -> RedisBackend:
    """The registry's factory for ``redis://``, ``rediss://`` and ``unix://``."""
    return RedisBackend(url, options.spider, lease_seconds=options.lease_seconds,
                        seen_ttl=options.seen_ttl, retry_window=options.retry_window)
