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
    hostnext   HASH  host → time before which the host gets no request (delay, back-off)
    hostdelay  HASH  host → delay when it differs from the setting (Crawl-delay, throttle)
    robots     HASH  host → "status\\ttext" (robots.txt, fetched once for the cluster)
    stats      HASH  cluster-wide counters
    items      STREAM  items, when the redis-stream output is used

Popping is one Lua script: it promotes due delayed entries, then leases the
highest-priority entries whose host has a free cluster-wide slot and whose
next-allowed time has come, taking the slot in the same step. A process that
dies leaves leases (and slots) with deadlines; any process puts them back when
they expire, so nothing a dead worker held is lost.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from ..exceptions import ConfigError, StorageError
from ..politeness import throttled_delay
from .base import Entry, Lease

try:
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry
except ImportError:  # pragma: no cover - redis is a dependency; this is for a broken install
    redis = None  # type: ignore[assignment]

__all__ = ["RedisBackend", "RedisFrontier", "RedisHostSlots", "RedisSeenSet", "check_url",
           "reset"]

_POP = """
local q, delayed, leases, entries = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local prefix = ARGV[1]
local now = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local deadline = tonumber(ARGV[4])
local default_room = tonumber(ARGV[5])
local room = cjson.decode(ARGV[6])
local per_host = tonumber(ARGV[7])
local delay = tonumber(ARGV[8])
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
local taken = {}
local full = {}
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
        local r = room[host]
        if r == nil then r = default_room end
        local used = taken[host] or 0
        local ok = used < r
        if ok then
          local skey = prefix .. 'slots:' .. host
          if used == 0 then
            redis.call('ZREMRANGEBYSCORE', skey, '-inf', now)
            local nxt = tonumber(redis.call('HGET', prefix .. 'hostnext', host) or '0')
            if nxt > now then ok = false end
          end
          if ok and redis.call('ZCARD', skey) >= per_host then ok = false end
          if ok then
            local d = tonumber(redis.call('HGET', prefix .. 'hostdelay', host) or delay)
            if d > 0 then
              if used > 0 then
                ok = false
              else
                redis.call('HSET', prefix .. 'hostnext', host, now + d)
              end
            end
          end
          if ok then
            redis.call('ZADD', skey, deadline, id)
            redis.call('PEXPIRE', skey, 3600000)
            taken[host] = used + 1
            table.insert(out, id)
            table.insert(out, e)
            if #out >= limit * 2 then break end
          else
            full[host] = true
          end
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
    """A redis:// or rediss:// URL, or ConfigError naming it."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix") or (parts.scheme != "unix" and not parts.hostname):
        raise ConfigError(f"--backend {url}: expected redis://HOST:PORT/DB (or rediss:// for TLS)")
    return url


def _connect(url: str, retry_window: float, name: str | None = None) -> Any:
    if redis is None:  # pragma: no cover
        raise ConfigError("--backend redis:// needs the redis package (pip install redis)")
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
        self.url = url
        self.round_trips = 0
        self.pipe: Any = None
        self.depth = 0
        self.lock = threading.RLock()

    def call(self, fn: Any, *args: Any, **kw: Any) -> Any:
        self.round_trips += 1
        try:
            return fn(*args, **kw)
        except redis.RedisError as e:
            raise StorageError(f"redis at {self.url}: {type(e).__name__}: {e}") from e

    def writer(self) -> Any:
        """The open pipeline, or the client itself outside a transaction."""
        return self.pipe if self.pipe is not None else self.client


