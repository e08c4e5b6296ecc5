"""The robots gate: robots.txt for every host of a crawl, behind one question,
``check(request) -> ALLOWED | BLOCKED | PENDING``.

It owns everything about robots.txt: fetching it once per host before the host's
first request (a 4xx allows everything; a 5xx, 429 or failure holds the host back
and is retried; after ``retry.attempts`` the host is not crawled), sharing it
through the backend's RobotsCache (one process of a cluster claims a host and
fetches; the others wait and look again), Crawl-delay (a floor under the host's
delay), and the sitemaps it lists. Requests of a host whose robots.txt is not
known yet are *parked* here, still leased, until it is; the frontier is told to
hand out no more of that host meanwhile (``closed``).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Any

from protego import Protego

from ..exceptions import FetchError, RobotsBlocked
from ..fetch.politeness import Politeness
from ..fetch.retry import RetryPolicy
from ..http import Request, host_key
from ..robotstxt import parse_robots, sitemap_urls
from ..storage import RobotsCache

__all__ = ["RobotsGate", "RobotsRules", "Verdict"]

log = logging.getLogger(__name__)

_DISALLOW_ALL = "User-agent: *\nDisallow: /\n"


class Verdict(enum.Enum):
    ALLOWED = "allowed"
    BLOCKED = "blocked"
    PENDING = "pending"


@dataclass
class RobotsRules:
    """A host's parsed robots.txt (None parser: everything allowed). ``why``: why the
    host is not crawled at all, when robots.txt could not be had."""

    parser: Protego | None
    why: str | None = None
    url: str = ""  # the robots.txt URL, which relative Sitemap lines are joined to
    kind: str | None = None  # the host could not be reached: the error kind (dns, connection...)

    @classmethod
    def parse(cls, host: str, status: int | None, text: str | None) -> RobotsRules:
        """A robots.txt answer: 2xx parsed, anything else (4xx) allows everything."""
        if status is None or not 200 <= status < 300 or not text:
            return cls(None)
        try:
            return cls(parse_robots(text), url=f"{host}/robots.txt")
        except Exception as e:  # a broken robots.txt must not stop the crawl
            log.warning("%s/robots.txt cannot be parsed (%s); treating it as empty", host, e)
            return cls(None)

    def allowed(self, url: str, user_agent: str) -> bool:
        return self.parser is None or self.parser.can_fetch(url, user_agent)

    def crawl_delay(self, user_agent: str) -> float | None:
        if self.parser is None:
            return None
        d = self.parser.crawl_delay(user_agent)
        return float(d) if d is not None else None

    @property
    def sitemaps(self) -> list[str]:
        return sitemap_urls(self.parser, self.url) if self.parser is not None else []


@dataclass(frozen=True, slots=True)
class Parked:
    """A leased request waiting for its host's robots.txt."""

    lease: Any
    request: Request


