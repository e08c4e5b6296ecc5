"""This process's part in a crawl that others may share: the heartbeat (renew the leases
and host slots of what is in flight, put back leases of processes that died, add this
process's counter deltas to the crawl's totals), the idle check with back-off, and the
whole crawl's counters. On a backend that is not shared, only the lease renewal is
left: nothing else can change the frontier.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ..storage import Backend
from .stats import Stats

__all__ = ["Cluster"]

_IDLE_BACKOFF_MAX = 5.0


class Cluster:
    """Heartbeat, idle checks and shared counters of one process of a crawl."""

    def __init__(self, backend: Backend, stats: Stats, *, poll_interval: float,
                 keep_alive: bool = False) -> None:
        self.backend = backend
        self.stats = stats
        self.shared = backend.shared
        self.poll_interval = poll_interval
        self.keep_alive = keep_alive
        self._idle_wait = poll_interval
        self._sent: dict[str, int] = {}

    def beat(self, leases: Mapping[Any, str]) -> None:
        """Renew the leases (lease id → host) of what is in flight, with their slots;
        with a shared backend, put back leases of dead processes and send stats."""
        backend = self.backend
        if leases:
            backend.frontier.renew(list(leases))
            slots: dict[str, list[Any]] = {}
            for lease, host in leases.items():
                slots.setdefault(host, []).append(lease)
            backend.hosts.renew(slots, time.time() + backend.frontier.lease_seconds)
        if self.shared:
            backend.frontier.requeue_expired()
            with backend.transaction():
                self.send_stats()

    def send_stats(self) -> None:
        """Add what changed since last time to the crawl's counters (inside a transaction)."""
        counters = self.backend.counters
        if counters is None:
            return
        now = self.stats.counters()
        delta = {k: v - self._sent.get(k, 0) for k, v in now.items() if v != self._sent.get(k, 0)}
        if delta:
            counters.add(delta)
            self._sent = now

    def idle(self) -> bool:
        """True when no process can produce more work: always, on one machine; with a
        shared backend, when nothing is pending or leased anywhere (and not keep-alive)."""
        if not self.shared:
            return True
        frontier = self.backend.frontier
        frontier.requeue_expired()  # leases of processes that died
        if frontier.pending() > 0 or frontier.leased() > 0:
            self._idle_wait = self.poll_interval  # others are working: look again soon
            return False
        return not self.keep_alive

    def active(self) -> None:
        """Work came in: the next idle wait starts short again."""
        self._idle_wait = self.poll_interval

    def idle_wait(self) -> float | None:
        """How long an idle process of a shared crawl waits before looking again
        (backing off while the whole crawl stays idle); None on a backend not shared."""
        if not self.shared:
            return None
        wait = self._idle_wait
        self._idle_wait = min(wait * 2, max(self.poll_interval, _IDLE_BACKOFF_MAX))
        return wait

    def totals(self) -> dict[str, int] | None:
        """The whole crawl's counters, for a backend that keeps them."""
        counters = self.backend.counters
        return counters.totals() if counters is not None else None
