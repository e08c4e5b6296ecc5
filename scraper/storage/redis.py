"""The Redis backend: one crawl shared by many processes on many machines.

The crawl's keys live in partitions, each under one prefix: on one Redis a single
partition, ``scraper:{spider}:``; on a Redis Cluster (``rediscluster``) several,
``scraper:{<spider>.<tag>}:``, whose hash tag puts all of a partition's keys on one
shard. A host belongs to one partition (by a hash of its name): its queue, slots,
next-allowed time, limits and robots.txt live there, with the seen-set of its URLs,
so every Lua script (``redis_scripts``) is one atomic step on one shard. ``reset``
deletes the crawl's keys with SCAN, never KEYS.

    crawl      STRING  the crawl's identity (a random id, in every partition)
    e, hq:{h}, ready, waiting, delayed, leases, n, seq   the frontier (redis_scripts)
    slots:{h}, claims:{h}, hostnext, hostparams          per-host politeness and shares
    seen       SET   fingerprints (or seen:{hex} keys with an expiry when seen_ttl is set)
    robots     HASH  host → "status\\ttext"; robots-lock:{h} the claim to fetch it
    stats      HASH  counters (each process adds to one partition's; totals sum them)
    dead       HASH  dead-letter id → "reason\\tdata" (deadseq: their counter), first partition
    items      STREAM  items, when the redis-stream output is used, first partition
    tx:{token} STRING  a committed transaction, for a while (a retried commit is a no-op)

Popping leases a batch across hosts in O(log n) per lease (a sorted set of hosts by
their best entry, per-host queues), taking each one's host slot in the same step.
New requests enter through ``push_unseen``: the seen-set's test-and-set and the push
in one script. A transaction records its writes and applies them in one script per
partition at the end (acks, retries, slots given back, items, counters together).

Three ways a shared store can fail, each ending this process with one line:

- unreachable: every call retries on connection errors with back-off, for at most
  ``redis_retry_window`` seconds in all; then the backend is failed for good.
- lost: the pop, count, push and commit scripts check the crawl's identity key
  first, in the same step; when it is gone (or names another crawl) the process stops.
- refused: any other Redis error (wrong password, a command refused) at once.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any
from urllib.parse import urlsplit

from ..exceptions import StorageError, StorageUnusable
from . import redis_scripts as lua
from .base import Entry
from .redisfrontier import RedisFrontier, RedisHostState
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

# Entries per script call: a script's `unpack` takes up to ~8,000 values, and one long
# call would hold up every other client of the server.
CHUNK = 1000
_BACKOFF_FIRST, _BACKOFF_MAX = 0.05, 1.0
_SCRIPTS = {name: getattr(lua, name) for name in
            ("IDENTITY", "POP", "TAKE", "REQUEUE", "RELEASE", "BACK_OFF", "COUNTS", "PUSH", "EXEC")}


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


def call_timeout(retry_window: float) -> float:
    """One try blocks at most a third of the window and never over 5 s."""
    return min(5.0, max(1.0, retry_window / 3))


def _connect(url: str, retry_window: float, name: str | None = None) -> Any:
    if redis is None:  # pragma: no cover
        raise StorageUnusable("needs the redis package (pip install redis)", location=mask_url(url))
    # One attempt per call here: _Conn retries whole calls against one deadline (redis-py
    # retries each command and each reconnect, and those nest).
    timeout = call_timeout(retry_window)
    try:
        return redis.Redis.from_url(
            check_url(url), socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0), retry_on_error=[], health_check_interval=30,
            client_name=name)
    except ValueError as e:  # a query option redis-py cannot read; its text has no password
        raise StorageUnusable(f"not a usable Redis URL ({e})", location=mask_url(url)) from None


def _retryable(e: Exception) -> bool:
    # a refused password or permission is an answer, not an outage: no retry
    return isinstance(e, redis.ConnectionError | redis.TimeoutError
                      | redis.exceptions.ClusterError) and not isinstance(
        e, redis.AuthenticationError | redis.exceptions.AuthorizationError)


class Layout:
    """Where a crawl's keys are: its partitions' prefixes, and which one holds a host, a
    fingerprint, this process's counters. One partition on one Redis."""

    def __init__(self, prefixes: Sequence[str]) -> None:
        self.prefixes = list(prefixes)
        self.home = self.prefixes[0]

    def of_host(self, host: str) -> int:
        return zlib.crc32(host.encode()) % len(self.prefixes) if len(self.prefixes) > 1 else 0

    def of_fp(self, fp: bytes) -> int:
        return int.from_bytes(fp[:4], "big") % len(self.prefixes)

    def of_id(self, eid: str) -> int:
        """An entry id's partition: its last two digits (on one Redis, the only one)."""
        return int(eid[-2:]) if len(self.prefixes) > 1 else 0


