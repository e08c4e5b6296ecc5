"""FlatKeySet: a set of 64-bit keys kept in flat arrays, 8 bytes a slot, for sets of
millions of hashes held in memory (the memory seen-set, admission's URL cache).

A Python ``set`` of ``bytes`` fingerprints costs ~100 bytes a key (a 49-byte object
plus the set's slots); here a key is one unsigned 64-bit integer in an
``array('Q')``, found by linear probing, ~16 bytes a key on average (a table grows
at 2/3 full, so it is between 1/3 and 2/3 full). Keys must already be uniformly
distributed (a SHA-1 or SipHash value): the low bits pick the slot, the top byte the
shard. The table is split into 256 shards that grow one at a time, so growing
copies 1/256 of the keys (~10 ms at 5M keys) instead of stalling the caller on all.
Not thread-safe: the owner holds a lock.
"""

from __future__ import annotations

from array import array

__all__ = ["FlatKeySet"]

_SHARD_SHIFT = 56                 # the top byte of a key picks its shard...
_SHARDS = 1 << (64 - _SHARD_SHIFT)  # ...of 256
_FIRST_SLOTS = 16
_MASK64 = (1 << 64) - 1


def _empty(slots: int) -> array[int]:
    return array("Q", bytes(8 * slots))


class FlatKeySet:
    """Unsigned 64-bit keys (others are masked to 64 bits); 0 marks an empty slot, so
    the key 0 is stored as 1 (one key in 2**64 shares a slot with another)."""

    __slots__ = ("_tables", "_counts", "_len")

    def __init__(self) -> None:
        self._tables = [_empty(_FIRST_SLOTS) for _ in range(_SHARDS)]
        self._counts = [0] * _SHARDS
        self._len = 0

    def add(self, key: int) -> bool:
        """Insert ``key``; True if it was not there."""
        key = (key & _MASK64) or 1
        shard = key >> _SHARD_SHIFT
        table = self._tables[shard]
        mask = len(table) - 1
        i = key & mask
        while True:
            k = table[i]
            if k == key:
                return False
            if not k:
                break
            i = (i + 1) & mask
        table[i] = key
        n = self._counts[shard] = self._counts[shard] + 1
        self._len += 1
        if 3 * n > 2 * len(table):
            self._tables[shard] = _grown(table)
        return True

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, int):
            return False
        key = (key & _MASK64) or 1
        table = self._tables[key >> _SHARD_SHIFT]
        mask = len(table) - 1
        i = key & mask
        while True:
            k = table[i]
            if k == key:
                return True
            if not k:
                return False
            i = (i + 1) & mask

    def __len__(self) -> int:
        return self._len

    def nbytes(self) -> int:
        """Bytes held by the slot arrays (what the keys cost, without object headers)."""
        return sum(t.itemsize * len(t) for t in self._tables)


def _grown(table: array[int]) -> array[int]:
    """``table``'s keys in a table twice its size."""
    new = _empty(2 * len(table))
    mask = len(new) - 1
    for key in table:
        if key:
            i = key & mask
            while new[i]:
                i = (i + 1) & mask
            new[i] = key
    return new
