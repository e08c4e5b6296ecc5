"""The crawl loop: one coordinator thread feeding worker threads from the frontier.

    frontier ──pop (host room)──▶ tasks: queue.Queue ──▶ workers (fetch, callback)
        ▲                                                        │
        └── push ◀── admission (dedup, depth, offsite) ◀── coordinator ◀── results
                                                   └──▶ pipelines ──▶ outputs

Only the coordinator touches the frontier, the seen-set, the stats and the
pipelines; workers only fetch and run spider code. Every task handed out comes
back as exactly one Outcome, so a crawl on one machine ends exactly when the
frontier is empty and nothing is in flight: the coordinator blocks on the
results queue (with a timeout only for timed events: retries, host delays,
limits, progress) and never polls to discover the end. With a shared backend
other processes may add work or hold leases, so an idle process asks the
cluster, with back-off, before it ends.

Each batch of outcomes is recorded in one backend transaction: acks, new
requests, seen fingerprints, output positions, stats and dead letters commit
together, which is what makes a persistent crawl resumable after a hard kill.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from requests.cookies import RequestsCookieJar

from .admission import Admission
from .exceptions import RobotsBlocked
from .fetcher import FetchConfig, Fetcher, RetryPolicy, Watchdog
from .http import Request
from .job import Job, start_hash
from .pipelines import PipelineChain
from .politeness import HostSlots, RobotsState
from .spider import Spider
from .stats import Stats
from .storage import Backend, Entry, MemoryBackend
from .worker import Outcome, Worker

__all__ = ["Engine"]

log = logging.getLogger(__name__)

_WAKE = object()  # put on the results queue to wake the coordinator
_BATCH = 256      # outcomes recorded per transaction at most


class Engine:
    """Runs one crawl of one spider (in this process) to its end and returns its Stats."""

    def __init__(self, spider: Spider, settings: Any, pipelines: PipelineChain, *,
                 backend: Backend | None = None,
                 job: Job | None = None,
                 keep_alive: bool = False,
                 on_progress: Callable[[dict[str, Any]], None] | None = None,
                 progress_interval: float | None = None) -> None:
        self.spider = spider
        self.settings = settings
        self.pipelines = pipelines
        self.backend = backend or MemoryBackend()
        self.shared: bool = getattr(self.backend, "shared", False)
        self.job = job
        self.keep_alive = keep_alive
        self.on_progress = on_progress
        self.stats = Stats(spider.name)
        host_slots = getattr(self.backend, "host_slots", None)
        self.slots = host_slots(settings) if host_slots else HostSlots.from_settings(settings)
        self.admission = Admission(spider, self.backend.seen, max_depth=settings["max_depth"],
                                   serialise=self.backend.serialises, errors=self.stats.errors,
                                   filtered=self.stats.filtered, seen_ttl=settings["seen_ttl"])
        self.user_agent: str = settings["user_agent"]
        self.robots = RobotsState(self.user_agent) if settings["obey_robots"] else None
        self._robots_retry: dict[str, float] = {}
        self.retry = RetryPolicy.from_settings(settings)
        self.workers_n: int = settings["workers"]
        self.max_pages: int | None = settings["max_pages"]
        self.max_items: int | None = settings["max_items"]
        self.max_duration: float | None = settings["max_duration"]
        self.progress_interval: float = progress_interval or settings["progress_interval"]
        self.poll_interval: float = settings["poll_interval"]
        self.heartbeat: float = settings["heartbeat_interval"]
        self.tasks: queue.Queue[Any] = queue.Queue(maxsize=self.workers_n)
        self.results: queue.Queue[Any] = queue.Queue()
        self.in_flight = 0
        self._leases: dict[Any, str] = {}  # lease id -> host, for what is in flight
        self._stop_reason: str | None = None
        self._stop_started: float | None = None
        self._workers: list[Worker] = []
        self._idle_wait = self.poll_interval
        self._others_busy = False
        self._sent_stats: dict[str, int] = {}
        self.watchdog = Watchdog()

    # -- public --------------------------------------------------------------
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
        self._new_pass = False
        if self.job is not None and self.job.resumed:
            frontier = self.backend.frontier
            if self.settings["seen_ttl"] and frontier.pending() == 0 and frontier.leased() == 0:
                # an incremental job that finished last time: a new pass over the site, with
                # its own stats and limits, from the start requests
                self._new_pass = True
            else:
                snap = self.job.stats()
                if snap:
                    self.stats.restore(dict(snap))
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

    def cluster_stats(self) -> dict[str, int] | None:
        """The whole cluster's counters, for a shared backend."""
        get = getattr(self.backend, "cluster_stats", None)
        return get() if get is not None else None

    # -- set-up and tear-down ------------------------------------------------
    def _start_workers(self) -> None:
        config = FetchConfig.from_settings(self.settings)
        if config.verify is False:
            log.warning("tls_verify is off: TLS certificates are not checked")
        jar = RequestsCookieJar()
        offsite = self.admission.offsite if self.admission.domains else None
        for i in range(self.workers_n):
            w = Worker(i, self.spider, Fetcher(config, jar, self.watchdog), self.retry,
                       self.tasks, self.results,
                       max_redirects=self.settings["max_redirects"], offsite=offsite)
            w.start()
            self._workers.append(w)

    def _finish(self) -> None:
        try:
            self._drain_tasks()
        except Exception:
            log.exception("could not give back unstarted requests")
        for _ in self._workers:
            try:
                self.tasks.put_nowait(None)
            except queue.Full:
                break
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
        if self.shared:
            stats.backend_round_trips = getattr(self.backend, "round_trips", None)
        try:
            with self.backend.transaction():
                if self.job is not None:
                    self.job.save({}, stats.snapshot(), [])
                self._send_stats()
        except Exception:
            log.exception("could not save the final stats")
        self._report(final=True)

    # -- start requests ------------------------------------------------------
    def _seed(self, requests: Iterable[Any]) -> None:
        starts: list[Request] = []
        try:
            for r in requests:
                if isinstance(r, Request):
                    r.depth = 0
                    starts.append(r)
                else:
                    self.stats.error("bad-output")
                    log.error("start_requests yielded %s; expected a Request", type(r).__name__)
        except Exception:
            self.stats.error("start-requests")
            log.exception("start_requests raised; continuing with the %d requests it gave",
                          len(starts))
        job = self.job
        digest = start_hash([r.fingerprint for r in starts]) if job is not None else ""
        push = job is None or job.check_start(digest)  # JobMismatch before anything is done
        if self._new_pass:
            log.info("job finished last time: starting a new pass (pages seen more than "
                     "seen_ttl ago are fetched again)")
            self.backend.seen.add_many([r.fingerprint for r in starts])  # stamp them anew
            for r in starts:
                r.dont_filter = True  # the start pages are always fetched in a new pass
            push = True
        elif job is not None and job.resumed:
            back = self.backend.frontier.requeue_all()  # type: ignore[attr-defined]
            log.info("resuming job: %d requests queued (%d were in flight when it stopped)",
                     self.backend.frontier.pending(), back)
        if not push:
            return  # the frontier already holds everything
        with self.backend.transaction():
            self.backend.frontier.push(self.admission.admit(starts))
            if job is not None:
                job.started(digest)
                job.save(self.pipelines.positions(), self.stats.snapshot(), [])

    # -- handing out work ----------------------------------------------------
    def _budget(self) -> int:
        """How many more requests may be handed out now: a worker's worth of prefetch on one
        machine, none with a shared backend (a request queued here holds a cluster-wide
        host slot another process could use)."""
        n = self.workers_n * (1 if self.shared else 2) - self.in_flight
        if self.max_pages is not None:
            n = min(n, self.max_pages - self.stats.pages - self.in_flight)
        return n

    def _dispatch(self, now: float) -> int:
        """Hand out what the frontier has for hosts with room; returns how many."""
        if self._robots_retry:
            for host, t in list(self._robots_retry.items()):
                if t <= now:
                    del self._robots_retry[host]
                    self._need_robots(host)
        n = self._budget()
        if n <= 0:
            return 0
        slots, robots = self.slots, self.robots
        frontier = self.backend.frontier
        leases = frontier.pop(n, now=now, room=slots.room(now), default_room=slots.default_room)
        if not leases:
            return 0
        pop_takes_slots = getattr(slots, "pop_takes_slots", False)
        held = []
        for lease in leases:
            host = lease.entry.host
            request = self.admission.decode(lease.entry.data)
            if robots is not None:
                rules = robots.known(host)
                if rules is None:
                    held.append(lease)  # back to the frontier until robots.txt is known
                    if host not in robots.fetching:
                        self._need_robots(host)
                    continue
                if not rules.allowed(request.url, self.user_agent):
                    if pop_takes_slots:
                        slots.release(host, lease.id)  # never fetched: free the slot now
                    self._hand_out(lease.id, host, request, RobotsBlocked(
                        f"robots.txt disallows {request.url}", request=request))
                    continue
            slots.acquire(host, now, lease.id)
            self._hand_out(lease.id, host, request, None)
        if held:
            with self.backend.transaction():
                if pop_takes_slots:
                    for lease in held:
                        slots.release(lease.entry.host, lease.id)
                frontier.release([lease.id for lease in held])
        return len(leases) - len(held)

    def _hand_out(self, lease_id: Any, host: str, request: Request, refusal: Any) -> None:
        self.in_flight += 1
        self._leases[lease_id] = host
        self.tasks.put((lease_id, request, refusal))

    # -- robots.txt ----------------------------------------------------------
    def _need_robots(self, host: str) -> None:
        """Learn ``host``'s robots.txt: from the cluster if another process has it, else by
        fetching it (one process of the cluster fetches; the others wait and look again)."""
        assert self.robots is not None
        self.slots.closed.add(host)
        get = getattr(self.backend, "robots_get", None)
        if get is not None:
            known = get(host)
            if known is not None:
                self._apply_robots(host, *known)
                return
            claim = getattr(self.backend, "robots_claim", None)  # with robots_get: shared backends
            if claim is not None and not claim(host, self.settings["timeout"][1] * 2 + 5):
                self._robots_retry[host] = time.time() + self.poll_interval
                return
        self.robots.fetching.add(host)
        self.in_flight += 1
        self.tasks.put((None, Request(f"{host}/robots.txt", meta={"robots_for": host},
                                      dont_filter=True), None))

    def _learn_robots(self, o: Outcome, now: float) -> None:
        assert self.robots is not None
        host = o.request.meta["robots_for"]
        self.stats.requests += 1
        status = o.status
        self.robots.fetching.discard(host)
        if status is None or status >= 500 or status == 429:
            failures = self.robots.failures[host] = self.robots.failures.get(host, 0) + 1
            if failures < self.retry.attempts:
                self._robots_retry[host] = now + self.retry.backoff(failures)
                log.info("%s/robots.txt: %s; host held back, retrying later", host,
                         f"HTTP {status}" if status else o.error)
                return
            log.warning("%s/robots.txt: unavailable after %d tries; not crawling that host",
                        host, failures)
            status, text = 200, "User-agent: *\nDisallow: /\n"
        else:
            text = o.robots_text or ""
        put = getattr(self.backend, "robots_put", None)
        if put is not None:
            put(host, status, text)
        self._apply_robots(host, status, text)

    def _apply_robots(self, host: str, status: int | None, text: str) -> None:
        assert self.robots is not None
        rules = self.robots.learn(host, status, text)
        self.slots.closed.discard(host)
        if rules.sitemaps:
            self.spider.__dict__.setdefault("_robots_sitemaps", {})[host] = rules.sitemaps
        delay = rules.crawl_delay(self.user_agent)
        if delay:
            self.slots.set_min_delay(host, delay)

    # -- the loop ------------------------------------------------------------
    def _loop(self) -> None:
        started = time.monotonic()
        deadline = started + self.max_duration if self.max_duration else None
        next_report = started + self.progress_interval
        next_beat = started + self.heartbeat
        frontier = self.backend.frontier
        get, get_nowait = self.results.get, self.results.get_nowait
        while True:
            now_m = time.monotonic()
            if deadline is not None and now_m >= deadline:
                self._begin_stop("max_duration")
            if now_m >= next_report:
                self._report()
                next_report = now_m + self.progress_interval
            if now_m >= next_beat:
                self._heartbeat()
                next_beat = now_m + self.heartbeat
            dispatched = 0 if self.stopping else self._dispatch(time.time())
            if self.in_flight == 0:
                if self.stopping:
                    return
                if frontier.pending() == 0 and self._cluster_idle():
                    return
            idle = self.in_flight == 0 and dispatched == 0
            timeout = self._wait_time(next_report - now_m, next_beat - now_m,
                                      None if deadline is None else deadline - now_m, idle)
            try:
                first = get(timeout=timeout)
            except queue.Empty:
                if self.stopping and self.in_flight:
                    self._grace_expired()
                continue
            self._idle_wait = self.poll_interval
            batch = [first]
            try:
                while len(batch) < _BATCH:
                    batch.append(get_nowait())
            except queue.Empty:
                pass
            self._record([o for o in batch if o is not _WAKE])
            if self.stopping and self._stop_reason != "max_pages":
                self._drain_tasks()

    def _cluster_idle(self) -> bool:
        """True when no process can produce more work: always, on one machine; with a
        shared backend, when nothing is leased anywhere (and not --keep-alive)."""
        if not self.shared:
            return True
        frontier = self.backend.frontier
        frontier.requeue_expired()  # leases of processes that died
        # others still working will likely add work soon: look again at poll_interval;
        # a cluster with nothing at all to do (--keep-alive) is polled with back-off
        self._others_busy = frontier.pending() > 0 or frontier.leased() > 0
        if not self._others_busy:
            if self.keep_alive:
                return False
            return True
        self._idle_wait = self.poll_interval
        return False

    def _heartbeat(self) -> None:
        """Renew the leases of what is in flight; put back leases of dead processes."""
        frontier = self.backend.frontier
        if self._leases:
            frontier.renew(list(self._leases))
            renew_slots = getattr(self.slots, "renew", None)
            if renew_slots is not None:
                renew_slots(time.time())
        if self.shared:
            frontier.requeue_expired()
            with self.backend.transaction():
                self._send_stats()

    def _wait_time(self, to_report: float, to_beat: float, to_deadline: float | None,
                   idle: bool) -> float:
        candidates = [to_report, to_beat]
        if to_deadline is not None:
            candidates.append(to_deadline)
        if self.stopping:
            candidates.append(self._grace_left())
        else:
            now = time.time()
            robots_next = min(self._robots_retry.values()) if self._robots_retry else None
            for t in (self.backend.frontier.next_ready(), self.slots.next_wakeup(now), robots_next):
                if t is not None:
                    candidates.append(t - now)
            if self.shared and idle:
                # others may add work or free a host: look again, backing off while idle
                candidates.append(self._idle_wait)
                self._idle_wait = min(self._idle_wait * 2, max(self.poll_interval, 5.0))
        return max(0.0, min(candidates))

    # -- stopping ------------------------------------------------------------
    def _begin_stop(self, reason: str) -> None:
        if self._stop_reason is None:
            self._stop_reason = reason
            log.info("stopping: %s", reason)
        if reason != "max_pages":
            self._drain_tasks()

    def _grace_left(self) -> float:
        if self._stop_started is None:
            self._stop_started = time.monotonic()
        return self._stop_started + self.settings["shutdown_timeout"] - time.monotonic()

    def _grace_expired(self) -> None:
        if self._grace_left() <= 0:
            log.warning("%d request(s) still in flight after shutdown_timeout; abandoning them",
                        self.in_flight)
            self.in_flight = 0

    def _drain_tasks(self) -> None:
        """Take back tasks no worker has started, so stopping does not wait for them."""
        released = []
        while True:
            try:
                task = self.tasks.get_nowait()
            except queue.Empty:
                break
            if task is None:
                continue
            lease, request, refusal = task
            self.in_flight -= 1
            if lease is None:  # a robots.txt fetch: ask again later
                self.robots.fetching.discard(request.meta["robots_for"])  # type: ignore[union-attr]
                continue
            released.append((lease, self._leases.pop(lease, request.host), refusal is None))
        if released:
            with self.backend.transaction():
                for lease, host, holds_slot in released:
                    if holds_slot:
                        self.slots.release(host, lease)
                self.backend.frontier.release([lease for lease, _, _ in released])

    # -- recording outcomes --------------------------------------------------
    def _record(self, outcomes: list[Outcome]) -> None:
        if not outcomes:
            return
        stats = self.stats
        now = time.time()
        acks: list[Any] = []
        entries: list[Entry] = []
        new: list[Request] = []
        dead: list[tuple[str, str]] = []
        encode = self.admission.encode
        with self.backend.transaction():
            for o in outcomes:
                request = o.request
                self.in_flight -= 1
                if o.lease is None:
                    self._learn_robots(o, now)
                    continue
                host = self._leases.pop(o.lease, request.host)
                if o.fetched:
                    self.slots.release(host, o.lease)
                    stats.requests += 1
                acks.append(o.lease)
                if o.status is not None:
                    stats.statuses[o.status] += 1
                    stats.bytes += o.nbytes
                    if o.latency is not None:
                        self.slots.observe(host, o.latency, o.status)
                    if o.host_backoff is not None:
                        self.slots.back_off(host, now + o.host_backoff)
                    if o.redirect is not None:
                        new.append(o.redirect)
                    elif o.retry_in is None:
                        stats.pages += 1  # a final response (redirect hops and retried answers are not)
                if o.retry_in is not None:
                    stats.retries += 1
                    request.attempt += 1
                    data = encode(request)
                    if data is not None:
                        entries.append(Entry(host, data, request.priority, now + o.retry_in))
                elif o.error is not None:
                    stats.errors[o.error] += 1
                    if o.dead:
                        stats.dead += 1
                        if self.job is not None:
                            request.attempt = 0
                            data = encode(request)
                            if data is not None:
                                dead.append((data, o.error))
                if o.callback_errors:
                    stats.errors["callback"] += o.callback_errors
                if o.bad_outputs:
                    stats.errors["bad-output"] += o.bad_outputs
                if o.requests:
                    depth = request.depth + 1
                    for r in o.requests:
                        r.depth = depth
                    new.extend(o.requests)
                for item in o.items:
                    self._item(item)
                if o.close_reason is not None:
                    self._begin_stop(o.close_reason)
            if new:
                entries.extend(self.admission.admit(new))
            frontier = self.backend.frontier
            frontier.ack(acks)
            if entries:
                frontier.push(entries)
            if self.job is not None:
                self.job.save(self.pipelines.positions(), stats.snapshot(), dead)
            if self.shared:
                # items reach the files before their pages are acked: a process killed in
                # between loses nothing (another one fetches those pages again)
                self.pipelines.flush()
                self._send_stats()
        if self.max_pages is not None and stats.pages >= self.max_pages:
            self._begin_stop("max_pages")

    def _item(self, item: Any) -> None:
        if self.max_items is not None and self.stats.items >= self.max_items:
            self.stats.filtered["over-max-items"] += 1
            return
        if self.pipelines.process(item, self.spider) is not None:
            self.stats.items += 1
            if self.max_items is not None and self.stats.items >= self.max_items:
                self._begin_stop("max_items")

    def _send_stats(self) -> None:
        """Add what changed since last time to the cluster's counters (shared backends)."""
        add = getattr(self.backend, "add_stats", None)
        if add is None:
            return
        now = self.stats.counters()
        delta = {k: v - self._sent_stats.get(k, 0) for k, v in now.items()
                 if v != self._sent_stats.get(k, 0)}
        if delta:
            add(delta)
            self._sent_stats = now

    # -- progress ------------------------------------------------------------
    def progress(self) -> dict[str, Any]:
        """A snapshot for progress lines: pages, items, rate, queued, in flight, errors."""
        s = self.stats
        return {"pages": s.pages, "items": s.items, "pages_per_s": s.pages_per_second,
                "queued": self.backend.frontier.pending(), "in_flight": self.in_flight,
                "errors": sum(s.errors.values()), "elapsed": s.duration}

    def _report(self, final: bool = False) -> None:
        if self.on_progress is not None:
            snapshot = self.progress()
            snapshot["final"] = final
            self.on_progress(snapshot)
