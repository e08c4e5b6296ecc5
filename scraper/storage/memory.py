"""The in-memory backend (``memory://``, the default): Frontier, SeenSet and HostState
held in this process, for a crawl without a job dir.

Sized for millions of discovered URLs: the frontier keeps one FIFO queue per (host,
priority) plus a heap of their heads, so ``pop`` can skip a host that has no room
without touching its queue; a queued entry whose data is ``bytes`` (admission's
compact form of a request) is a record in that queue's one buffer: no Python object
per entry. Entries waiting for a not-before time sit in a separate heap until due.
The seen-set keeps 64-bit hashes of the fingerprints in flat arrays (``flatset``).
Together ~60 bytes plus the URL's path per queued URL (``bench/memory.py``). The
HostState is also what the SQLite backend uses: a job dir belongs to one process.
"""

from __future__ import annotations

import heapq
import itertools
import struct
import threading
import time
from collections import deque
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from .base import Entry, Lease, push_unseen_locally
from .flatset import FlatKeySet

__all__ = ["MemoryBackend", "MemoryFrontier", "MemoryHostState", "MemorySeenSet", "open_memory"]


class MemoryHostState:
    """Slots in flight and next-allowed times per host, in this process."""

    def __init__(self, limit: int = 8, spacing: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._default = (limit, spacing)
        self._params: dict[str, tuple[int, float]] = {}
        self._slots: dict[str, int] = {}
        self._next: dict[str, float] = {}

    def set_defaults(self, limit: int, spacing: float) -> None:
        self._default = (limit, spacing)

    def configure(self, host: str, limit: int, spacing: float) -> None:
        with self._lock:
            self._params[host] = (limit, spacing)

    def take(self, host: str, token: Any, now: float, jitter: float = 1.0) -> bool:
        with self._lock:
            limit, spacing = self._params.get(host, self._default)
            used = self._slots.get(host, 0)
            if used >= limit:
                return False
            nxt = self._next.get(host)
            if nxt is not None and nxt > now:
                return False
            self._slots[host] = used + 1
            if spacing > 0:
                self._next[host] = now + spacing * jitter
            elif nxt is not None:
                del self._next[host]
            return True

    def give(self, host: str, token: Any) -> None:
        with self._lock:
            used = self._slots.get(host, 0) - 1
            if used > 0:
                self._slots[host] = used
            else:
                self._slots.pop(host, None)

    def hold(self, host: str, until: float) -> None:
        with self._lock:
            if until > self._next.get(host, 0.0):
                self._next[host] = until

    def renew(self, slots: Mapping[str, Sequence[Any]], until: float) -> None:
        pass  # slots of this process die with it: nothing to keep alive

    def next_change(self, now: float) -> float | None:
        with self._lock:
            future = [t for t in self._next.values() if t > now]
        return min(future) if future else None

    def in_flight(self, host: str) -> int:
        return self._slots.get(host, 0)

    def full(self, now: float) -> set[str]:
        """Hosts that have no room now (for a frontier's query to skip them)."""
        with self._lock:
            out = {h for h, t in self._next.items() if t > now}
            for host, used in self._slots.items():
                if used >= self._params.get(host, self._default)[0]:
                    out.add(host)
        return out


class MemoryFrontier:
    """A priority frontier with per-host room and leases, held in this process.

    Ready entries wait in one ``_Queue`` per (host, priority); the heap of heads holds
    each non-empty queue's first entry as (-priority, seq, host, priority), so ``pop``
    serves the highest priority first, FIFO across hosts within a priority, and skips
    a host without room without touching its queue."""

    def __init__(self, hosts: MemoryHostState | None = None, lease_seconds: float = 600.0) -> None:
        self.hosts = hosts if hosts is not None else MemoryHostState()
        self.lease_seconds = lease_seconds
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._deadlines: dict[int, float] = {}
        self._queues: dict[tuple[str, int], _Queue] = {}
        self._heads: list[tuple[int, int, str, int]] = []
        self._waiting: list[tuple[float, int, Entry]] = []
        self._leases: dict[int, Entry] = {}
        self._ready = 0

    def _push_ready(self, entry: Entry) -> None:
        seq = next(self._seq)
        key = (entry.host, entry.priority)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue()
            heapq.heappush(self._heads, (-entry.priority, seq, entry.host, entry.priority))
        queue.append(seq, entry.data)
        self._ready += 1

    def push(self, entries: Iterable[Entry]) -> None:
        now = time.time()
        with self._lock:
            for entry in entries:
                if entry.not_before > now:
                    heapq.heappush(self._waiting, (entry.not_before, next(self._seq), entry))
                else:
                    self._push_ready(entry)

    def pop(self, limit: int, *, now: float, closed: Collection[str] = (),
            jitter: float = 1.0) -> list[Lease]:
        out: list[Lease] = []
        take = self.hosts.take
        with self._lock:
            waiting = self._waiting
            while waiting and waiting[0][0] <= now:
                self._push_ready(heapq.heappop(waiting)[2])
            heads, queues = self._heads, self._queues
            blocked: list[tuple[int, int, str, int]] = []
            while heads and len(out) < limit:
                head = heapq.heappop(heads)
                _, _, host, priority = head
                lease_id = next(self._seq)
                if host in closed or not take(host, lease_id, now, jitter):
                    blocked.append(head)
                    continue
                queue = queues[(host, priority)]
                entry = Entry(host, queue.popleft(), priority)
                self._leases[lease_id] = entry
                self._deadlines[lease_id] = now + self.lease_seconds
                out.append(Lease(lease_id, entry))
                if queue.size:
                    heapq.heappush(heads, (-priority, queue.head(), host, priority))
                else:
                    del queues[(host, priority)]
            for head in blocked:
                heapq.heappush(heads, head)
            self._ready -= len(out)
        return out

    def ack(self, lease_ids: Iterable[Any]) -> None:
        with self._lock:
            for lease_id in lease_ids:
                self._leases.pop(lease_id, None)
                self._deadlines.pop(lease_id, None)

    def release(self, lease_ids: Iterable[Any]) -> None:
        with self._lock:
            for lease_id in lease_ids:
                entry = self._leases.pop(lease_id, None)
                self._deadlines.pop(lease_id, None)
                if entry is not None:
                    self._push_ready(entry)

    def renew(self, lease_ids: Iterable[Any]) -> None:
        until = time.time() + self.lease_seconds
        with self._lock:
            for lease_id in lease_ids:
                if lease_id in self._deadlines:
                    self._deadlines[lease_id] = until

    def requeue_expired(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        expired = [i for i, t in self._deadlines.items() if t <= now]
        self.release(expired)
        return len(expired)

    def requeue_all(self) -> int:
        leased = list(self._leases)
        self.release(leased)
        return len(leased)

    def pending(self) -> int:
        return self._ready + len(self._waiting)

    def leased(self) -> int:
        return len(self._leases)

    def next_ready(self) -> float | None:
        waiting = self._waiting
        return waiting[0][0] if waiting else None


class MemorySeenSet:
    """Fingerprints in a FlatKeySet behind a lock, so concurrent ``add`` calls race safely.

    Each fingerprint is kept as the 64-bit ``hash()`` of its bytes (SipHash, computed
    in C and cached on the bytes object): ~16 bytes a fingerprint instead of ~100 for
    a set of bytes objects. Two different fingerprints share a key with probability
    ~n/2**64 per new one: at 100M fingerprints, ~3e-4 of one URL wrongly skipped over
    the whole crawl; at a billion, ~3%. (Hashing the bytes rather than taking 8 of
    them keeps the contract for any fingerprint, not only SHA-1 ones.)"""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys = FlatKeySet()

    def add(self, fingerprint: bytes) -> bool:
        with self._lock:
            return self._keys.add(hash(fingerprint))

    def add_many(self, fingerprints: Sequence[bytes]) -> list[bool]:
        with self._lock:
            add = self._keys.add
            return [add(hash(fp)) for fp in fingerprints]

    def __contains__(self, fingerprint: object) -> bool:
        return isinstance(fingerprint, bytes) and hash(fingerprint) in self._keys

    def __len__(self) -> int:
        return len(self._keys)


_RECORD = struct.Struct(">QH")  # a packed entry's sequence number and payload length
_COMPACT_AFTER = 1 << 16          # bytes consumed before a buffer drops them


class _Queue:
    """The FIFO entries of one (host, priority) in sequence order. A ``bytes`` payload
    (up to 64 KiB) is packed into ``buf`` as a record (seq, length, payload): ~10 bytes
    beyond the payload, where a bytes object and a deque slot would cost ~45. Other
    data waits in ``objects`` as (seq, data); ``popleft`` takes the lower seq of the
    two heads, so the order is the order of ``append`` either way."""

    __slots__ = ("buf", "pos", "objects", "size")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.pos = 0  # where the first record not yet taken starts
        self.objects: deque[tuple[int, Any]] = deque()
        self.size = 0

    def append(self, seq: int, data: Any) -> None:
        if type(data) is bytes and len(data) <= 0xFFFF:
            self.buf += _RECORD.pack(seq, len(data))
            self.buf += data
        else:
            self.objects.append((seq, data))
        self.size += 1

    def head(self) -> int:
        """The seq of the entry ``popleft`` returns next (the queue is not empty)."""
        objects = self.objects
        if self.pos < len(self.buf):
            seq: int = _RECORD.unpack_from(self.buf, self.pos)[0]
            return min(seq, objects[0][0]) if objects else seq
        return objects[0][0]

    def popleft(self) -> Any:
        buf, pos, objects = self.buf, self.pos, self.objects
        self.size -= 1
        if pos < len(buf):
            seq, length = _RECORD.unpack_from(buf, pos)
            if not objects or seq < objects[0][0]:
                start = pos + _RECORD.size
                end = start + length
                data = bytes(buf[start:end])
                if end == len(buf):
                    buf.clear()  # empty: its memory goes back at once
                    end = 0
                elif end > _COMPACT_AFTER and 2 * end > len(buf):
                    del buf[:end]  # amortised: at most half the buffer is moved
                    end = 0
                self.pos = end
                return data
        return objects.popleft()[1]


class MemoryBackend:
    """A MemoryFrontier, MemorySeenSet and MemoryHostState; payloads stay Python objects,
    nothing is shared or persisted."""

    url = "memory://"
    shared = False
    serialises = False
    robots = None
    counters = None
    items = None
    job = None
    dead = None

    def __init__(self, lease_seconds: float = 600.0) -> None:
        self._lease_seconds = lease_seconds
        self.hosts = MemoryHostState()
        self.frontier = MemoryFrontier(self.hosts, lease_seconds)
        self.seen = MemorySeenSet()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        yield

    def push_unseen(self, entries: Sequence[Entry],
                    fingerprints: Sequence[bytes | None]) -> list[bool]:
        return push_unseen_locally(self.seen, self.frontier, entries, fingerprints)

    def round_trips(self) -> int | None:
        return None

    def clear(self) -> int:
        n = self.frontier.pending() + self.frontier.leased() + len(self.seen)
        self.hosts = MemoryHostState()
        self.frontier = MemoryFrontier(self.hosts, self._lease_seconds)
        self.seen = MemorySeenSet()
        return n

    def close(self) -> None:
        pass


def open_memory(url: str, options: Any) -> MemoryBackend:
    """The registry's factory for ``memory://``."""
    return MemoryBackend(options.lease_seconds)
