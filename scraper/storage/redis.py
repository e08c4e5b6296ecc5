"""The Redis backend: one crawl shared by many processes on many machines.

Every key lives under ``scraper:{spider}:`` (``reset`` deletes that prefix with
SCAN, never KEYS):

    q          ZSET  entry id → -priority (FIFO within a priority: ids are zero-padded)
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

Popping is one Lua script: it promotes due delayed entries, then leases the
highest-priority entries whose host has a free cluster-wide slot and whose
next-allowed time has come, taking the slot in the same step (the ``take`` rule
of ``HostState``, written once in Lua and used by both scripts that need it). A
process that dies leaves leases (and slots) with deadlines; any process puts them
back when they expire, so nothing a dead worker held is lost.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from ..exceptions import StorageError, StorageUnusable
from .base import Entry, Lease
from .registry import mask_url

try:
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry
except ImportError:  # pragma: no cover - redis is a dependency; this is for a broken install
    redis = None  # type: ignore[assignment]  # a broken install: _connect says so

__all__ = ["RedisBackend", "RedisCounters", "RedisDeadLetters", "RedisFrontier",
           "RedisHostState", "RedisItemStream", "RedisRobotsCache", "RedisSeenSet", "check_url",
           "open_redis"]

# The HostState take rule: a host with fewer than `limit` live slots and its next-allowed
# time passed gets a slot (expiring at `deadline`) and its next-allowed time moves
# `spacing * jitter` ahead. `params` caches the host's (limit, spacing) for one call.
_TAKE_FN = """
local function host_params(prefix, host, now, dlimit, dspacing, params)
  local p = params[host]
  if p == nil then
    local raw = redis.call('HGET', prefix .. 'hostparams', host)
    if raw then
      local t = string.find(raw, '\\t', 1, true)
      p = {tonumber(string.sub(raw, 1, t - 1)), tonumber(string.sub(raw, t + 1))}
    else
      p = {dlimit, dspacing}
    end
    params[host] = p
    redis.call('ZREMRANGEBYSCORE', prefix .. 'slots:' .. host, '-inf', now)
  end
  return p
end
local function take(prefix, host, token, now, deadline, dlimit, dspacing, jitter, params)
  local p = host_params(prefix, host, now, dlimit, dspacing, params)
  local skey = prefix .. 'slots:' .. host
  if redis.call('ZCARD', skey) >= p[1] then return false end
  local nxt = tonumber(redis.call('HGET', prefix .. 'hostnext', host) or '0')
  if nxt > now then return false end
  if p[2] > 0 then redis.call('HSET', prefix .. 'hostnext', host, now + p[2] * jitter) end
  redis.call('ZADD', skey, deadline, token)
  redis.call('PEXPIRE', skey, 3600000)
  return true
end
"""

# ARGV: prefix, now, limit, deadline, default limit, default spacing, jitter, closed (JSON)
_POP = _TAKE_FN + """
local q, delayed, leases, entries = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local prefix = ARGV[1]
local now = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local deadline = tonumber(ARGV[4])
local dlimit, dspacing, jitter = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local full = {}
for _, h in ipairs(cjson.decode(ARGV[8])) do full[h] = true end
local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  local e = redis.call('HGET', entries, id)
  if e then
    local prio = tonumber(string.sub(e, 1, string.find(e, '\\t', 1, true) - 1))
    redis.call('ZADD', q, -prio, id)
  end
  redis.call('ZREM', delayed, id)
end
local out = {}
local params = {}
local start = 0
local scanned = 0
while #out < limit * 2 and scanned < 5000 do
  local ids = redis.call('ZRANGE', q, start, start + 199)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    scanned = scanned + 1
    local e = redis.call('HGET', entries, id)
    if e then
      local t1 = string.find(e, '\\t', 1, true)
      local t2 = string.find(e, '\\t', t1 + 1, true)
      local host = string.sub(e, t1 + 1, t2 - 1)
      if not full[host] then
        if take(prefix, host, id, now, deadline, dlimit, dspacing, jitter, params) then
          table.insert(out, id)
          table.insert(out, e)
          if #out >= limit * 2 then break end
        else
          full[host] = true
        end
      end
    else
      redis.call('ZREM', q, id)
    end
  end
  start = start + 200
end
for i = 1, #out, 2 do
  redis.call('ZREM', q, out[i])
  redis.call('ZADD', leases, deadline, out[i])
end
return out
"""

# ARGV: prefix, now, host, token, deadline, default limit, default spacing, jitter
_TAKE = _TAKE_FN + """
local ok = take(ARGV[1], ARGV[3], ARGV[4], tonumber(ARGV[2]), tonumber(ARGV[5]),
                tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), {})
if ok then return 1 end
return 0
"""


_REQUEUE_EXPIRED = """
local q, leases, entries = KEYS[1], KEYS[2], KEYS[3]
local ids = redis.call('ZRANGEBYSCORE', leases, '-inf', ARGV[1], 'LIMIT', 0, 10000)
for _, id in ipairs(ids) do
  redis.call('ZREM', leases, id)
  local e = redis.call('HGET', entries, id)
  if e then
    local prio = tonumber(string.sub(e, 1, string.find(e, '\\t', 1, true) - 1))
    redis.call('ZADD', q, -prio, id)
  end
