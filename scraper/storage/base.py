"""The storage protocols every backend implements: Frontier, SeenSet, Backend.

A Frontier holds entries (an opaque payload with a politeness host, a
priority and a not-before time). ``pop`` hands out the highest-priority ready
entries whose host has room, as *leases*: an entry stays owned by the crawl
until ``ack`` (done) or ``release`` (give it back). Persistent backends use
leases to survive crashes; the in-memory one keeps the same contract.

A SeenSet records request fingerprints with one atomic test-and-set: exactly
one of many concurrent ``add`` calls for the same fingerprint returns True.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["Backend", "Entry", "Frontier", "Lease", "SeenSet"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One queued request: opaque ``data``, its host key, priority and not-before time."""

    host: str
    data: Any
    priority: int = 0
    not_before: float = 0.0


@dataclass(frozen=True, slots=True)
class Lease:
    """An entry handed out by ``Frontier.pop``; ``id`` is what ``ack``/``release`` take."""

    id: Any
    entry: Entry


@runtime_checkable
class Frontier(Protocol):
    """Requests waiting to be fetched, by priority, with per-host room and leases."""

    def push(self, entries: Iterable[Entry]) -> None:
        """Add entries (an entry with ``not_before`` in the future waits until then)."""

    def pop(self, limit: int, *, now: float, room: Mapping[str, int],
            default_room: int) -> list[Lease]:
        """Lease up to ``limit`` ready entries, highest priority first (FIFO within a
        priority), at most ``room[host]`` (or ``default_room``) from each host."""

    def ack(self, lease_ids: Iterable[Any]) -> None:
        """Forget leased entries: they are done."""

    def release(self, lease_ids: Iterable[Any]) -> None:
        """Put leased entries back, unchanged, to be handed out again."""

    def renew(self, lease_ids: Iterable[Any]) -> None:
        """Extend the deadline of leases still being worked on."""

    def requeue_expired(self, now: float | None = None) -> int:
        """Put back leases whose deadline passed (their owner died); returns how many."""

    def pending(self) -> int:
        """Entries not leased (ready or waiting for their not-before time)."""

    def leased(self) -> int:
        """Entries handed out and not yet acked or released."""

    def next_ready(self) -> float | None:
        """The earliest not-before time among waiting entries, or None."""


@runtime_checkable
class SeenSet(Protocol):
    """Fingerprints of requests already scheduled; ``add`` tests and sets at once."""

    def add(self, fingerprint: bytes) -> bool:
        """Record the fingerprint; True if it was new (exactly one concurrent caller wins)."""

    def add_many(self, fingerprints: Sequence[bytes]) -> list[bool]:
        """``add`` for each fingerprint, in order, in one operation."""

    def __contains__(self, fingerprint: object) -> bool: ...

    def __len__(self) -> int: ...


class Backend(Protocol):
    """A frontier and a seen-set that commit together."""

    frontier: Frontier
    seen: SeenSet
    #: True when payloads must be strings (they outlive the process).
    serialises: bool

    def transaction(self) -> AbstractContextManager[None]:
        """Group frontier and seen-set changes so they take effect together."""

    def close(self) -> None:
        """Release connections and files."""


