"""Per-host politeness rules: how many requests may be in flight to a host and how far
apart they start (``delay``, a robots Crawl-delay, the adaptive throttle), and how long
a host backs off after a 429/503.

The rules are written here once; the state they act on is a backend's ``HostState``
(in this process, or shared by every process of a Redis crawl), whose ``take`` the
frontier's pop applies atomically. A host is ``scheme://host:port``.
"""

from __future__ import annotations

import random

from ..config import PolitenessSettings
from ..storage import HostState

__all__ = ["Politeness", "throttled_delay"]


def throttled_delay(current: float, latency: float, status: int, target: float, floor: float,
                    ceiling: float) -> float | None:
    """The adaptive throttle's next delay for a host: halfway from ``current`` toward
    latency / target concurrency, within [floor, ceiling]; None when an error answer
    (status >= 300) would shorten it."""
    wanted = max(floor, min(ceiling, (current + latency / target) / 2))
    if status >= 300 and wanted < current:
        return None
    return wanted


class Politeness:
    """The rules, applied to ``hosts``: a host with a delay gets one request at a time,
    spaced by its delay (randomised 0.5x-1.5x with ``randomize_delay``); otherwise up to
    ``per_host_workers`` at once."""

    def __init__(self, hosts: HostState, s: PolitenessSettings, *,
                 offline_answers: bool = False) -> None:
        self.hosts = hosts
        # With a cache or a cassette some answers send nothing, and must not hold their
        # host. A spacing taken when a request is leased cannot be undone (a hold never
        # shortens), so then the whole delay is held when a sent request is finished,
        # from when it was sent: a delayed host has one slot, so the next request still
        # waits for it.
        self.at_finish = offline_answers
        self.per_host = s.per_host_workers
        self.delay = s.delay
        self.randomize = s.randomize_delay
        self.autothrottle = s.autothrottle
        self.target = s.autothrottle_target
        self.max_delay = s.autothrottle_max_delay
        self._delays: dict[str, float] = {}  # hosts whose delay differs from the setting
        self._floors: dict[str, float] = {}  # robots Crawl-delay: the least delay of a host
        # hosts told to back off (429/503) and until when: for the metrics, read at scrape time
        self.backoffs: dict[str, float] = {}
        # the adaptive throttle starts every host at one request at a time
        hosts.set_defaults(1 if self.autothrottle else self.limit(self.delay), self._spacing(self.delay))

    def limit(self, delay: float) -> int:
        """Requests in flight at once to a host whose delay is ``delay``."""
        return 1 if delay > 0 else self.per_host

    def _spacing(self, delay: float) -> float:
        """The spacing the host state applies when a slot is taken."""
        return 0.0 if self.at_finish else delay

    def jitter(self) -> float:
        """The factor this pop's spacings are scaled by."""
        return random.uniform(0.5, 1.5) if self.randomize else 1.0

    def delay_of(self, host: str) -> float:
        return self._delays.get(host, self.delay)

    def take(self, host: str, token: object, now: float) -> bool:
        """A slot of ``host`` for ``token`` if the host has room now under its rules."""
        return self.hosts.take(host, token, now, self.jitter())

    def finished(self, host: str, token: object, latency: float | None = None,
                 status: int | None = None, sent_at: float | None = None) -> None:
        """A request to ``host`` that held slot ``token`` is over (or was never sent).

        The delay runs from when the request was *sent* (``sent_at``, wall time), not
        from when it was leased: a request that waited in the task queue must not let
        the next one go out sooner than the delay after it. A delayed host has one
        slot, so this hold is in place before the next request can be leased. An answer
        that sent nothing (a cache hit, a replay) comes with no ``sent_at``: no hold."""
        if sent_at is not None:
            delay = self.delay_of(host)
            if delay > 0:
                factor = self.jitter() if self.at_finish else 0.5 if self.randomize else 1.0
                self.hosts.hold(host, sent_at + delay * factor)
        self.hosts.give(host, token)
        if self.autothrottle and latency is not None and status is not None:
            self._observe(host, latency, status)

    def back_off(self, host: str, until: float) -> None:
        """Give ``host`` no request until ``until`` (after a 429 or 503), for every worker."""
        self.hosts.hold(host, until)
        backoffs = self.backoffs
        if len(backoffs) >= 1024:  # forget those long over: many hosts, one 429 each
            self.backoffs = backoffs = {h: t for h, t in backoffs.items() if t > until - 3600}
        backoffs[host] = max(until, backoffs.get(host, 0.0))

    def min_delay(self, host: str, delay: float) -> None:
        """Make ``host``'s delay at least ``delay`` seconds (robots Crawl-delay)."""
        if delay > self.delay:
            self._floors[host] = delay
            self._set(host, max(delay, self._delays.get(host, 0.0)))

    def next_wakeup(self, now: float) -> float | None:
        """When a host held back gets room again, if this process can know it."""
        return self.hosts.next_change(now)

    def _observe(self, host: str, latency: float, status: int) -> None:
        """Adaptive throttle: move the host's delay toward latency / target concurrency;
        an error answer never shortens it."""
        current = self._delays.get(host, self.delay)
        floor = max(self.delay, self._floors.get(host, 0.0))
        wanted = throttled_delay(current, latency, status, self.target, floor, self.max_delay)
        if wanted is not None and abs(wanted - current) > 0.001:
            self._set(host, wanted)

    def _set(self, host: str, delay: float) -> None:
        self._delays[host] = delay
        self.hosts.configure(host, self.limit(delay), self._spacing(delay))