end
return #ids
"""

_RELEASE = """
local q, leases, entries = KEYS[1], KEYS[2], KEYS[3]
local n = 0
for _, id in ipairs(ARGV) do
  if redis.call('ZREM', leases, id) == 1 then
    local e = redis.call('HGET', entries, id)
    if e then
      local prio = tonumber(string.sub(e, 1, string.find(e, '\\t', 1, true) - 1))
      redis.call('ZADD', q, -prio, id)
      n = n + 1
    end
  end
end
return n
"""

_BACK_OFF = """
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
"""


def check_url(url: str) -> str:
    """A redis://, rediss:// or unix:// URL, or StorageUnusable naming it (password masked)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix") or (parts.scheme != "unix" and not parts.hostname):
        raise StorageUnusable("expected redis://HOST:PORT/DB (or rediss:// for TLS)",
                              location=mask_url(url))
    return url


def _connect(url: str, retry_window: float, name: str | None = None) -> Any:
    if redis is None:  # pragma: no cover
        raise StorageUnusable("needs the redis package (pip install redis)", location=mask_url(url))
    # Exponential back-off between tries, capped at 2 s, for about retry_window seconds.
    tries = max(1, int(retry_window / 1.0) + 3)
    retry = Retry(ExponentialBackoff(cap=2.0, base=0.05), tries)
    return redis.Redis.from_url(
        check_url(url), socket_timeout=10, socket_connect_timeout=5, retry=retry,
        retry_on_error=[redis.ConnectionError, redis.TimeoutError, ConnectionError],
        health_check_interval=30, client_name=name)