class Writes:
    """What a transaction records: per partition, the commands to apply at its end."""

    def __init__(self) -> None:
        self.by_part: dict[int, list[tuple[Any, ...]]] = {}

    def cmd(self, part: int, *args: Any) -> None:
        self.by_part.setdefault(part, []).append(args)


class _Conn:
    """The connection to the crawl's Redis: calls retried against one deadline, the
    crawl's identity, the open transaction's recorded writes, a round-trip counter."""

    def __init__(self, client: Any, url: str, layout: Layout, retry_window: float,
                 cluster: bool = False) -> None:
        self.client = client
        self.cluster = cluster
        self.url = mask_url(url)
        self.location = f"redis at {self.url}"
        self.layout = layout
        self.prefix = layout.home
        self.retry_window = retry_window
        self.round_trips = 0
        self.writes: Writes | None = None
        self.depth = 0
        self.lock = threading.RLock()
        self.failed: StorageError | None = None
        self.id_key = layout.home + "crawl"
        self.crawl_id = ""
        # a commit's token outlives any retry of that commit
        self.token_ms = int((2 * retry_window + 60) * 1000)
        self.shas = {name: hashlib.sha1(src.encode()).hexdigest() for name, src in _SCRIPTS.items()}
        self.defaults: tuple[int, float] = (8, 0.0)  # the hosts' default limit and spacing

    # -- calls ---------------------------------------------------------------
    def call(self, fn: Callable[..., Any], *args: Any, trips: int = 1, **kw: Any) -> Any:
        """``fn(*args, **kw)``, retried on connection errors until ``redis_retry_window``
        has passed since the first try; then (or on the crawl's loss) the connection is
        failed for good and every later call raises at once."""
        if self.failed is not None:
            raise StorageError(self.failed.reason, location=self.location)
        self.round_trips += trips
        deadline = time.monotonic() + self.retry_window
        wait = _BACKOFF_FIRST
        while True:
            try:
                return fn(*args, **kw)
            except redis.exceptions.NoScriptError:
                self._load_scripts()  # a restarted or failed-over server forgot them
                continue
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

    def _load_scripts(self) -> None:
        for src in _SCRIPTS.values():
            self.client.script_load(src)  # on a cluster: every primary

    def _error(self, e: Exception) -> StorageError:
        text = str(e)
        if LOST not in text:
            return StorageError(f"{type(e).__name__}: {text}", location=self.location)
        if "replaced" in text:
            what = (f"key {self.id_key} names another crawl: Redis lost this crawl's state "
                    "and a process started the crawl afresh")
        else:
            what = (f"key {self.id_key} is gone: Redis restarted without persistence, was "
                    "flushed, evicted keys, lost a shard, or `reset` ran")
        self.failed = StorageError(f"the crawl's state was lost ({what}); stopping before "
                                   "the crawl is finished", location=self.location)
        return self.failed

    def script(self, name: str, part: int, args: Sequence[Any], checked: bool = False) -> Any:
        """Run script ``name`` on partition ``part`` (checked: against the crawl's identity)."""
        return self.scripts([(name, part, args, checked)])[0]

    def scripts(self, calls: Sequence[tuple[str, int, Sequence[Any], bool]]) -> list[Any]:
        """Several scripts in one pipeline (one round trip per node they go to)."""
        if any(checked for *_, checked in calls) and not self.crawl_id:
            self.identify()
        prefixes = self.layout.prefixes

        def build(p: Any) -> None:
            for name, part, args, checked in calls:
                tail = [self.crawl_id] if checked else []
                p.evalsha(self.shas[name], 1, prefixes[part] + "crawl", *args, *tail)
        return self.pipelined(build, parts={part for _, part, _, _ in calls})

    def pipelined(self, build: Callable[[Any], None], parts: set[int] | None = None) -> list[Any]:
        """The answers of the commands ``build`` puts on a pipeline (rebuilt for each try:
        a pipeline forgets its commands when it runs). An error answer raises."""
        def run() -> list[Any]:
            p = self.client.pipeline(transaction=False) if not self.cluster else self.client.pipeline()
            try:
                build(p)
                if not len(p):
                    return []
                out = list(p.execute(raise_on_error=False))
            finally:
                p.reset()
            for r in out:
                if isinstance(r, Exception):
                    raise r
            return out
        trips = 1 if not self.cluster else self.nodes(parts)
        result: list[Any] = self.call(run, trips=trips)
        return result

    def nodes(self, parts: set[int] | None) -> int:
        """Round trips a pipeline to these partitions costs: one per node they live on."""
        if parts is None or not self.cluster:
            return 1
        try:
            return len({self.client.get_node_from_key(self.layout.prefixes[i] + "crawl").name
                        for i in parts}) or 1
        except Exception:
            return len(parts) or 1

    # -- identity ------------------------------------------------------------
    def identify(self) -> None:
        """Join the crawl whose identity key is there, or start one (a new id), in every
        partition; after ``clear`` the next checked call does this again."""
        proposed = uuid.uuid4().hex

        def build(p: Any) -> None:
            for prefix in self.layout.prefixes:
                p.evalsha(self.shas["IDENTITY"], 1, prefix + "crawl", proposed)
        self.call(self._load_scripts)
        ids = {(r.decode() if isinstance(r, bytes) else str(r))
               for r in self.pipelined(build, set(range(len(self.layout.prefixes))))}
        if len(ids) > 1:
            raise self._error(redis.ResponseError(f"{LOST} replaced"))
        self.crawl_id = ids.pop()

    # -- transactions --------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Writes]:
        """Writes made inside are recorded and applied together, once per partition, when
        the outermost transaction ends (checked against the crawl's identity there)."""
        with self.lock:
            outer = self.depth == 0
            if outer:
                self.writes = Writes()
            self.depth += 1
            try:
                assert self.writes is not None
                yield self.writes
            except BaseException:
                self.depth -= 1
                if outer:
                    self.writes = None
                raise
            self.depth -= 1
            if outer:
                writes, self.writes = self.writes, None
                if writes.by_part:
                    self._commit(writes)

    def _commit(self, writes: Writes) -> None:
        if not self.crawl_id:
            self.identify()
        prefixes = self.layout.prefixes
        calls: list[tuple[str, int, Sequence[Any], bool]] = []
        for part, commands in sorted(writes.by_part.items()):
            for start in range(0, len(commands), CHUNK):
                args: list[Any] = [self.crawl_id, f"{prefixes[part]}tx:{uuid.uuid4().hex}",
                                   self.token_ms, prefixes[part], *self.defaults]
                for command in commands[start:start + CHUNK]:
                    args.append(len(command))
                    args.extend(command)
                calls.append(("EXEC", part, args, False))
        self.scripts(calls)


