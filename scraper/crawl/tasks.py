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
    Abandoned     a task whose worker process died before answering: its request goes
                  back to the frontier, no page counted

Only small, plain things live here (requests, items, numbers): never a parsed tree.
``Wire`` is how they cross between processes (``processes`` > 1): pickled, with the
spider standing for the other process's copy of it (so a callback given as a bound
method arrives bound to the spider over there) and every ``Response`` reduced to its
URL and status: a decision never carries a body or a parsed tree back.
"""

from __future__ import annotations

import copyreg
import io
import pickle
from dataclasses import dataclass, field
from typing import Any, Final

from ..exceptions import FetchError, HttpError
from ..fetch.policy import Decision
from ..http import Request
from ..response import Response
from ..spider import Spider

__all__ = ["STOP", "Abandoned", "Exchange", "Fetch", "FetchRobots", "Outcome", "PageOutcome",
           "Produced", "Refuse", "RobotsOutcome", "Stop", "Task", "Wire"]


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


@dataclass(frozen=True, slots=True)
class Abandoned:
    """A task handed to a worker process that died before answering it."""

    task: Fetch | Refuse | FetchRobots


Outcome = PageOutcome | RobotsOutcome | Abandoned


# -- crossing a process boundary ---------------------------------------------------
def _spider_ref() -> Spider:
    """Stands for "this process's spider" in a pickle; only ``Wire.loads`` resolves it."""
    raise RuntimeError("a spider reference can only be read by Wire.loads")


def _light_response(url: str, status: int, request: Request, cached: str | None) -> Response:
    r = Response(url, status, {}, b"", request)
    r.cached = cached
    return r


def _reduce_response(r: Response) -> tuple[Any, ...]:
    return _light_response, (r.url, r.status, r.request, r.cached)


def _reduce_http_error(e: HttpError) -> tuple[Any, ...]:
    # HttpError(response) cannot be rebuilt from its message, as exceptions are
    return HttpError, (e.response,)


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, spider: Spider) -> None:
        super().__init__(io.BytesIO(data))
        self.spider = spider

    def find_class(self, module: str, name: str) -> Any:
        if name == "_spider_ref" and module == __name__:
            spider = self.spider
            return lambda: spider
        return super().find_class(module, name)


class Wire:
    """Pickles tasks and outcomes for another process of the same crawl (forked from this
    one, so the same classes are importable on both sides).

    The spider is sent as a reference to the receiver's own spider (a bound callback
    stays a bound callback, and no spider state is copied); a ``Response`` as its URL,
    status, request and cache note, without headers, body or trees (an ``HttpError``
    with it)."""

    def __init__(self, spider: Spider) -> None:
        self.spider = spider
        table = dict(copyreg.dispatch_table)
        table[type(spider)] = self._reduce_spider
        table[Response] = _reduce_response
        table[HttpError] = _reduce_http_error
        self._table = table

    def _reduce_spider(self, obj: Spider) -> Any:
        if obj is self.spider:
            return _spider_ref, ()
        return obj.__reduce_ex__(pickle.HIGHEST_PROTOCOL)  # another instance: as it is

    def dumps(self, obj: Any) -> bytes:
        """``obj`` pickled; raises what pickling raises (an object that cannot cross)."""
        buf = io.BytesIO()
        p = pickle.Pickler(buf, pickle.HIGHEST_PROTOCOL)
        p.dispatch_table = self._table
        p.dump(obj)
        return buf.getvalue()

    def loads(self, data: bytes) -> Any:
        return _Unpickler(data, self.spider).load()
