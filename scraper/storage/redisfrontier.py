"""The Redis frontier and host state: per-host ready queues, hosts indexed by their best
entry and by the time they get room again, leases, host slots, fair shares between the
processes of a crawl (the data structures are drawn in ``redis_scripts``).

A pop is one script per partition (one on a single Redis), all in one pipeline; it
also answers with what the engine asks between pops (pending count, the next
not-before time, when a host held back gets room, whether this process was refused
room it wanted), kept here as hints so that those questions cost no round trip while
they are fresh. A count of zero is always asked of Redis: the end of a crawl is never
decided on a hint.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..exceptions import StorageError
from .base import Entry, Lease

if TYPE_CHECKING:
    from .redis import RedisSeenSet, _Conn

__all__ = ["RedisFrontier", "RedisHostState"]

_HINT_AGE = 1.0        # seconds a pop's pending count stands in for a COUNTS call
_STARVED_POLL = 0.05   # how soon a process refused room it wanted asks again
_CHUNK = 1000


def _stored(e: Entry) -> str:
    return f"{e.priority}\t{e.host}\t{e.not_before}\t{e.data}"


def _split(raw: bytes | str) -> tuple[int, str, float, str]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    prio, host, not_before, data = text.split("\t", 3)
    return int(prio), host, float(not_before), data


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class RedisHostState:
    """Per-host politeness for the whole crawl: slots (members ``process|token``) with
    deadlines, next-allowed times and per-host (limit, spacing), in the host's partition.
    The frontier's pop takes slots with the same rules as ``take``."""

    def __init__(self, conn: _Conn, process: str, lease_seconds: float) -> None:
        self._c = conn
        self.process = process
        self.lease_seconds = lease_seconds
        self.limit = 8
        self.spacing = 0.0
        self.starved = False                 # the last pop was refused room it wanted
        self.next_room: float | None = None  # when the first held-back host gets room

    def _part(self, host: str) -> tuple[int, str]:
        part = self._c.layout.of_host(host)
        return part, self._c.layout.prefixes[part]

    def member(self, token: Any) -> str:
        return f"{self.process}|{token}"

    def set_defaults(self, limit: int, spacing: float) -> None:
        self.limit, self.spacing = limit, spacing
        self._c.defaults = (limit, spacing)

    def configure(self, host: str, limit: int, spacing: float) -> None:
        part, prefix = self._part(host)
        with self._c.transaction() as w:
            w.cmd(part, "HSET", prefix + "hostparams", host, f"{limit}\t{spacing}")

    def take(self, host: str, token: Any, now: float, jitter: float = 1.0) -> bool:
        part, prefix = self._part(host)
        return bool(self._c.script("TAKE", part, [prefix, now, host, self.member(token),
                                                  now + self.lease_seconds, self.limit,
                                                  self.spacing, jitter]))

    def give(self, host: str, token: Any) -> None:
        part, _ = self._part(host)
        with self._c.transaction() as w:
            w.cmd(part, "GIVE", host, self.member(token), time.time())

    def hold(self, host: str, until: float) -> None:
        part, _ = self._part(host)
        with self._c.transaction() as w:  # with the open one: given back and held together
            w.cmd(part, "HOLD", host, until, time.time())

    def renew(self, slots: Mapping[str, Sequence[Any]], until: float) -> None:
        parts = set()

        def build(p: Any) -> None:
            for host, tokens in slots.items():
                if tokens:
                    part, prefix = self._part(host)
                    parts.add(part)
                    p.zadd(f"{prefix}slots:{host}", {self.member(t): until for t in tokens}, xx=True)
        self._c.pipelined(build, {self._c.layout.of_host(h) for h in slots})

    def next_change(self, now: float) -> float | None:
        """Soon, while this process is refused room it wants (others hold the slots: they
        may give some back at any time); else when the last pop saw a host get room."""
        if self.starved:
            return now + _STARVED_POLL
        t = self.next_room
        if t is None:
            return None
        return t if t > now else now + _STARVED_POLL