class _Conn:
    """The connection, a round-trip counter, and the open transaction's pipeline."""

    def __init__(self, client: Any, url: str) -> None:
        self.client = client
        self.url = mask_url(url)
        self.round_trips = 0
        self.pipe: Any = None
        self.depth = 0
        self.lock = threading.RLock()

    def call(self, fn: Any, *args: Any, **kw: Any) -> Any:
        self.round_trips += 1
        try:
            return fn(*args, **kw)
        except redis.RedisError as e:
            raise StorageError(f"{type(e).__name__}: {e}", location=f"redis at {self.url}") from e

    def writer(self) -> Any:
        """The open pipeline, or the client itself outside a transaction."""
        return self.pipe if self.pipe is not None else self.client

    def write(self, commands: int = 1) -> Any:
        """The writer, counting ``commands`` round trips when there is no open pipeline."""
        if self.pipe is None:
            self.round_trips += commands
            return self.client
        return self.pipe


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
        self._take = conn.client.register_script(_TAKE)
        self._back_off = conn.client.register_script(_BACK_OFF)

    def set_defaults(self, limit: int, spacing: float) -> None:
        self.limit, self.spacing = limit, spacing

    def configure(self, host: str, limit: int, spacing: float) -> None:
        self._c.write().hset(self.prefix + "hostparams", host, f"{limit}\t{spacing}")

    def take(self, host: str, token: Any, now: float, jitter: float = 1.0) -> bool:
        return bool(self._c.call(self._take, args=[self.prefix, now, host, token,
                                                   now + self.lease_seconds, self.limit,
                                                   self.spacing, jitter]))

    def give(self, host: str, token: Any) -> None:
        self._c.write().zrem(f"{self.prefix}slots:{host}", token)

    def hold(self, host: str, until: float) -> None:
        self._c.call(self._back_off, keys=[self.prefix + "hostnext"], args=[host, until])

    def renew(self, slots: Mapping[str, Sequence[Any]], until: float) -> None:
        with self._c.client.pipeline(transaction=False) as p:
            for host, tokens in slots.items():
                if tokens:
                    p.zadd(f"{self.prefix}slots:{host}", {t: until for t in tokens}, xx=True)
            if p.command_stack:
                self._c.call(p.execute)

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
        self._pop = cl.register_script(_POP)
        self._requeue = cl.register_script(_REQUEUE_EXPIRED)
        self._release = cl.register_script(_RELEASE)

    def push(self, entries: Iterable[Entry]) -> None:
        entries = list(entries)
        if not entries:
            return
        if not all(isinstance(e.data, str) for e in entries):
            raise StorageError("RedisFrontier stores serialised (str) entries only")
        c = self._c
        last = c.call(c.client.incrby, self.prefix + "seq", len(entries))
        first = last - len(entries) + 1
        now = time.time()
        mapping, ready, waiting = {}, {}, {}
        for i, e in enumerate(entries):
            eid = f"{first + i:015d}"
            mapping[eid] = f"{e.priority}\t{e.host}\t{e.not_before}\t{e.data}"
            if e.not_before > now:
                waiting[eid] = e.not_before
            else:
                ready[eid] = -e.priority
        w = c.write(1 + bool(ready) + bool(waiting))
        w.hset(self.entries, mapping=mapping)
        if ready:
            w.zadd(self.q, ready)
        if waiting:
            w.zadd(self.delayed, waiting)

    def pop(self, limit: int, *, now: float, closed: Collection[str] = (),
            jitter: float = 1.0) -> list[Lease]:
        if limit <= 0:
            return []
        c, hosts = self._c, self.hosts
        raw = c.call(self._pop, keys=[self.q, self.delayed, self.leases, self.entries],
                     args=[self.prefix, now, limit, now + self.lease_seconds, hosts.limit,
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
            w = self._c.write(2)
            w.zrem(self.leases, *ids)
            w.hdel(self.entries, *ids)

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

    def pending(self) -> int:
        c = self._c
        with c.client.pipeline(transaction=False) as p:
            p.zcard(self.q)
            p.zcard(self.delayed)
            a, b = c.call(p.execute)
        return int(a) + int(b)

    def leased(self) -> int:
        return int(self._c.call(self._c.client.zcard, self.leases))

    def next_ready(self) -> float | None:
        first = self._c.call(self._c.client.zrange, self.delayed, 0, 0, withscores=True)
        return float(first[0][1]) if first else None


def _split(raw: bytes | str) -> tuple[int, str, float, str]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    prio, host, not_before, data = text.split("\t", 3)
    return int(prio), host, float(not_before), data


class RedisSeenSet:
    """Fingerprints in a SET (SADD is the test-and-set), or, with ``seen_ttl``, one key
    per fingerprint set with NX and an expiry so pages become new again after the TTL."""

    def __init__(self, conn: _Conn, prefix: str, ttl: float | None = None) -> None:
        self._c = conn
        self.key = prefix + "seen"
        self.ttl = ttl

    def add(self, fingerprint: bytes) -> bool:
        return self.add_many([fingerprint])[0]

    def add_many(self, fingerprints: Sequence[bytes]) -> list[bool]:
        if not fingerprints:
            return []
        c = self._c
        with c.client.pipeline(transaction=False) as p:
            for fp in fingerprints:
                if self.ttl:
                    p.set(f"{self.key}:{fp.hex()}", 1, nx=True, px=int(self.ttl * 1000))
                else:
                    p.sadd(self.key, fp)
            results = c.call(p.execute)
        return [bool(r) for r in results]

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
            return sum(1 for _ in c.client.scan_iter(match=f"{self.key}:*", count=1000))
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
        self._c.write().hset(self.prefix + "robots", host, f"{status or ''}\t{text}")


class RedisCounters:
    """The cluster's counters in one hash."""

    def __init__(self, conn: _Conn, prefix: str) -> None:
        self._c = conn
        self.key = prefix + "stats"

    def add(self, delta: Mapping[str, int]) -> None:
        if delta:
            w = self._c.write(len(delta))
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
        self._c.write().xadd(self.key, {"item": item})


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
        c.write().hset(self.key, mapping=mapping)

    def list(self) -> list[tuple[Any, str, str]]:
        raw = self._c.call(self._c.client.hgetall, self.key)
        out = []
        for k, v in sorted(raw.items()):
            reason, _, data = v.decode().partition("\t")
            out.append((k.decode(), data, reason))
        return out

    def remove(self, ids: Sequence[Any]) -> None:
        if ids:
            self._c.call(self._c.client.hdel, self.key, *ids)


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
        self._c = _Conn(client, url)
        self.prefix = f"scraper:{spider}:"
        self.url = mask_url(url)
        self._c.call(client.ping)
        self.hosts = RedisHostState(self._c, self.prefix, lease_seconds)
        self.frontier = RedisFrontier(self._c, self.prefix, self.hosts, lease_seconds)
        self.seen = RedisSeenSet(self._c, self.prefix, seen_ttl)
        self.robots = RedisRobotsCache(self._c, self.prefix)
        self.counters = RedisCounters(self._c, self.prefix)
        self.items = RedisItemStream(self._c, self.prefix)
        self.dead = RedisDeadLetters(self._c, self.prefix)

    def round_trips(self) -> int | None:
        return self._c.round_trips

    @contextmanager
    def transaction(self) -> Iterator[None]:
        c = self._c
        with c.lock:
            outer = c.depth == 0
            if outer:
                c.pipe = c.client.pipeline(transaction=True)
            c.depth += 1
            try:
                yield
            except BaseException:
                c.depth -= 1
                if outer:
                    c.pipe.reset()
                    c.pipe = None
                raise
            c.depth -= 1
            if outer:
                pipe, c.pipe = c.pipe, None
                if len(pipe.command_stack):
                    c.call(pipe.execute)
                else:
                    pipe.reset()

    def clear(self) -> int:
        """Delete every key of the crawl (SCAN over its prefix, never KEYS)."""
        client = self._c.client
        n = 0
        try:
            batch: list[bytes] = []
            for key in client.scan_iter(match=self.prefix + "*", count=1000):
                batch.append(key)
                if len(batch) >= 500:
                    n += client.delete(*batch)
                    batch = []
            if batch:
                n += client.delete(*batch)
        except redis.RedisError as e:
            raise StorageError(f"{type(e).__name__}: {e}", location=f"redis at {self.url}") from e
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
