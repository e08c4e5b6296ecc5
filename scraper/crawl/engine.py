"""The engine coordinates one crawl in this process: it hands leased requests from the
frontier to worker threads and records what comes back.

    frontier ──pop (host slots)──▶ robots gate ──▶ tasks ──▶ workers (fetch, decide, callback)
        ▲                                                              │
        └── push ◀── admission (dedup, depth, offsite) ◀── recorder ◀── results
                                                      └──▶ pipelines ──▶ outputs

Only this thread touches the frontier, the seen-set, the stats and the pipelines;
workers only fetch and run spider code: threads of this process, or (``processes`` > 1)
threads of worker processes fed through ``processes.ProcessPool``, which takes the
tasks queue and fills the results queue just as threads do. Every task handed out comes back as exactly
one outcome, so a crawl on one machine ends exactly when the frontier is empty and
nothing is in flight: the loop blocks on the results queue (with a timeout only for
timed events: retries, host delays, robots.txt retries, limits, progress) and never
polls to discover the end. With a shared backend other processes may add work or
hold leases, so an idle process asks the cluster, with back-off, before it ends.

Each batch of outcomes is recorded in one backend transaction: acks, new requests,
seen fingerprints, output positions, stats and dead letters commit together, which
is what makes a persistent crawl resumable after a hard kill.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection
from typing import Any

from ..config import Settings
from ..exceptions import StorageError
from ..fetch.adaptive import check_browser_use
from ..fetch.cassette import NOT_RECORDED, CassetteMode
from ..fetch.factory import FetcherFactory, worker_fetchers
from ..fetch.policy import FetchPolicy
from ..fetch.politeness import Politeness
from ..fetch.retry import RetryPolicy
from ..fetch.watchdog import Watchdog
from ..spider import Spider
from ..storage import Backend
from .admission import Admission
from .callbacks import SpiderCode
from .cluster import Cluster
from .dispatch import Dispatcher
from .job import Job
from .middleware import MiddlewareChain
from .pipelines import PipelineChain
from .processes import ProcessPool
from .record import Batch, Recorder
from .robots import RobotsGate
from .stats import Stats
from .tasks import STOP, Abandoned, Fetch, FetchRobots, Outcome, Refuse, RobotsOutcome, Task, Wire
from .worker import TaskRunner, WorkerThread, worker_process

__all__ = ["Engine", "FetcherFactory"]

log = logging.getLogger(__name__)

#: Makes the fetcher of worker ``index``: where a cache, a cassette or a browser plugs in.

_WAKE = object()  # put on the results queue to wake the coordinator
_BATCH = 256      # outcomes recorded per transaction at most


class Engine:
    """Runs one crawl of one spider (in this process) to its end and returns its Stats."""

    def __init__(self, spider: Spider, settings: Settings, pipelines: PipelineChain,
                 backend: Backend, *, job: Job | None = None, keep_alive: bool = False,
                 on_progress: Callable[[dict[str, Any]], None] | None = None,
                 progress_interval: float | None = None,
                 fetchers: FetcherFactory | None = None,
                 middlewares: list[Any] | None = None,
                 cassette: CassetteMode | None = None,
                 wrap_fetchers: Callable[[FetcherFactory], FetcherFactory] | None = None) -> None:
        self.spider = spider
        self.settings = settings
        self.pipelines = pipelines
        self.middlewares = middlewares or []
        self.backend = backend
        self.job = job
        self.on_progress = on_progress
        self.progress_interval = progress_interval or settings.crawl.progress_interval
        self.stats = Stats(spider.name)
        self.retry = RetryPolicy.from_settings(settings.retry)
        self.cassette = cassette
        replaying = cassette is not None and cassette.replay
        self.politeness = Politeness(backend.hosts, settings.politeness,
                                     offline_answers=settings.httpcache.enabled or replaying)
        self.gate = RobotsGate(settings.fetch.user_agent, obey=settings.politeness.obey_robots,
                               retry=self.retry, politeness=self.politeness, cache=backend.robots,
                               claim_seconds=settings.fetch.timeout[1] * 2 + 5,
                               poll_interval=settings.backend.poll_interval)
        self.admission = Admission(spider, backend, self.stats,
                                   max_depth=settings.limits.max_depth,
                                   serialise=backend.serialises, seen_ttl=settings.backend.seen_ttl,
                                   max_url_length=settings.limits.max_url_length)
        self.cluster = Cluster(backend, self.stats, poll_interval=settings.backend.poll_interval,
                               keep_alive=keep_alive)
        self.recorder = Recorder(spider=spider, backend=backend, stats=self.stats,
                                 politeness=self.politeness, gate=self.gate,
                                 admission=self.admission, pipelines=pipelines,
                                 cluster=self.cluster, job=job, limits=settings.limits,
                                 stop=self._begin_stop, fatal_kinds=frozenset(
                                     {NOT_RECORDED} if replaying and cassette and cassette.strict
                                     else ()))
        self.threads_n = settings.crawl.workers
        # the test harness's fetcher wrapper notes requests in this process: threads here
        in_process = fetchers is not None or wrap_fetchers is not None
        self.processes_n = 1 if in_process else settings.crawl.processes
        self.workers_n = self.threads_n * self.processes_n
        # the dispatcher's budget bounds it; with processes it must never block the
        # dispatcher: the feeder stops taking tasks while the processes are full or dead
        self.tasks: queue.Queue[Task] = queue.Queue(
            maxsize=self.workers_n if self.processes_n == 1 else 0)
        self.results: queue.Queue[Any] = queue.Queue()
        self.dispatcher = Dispatcher(backend, self.gate, self.politeness, self.admission,
                                     self.stats, self.tasks, workers=self.workers_n,
                                     max_pages=settings.limits.max_pages,
                                     prefetch=settings.backend.prefetch)
        self._stop_reason: str | None = None
        self._stop_started: float | None = None
        self._workers: list[WorkerThread] = []
        self._pool: ProcessPool | None = None
        self._cpu_started = time.process_time()  # this process's CPU time: the coordinator's
        self.watchdog = Watchdog()
        self._fetchers = fetchers or worker_fetchers(settings, spider, self.watchdog,
                                                     cassette)
        if wrap_fetchers is not None:
            self._fetchers = wrap_fetchers(self._fetchers)

    # -- public --------------------------------------------------------------
    @property
    def shared(self) -> bool:
        return self.backend.shared

    def stop(self, reason: str = "interrupted") -> None:
        """Ask the crawl to end gracefully; safe from signal handlers and other threads."""
        if self._stop_reason is None:
            self._stop_reason = reason
        # A signal handler may run while this thread holds the queue's lock, so the
        # wake-up is posted from another thread.
        threading.Thread(target=self.results.put, args=(_WAKE,), daemon=True).start()

    @property
    def stopping(self) -> bool:
        return self._stop_reason is not None

    def run(self) -> Stats:
        """Crawl until the frontier is empty, a limit is reached, or ``stop`` is called."""
        spider = self.spider
        spider.settings = self.settings
        spider.crawler = self
        if self.job is not None:
            self.job.begin(self.backend, self.stats, self.settings.backend.seen_ttl)
        self.pipelines.open(spider)
        try:
            spider.opened()
            # read after opened(), which may set them from spider arguments
            self.admission.set_domains(spider.allowed_domains)
            self._start_workers()
            self._seed(spider.start_requests())
            self._loop()
        except BaseException:
            self._stop_reason = self._stop_reason or "error"
            raise
        finally:
            self._finish()
        return self.stats

    def sitemaps_for(self, url: str) -> list[str]:
        """The Sitemap lines of ``url``'s host's robots.txt (what ``Spider.sitemaps_for`` asks)."""
        return self.gate.sitemaps_for(url)

    def cluster_stats(self) -> dict[str, int] | None:
        """The whole crawl's counters, for a backend that keeps them."""
        return self.cluster.totals()

    # -- set-up and tear-down ------------------------------------------------
    def _start_workers(self) -> None:
        """Worker threads here, or worker processes forked now: after ``opened()``, so
        what it set on the spider is theirs too, and before anything was fetched."""
        if self.processes_n > 1:
            self._pool = ProcessPool(self.processes_n, self.threads_n, Wire(self.spider),
                                     self._serve, self.tasks, self.results,
                                     on_fatal=lambda: self.stop("error"))
            self._pool.start()
            return
        runner = self._runners()
        for i in range(self.workers_n):
            w = WorkerThread(i, runner(i), self.tasks, self.results)
            w.start()
            self._workers.append(w)

    def _runners(self) -> Callable[[int], TaskRunner]:
        """Worker index -> its task runner (in the process it is called in)."""
        offsite = self.admission.offsite if self.admission.domains else None
        policy = FetchPolicy(self.retry, max_redirects=self.settings.fetch.max_redirects,
                             handle_statuses=getattr(self.spider, "handle_statuses", ()) or (),
                             offsite=offsite)
        code = SpiderCode(self.spider)
        hooks = MiddlewareChain(self.middlewares, self.spider) if self.middlewares else None
        fetchers = self._fetchers
        return lambda i: TaskRunner(code, fetchers(i), policy, hooks)

    def _serve(self, conn: Connection, index: int) -> None:
        """The main of worker process ``index`` (forked: this engine is its copy). Its
        fetchers come from the factory made before the fork; the watchdog they share
        had no thread yet, so each process starts its own."""
        worker_process(conn, Wire(self.spider), self._runners(), self.threads_n,
                       index * self.threads_n)

    def _stop_workers(self) -> None:
        if self._pool is None:
            for _ in self._workers:
                try:
                    self.tasks.put_nowait(STOP)
                except queue.Full:
                    break
            return
        pool = self._pool
        try:
            pool.stop()
        except Exception:
            log.exception("could not stop the worker processes")
            pool.kill()
        self.stats.worker_restarts = pool.restarts
        self.stats.processes = {
            "count": self.processes_n, "threads_each": self.threads_n,
            "restarts": pool.restarts,
            "coordinator_cpu_s": round(time.process_time() - self._cpu_started, 3),
            "workers": [{"pid": r["pid"], "cpu_s": round(r["cpu_s"], 3),
                         "peak_rss_mb": round(r["peak_rss_kb"] / 1024, 1)}
                        for r in pool.reports()]}

    def _finish(self) -> None:
        try:
            self.dispatcher.drain()
            self.dispatcher.unpark()
        except Exception as e:
            self._finish_failed("could not give back unstarted requests", e)
        self._stop_workers()
        self.watchdog.stop()
        stats = self.stats
        stats.reason = self._stop_reason or "finished"
        try:
            self.spider.closed(stats.reason)
        except Exception:
            log.exception("%s.closed() raised", type(self.spider).__name__)
        self.pipelines.close(self.spider)
        if self.pipelines.errors:
            stats.errors["pipeline-error"] += self.pipelines.errors
        if self.pipelines.dropped:
            stats.filtered["dropped-item"] += self.pipelines.dropped
        stats.finished = time.time()
        stats.backend_round_trips = self.backend.round_trips()
        try:
            with self.backend.transaction():
                if self.job is not None:
                    self.job.save({}, stats.snapshot())
                self.cluster.send_stats()
        except Exception as e:
            self._finish_failed("could not save the final stats", e)
        self._report(final=True)

    def _finish_failed(self, what: str, e: Exception) -> None:
        """A step of finishing failed. When a backend error already stopped the crawl,
        it is that error again (a failed backend fails every later call): the caller
        reports it, once; another storage error is one line, anything else a traceback."""
        if not isinstance(e, StorageError):
            log.exception("%s", what)
        elif self._stop_reason != "error":
            log.error("%s: %s", what, e)

    # -- start requests ------------------------------------------------------
    def _seed(self, requests: Iterable[Any]) -> None:
        starts = SpiderCode(self.spider).start_requests(requests, self.stats)
        if self.cassette is None or not self.cassette.replay:  # a cassette replays rendered pages
            check_browser_use(self.spider, starts, self.settings.browser.executable)
        digest = ""
        if self.job is not None:
            found = self.job.seed(starts, self.backend)
            if found is None:
                return  # the job's frontier already holds everything
            digest = found
        with self.backend.transaction():
            self.admission.admit(starts)  # marks them seen and pushes them, in one step
            if self.job is not None:
                self.job.started(digest)
                self.job.save(self.pipelines.positions(), self.stats.snapshot())

    # -- the loop ------------------------------------------------------------
    def _loop(self) -> None:
        started = time.monotonic()
        max_duration = self.settings.limits.max_duration
        deadline = started + max_duration if max_duration else None
        next_report = started + self.progress_interval
        next_beat = started + self.settings.backend.heartbeat_interval
        while True:
            now_m = time.monotonic()
            if deadline is not None and now_m >= deadline:
                self._begin_stop("max_duration")
            if now_m >= next_report:
                self._report()
                next_report = now_m + self.progress_interval
            if now_m >= next_beat:
                self.cluster.beat(self.dispatcher.leases)
                next_beat = now_m + self.settings.backend.heartbeat_interval
            dispatched = 0 if self.stopping else self.dispatcher.dispatch(time.time())
            if self._done():
                return
            idle = self.dispatcher.in_flight == 0 and dispatched == 0
            timeout = self._wait_time([next_report - now_m, next_beat - now_m] + (
                [] if deadline is None else [deadline - now_m]), idle)
            self._collect(timeout)

    def _done(self) -> bool:
        if self.dispatcher.in_flight or self.gate.parked:
            return False
        if self.stopping:
            return True
        return self.backend.frontier.pending() == 0 and self.cluster.idle()

    def _collect(self, timeout: float) -> None:
        """Wait up to ``timeout`` for outcomes, then record every one that is there."""
        try:
            first = self.results.get(timeout=timeout)
        except queue.Empty:
            if self.stopping and self.dispatcher.in_flight:
                self._grace_expired()
            return
        self.cluster.active()
        batch = [first]
        try:
            while len(batch) < _BATCH:
                batch.append(self.results.get_nowait())
        except queue.Empty:
            pass
        self._record([o for o in batch if o is not _WAKE])
        if self.stopping and self._stop_reason != "max_pages":
            self.dispatcher.drain()

    def _wait_time(self, timers: list[float], idle: bool) -> float:
        candidates = list(timers)
        if self.stopping:
            candidates.append(self._grace_left())
        else:
            now = time.time()
            for t in (self.backend.frontier.next_ready(), self.politeness.next_wakeup(now),
                      self.gate.next_wakeup()):
                if t is not None:
                    candidates.append(t - now)
            wait = self.cluster.idle_wait() if idle else None
            if wait is not None:
                candidates.append(wait)  # others may add work or free a host
        return max(0.0, min(candidates))

    # -- recording -----------------------------------------------------------
    def _record(self, outcomes: list[Outcome]) -> None:
        if not outcomes:
            return
        now = time.time()
        batch = Batch()
        recorder = self.recorder
        with self.backend.transaction():
            for o in outcomes:
                if isinstance(o, RobotsOutcome):
                    self.dispatcher.in_flight -= 1
                    recorder.robots(o, now)
                elif isinstance(o, Abandoned):
                    self._abandoned(o.task)
                else:
                    recorder.page(o, self.dispatcher.returned(o.lease, o.request), batch, now)
            recorder.commit(batch)
        max_pages = self.settings.limits.max_pages
        if max_pages is not None and self.stats.pages >= max_pages:
            self._begin_stop("max_pages")

    def _abandoned(self, task: Fetch | Refuse | FetchRobots) -> None:
        """A task whose worker process died: its request back to the frontier, as if
        never handed out (no page, no request counted), its host slot free."""
        if isinstance(task, FetchRobots):
            self.dispatcher.in_flight -= 1
            self.gate.abandon(task.host)
            return
        host = self.dispatcher.returned(task.lease, task.request)
        if isinstance(task, Fetch):  # a refused one holds no slot
            self.politeness.finished(host, task.lease)
        self.backend.frontier.release([task.lease])

    # -- stopping ------------------------------------------------------------
    def _begin_stop(self, reason: str) -> None:
        if self._stop_reason is None:
            self._stop_reason = reason
            log.info("stopping: %s", reason)
        if reason != "max_pages":
            self.dispatcher.drain()

    def _grace_left(self) -> float:
        if self._stop_started is None:
            self._stop_started = time.monotonic()
        return self._stop_started + self.settings.crawl.shutdown_timeout - time.monotonic()

    def _grace_expired(self) -> None:
        if self._grace_left() <= 0:
            log.warning("%d request(s) still in flight after shutdown_timeout; abandoning them",
                        self.dispatcher.in_flight)
            self.dispatcher.in_flight = 0

    # -- progress ------------------------------------------------------------
    def progress(self) -> dict[str, Any]:
        """A snapshot for progress lines: pages, items, rate, queued, in flight, errors."""
        s = self.stats
        return {"pages": s.pages, "items": s.items, "pages_per_s": s.pages_per_second,
                "queued": self.backend.frontier.pending(), "in_flight": self.dispatcher.in_flight,
                "errors": sum(s.errors.values()), "elapsed": s.duration}

    def _report(self, final: bool = False) -> None:
        if self.on_progress is not None:
            snapshot = self.progress()
            snapshot["final"] = final
            self.on_progress(snapshot)