LOST = lua.LOST_MARK


def chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


class RedisSeenSet:
    """Fingerprints in a SET per partition (SADD is the test-and-set), or, with
    ``seen_ttl``, one key per fingerprint set with NX and an expiry. The crawl marks
    fingerprints through ``RedisBackend.push_unseen``, in the partition of the URL's
    host; ``add``/``add_many`` mark alone, in the partition of the fingerprint (the
    same one on a single Redis); membership and size look in every partition."""

    def __init__(self, conn: _Conn, ttl: float | None = None) -> None:
        self._c = conn
        self.key = conn.layout.home + "seen"
        self.ttl = ttl

    def key_of(self, part: int) -> str:
        return self._c.layout.prefixes[part] + "seen"

    def member(self, fingerprint: bytes) -> bytes | str:
        """What stands for ``fingerprint``: the SET member, or the suffix of its key."""
        return fingerprint.hex() if self.ttl else fingerprint

    def add(self, fingerprint: bytes) -> bool:
        return self.add_many([fingerprint])[0]

    def add_many(self, fingerprints: Sequence[bytes]) -> list[bool]:
        if not fingerprints:
            return []
        layout = self._c.layout

        def build(p: Any) -> None:
            for fp in fingerprints:
                key = self.key_of(layout.of_fp(fp))
                if self.ttl:
                    p.set(f"{key}:{fp.hex()}", 1, nx=True, px=int(self.ttl * 1000))
                else:
                    p.sadd(key, fp)
        return [bool(r) for r in self._c.pipelined(build, {layout.of_fp(fp) for fp in fingerprints})]

    def __contains__(self, fingerprint: object) -> bool:
        if not isinstance(fingerprint, bytes):
            return False
        n = len(self._c.layout.prefixes)

        def build(p: Any) -> None:
            for part in range(n):
                if self.ttl:
                    p.exists(f"{self.key_of(part)}:{fingerprint.hex()}")
                else:
                    p.sismember(self.key_of(part), fingerprint)
        return any(self._c.pipelined(build, set(range(n))))

    def __len__(self) -> int:
        c = self._c
        n = len(c.layout.prefixes)
        if self.ttl:
            return int(c.call(lambda: sum(
                1 for part in range(n)
                for _ in c.client.scan_iter(match=f"{self.key_of(part)}:*", count=1000))))

        def build(p: Any) -> None:
            for part in range(n):
                p.scard(self.key_of(part))
        return sum(int(x) for x in c.pipelined(build, set(range(n))))


