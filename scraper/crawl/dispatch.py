"""Handing out work: leased requests from the frontier, through the robots gate, to the
workers' task queue; and taking back what no worker started when the crawl stops.

The dispatcher owns what is in flight: the count the engine's end-of-crawl check
reads, and the host of every lease it holds (to give back slots and renew leases).
"""

from __future__ import annotations

import queue
from typing import Any

from ..fetch.politeness import Politeness
from ..http import Request
from ..storage import Backend
from .admission import Admission
from .robots import RobotsGate, Verdict
from .stats import Stats
from .tasks import Fetch, FetchRobots, Refuse, Task

__all__ = ["Dispatcher"]


class Dispatcher:
    """Frontier → robots gate → tasks, within the crawl's budget of work in flight."""

    def __init__(self, backend: Backend, gate: RobotsGate, politeness: Politeness,
                 admission: Admission, stats: Stats, tasks: queue.Queue[Task], *,
                 workers: int, max_pages: int | None, prefetch: int | None = None) -> None:
        self.backend = backend
        self.gate = gate
        self.politeness = politeness
        self.admission = admission
        self.stats = stats
        self.tasks = tasks
        self.workers = workers
        self.max_pages = max_pages
        self.in_flight = 0
        self.leases: dict[Any, str] = {}  # lease id -> host, for everything leased
        self._prefetch = prefetch

    @property
    def prefetch(self) -> int:
        """Requests leased beyond the busy workers: ``workers``, or with a shared backend
        the ``prefetch`` setting when it is set. Never more than the task queue holds: a
        full queue would block the coordinator."""
        n = self._prefetch if self._prefetch is not None and self.backend.shared else self.workers
        room = self.tasks.maxsize
        return min(n, room) if room > 0 else n

    def budget(self) -> int:
        """How many more requests may be handed out now: the free workers plus the prefetch.
        With a shared backend every one of them holds a slot of its host from the moment it
        is leased (the pop takes it), so the politeness limits hold for the buffer too, and
        fair shares between processes keep one process's buffer from starving another."""
        busy = self.in_flight + self.gate.parked
        n = self.workers + self.prefetch - busy
        if self.max_pages is not None:
            n = min(n, self.max_pages - self.stats.pages - busy)
        return n

    def dispatch(self, now: float) -> int:
        """Hand out what the frontier has for hosts with room; returns how many."""
        n = self.budget()
        leases = []
        if n > 0:
            leases = self.backend.frontier.pop(n, now=now, closed=self.gate.closed,
                                               jitter=self.politeness.jitter())
            decode = self.admission.decode
            for lease in leases:
                entry = lease.entry
                self._route(lease.id, entry.host, decode(entry.data, entry.host))
        for host in self.gate.due(now):
            self.send(FetchRobots(host))
        return len(leases) + self._route_ready(now)

    def _route(self, lease: Any, host: str, request: Request) -> None:
        """Fetch, refuse (robots.txt) or park (robots.txt not known yet) a leased request
        that holds a slot of its host."""
        self.leases[lease] = host
        verdict = self.gate.check(request)
        if verdict is Verdict.ALLOWED:
            self.send(Fetch(lease, request))
            return
        self.politeness.finished(host, lease)  # not fetched now: its slot is free at once
        if verdict is Verdict.PENDING:
            self.gate.park(lease, request)
        else:
            self.send(Refuse(lease, request, self.gate.refusal(request)))

    def _route_ready(self, now: float) -> int:
        """Parked requests whose host's robots.txt is known: refused, or fetched once their
        host has a slot under its rules (Crawl-delay included); the others wait parked."""
        sent = 0
        for parked in self.gate.ready():
            lease, request = parked.lease, parked.request
            if self.gate.check(request) is Verdict.BLOCKED:
                self.send(Refuse(lease, request, self.gate.refusal(request)))
            elif self.politeness.take(request.host, lease, now):
                self.send(Fetch(lease, request))
            else:
                self.gate.park(lease, request)
                continue
            sent += 1
        return sent

    def send(self, task: Task) -> None:
        self.in_flight += 1
        self.tasks.put(task)

    def returned(self, lease: Any, request: Request) -> str:
        """A task came back: one less in flight; the host its lease was for."""
        self.in_flight -= 1
        return self.leases.pop(lease, request.host)

    # -- taking work back --------------------------------------------------------
    def drain(self) -> None:
        """Take back tasks no worker has started, so stopping does not wait for them."""
        released: list[tuple[Any, str, bool]] = []
        while True:
            try:
                task = self.tasks.get_nowait()
            except queue.Empty:
                break
            if isinstance(task, FetchRobots):
                self.in_flight -= 1
                self.gate.abandon(task.host)
            elif isinstance(task, Fetch | Refuse):
                host = self.returned(task.lease, task.request)
                released.append((task.lease, host, isinstance(task, Fetch)))
        self._give_back(released)

    def unpark(self) -> None:
        """Parked requests go back to the frontier (the crawl is ending); they hold no slot."""
        self._give_back([(p.lease, self.leases.pop(p.lease, p.request.host), False)
                         for p in self.gate.unpark_all()])

    def _give_back(self, released: list[tuple[Any, str, bool]]) -> None:
        if not released:
            return
        with self.backend.transaction():
            for lease, host, holds_slot in released:
                if holds_slot:
                    self.politeness.finished(host, lease)
            self.backend.frontier.release([lease for lease, _, _ in released])
