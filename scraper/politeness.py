"""Per-host politeness: robots.txt, how many requests may be in flight to each host,
and when the next one may start (``delay``, or a longer robots Crawl-delay).

The engine asks for each host's room before it pops the frontier, so a host
that must wait (for its delay, its slots, or its robots.txt) never holds up
requests to other hosts. A host is ``scheme://host:port``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from protego import Protego

__all__ = ["HostSlots", "RobotsRules", "RobotsState", "throttled_delay"]

log = logging.getLogger(__name__)


def throttled_delay(current: float, latency: float, status: int, target: float, floor: float,
                    ceiling: float) -> float | None:
    """The adaptive throttle's next delay for a host: halfway from ``current`` toward
    latency / target concurrency, within [floor, ceiling]; None when an error answer
    (status >= 300) would shorten it."""
    wanted = max(floor, min(ceiling, (current + latency / target) / 2))
    if status >= 300 and wanted < current:
        return None
    return wanted


class HostSlots:
    """In-flight counts, next-allowed times and per-host delays."""

    def __init__(self, per_host: int, delay: float, *, randomize: bool = False,
                 autothrottle: bool = False, target: float = 2.0, max_delay: float = 60.0) -> None:
        self.per_host = per_host
        self.delay = delay
        self.randomize = randomize
        self.autothrottle = autothrottle
        self.target = target
        self.max_delay = max_delay
        self.min_delay: dict[str, float] = {}    # floors per host (robots Crawl-delay)
        self.in_flight: dict[str, int] = {}
        self.next_allowed: dict[str, float] = {}
        self.host_delay: dict[str, float] = {}   # hosts whose delay differs (Crawl-delay)
        self.closed: set[str] = set()            # hosts given no room (robots.txt pending)

    @classmethod
    def from_settings(cls, s: Mapping[str, Any]) -> HostSlots:
        return cls(s["per_host_workers"], s["delay"], randomize=s["randomize_delay"],
                   autothrottle=s["autothrottle"], target=s["autothrottle_target"],
                   max_delay=s["autothrottle_max_delay"])

    @property
    def default_room(self) -> int:
        """Room for a host with nothing in flight and no pending delay."""
        return 1 if self.delay > 0 or self.autothrottle else self.per_host

    def delay_of(self, host: str) -> float:
        return self.host_delay.get(host, self.delay)

    def set_min_delay(self, host: str, delay: float) -> None:
        """Make ``host``'s delay at least ``delay`` seconds (robots Crawl-delay)."""
        if delay > self.delay:
            self.min_delay[host] = delay
            self.host_delay[host] = max(delay, self.host_delay.get(host, 0.0))

    def back_off(self, host: str, until: float) -> None:
        """Give ``host`` no room until ``until`` (after a 429 or 503), for every worker."""
        if until > self.next_allowed.get(host, 0.0):
            self.next_allowed[host] = until

    def observe(self, host: str, latency: float, status: int) -> None:
        """Adaptive throttle: move the host's delay toward latency / target concurrency;
        an error answer never shortens it."""
        if not self.autothrottle:
            return
        current = self.host_delay.get(host, self.delay)
        floor = max(self.delay, self.min_delay.get(host, 0.0))
        wanted = throttled_delay(current, latency, status, self.target, floor, self.max_delay)
        if wanted is not None:
            self.host_delay[host] = wanted

    def room(self, now: float) -> dict[str, int]:
        """Room for every host that is constrained now; others have ``default_room``."""
        per_host = self.per_host
        room: dict[str, int] = {h: 1 for h in self.host_delay}
        for host, n in self.in_flight.items():
            room[host] = per_host - n if self.delay_of(host) <= 0 else min(1, per_host - n)
        expired = []
        for host, t in self.next_allowed.items():
            if t > now:
                room[host] = 0
            elif host not in self.in_flight:
                expired.append(host)
        for host in expired:
            del self.next_allowed[host]
        for host in self.closed:
            room[host] = 0
        return room

    pop_takes_slots = False  # the engine takes a slot with acquire() after each pop

    def acquire(self, host: str, now: float, lease_id: Any = None) -> None:
        """A request to ``host`` starts now."""
        self.in_flight[host] = self.in_flight.get(host, 0) + 1
        delay = self.delay_of(host)
        if delay > 0:
            if self.randomize:
                delay *= random.uniform(0.5, 1.5)
            self.next_allowed[host] = max(now + delay, self.next_allowed.get(host, 0.0))

    def release(self, host: str, lease_id: Any = None) -> None:
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


@dataclass
class RobotsRules:
    """A host's parsed robots.txt (None parser: everything allowed)."""

    parser: Protego | None

    def allowed(self, url: str, user_agent: str) -> bool:
        return self.parser is None or self.parser.can_fetch(url, user_agent)

    def crawl_delay(self, user_agent: str) -> float | None:
        if self.parser is None:
            return None
        d = self.parser.crawl_delay(user_agent)
        return float(d) if d is not None else None

    @property
    def sitemaps(self) -> list[str]:
        return list(self.parser.sitemaps) if self.parser is not None else []


class RobotsState:
    """robots.txt per host: unknown, being fetched, or known (rules)."""

    def __init__(self, user_agent: str) -> None:
        self.user_agent = user_agent
        self.rules: dict[str, RobotsRules] = {}
        self.fetching: set[str] = set()
        self.failures: dict[str, int] = {}

    def known(self, host: str) -> RobotsRules | None:
        return self.rules.get(host)

    def learn(self, host: str, status: int | None, text: str | None) -> RobotsRules:
        """Record a robots.txt answer: 2xx parsed, anything else (4xx) allows everything."""
        self.fetching.discard(host)
        parser = None
        if status is not None and 200 <= status < 300 and text:
            try:
                parser = Protego.parse(text)
            except Exception as e:  # a broken robots.txt must not stop the crawl
                log.warning("%s/robots.txt cannot be parsed (%s); treating it as empty", host, e)
        rules = self.rules[host] = RobotsRules(parser)
        return rules
