"""The memory backend's compact structures: FlatKeySet (the seen-set's table) and the
frontier's packed queues, beyond what the contract suite's string payloads reach."""

from __future__ import annotations

import random
import time

from scraper.storage import Entry, MemoryBackend
from scraper.storage.flatset import FlatKeySet


def test_flat_key_set_holds_many_keys_across_growth():
    rng = random.Random(7)
    keys = [rng.getrandbits(64) for _ in range(60_000)]  # every shard grows several times
    s = FlatKeySet()
    assert [s.add(k) for k in keys] == [True] * len(keys)
    assert not any(s.add(k) for k in keys[::7])
    assert len(s) == len(keys)
    assert all(k in s for k in keys)
    absent = [rng.getrandbits(64) for _ in range(1000)]
    assert sum(k in s for k in absent) == 0
    assert s.nbytes() < 32 * len(keys)  # ~16 bytes a key, never the ~100 of a set of bytes


def test_flat_key_set_masks_keys_and_keeps_zero_and_negatives():
    s = FlatKeySet()
    assert s.add(0) and s.add(-2) and s.add(1 << 64 | 5)
    assert 0 in s and -2 in s and 5 in s and "5" not in s
    assert s.add(5) is False and len(s) == 3


def _drain(b, limit=1000):
    b.hosts.set_defaults(10**6, 0.0)
    out = []
    while True:
        leases = b.frontier.pop(limit, now=time.time())
        if not leases:
            return out
        b.frontier.ack([lease.id for lease in leases])
        out.extend(lease.entry.data for lease in leases)


def test_bytes_and_other_payloads_keep_one_fifo_order():
    b = MemoryBackend()
    marker = object()
    b.frontier.push([Entry("h", b"a"), Entry("h", "b"), Entry("h", b"c"), Entry("h", marker),
                     Entry("h", b"x" * 70_000), Entry("h", b"")])
    got = _drain(b)
    assert got == [b"a", "b", b"c", marker, b"x" * 70_000, b""]
    assert [type(d) for d in got[:3]] == [bytes, str, bytes]


def test_packed_queue_order_survives_interleaved_pushes_and_pops():
    b = MemoryBackend()
    b.hosts.set_defaults(10**6, 0.0)
    pushed, popped = [], []
    for round_ in range(40):  # enough records to cross the buffer's compaction point
        batch = [f"{round_}-{i}".encode() * 20 for i in range(500)]
        b.frontier.push([Entry(f"h{i % 3}", d) for i, d in enumerate(batch)])
        pushed.extend(batch)
        leases = b.frontier.pop(300, now=time.time())
        b.frontier.ack([lease.id for lease in leases])
        popped.extend(lease.entry.data for lease in leases)
    popped.extend(_drain(b))
    assert popped == pushed  # FIFO across hosts within a priority
    assert b.frontier.pending() == 0


def test_released_bytes_entry_comes_back_unchanged():
    b = MemoryBackend()
    b.frontier.push([Entry("h", b"one", 3), Entry("h", b"two", 3)])
    b.hosts.set_defaults(10, 0.0)
    first = b.frontier.pop(1, now=time.time())
    b.frontier.release([first[0].id])
    assert [(d, type(d)) for d in _drain(b)] == [(b"two", bytes), (b"one", bytes)]