class RedisRobotsCache:
    """robots.txt answers for the cluster, in the host's partition, fetched by whichever
    process claims a host."""

    def __init__(self, conn: _Conn) -> None:
        self._c = conn

    def _p(self, host: str) -> tuple[int, str]:
        part = self._c.layout.of_host(host)
        return part, self._c.layout.prefixes[part]

    def get(self, host: str) -> tuple[int | None, str] | None:
        _, prefix = self._p(host)
        raw = self._c.call(self._c.client.hget, prefix + "robots", host)
        if raw is None:
            return None
        status, _, text = raw.decode("utf-8", "replace").partition("\t")
        return (int(status) if status else None), text

    def claim(self, host: str, seconds: float) -> bool:
        _, prefix = self._p(host)
        return bool(self._c.call(self._c.client.set, f"{prefix}robots-lock:{host}", 1,
                                 nx=True, px=int(seconds * 1000)))

    def put(self, host: str, status: int | None, text: str) -> None:
        part, prefix = self._p(host)
        with self._c.transaction() as w:
            w.cmd(part, "HSET", prefix + "robots", host, f"{status or ''}\t{text}")


class RedisCounters:
    """The cluster's counters: each process adds to one partition's hash (spreading the
    writes over the shards); the totals sum every partition's."""

    def __init__(self, conn: _Conn, process: str) -> None:
        self._c = conn
        self.part = zlib.crc32(process.encode()) % len(conn.layout.prefixes)
        self.key = conn.layout.home + "stats"

    def add(self, delta: Mapping[str, int]) -> None:
        if delta:
            key = self._c.layout.prefixes[self.part] + "stats"
            with self._c.transaction() as w:
                for name, n in delta.items():
                    w.cmd(self.part, "HINCRBY", key, name, n)

    def totals(self) -> dict[str, int]:
        prefixes = self._c.layout.prefixes

        def build(p: Any) -> None:
            for prefix in prefixes:
                p.hgetall(prefix + "stats")
        out: dict[str, int] = {}
        for raw in self._c.pipelined(build, set(range(len(prefixes)))):
            for k, v in raw.items():
                out[k.decode()] = out.get(k.decode(), 0) + int(v)
        return out


class RedisItemStream:
    """Items appended to the crawl's stream (first partition) in the transaction that
    acks their page."""

    def __init__(self, conn: _Conn) -> None:
        self._c = conn
        self.key = conn.layout.home + "items"

    def add(self, item: str) -> None:
        with self._c.transaction() as w:
            w.cmd(0, "XADD", self.key, "*", "item", item)