class RedisFrontier:
    """The shared frontier; its pop takes the cluster-wide host slot of each entry, within
    this process's fair share of a host other processes also want."""

    def __init__(self, conn: _Conn, hosts: RedisHostState, lease_seconds: float = 60.0) -> None:
        self._c = conn
        self.hosts = hosts
        self.lease_seconds = lease_seconds
        self.capacity = 1  # the most this process asked for at once: its weight in shares
        n = len(conn.layout.prefixes)
        self._pending: list[int | None] = [None] * n
        self._hint_at = 0.0
        self._next_ready: float | None = None
        self._turn = 0
        # what the rounds of one pop saw: refused room, next not-before, next room
        self._starved = False
        self._next: float | None = None
        self._room: float | None = None

    # -- hints ---------------------------------------------------------------
    def forget_hints(self) -> None:
        self._hint_at = 0.0
        self._pending = [None] * len(self._pending)

    def _suffix(self, part: int) -> str:
        """Random hex digits after an entry id's sequence number, then its partition. Ids
        stay in push order, and a Redis rolled back to an older snapshot, whose counter
        hands out numbers again, does not hand out an id a running process still holds
        a lease on (its ack would delete another entry)."""
        return f"{uuid.uuid4().hex[:6]}{part:02d}"

    # -- pushing -------------------------------------------------------------
    def push(self, entries: Iterable[Entry]) -> None:
        """Queue entries with the open transaction (their ids are taken when it commits)."""
        entries = list(entries)
        if not entries:
            return
        if not all(isinstance(e.data, str) for e in entries):
            raise StorageError("RedisFrontier stores serialised (str) entries only")
        layout, now = self._c.layout, time.time()
        with self._c.transaction() as w:
            for e in entries:
                part = layout.of_host(e.host)
                w.cmd(part, "ENQ", _stored(e), e.host, -e.priority, e.not_before, now,
                      self._suffix(part))
        self._hint_at = 0.0

    def push_entries(self, entries: Sequence[Entry], fingerprints: Sequence[bytes | None],
                     seen: RedisSeenSet) -> list[bool]:
        """``push_unseen``: per partition, each entry after its fingerprint's test-and-set."""
        if not all(isinstance(e.data, str) for e in entries):
            raise StorageError("RedisFrontier stores serialised (str) entries only")
        layout, now = self._c.layout, time.time()
        ttl_ms = int(seen.ttl * 1000) if seen.ttl else 0
        groups: dict[int, list[int]] = {}
        for i, e in enumerate(entries):
            groups.setdefault(layout.of_host(e.host), []).append(i)
        calls: list[tuple[str, int, Sequence[Any], bool]] = []
        order: list[list[int]] = []
        for part, idx in sorted(groups.items()):
            for start in range(0, len(idx), _CHUNK):
                part_idx = idx[start:start + _CHUNK]
                args: list[Any] = [layout.prefixes[part], seen.key_of(part), ttl_ms, now,
                                   self._suffix(part)]
                for i in part_idx:
                    e, fp = entries[i], fingerprints[i]
                    args += [b"" if fp is None else seen.member(fp), _stored(e), e.host,
                             -e.priority, e.not_before if e.not_before > now else 0]
                calls.append(("PUSH", part, args, True))
                order.append(part_idx)
        out = [False] * len(entries)
        for idx, answers in zip(order, self._c.scripts(calls) if calls else []):
            for i, n in zip(idx, answers):
                out[i] = bool(n)
        if any(out):
            self._hint_at = 0.0
        return out

    # -- popping -------------------------------------------------------------
    def pop(self, limit: int, *, now: float, closed: Collection[str] = (),
            jitter: float = 1.0) -> list[Lease]:
        if limit <= 0:
            return []
        self.capacity = max(self.capacity, limit)
        parts = list(range(len(self._c.layout.prefixes)))
        if len(parts) > 1:  # ask the partitions that had work, sharing the limit
            parts = [i for i in parts if self._pending[i] is None or self._pending[i]] or parts
        self._turn = (self._turn + 1) % len(parts)
        parts = parts[self._turn:] + parts[:self._turn]  # who gets the remainder rotates
        closed_json = json.dumps(sorted(closed))
        leases: list[Lease] = []
        self._starved, self._next, self._room = False, None, None
        # a partition that filled its share may hold more: the rest of the limit is asked
        # of those (a further round trip only when the first one came back short)
        while parts and len(leases) < limit:
            parts = self._pop_round(parts, limit - len(leases), now, closed_json, jitter, leases)
        if len(self._c.layout.prefixes) > 1:
            leases.sort(key=lambda lease: -lease.entry.priority)  # stable: FIFO kept
        self._hint_at = time.monotonic()
        self._next_ready = self._next
        self.hosts.starved, self.hosts.next_room = self._starved, self._room
        return leases

    def _pop_round(self, parts: list[int], limit: int, now: float, closed_json: str,
                   jitter: float, leases: list[Lease]) -> list[int]:
        """One pipeline of POP scripts sharing ``limit`` among ``parts``; the partitions
        that gave all they were asked for."""
        layout, hosts = self._c.layout, self.hosts
        shares = [limit // len(parts) + (1 if k < limit % len(parts) else 0)
                  for k in range(len(parts))]
        calls: list[tuple[str, int, Sequence[Any], bool]] = [
            ("POP", i, [layout.prefixes[i], now, each, now + self.lease_seconds, hosts.limit,
                        hosts.spacing, jitter, closed_json, hosts.process, self.capacity], True)
            for i, each in zip(parts, shares) if each > 0]
        full = []
        for (_, i, args, _), raw in zip(calls, self._c.scripts(calls)):
            self._pending[i] = int(raw[0])
            if raw[1] not in (b"", ""):
                self._next = min(float(raw[1]), self._next or math.inf)
            if raw[2] not in (b"", ""):
                self._room = min(float(raw[2]), self._room or math.inf)
            self._starved = self._starved or bool(int(raw[3]))
            for j in range(4, len(raw), 2):
                prio, host, not_before, data = _split(raw[j + 1])
                leases.append(Lease(_text(raw[j]), Entry(host, data, prio, not_before)))
            if len(raw) - 4 == 2 * int(args[2]) and self._pending[i]:
                full.append(i)
        return full if len(parts) > 1 else []

    def _by_part(self, ids: Iterable[Any]) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        layout = self._c.layout
        for i in ids:
            out.setdefault(layout.of_id(str(i)), []).append(str(i))
        return out

    def ack(self, lease_ids: Iterable[Any]) -> None:
        groups = self._by_part(lease_ids)
        if not groups:
            return
        prefixes = self._c.layout.prefixes
        with self._c.transaction() as w:
            for part, ids in groups.items():
                for start in range(0, len(ids), _CHUNK):
                    chunk = ids[start:start + _CHUNK]
                    w.cmd(part, "ZREM", prefixes[part] + "leases", *chunk)
                    w.cmd(part, "HDEL", prefixes[part] + "e", *chunk)

    def release(self, lease_ids: Iterable[Any]) -> None:
        groups = self._by_part(lease_ids)
        if groups:
            prefixes = self._c.layout.prefixes
            self._c.scripts([("RELEASE", part, [prefixes[part], *ids], False)
                             for part, ids in groups.items()])
            self._hint_at = 0.0

    def renew(self, lease_ids: Iterable[Any]) -> None:
        groups = self._by_part(lease_ids)
        if not groups:
            return
        until = time.time() + self.lease_seconds
        prefixes = self._c.layout.prefixes

        def build(p: Any) -> None:
            for part, ids in groups.items():
                p.zadd(prefixes[part] + "leases", {i: until for i in ids}, xx=True)
        self._c.pipelined(build, set(groups))

    def requeue_expired(self, now: float | None = None) -> int:
        when = "+inf" if now == math.inf else (time.time() if now is None else now)
        prefixes = self._c.layout.prefixes
        n = sum(int(x) for x in self._c.scripts(
            [("REQUEUE", part, [prefix, when], False) for part, prefix in enumerate(prefixes)]))
        if n:
            self._hint_at = 0.0
        return n

    def requeue_all(self) -> int:
        return self.requeue_expired(math.inf)

    def counts(self) -> tuple[int, int]:
        """(pending, leased), checked against the crawl's identity: the answers the end
        of a crawl is decided on must not come from a Redis that lost the crawl."""
        prefixes = self._c.layout.prefixes
        answers = self._c.scripts([("COUNTS", part, [prefix], True)
                                   for part, prefix in enumerate(prefixes)])
        for part, (pending, _) in enumerate(answers):
            self._pending[part] = int(pending)
        return sum(int(a[0]) for a in answers), sum(int(a[1]) for a in answers)

    def pending(self) -> int:
        if time.monotonic() - self._hint_at < _HINT_AGE:
            hinted = sum(n or 0 for n in self._pending)
            if hinted > 0:
                return hinted
        return self.counts()[0]

    def leased(self) -> int:
        return self.counts()[1]

    def next_ready(self) -> float | None:
        if self._hint_at == 0.0 or time.monotonic() - self._hint_at > 5 * _HINT_AGE:
            prefixes = self._c.layout.prefixes

            def build(p: Any) -> None:
                for prefix in prefixes:
                    p.zrange(prefix + "delayed", 0, 0, withscores=True)
            firsts = [r[0][1] for r in self._c.pipelined(build, set(range(len(prefixes)))) if r]
            return float(min(firsts)) if firsts else None
        t = self._next_ready
        if t is None:
            return None
        return t if t > time.time() else time.time() + _STARVED_POLL
