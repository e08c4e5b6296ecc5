"""The storage protocols: one per concern, each a backend implements or declares absent.

    Frontier        requests to fetch: priorities, not-before times, leases
    SeenSet         request fingerprints, with one atomic test-and-set
    HostState       per-host politeness state: slots in flight, next-allowed times,
                    per-host limits and spacing (the rules that fill it live in
                    fetch.politeness; a backend only stores and applies them atomically)
    RobotsCache     robots.txt texts shared by the processes of a crawl
    SharedCounters  a crawl's counters summed over every process
    ItemStream      items appended in the same transaction as their page's ack
    JobState        a persistent crawl's identity and output positions
    DeadLetters     requests that failed after their last retry, kept for retry-failed

A ``Backend`` bundles them; an optional concern is typed ``X | None`` and is
``None`` where a backend does not provide it (an in-memory crawl shares nothing).
New requests enter through ``Backend.push_unseen``, which spans two concerns: the
seen-set's test-and-set and the frontier push of the new entries, in one atomic step.
Everything here moves bytes, strings, numbers and opaque payloads: storage never
imports spiders, requests or the engine.

Leases: ``Frontier.pop`` hands out the highest-priority ready entries whose host
has room, and takes each one's host slot in the same step; an entry stays owned
by the crawl until ``ack`` (done) or ``release`` (give it back), and the slot
until ``HostState.give``. A process that dies leaves leases with deadlines that
any process of the crawl puts back (``requeue_expired``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["Backend", "DeadLetters", "Entry", "Frontier", "HostState", "ItemStream", "JobState",
           "Lease", "RobotsCache", "SeenSet", "SharedCounters", "push_unseen_locally"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One queued request: opaque ``data``, its host key, priority and not-before time."""

    host: str
    data: Any
    priority: int = 0
    not_before: float = 0.0


@dataclass(frozen=True, slots=True)
class Lease:
    """An entry handed out by ``Frontier.pop``; ``id`` is what ``ack``/``release`` take,
    and the token of the host slot it holds."""

    id: Any
    entry: Entry


@runtime_checkable
class Frontier(Protocol):
    """Requests waiting to be fetched, by priority, with per-host room and leases."""

    lease_seconds: float

    def push(self, entries: Iterable[Entry]) -> None:
        """Add entries (an entry with ``not_before`` in the future waits until then)."""

    def pop(self, limit: int, *, now: float, closed: Collection[str] = (),
            jitter: float = 1.0) -> list[Lease]:
        """Lease up to ``limit`` ready entries, highest priority first (FIFO within a
        priority), skipping ``closed`` hosts, taking a slot of the backend's HostState
        for each (``jitter`` scales the host spacing those slots start)."""

    def ack(self, lease_ids: Iterable[Any]) -> None:
        """Forget leased entries: they are done."""

    def release(self, lease_ids: Iterable[Any]) -> None:
        """Put leased entries back, unchanged, to be handed out again."""

    def renew(self, lease_ids: Iterable[Any]) -> None:
        """Extend the deadline of leases still being worked on."""

    def requeue_expired(self, now: float | None = None) -> int:
        """Put back leases whose deadline passed (their owner died); returns how many."""

    def requeue_all(self) -> int:
        """Put back every lease (on start, by the one process that owns the crawl's state)."""

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


@runtime_checkable
class HostState(Protocol):
    """Per-host politeness state: how many requests are in flight to a host (slots, each
    with a token), the time before which it gets no request, and its limit and spacing
    when they differ from the defaults. ``take`` is the one atomic rule: a host with
    fewer than ``limit`` slots taken and its next-allowed time passed gets a slot, and
    its next-allowed time moves ``spacing × jitter`` ahead."""

    def set_defaults(self, limit: int, spacing: float) -> None:
        """The limit and spacing of every host not ``configure``d."""

    def configure(self, host: str, limit: int, spacing: float) -> None:
        """Give ``host`` its own limit and spacing (for every process of the crawl)."""

    def take(self, host: str, token: Any, now: float, jitter: float = 1.0) -> bool:
        """Take a slot for ``token`` if ``host`` has room now; True if taken."""

    def give(self, host: str, token: Any) -> None:
        """Give back the slot ``token`` holds."""

    def hold(self, host: str, until: float) -> None:
        """No slot for ``host`` before ``until`` (a 429/503 back-off); never shortens."""

    def renew(self, slots: Mapping[str, Sequence[Any]], until: float) -> None:
        """Extend the deadline of slots still held (host → tokens)."""

    def next_change(self, now: float) -> float | None:
        """The earliest future time a host held back gets room again, when this process
        can know it (None: unknown, or nothing is held back)."""