class RedisFrontier:
    """The shared frontier; also takes the cluster-wide host slot for each entry it leases."""

    def __init__(self, conn: _Conn, prefix: str, lease_seconds: float = 60.0) -> None:
        self._c = conn
        self.prefix = prefix
        self.lease_seconds = lease_seconds
        self.per_host = 8
        self.delay = 0.0
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
        w = c.writer()
        now = time.time()
        mapping, ready, waiting = {}, {}, {}
        for i, e in enumerate(entries):
            eid = f"{first + i:015d}"
            mapping[eid] = f"{e.priority}\t{e.host}\t{e.not_before}\t{e.data}"
            if e.not_before > now:
                waiting[eid] = e.not_before
            else:
                ready[eid] = -e.priority
        w.hset(self.entries, mapping=mapping)
        if ready:
            w.zadd(self.q, ready)
        if waiting:
            w.zadd(self.delayed, waiting)
        if c.pipe is None:
            c.round_trips += 1 + bool(ready) + bool(waiting)  # each direct call is one

    def pop(self, limit: int, *, now: float, room: Mapping[str, int],
            default_room: int) -> list[Lease]:
        if limit <= 0:
            return []
        c = self._c
        raw = c.call(self._pop, keys=[self.q, self.delayed, self.leases, self.entries],
                     args=[self.prefix, now, limit, now + self.lease_seconds,
                           min(default_room, self.per_host), json.dumps(room) if room else "{}",
                           self.per_host, self.delay])
        out = []
        for i in range(0, len(raw), 2):
            eid = raw[i].decode() if isinstance(raw[i], bytes) else raw[i]
            prio, host, not_before, data = _split(raw[i + 1])
            out.append(Lease(eid, Entry(host, data, prio, not_before)))
        return out

    def ack(self, lease_ids: Iterable[Any]) -> None:
        ids = list(lease_ids)
        if ids:
            w = self._c.writer()
            w.zrem(self.leases, *ids)
            w.hdel(self.entries, *ids)
            if self._c.pipe is None:
                self._c.round_trips += 2

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


class RedisHostSlots:
    """Per-host politeness for the whole cluster. The frontier's pop takes a host's slot
    atomically; this object gives slots back, records back-offs and per-host delays in
    Redis, and keeps the local view (hosts waiting for robots.txt) the engine needs."""

    def __init__(self, conn: _Conn, prefix: str, frontier: RedisFrontier, per_host: int,
                 delay: float, *, autothrottle: bool = False, target: float = 2.0,
                 max_delay: float = 60.0) -> None:
        self._c = conn
        self.prefix = prefix
        self.frontier = frontier
        frontier.per_host = per_host
        frontier.delay = delay
        self.per_host = per_host
        self.delay = delay
        self.autothrottle = autothrottle
        self.target = target
        self.max_delay = max_delay
        self.closed: set[str] = set()
        self.in_flight: dict[str, list[Any]] = {}
        self._back_off = conn.client.register_script(_BACK_OFF)
        self._delays: dict[str, float] = {}
        self._min_delay: dict[str, float] = {}

    pop_takes_slots = True  # the frontier's pop script takes the cluster-wide slot

    @property
    def default_room(self) -> int:
        return self.per_host

    def room(self, now: float) -> dict[str, int]:
        return {h: 0 for h in self.closed}

    def acquire(self, host: str, now: float, lease_id: Any = None) -> None:
        self.in_flight.setdefault(host, []).append(lease_id)

    def release(self, host: str, lease_id: Any = None) -> None:
        ids = self.in_flight.get(host)
        if ids:
            if lease_id in ids:
                ids.remove(lease_id)
            else:
                lease_id = ids.pop()
            if not ids:
                del self.in_flight[host]
        if lease_id is not None:
            w = self._c.writer()
            w.zrem(f"{self.prefix}slots:{host}", lease_id)
            if self._c.pipe is None:
                self._c.round_trips += 1

    def renew(self, now: float) -> None:
        """Push the deadlines of this process's slots (with its leases' heartbeat)."""
        until = now + self.frontier.lease_seconds
        with self._c.client.pipeline(transaction=False) as p:
            for host, ids in self.in_flight.items():
                members = {i: until for i in ids if i is not None}
                if members:
                    p.zadd(f"{self.prefix}slots:{host}", members, xx=True)
            if p.command_stack:
                self._c.call(p.execute)

    def set_min_delay(self, host: str, delay: float) -> None:
        if delay > self.delay:
            self._min_delay[host] = delay
            self._set_delay(host, max(delay, self._delays.get(host, 0.0)))

    def _set_delay(self, host: str, delay: float) -> None:
        self._delays[host] = delay
        w = self._c.writer()
        w.hset(self.prefix + "hostdelay", host, delay)
        if self._c.pipe is None:
            self._c.round_trips += 1

    def back_off(self, host: str, until: float) -> None:
        self._c.call(self._back_off, keys=[self.prefix + "hostnext"], args=[host, until])

    def observe(self, host: str, latency: float, status: int) -> None:
        if not self.autothrottle:
            return
        current = self._delays.get(host, self.delay)
        floor = max(self.delay, self._min_delay.get(host, 0.0))
        wanted = throttled_delay(current, latency, status, self.target, floor, self.max_delay)
        if wanted is not None and abs(wanted - current) > 0.01:
            self._set_delay(host, wanted)

    def next_wakeup(self, now: float) -> float | None:
        return None  # other processes move the shared times: the engine polls


