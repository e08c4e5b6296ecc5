"""What crosses between the coordinator and the workers: tasks going out, outcomes
coming back. Every task handed out comes back as exactly one outcome, so the
coordinator's count of work in flight is always right and the crawl can end.

    Fetch        a leased request to fetch, decide on, and run spider code for
    Refuse       a leased request refused before fetching (robots.txt): its errback runs
    FetchRobots  a host's robots.txt to fetch
    STOP         a worker ends

    PageOutcome   what became of a Fetch or a Refuse: the fetch policy's decision, the
                  exchange (status, size, latency), and what spider code produced
    RobotsOutcome the robots.txt answer of a host

Only small, plain things live here (requests, items, numbers): never a parsed tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from ..exceptions import FetchError
from ..fetch.policy import Decision
from ..http import Request

__all__ = ["STOP", "Exchange", "Fetch", "FetchRobots", "Outcome", "PageOutcome", "Produced",
           "Refuse", "RobotsOutcome", "Stop", "Task"]


@dataclass(frozen=True, slots=True)
class Fetch:
    lease: Any
    request: Request


@dataclass(frozen=True, slots=True)
class Refuse:
    lease: Any
    request: Request
    error: FetchError


@dataclass(frozen=True, slots=True)
class FetchRobots:
    host: str


class Stop:
    """The task that ends a worker."""

    def __repr__(self) -> str:
        return "STOP"


STOP: Final = Stop()

Task = Fetch | Refuse | FetchRobots | Stop


@dataclass(frozen=True, slots=True)
class Exchange:
    """What the server answered, for stats and politeness."""

    status: int
    nbytes: int
    latency: float
    host_backoff: float | None = None  # seconds the whole host should wait (429/503)
    cached: str | None = None  # Response.cached: "hit", "miss", "revalidated", "replayed"


@dataclass(slots=True)
class Produced:
    """What spider code (a callback or an errback) gave back."""

    items: list[Any] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    callback_errors: int = 0
    bad_outputs: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # other error kinds of the page
    close_reason: str | None = None
    custom: dict[str, int] | None = None  # spider.stats.inc counts made in the worker


@dataclass(slots=True)
class PageOutcome:
    lease: Any
    request: Request
    decision: Decision
    exchange: Exchange | None = None   # None: nothing was answered (an error, a refusal)
    produced: Produced = field(default_factory=Produced)
    fetched: bool = True               # False: refused before fetching
    sent_at: float | None = None       # wall time the worker began sending it


@dataclass(frozen=True, slots=True)
class RobotsOutcome:
    host: str
    status: int | None                 # None: the fetch failed (``error`` says how)
    text: str = ""
    error: str | None = None
    nbytes: int = 0


Outcome = PageOutcome | RobotsOutcome