class RedisDeadLetters:
    """Requests that failed after their last retry, kept for ``retry-failed``."""

    def __init__(self, conn: _Conn) -> None:
        self._c = conn
        self.key = conn.layout.home + "dead"
        self.seq = conn.layout.home + "deadseq"

    def add(self, rows: Sequence[tuple[str, str]]) -> None:
        if not rows:
            return
        c = self._c
        last = int(c.call(c.client.incrby, self.seq, len(rows)))
        mapping = [(f"{last - len(rows) + 1 + i:015d}", f"{reason}\t{data}")
                   for i, (data, reason) in enumerate(rows)]
        with c.transaction() as w:
            for part in chunks(mapping):
                w.cmd(0, "HSET", self.key, *[x for pair in part for x in pair])

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
            for part in chunks(list(ids)):
                w.cmd(0, "HDEL", self.key, *part)


class RedisBackend:
    """Every concern of one crawl in Redis (one server, or a cluster's shards)."""

    serialises = True
    shared = True
    job = None

    def __init__(self, url: str, spider: str, *, lease_seconds: float = 60.0,
                 seen_ttl: float | None = None, retry_window: float = 30.0,
                 client: Any = None, layout: Layout | None = None) -> None:
        self.process = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:4]}"
        cluster = client is not None
        if client is None:
            # named so `CLIENT LIST` on the server shows which crawl and process each one is
            client = _connect(url, retry_window,
                              name=f"scraper:{spider}:{socket.gethostname()}:{os.getpid()}")
        layout = layout or Layout([f"scraper:{spider}:"])
        self.prefix = layout.home
        self._c = _Conn(client, url, layout, retry_window, cluster=cluster)
        self.url = mask_url(url)
        self._c.identify()  # the first round trip: it also proves the server answers
        self.hosts = RedisHostState(self._c, self.process, lease_seconds)
        self.frontier = RedisFrontier(self._c, self.hosts, lease_seconds)
        self.seen = RedisSeenSet(self._c, seen_ttl)
        self.robots = RedisRobotsCache(self._c)
        self.counters = RedisCounters(self._c, self.process)
        self.items = RedisItemStream(self._c)
        self.dead = RedisDeadLetters(self._c)

    def round_trips(self) -> int | None:
        return self._c.round_trips

    def transaction(self) -> AbstractContextManager[Any]:
        return self._c.transaction()

    def push_unseen(self, entries: Sequence[Entry],
                    fingerprints: Sequence[bytes | None]) -> list[bool]:
        """The seen-set's test-and-set and the push of the new entries in one script per
        partition (and per 1,000 entries), all in one pipeline, run at once even inside a
        transaction: its answer is needed to go on, and what it writes is consistent on
        its own."""
        if len(entries) != len(fingerprints):
            raise ValueError("push_unseen: one fingerprint (or None) per entry")
        return self.frontier.push_entries(entries, fingerprints, self.seen)

    def clear(self) -> int:
        """Delete every key of the crawl (SCAN over its prefixes, never KEYS)."""
        client = self._c.client
        prefixes = self._c.layout.prefixes

        def delete_all() -> int:
            n = 0
            for prefix in prefixes:
                keys = list(client.scan_iter(match=_glob(prefix) + "*", count=1000))
                for start in range(0, len(keys), 500):
                    with client.pipeline() as p:
                        for key in keys[start:start + 500]:
                            p.delete(key)
                        n += sum(int(x) for x in p.execute())
            return n
        n = int(self._c.call(delete_all))
        self._c.crawl_id = ""  # its identity went with it
        self.frontier.forget_hints()
        return n

    def close(self) -> None:
        """Drop the connections; a later call (the summary's totals) opens new ones."""
        client = self._c.client
        try:
            if self._c.cluster:  # a closed RedisCluster cannot route again: disconnect only
                for node in client.get_nodes():
                    if node.redis_connection is not None:
                        node.redis_connection.connection_pool.disconnect()
            else:
                client.close()
        except Exception:
            pass


def _glob(text: str) -> str:
    """``text`` with SCAN MATCH's special characters escaped."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def open_redis(url: str, options: Any) -> RedisBackend:
    """The registry's factory for ``redis://``, ``rediss://`` and ``unix://``."""
    return RedisBackend(url, options.spider, lease_seconds=options.lease_seconds,
                        seen_ttl=options.seen_ttl, retry_window=options.retry_window)