class RedisBackend:
    """Frontier, seen-set, host slots, robots cache and stats of one crawl in Redis."""

    serialises = True
    shared = True

    def __init__(self, url: str, spider: str, *, lease_seconds: float = 60.0,
                 seen_ttl: float | None = None, retry_window: float = 30.0) -> None:
        # named so `CLIENT LIST` on the server shows which crawl and process each one is
        client = _connect(url, retry_window,
                          name=f"scraper:{spider}:{socket.gethostname()}:{os.getpid()}")
        self._c = _Conn(client, url)
        self.prefix = f"scraper:{spider}:"
        self.url = url
        self._c.call(client.ping)
        self.frontier = RedisFrontier(self._c, self.prefix, lease_seconds)
        self.seen = RedisSeenSet(self._c, self.prefix, seen_ttl)
        self.owner = f"{socket.gethostname()}-{id(self):x}"

    @property
    def round_trips(self) -> int:
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

    def host_slots(self, settings: Mapping[str, Any]) -> RedisHostSlots:
        return RedisHostSlots(self._c, self.prefix, self.frontier, settings["per_host_workers"],
                              settings["delay"], autothrottle=settings["autothrottle"],
                              target=settings["autothrottle_target"],
                              max_delay=settings["autothrottle_max_delay"])

    # -- robots.txt, once for the cluster ------------------------------------
    def robots_get(self, host: str) -> tuple[int | None, str] | None:
        raw = self._c.call(self._c.client.hget, self.prefix + "robots", host)
        if raw is None:
            return None
        status, _, text = raw.decode("utf-8", "replace").partition("\t")
        return (int(status) if status else None), text

    def robots_claim(self, host: str, seconds: float) -> bool:
        """True for the one process that should fetch ``host``'s robots.txt now."""
        return bool(self._c.call(self._c.client.set, f"{self.prefix}robots-lock:{host}", 1,
                                 nx=True, px=int(seconds * 1000)))

    def robots_put(self, host: str, status: int | None, text: str) -> None:
        w = self._c.writer()
        w.hset(self.prefix + "robots", host, f"{status or ''}\t{text}")
        if self._c.pipe is None:
            self._c.round_trips += 1

    # -- stats -----------------------------------------------------------------
    def add_stats(self, delta: Mapping[str, int]) -> None:
        """Add counters to the cluster's totals (inside the engine's transaction)."""
        if delta:
            w = self._c.writer()
            for key, n in delta.items():
                w.hincrby(self.prefix + "stats", key, n)
            if self._c.pipe is None:
                self._c.round_trips += len(delta)

    def cluster_stats(self) -> dict[str, int]:
        raw = self._c.call(self._c.client.hgetall, self.prefix + "stats")
        return {k.decode(): int(v) for k, v in raw.items()}

    def add_item(self, item: str) -> None:
        """Append an item (JSON) to the crawl's stream, in the engine's transaction."""
        w = self._c.writer()
        w.xadd(self.prefix + "items", {"item": item})
        if self._c.pipe is None:
            self._c.round_trips += 1

    def close(self) -> None:
        try:
            self._c.client.close()
        except Exception:
            pass


def reset(url: str, spider: str) -> int:
    """Delete every key of ``spider``'s crawl (SCAN over its prefix); returns how many."""
    client = _connect(url, 5.0)
    prefix = f"scraper:{spider}:"
    n = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=prefix + "*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                n += client.delete(*batch)
                batch = []
        if batch:
            n += client.delete(*batch)
    except redis.RedisError as e:
        raise StorageError(f"redis at {url}: {type(e).__name__}: {e}") from e
    finally:
        client.close()
    return n
