"""A worker thread: take a task, fetch it, decide retry / callback / errback, run the
spider's code, and hand an Outcome back to the coordinator.

Nothing a spider or a server does may escape a worker: every task produces
exactly one Outcome, so the coordinator's count of work in flight is always
right and the crawl can end.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .exceptions import CloseSpider, FetchError, HttpError
from .fetcher import Fetcher, RetryPolicy, redirect_request
from .http import Request
from .response import Response
from .spider import Spider

__all__ = ["Failure", "Outcome", "Worker"]

log = logging.getLogger(__name__)

_REDIRECTS = frozenset((301, 302, 303, 307, 308))


@dataclass(slots=True)
class Failure:
    """What an errback receives: the request, the exception and, if any, the response."""

    request: Request
    exception: BaseException
    response: Response | None = None

    @property
    def kind(self) -> str:
        return getattr(self.exception, "kind", type(self.exception).__name__)

    def __repr__(self) -> str:
        return f"<Failure {self.kind} {self.request.url}>"


@dataclass(slots=True)
class Outcome:
    """What one task produced, for the coordinator to record and schedule."""

    lease: Any
    request: Request
    status: int | None = None          # final HTTP status, if a response came
    nbytes: int = 0
    error: str | None = None           # stats kind of a final failure
    retry_in: float | None = None      # seconds until the retry, if retried
    items: list[Any] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    callback_errors: int = 0
    bad_outputs: int = 0
    close_reason: str | None = None
    response_url: str | None = None
    fetched: bool = True               # False for requests refused before fetching
    robots_text: str | None = None     # the body, for a robots.txt task
    redirect: Request | None = None    # the next hop, for a followed 3xx
    host_backoff: float | None = None  # seconds the whole host should wait (429/503)
    latency: float | None = None       # seconds to fetch, for the adaptive throttle
    dead: bool = False                 # failed after its last retry (a dead letter)


class Worker(threading.Thread):
    """One fetching thread with its own Fetcher (and so its own requests.Session)."""

    def __init__(self, index: int, spider: Spider, fetcher: Fetcher, retry: RetryPolicy,
                 tasks: queue.Queue[Any], results: queue.Queue[Any], *,
                 max_redirects: int = 10, offsite: Callable[[str], bool] | None = None) -> None:
        super().__init__(name=f"worker-{index}", daemon=True)
        self.spider = spider
        self.fetcher = fetcher
        self.retry = retry
        self.max_redirects = max_redirects
        self.offsite = offsite
        self.tasks = tasks
        self.results = results
        self.handle_statuses = frozenset(getattr(spider, "handle_statuses", ()) or ())

    def run(self) -> None:
        get, put = self.tasks.get, self.results.put
        try:
            while True:
                task = get()
                if task is None:
                    return
                lease, request, refusal = task
                try:
                    if refusal is not None:
                        outcome = Outcome(lease, request, fetched=False)
                        self._fail(outcome, Failure(request, refusal))
                    elif lease is None:
                        outcome = self.fetch_robots(request)
                    else:
                        outcome = self.process(lease, request)
                except BaseException as e:  # never lose a task, whatever happened
                    log.exception("internal error processing %s", request.url)
                    outcome = Outcome(lease, request, error=f"internal-{type(e).__name__}")
                put(outcome)
        finally:
            self.fetcher.close()

    def process(self, lease: Any, request: Request) -> Outcome:
        out = Outcome(lease, request)
        try:
            response = self.fetcher.fetch(request)
        except FetchError as e:
            delay = self.retry.delay(request.attempt + 1, error=e)
            if delay is not None:
                log.debug("retrying %s in %.2fs after %s", request.url, delay, e.kind)
                out.retry_in = delay
                out.error = e.kind
                return out
            out.dead = self.retry.retryable(error=e)
            self._fail(out, Failure(request, e, e.response))
            return out
        status = out.status = response.status
        out.nbytes = len(response.content)
        out.latency = response.elapsed
        out.response_url = response.url
        handled = 200 <= status < 300 or status in self.handle_statuses or status in (
            request.meta.get("handle_statuses") or ())
        if status in (429, 503):
            out.host_backoff = self.retry.host_backoff(request.attempt + 1, response)
        if not handled and status in _REDIRECTS and "Location" in response.headers:
            self._redirect(out, response)
            return out
        if handled:
            self._call(out, self._method(request.callback, "parse"), (response,), request.cb_kwargs)
            return out
        delay = self.retry.delay(request.attempt + 1, response=response)
        if delay is not None:
            log.debug("retrying %s in %.2fs after HTTP %s", request.url, delay, status)
            out.retry_in = delay
            return out
        out.dead = status in self.retry.statuses
        self._fail(out, Failure(request, HttpError(response), response))
        return out

    def _redirect(self, out: Outcome, response: Response) -> None:
        """Hand the next hop to the coordinator (which de-duplicates it and applies robots
        and politeness to its host), or fail the request: loop, too many hops, off-site."""
        try:
            nxt = redirect_request(response, self.max_redirects)
            if self.offsite is not None and self.offsite(nxt.url):
                raise FetchError(f"redirect from {response.request.url} to off-site {nxt.url}",
                                 request=response.request, response=response, kind="offsite")
        except FetchError as e:
            self._fail(out, Failure(response.request, e, response))
            return
        out.redirect = nxt

    def fetch_robots(self, request: Request) -> Outcome:
        """Fetch a robots.txt, following up to 5 redirects (no callback; the coordinator
        parses it)."""
        out = Outcome(None, request)
        try:
            response = self.fetcher.fetch(request)
            for _ in range(5):
                if response.status not in _REDIRECTS or "Location" not in response.headers:
                    break
                response = self.fetcher.fetch(redirect_request(response, 5))
        except FetchError as e:
            out.error = e.kind
            return out
        out.status = response.status
        out.nbytes = len(response.content)
        if 200 <= response.status < 300:
            out.robots_text = response.content.decode("utf-8", "replace")
        return out

    def _fail(self, out: Outcome, failure: Failure) -> None:
        out.error = failure.kind
        level = logging.DEBUG if isinstance(failure.exception, HttpError) else logging.WARNING
        log.log(level, "%s: %s", failure.kind, failure.exception)
        if failure.request.errback is not None:
            self._call(out, self._method(failure.request.errback, None), (failure,), None)

    def _method(self, ref: Callable[..., Any] | str | None, default: str | None) -> Callable[..., Any]:
        if ref is None:
            ref = default
        if isinstance(ref, str):
            return getattr(self.spider, ref)
        return ref  # type: ignore[return-value]

    def _call(self, out: Outcome, fn: Callable[..., Any], args: tuple[Any, ...],
              kwargs: Mapping[str, Any] | None) -> None:
        """Run a callback or errback, keeping whatever it yielded before any error."""
        items, requests = out.items, out.requests
        try:
            result = fn(*args, **kwargs) if kwargs else fn(*args)
            if result is None:
                return
            if isinstance(result, Request) or _is_item(result):
                result = (result,)
            for value in result:
                if type(value) is Request or isinstance(value, Request):
                    requests.append(value)
                elif _is_item(value):
                    items.append(value)
                elif value is not None:
                    out.bad_outputs += 1
                    log.error("%s yielded %s; expected a Request or an item (dict, dataclass "
                              "or Mapping)", _name(fn), type(value).__name__)
        except CloseSpider as e:
            out.close_reason = e.reason or "closespider"
        except Exception:
            out.callback_errors += 1
            log.exception("%s raised on %s", _name(fn), args[0].url if isinstance(args[0], Response)
                          else args[0].request.url)


def _is_item(value: Any) -> bool:
    return isinstance(value, Mapping) or (dataclasses.is_dataclass(value) and not isinstance(value, type))


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)

