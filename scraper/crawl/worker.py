"""Workers: ``TaskRunner`` turns one task into one outcome (fetch, decide, run spider
code); ``WorkerThread`` is the loop of stop-check → take a task → run it → hand the
outcome back, with its own fetcher (and so its own requests.Session).

    task ──▶ [middlewares ⟲] fetcher.fetch ──▶ policy.after_response / after_error ──▶ decision
                                   Deliver ──▶ callback     Fail ──▶ errback
                                   Reschedule (a middleware's Request) ──▶ the coordinator
         ──▶ PageOutcome (decision, exchange, produced) ──▶ the coordinator

Request/response hooks (``middleware.MiddlewareChain``) wrap the fetch in
``TaskRunner.exchange``; other fetchers (a cache, a browser) plug in as the fetcher.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from ..exceptions import FetchError, HttpError
from ..failure import Failure
from ..fetch.base import Fetcher
from ..fetch.policy import Decision, Deliver, Fail, FetchPolicy, Reschedule
from ..fetch.redirects import is_redirect, redirect_request
from ..http import Request
from ..response import Response
from ..robotstxt import decode_robots
from .callbacks import SpiderCode
from .middleware import MiddlewareChain
from .stats import WorkerCounters
from .tasks import (Exchange, Fetch, FetchRobots, Outcome, PageOutcome, Produced, Refuse,
                    RobotsOutcome, Stop, Task)

__all__ = ["TaskRunner", "WorkerThread"]

log = logging.getLogger(__name__)

_ROBOTS_REDIRECTS = 5
_SENT_NOTHING = ("hit", "replayed")  # Response.cached values of answers made locally


class TaskRunner:
    """Runs tasks for one spider with one fetcher; never raises for anything a spider or
    a server does."""

    def __init__(self, code: SpiderCode, fetcher: Fetcher, policy: FetchPolicy,
                 middlewares: MiddlewareChain | None = None) -> None:
        self.code = code
        self.fetcher = fetcher
        self.policy = policy
        self.middlewares = middlewares
        # a fetcher that never sends (a cassette's), failures included
        self.offline = bool(getattr(fetcher, "offline", False))

    def run(self, task: Fetch | Refuse | FetchRobots) -> Outcome:
        try:
            if isinstance(task, Fetch):
                return self.page(task.lease, task.request)
            if isinstance(task, Refuse):
                return self.refuse(task)
            return self.robots(task.host)
        except BaseException as e:  # never lose a task, whatever happened (even sys.exit)
            url = task.host + "/robots.txt" if isinstance(task, FetchRobots) else task.request.url
            log.exception("internal error processing %s", url)
            kind = f"internal-{type(e).__name__}"
            if isinstance(task, FetchRobots):
                return RobotsOutcome(task.host, None, error=kind)
            return PageOutcome(task.lease, task.request, Fail(FetchError(str(e), kind=kind)))

    def exchange(self, request: Request) -> tuple[Decision, Exchange | None]:
        """Fetch ``request`` and decide what it becomes."""
        policy = self.policy
        try:
            if self.middlewares is None:
                response = self.fetcher.fetch(request)
            else:
                answer = self.middlewares.exchange(request, self.fetcher.fetch)
                if isinstance(answer, Request):
                    return Reschedule(answer), None
                response = answer
        except FetchError as e:
            return policy.after_error(request, e), None
        summary = Exchange(response.status, len(response.content), response.elapsed,
                           policy.host_backoff(request, response), response.cached)
        return policy.after_response(request, response), summary

    def page(self, lease: Any, request: Request) -> PageOutcome:
        sent_at: float | None = time.time()
        decision, summary = self.exchange(request)
        if self.offline or (summary is not None and summary.cached in _SENT_NOTHING):
            sent_at = None  # nothing went to the host: its delay is not held for this
        out = PageOutcome(lease, request, decision, summary, sent_at=sent_at)
        if isinstance(decision, Deliver):
            self.code.callback(decision.response, out.produced)
        elif isinstance(decision, Fail):
            self._fail(Failure(request, decision.error, decision.response), out.produced)
        return out

    def refuse(self, task: Refuse) -> PageOutcome:
        out = PageOutcome(task.lease, task.request, Fail(task.error), fetched=False)
        self._fail(Failure(task.request, task.error), out.produced)
        return out

    def robots(self, host: str) -> RobotsOutcome:
        """Fetch a robots.txt, following up to 5 redirects (no callback; the gate parses it)."""
        request = Request(f"{host}/robots.txt", dont_filter=True)
        try:
            response: Response = self.fetcher.fetch(request)
            for _ in range(_ROBOTS_REDIRECTS):
                if not is_redirect(response.status, response.headers):
                    break
                response = self.fetcher.fetch(redirect_request(response, _ROBOTS_REDIRECTS))
        except FetchError as e:
            return RobotsOutcome(host, None, error=e.kind)
        text = decode_robots(response.content) if 200 <= response.status < 300 else ""
        return RobotsOutcome(host, response.status, text, nbytes=len(response.content))

    def _fail(self, failure: Failure, produced: Produced) -> None:
        level = logging.DEBUG if isinstance(failure.exception, HttpError) else logging.WARNING
        log.log(level, "%s: %s", failure.kind, failure.exception)
        self.code.errback(failure, produced)

    def close(self) -> None:
        self.fetcher.close()


class WorkerThread(threading.Thread):
    """One fetching thread: every task it takes produces exactly one outcome, carrying the
    custom counters (``spider.stats.inc``) its spider code incremented."""

    def __init__(self, index: int, runner: TaskRunner, tasks: queue.Queue[Task],
                 results: queue.Queue[Any]) -> None:
        super().__init__(name=f"worker-{index}", daemon=True)
        self.runner = runner
        self.tasks = tasks
        self.results = results

    def run(self) -> None:
        get, put, run = self.tasks.get, self.results.put, self.runner.run
        counters = WorkerCounters.install()
        try:
            while True:
                task = get()
                if isinstance(task, Stop):
                    return
                outcome = run(task)
                if counters.counts and isinstance(outcome, PageOutcome):
                    # recorded with this page, in the same transaction: exactly once
                    outcome.produced.custom = counters.take()
                put(outcome)
        finally:
            self.runner.close()