class RobotsCache(Protocol):
    """robots.txt answers shared by the processes of a crawl, fetched by one of them."""

    def get(self, host: str) -> tuple[int | None, str] | None:
        """(status, text) of ``host``'s robots.txt if some process learned it, else None."""

    def claim(self, host: str, seconds: float) -> bool:
        """True for the one process that should fetch ``host``'s robots.txt now."""

    def put(self, host: str, status: int | None, text: str) -> None:
        """Share what was learned (inside the backend's transaction)."""


class SharedCounters(Protocol):
    """Counters summed over every process of a crawl."""

    def add(self, delta: Mapping[str, int]) -> None:
        """Add to the totals (inside the backend's transaction)."""

    def totals(self) -> dict[str, int]:
        """Every counter of the crawl."""


class ItemStream(Protocol):
    """Items kept by the backend itself, written in the transaction that acks their page."""

    def add(self, item: str) -> None:
        """Append one item (JSON text)."""


class JobState(Protocol):
    """A persistent crawl's bookkeeping: identity (meta) and where each output was last
    committed. ``location`` names it in messages (a directory, a URL)."""

    location: str

    def get_meta(self, key: str) -> Any: ...

    def set_meta(self, key: str, value: Any) -> None: ...

    def output_positions(self) -> dict[str, int]: ...

    def save_output_positions(self, positions: Mapping[str, int]) -> None: ...


class DeadLetters(Protocol):
    """Requests (serialised) that failed after their last retry, with the reason."""

    def add(self, rows: Sequence[tuple[str, str]]) -> None:
        """Keep (serialised request, reason) pairs (inside the backend's transaction)."""

    def list(self) -> list[tuple[Any, str, str]]:
        """Every dead letter as (id, serialised request, reason), oldest first."""

    def remove(self, ids: Sequence[Any]) -> None: ...


class Backend(Protocol):
    """Where one crawl's state lives: the concerns above, committed together by
    ``transaction``. ``shared``: other processes may work on the same crawl.
    ``serialises``: entries must be strings (they outlive the process)."""

    url: str
    shared: bool
    serialises: bool
    frontier: Frontier
    seen: SeenSet
    hosts: HostState
    robots: RobotsCache | None
    counters: SharedCounters | None
    items: ItemStream | None
    job: JobState | None
    dead: DeadLetters | None

    def transaction(self) -> AbstractContextManager[None]:
        """Group changes so they take effect together (nesting: the outermost commits)."""

    def push_unseen(self, entries: Sequence[Entry],
                    fingerprints: Sequence[bytes | None]) -> list[bool]:
        """Push each entry whose fingerprint the seen-set did not hold, marking it seen
        in the same atomic step (None: not tested, always pushed); True per entry pushed.
        A process killed at any instant leaves no fingerprint seen without its entry
        queued. Local backends do it inside ``transaction``; a remote one in one step of
        its own, answered at once."""

    def round_trips(self) -> int | None:
        """Calls made to a remote store so far (None for a local backend)."""

    def clear(self) -> int:
        """Delete every record of this crawl (``reset``); returns how many."""

    def close(self) -> None:
        """Release connections and files."""


def push_unseen_locally(seen: SeenSet, frontier: Frontier, entries: Sequence[Entry],
                        fingerprints: Sequence[bytes | None]) -> list[bool]:
    """``Backend.push_unseen`` for a backend whose seen-set and frontier commit in one
    local transaction (the caller holds it open): test-and-set, then push the new ones."""
    if len(entries) != len(fingerprints):
        raise ValueError("push_unseen: one fingerprint (or None) per entry")
    tested = [fp for fp in fingerprints if fp is not None]
    fresh = iter(seen.add_many(tested) if tested else ())
    new = [fp is None or next(fresh) for fp in fingerprints]
    frontier.push([e for e, ok in zip(entries, new) if ok])
    return new
