"""Per-host politeness: how many requests may be in flight to each host, and when the
next one may start (``delay``). The engine asks for each host's room before it
pops the frontier, so a host that must wait never holds up the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["HostSlots"]


class HostSlots:
    """In-flight counts and next-allowed times per host (``scheme://host:port``)."""

    def __init__(self, per_host: int, delay: float) -> None:
        self.per_host = per_host
        self.delay = delay
        self.in_flight: dict[str, int] = {}
        self.next_allowed: dict[str, float] = {}

    @classmethod
    def from_settings(cls, s: Mapping[str, Any]) -> HostSlots:
        return cls(s["per_host_workers"], s["delay"])

    @property
    def default_room(self) -> int:
        """Room for a host with nothing in flight and no pending delay."""
        return 1 if self.delay > 0 else self.per_host

    def room(self, now: float) -> dict[str, int]:
        """Room for every host that is constrained now; others have ``default_room``."""
        room: dict[str, int] = {}
        per_host, delay = self.per_host, self.delay
        for host, n in self.in_flight.items():
            room[host] = per_host - n if delay <= 0 else min(1, per_host - n)
        if delay > 0:
            expired = []
            for host, t in self.next_allowed.items():
                if t > now:
                    room[host] = 0
                elif host not in self.in_flight:
                    expired.append(host)
            for host in expired:
                del self.next_allowed[host]
        return room

    def acquire(self, host: str, now: float) -> None:
        """A request to ``host`` starts now."""
        self.in_flight[host] = self.in_flight.get(host, 0) + 1
        if self.delay > 0:
            self.next_allowed[host] = now + self.delay

    def release(self, host: str) -> None:
        """A request to ``host`` has finished."""
        n = self.in_flight.get(host, 0) - 1
        if n > 0:
            self.in_flight[host] = n
        else:
            self.in_flight.pop(host, None)

    def next_wakeup(self, now: float) -> float | None:
        """The earliest time a delayed host gets room again, if any."""
        future = [t for t in self.next_allowed.values() if t > now]
        return min(future) if future else None
