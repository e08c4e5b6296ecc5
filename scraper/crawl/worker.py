"""Workers: ``TaskRunner`` turns one task into one outcome (fetch, decide, run spider
code); ``WorkerThread`` is the loop of stop-check → take a task → run it → hand the
outcome back, with its own fetcher (and so its own requests.Session).

    task ──▶ [middlewares ⟲] fetcher.fetch ──▶ policy.after_response / after_error ──▶ decision
                                   Deliver ──▶ callback     Fail ──▶ errback
                                   Reschedule (a middleware's Request) ──▶ the coordinator
         ──▶ PageOutcome (decision, exchange, produced) ──▶ the coordinator

Request/response hooks (``middleware.MiddlewareChain``) wrap the fetch in
``TaskRunner.exchange``; other fetchers (a cache, a browser) plug in as the fetcher.

``worker_process`` is the main of a worker process (``processes`` > 1): the same
worker threads, fed from the coordinator's pipe instead of its queue; outcomes go
back through the pipe, in batches, as ``tasks.Wire`` pickles them.
"""

from __future__ import annotations

import logging
import os
import pickle
import queue
import resource
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
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
from .tasks import (STOP, Exchange, Fetch, FetchRobots, Outcome, PageOutcome, Produced, Refuse,
                    RobotsOutcome, Stop, Task, Wire)

__all__ = ["TaskRunner", "WorkerThread", "task_key", "worker_process"]

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


# -- a worker process ------------------------------------------------------------------
#
# coordinator → worker: one message per batch of tasks, a pickled list of (key, blob),
#   each blob a task as Wire pickles it; an empty message asks the process to stop.
# worker → coordinator: a pickled list of (key, blob or None, why or None), each blob an
#   outcome as Wire pickles it (None: it could not be pickled, ``why`` says why); last,
#   after a stop, a dict of the process's resource use.

_END = object()  # the last thing on a worker process's outcome queue
_JOIN_S = 2.0    # a stopping process waits this long for its threads (then exits anyway)


def task_key(task: Fetch | Refuse | FetchRobots) -> tuple[int, Any]:
    """What names a task and its outcome on the pipe: its lease, or its robots.txt host."""
    return (1, task.host) if isinstance(task, FetchRobots) else (0, task.lease)


def _outcome_key(o: Outcome) -> tuple[int, Any]:
    return (1, o.host) if isinstance(o, RobotsOutcome) else (0, getattr(o, "lease", None))


def worker_process(conn: Connection, wire: Wire, runners: Callable[[int], TaskRunner],
                   threads: int, first: int) -> None:
    """Run ``threads`` worker threads (numbered from ``first``) on the tasks ``conn``
    brings until the coordinator asks to stop, or is gone (then at once: nothing a
    worker would finish could be recorded)."""
    tasks: queue.Queue[Task] = queue.Queue()
    results: queue.Queue[Any] = queue.Queue()
    workers = [WorkerThread(first + i, runners(first + i), tasks, results) for i in range(threads)]
    for w in workers:
        w.start()
    sender = threading.Thread(target=_send_outcomes, args=(conn, wire, results),
                              name="outcome-sender", daemon=True)
    sender.start()
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            os._exit(0)  # the coordinator is gone
        if not data:
            break
        for key, blob in pickle.loads(data):
            try:
                tasks.put(wire.loads(blob))
            except Exception as e:  # answered at once: the coordinator still has the task
                results.put((key, None, f"the task could not be read here: "
                                        f"{type(e).__name__}: {e}"))
    for _ in workers:
        tasks.put(STOP)
    deadline = time.monotonic() + _JOIN_S
    for w in workers:
        w.join(max(0.0, deadline - time.monotonic()))
    results.put(_END)
    sender.join(max(0.1, deadline - time.monotonic()))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    try:
        conn.send_bytes(pickle.dumps({"pid": os.getpid(), "cpu_s": usage.ru_utime + usage.ru_stime,
                                      "peak_rss_kb": usage.ru_maxrss}))
    except OSError:
        pass


def _send_outcomes(conn: Connection, wire: Wire, results: queue.Queue[Any]) -> None:
    """Outcomes back to the coordinator, as many per message as are ready."""
    while True:
        batch = [results.get()]
        try:
            while len(batch) < 256:
                batch.append(results.get_nowait())
        except queue.Empty:
            pass
        end = _END in batch
        frames = [o if isinstance(o, tuple) else _encode(wire, o) for o in batch if o is not _END]
        if frames:
            try:
                conn.send_bytes(pickle.dumps(frames, pickle.HIGHEST_PROTOCOL))
            except OSError:
                os._exit(0)  # the coordinator is gone
        if end:
            return


def _encode(wire: Wire, o: Outcome) -> tuple[Any, bytes | None, str | None]:
    """An outcome as it crosses; an item or a request that cannot be pickled is left out
    and counted (``bad-item``, ``bad-output``), the rest of the page goes on."""
    key = _outcome_key(o)
    try:
        return key, wire.dumps(o), None
    except Exception as e:
        why = f"{type(e).__name__}: {e}"
    if isinstance(o, PageOutcome) and _drop_unsendable(wire, o):
        try:
            return key, wire.dumps(o), None
        except Exception as e:
            why = f"{type(e).__name__}: {e}"
    return key, None, f"its outcome cannot be sent to the coordinator process ({why})"


def _drop_unsendable(wire: Wire, o: PageOutcome) -> bool:
    """Leave out the items and requests of ``o`` that cannot be pickled; True if any."""
    p = o.produced
    dropped = False
    for kind, values in (("bad-item", p.items), ("bad-output", p.requests)):
        keep = []
        for value in values:
            try:
                wire.dumps(value)
            except Exception as e:
                dropped = True
                p.errors[kind] = p.errors.get(kind, 0) + 1
                what = "item" if kind == "bad-item" else f"request {value.url}"
                log.warning("bad %s from %s skipped: it cannot be sent to the coordinator "
                            "process (%s: %s)", what, o.request.url, type(e).__name__, e)
            else:
                keep.append(value)
        values[:] = keep
    return dropped