class RobotsGate:
    """robots.txt per host: unknown, being learned, or known (rules)."""

    def __init__(self, user_agent: str, *, obey: bool, retry: RetryPolicy,
                 politeness: Politeness, cache: RobotsCache | None = None,
                 claim_seconds: float = 65.0, poll_interval: float = 0.5) -> None:
        self.user_agent = user_agent
        self.obey = obey
        self.retry = retry
        self.politeness = politeness
        self.cache = cache
        self.claim_seconds = claim_seconds
        self.poll_interval = poll_interval
        self.rules: dict[str, RobotsRules] = {}
        self.fetching: set[str] = set()
        self._waiting: set[str] = set()          # hosts whose robots.txt is not known
        self._due: dict[str, float] = {}         # host -> when to try learning it (again)
        self._failures: dict[str, int] = {}
        self._parked: dict[str, list[Parked]] = {}
        self._parked_n = 0

    # -- the question ----------------------------------------------------------
    def check(self, request: Request) -> Verdict:
        if not self.obey:
            return Verdict.ALLOWED
        host = request.host
        rules = self.rules.get(host)
        if rules is None:
            if host not in self._waiting:
                self._waiting.add(host)
                self._due[host] = 0.0
            return Verdict.PENDING
        return Verdict.ALLOWED if rules.allowed(request.url, self.user_agent) else Verdict.BLOCKED

    def refusal(self, request: Request) -> FetchError:
        """Why a BLOCKED request is not fetched."""
        rules = self.rules.get(request.host)
        if rules is not None and rules.kind is not None:
            # the host never answered: say what happened, not that robots.txt forbids it
            return FetchError(f"{request.url}: {rules.why}", request=request, kind=rules.kind)
        why = rules.why if rules is not None and rules.why else f"robots.txt disallows {request.url}"
        return RobotsBlocked(why, request=request)

    @property
    def closed(self) -> set[str]:
        """Hosts the frontier must hand out nothing of: their robots.txt is not known."""
        return self._waiting

    @property
    def parked(self) -> int:
        """Requests waiting here for their host's robots.txt."""
        return self._parked_n

    def park(self, lease: Any, request: Request) -> None:
        self._parked_n += 1
        self._parked.setdefault(request.host, []).append(Parked(lease, request))

    def ready(self) -> list[Parked]:
        """Parked requests whose host's robots.txt is now known (taken out of the gate)."""
        out: list[Parked] = []
        if self._parked_n:
            for host in [h for h in self._parked if h in self.rules]:
                out.extend(self._parked.pop(host))
            self._parked_n -= len(out)
        return out

    def unpark_all(self) -> list[Parked]:
        """Every parked request (when stopping: they go back to the frontier)."""
        out = [p for parked in self._parked.values() for p in parked]
        self._parked.clear()
        self._parked_n = 0
        return out

    # -- learning ----------------------------------------------------------------
    def due(self, now: float) -> list[str]:
        """Hosts whose robots.txt this process should fetch now. With a shared cache,
        a host another process has learned is applied at once, and a host another
        process is fetching is looked at again after ``poll_interval``."""
        out: list[str] = []
        for host, at in list(self._due.items()):
            if at > now:
                continue
            del self._due[host]
            if self.cache is not None and not self._from_cache(host, now):
                continue
            if host not in self.rules:
                self.fetching.add(host)
                out.append(host)
        return out

    def _from_cache(self, host: str, now: float) -> bool:
        """False when there is nothing to fetch now: learned from the cache, or another
        process claimed the fetch."""
        assert self.cache is not None
        known = self.cache.get(host)
        if known is not None:
            self._apply(host, RobotsRules.parse(host, *known))
            return False
        if not self.cache.claim(host, self.claim_seconds):
            self._due[host] = now + self.poll_interval
            return False
        return True

    def abandon(self, host: str) -> None:
        """A robots.txt fetch that was never started (the crawl is stopping)."""
        self.fetching.discard(host)

    def learned(self, host: str, status: int | None, text: str, error: str | None,
                now: float) -> None:
        """Record a robots.txt fetch: parsed, or held back and retried, or given up."""
        self.fetching.discard(host)
        if status is None or status >= 500 or status == 429:
            failures = self._failures[host] = self._failures.get(host, 0) + 1
            what = f"HTTP {status}" if status else error or "failed"
            if failures < self.retry.attempts:
                self._due[host] = now + self.retry.backoff(failures)
                log.info("%s/robots.txt: %s; host held back, retrying later", host, what)
                return
            log.warning("%s/robots.txt: unavailable after %d tries (%s); not crawling that host",
                        host, failures, what)
            unreachable = status is None and error is not None
            rules = RobotsRules(Protego.parse(_DISALLOW_ALL),
                                why=(f"{host} unreachable ({what}): host not crawled" if unreachable
                                     else f"{host}/robots.txt unavailable ({what}): host not crawled"),
                                kind=error if unreachable else None)
            status, text = 200, _DISALLOW_ALL
        else:
            rules = RobotsRules.parse(host, status, text)
        if self.cache is not None:
            self.cache.put(host, status, text)
        self._apply(host, rules)

    def _apply(self, host: str, rules: RobotsRules) -> None:
        self.rules[host] = rules
        self._waiting.discard(host)
        delay = rules.crawl_delay(self.user_agent)
        if delay:
            self.politeness.min_delay(host, delay)

    def next_wakeup(self) -> float | None:
        """When a held-back host's robots.txt is next tried."""
        pending = [t for t in self._due.values() if t > 0]
        return min(pending) if pending else None

    # -- what robots.txt says besides rules ---------------------------------------
    def sitemaps_for(self, url: str) -> list[str]:
        """The Sitemap URLs of ``url``'s host's robots.txt (empty when not known)."""
        rules = self.rules.get(host_key(url))
        return rules.sitemaps if rules is not None else []
