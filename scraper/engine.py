"""The crawl loop: one coordinator thread feeding worker threads from the frontier.

    frontier ──pop (host room)──▶ tasks: queue.Queue ──▶ workers (fetch, callback)
        ▲                                                        │
        └── push ◀── dedup, depth, offsite ◀── coordinator ◀── results: queue.Queue
                                                   └──▶ pipelines ──▶ outputs

Only the coordinator touches the frontier, the seen-set, the stats and the
pipelines; workers only fetch and run spider code. Every task handed out comes
back as exactly one Outcome, so the crawl ends exactly when the frontier is
empty and nothing is in flight: the coordinator blocks on the results queue
(with a timeout only for timed events: retries, host delays, limits, progress)
and never polls to discover the end.

A duplicate link is the common case, so it is rejected before any canonical
URL or fingerprint is computed: the exact URL string is looked up in a bounded
cache of URLs already decided.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from requests.cookies import RequestsCookieJar

from .exceptions import RobotsBlocked
from .fetcher import FetchConfig, Fetcher, RetryPolicy
from .http import Request, host_key
from .job import Job, start_hash
from .pipelines import PipelineChain
from .politeness import HostSlots, RobotsState
from .spider import Spider
from .stats import Stats
from .storage import Backend, Entry, MemoryBackend
from .worker import Outcome, Worker

__all__ = ["Engine"]

log = logging.getLogger(__name__)

_WAKE = object()          # put on the results queue to wake the coordinator
_KNOWN_URLS_MAX = 500_000  # URLs remembered for the cheap duplicate check
_BATCH = 256               # outcomes recorded per transaction at most


class Engine:
    """Runs one crawl of one spider to its end and returns its Stats."""

    def __init__(self, spider: Spider, settings: Any, pipelines: PipelineChain, *,
                 backend: Backend | None = None,
                 job: Job | None = None,
                 on_progress: Callable[[dict[str, Any]], None] | None = None,
                 progress_interval: float | None = None) -> None:
        self.spider = spider
        self.settings = settings
        self.pipelines = pipelines
        self.backend = backend or MemoryBackend()
        self.job = job
        self.on_progress = on_progress
        self.stats = Stats(spider.name)
        self.slots = HostSlots.from_settings(settings)
        self.user_agent: str = settings["user_agent"]
        self.robots = RobotsState(self.user_agent) if settings["obey_robots"] else None
        self._robots_retry: dict[str, float] = {}
        self.retry = RetryPolicy.from_settings(settings)
        self.workers_n: int = settings["workers"]
        self.max_pages: int | None = settings["max_pages"]
        self.max_items: int | None = settings["max_items"]
        self.max_depth: int | None = settings["max_depth"]
        self.max_duration: float | None = settings["max_duration"]
        self.progress_interval: float = progress_interval or settings["progress_interval"]
        self.tasks: queue.Queue[Any] = queue.Queue(maxsize=self.workers_n)
        self.results: queue.Queue[Any] = queue.Queue()
        self.in_flight = 0
        self._stop_reason: str | None = None
        self._known: dict[str, str] = {}
        self._domains: tuple[str, ...] = ()
        self._host_ok: dict[str, bool] = {}
        self._workers: list[Worker] = []
        self._serialise = self.backend.serialises

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
        if self.job is not None and self.job.resumed:
            snap = self.job.stats()
            if snap:
                self.stats.restore(dict(snap))
        self.pipelines.open(spider)
        try:
            spider.opened()
            # read after opened(), which may set them from spider arguments
            self._domains = tuple(d.lower().lstrip(".") for d in (spider.allowed_domains or ()))
            self._start_workers()
            self._seed(spider.start_requests())
            self._loop()
        except BaseException:
            self._stop_reason = self._stop_reason or "error"
            raise
        finally:
            self._finish()
        return self.stats

    # -- set-up and tear-down ------------------------------------------------
    def _start_workers(self) -> None:
        config = FetchConfig.from_settings(self.settings)
        if config.verify is False:
            log.warning("tls_verify is off: TLS certificates are not checked")
        jar = RequestsCookieJar()
        for i in range(self.workers_n):
            w = Worker(i, self.spider, Fetcher(config, jar), self.retry, self.tasks, self.results,
                       max_redirects=self.settings["max_redirects"],
                       offsite=self._offsite if self._domains else None)
            w.start()
            self._workers.append(w)

    def _finish(self) -> None:
        self._drain_tasks()
        for _ in self._workers:
            try:
                self.tasks.put_nowait(None)
            except queue.Full:
                break
        stats = self.stats
        stats.reason = self._stop_reason or "finished"
        try:
            self.spider.closed(stats.reason)
        except Exception:
            log.exception("%s.closed() raised", type(self.spider).__name__)
        self.pipelines.close(self.spider)
        stats.errors.update(_nonzero({"pipeline-error": self.pipelines.errors}))
        if self.pipelines.dropped:
            stats.filtered["dropped-item"] += self.pipelines.dropped
        stats.finished = time.time()
        if self.job is not None:
            try:
                with self.backend.transaction():
                    self.job.save({}, stats.snapshot(), [])
            except Exception:
                log.exception("could not save the job's final stats")
        self._report(final=True)

    # -- scheduling ----------------------------------------------------------
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
        if job is not None and job.resumed:
            back = self.backend.frontier.requeue_all()  # type: ignore[attr-defined]
            log.info("resuming job: %d requests queued (%d were in flight when it stopped)",
                     self.backend.frontier.pending(), back)
        if not push:
            return  # the frontier already holds everything
        entries = [e for e in map(self._admit, starts) if e is not None]
        with self.backend.transaction():
            self.backend.frontier.push(entries)
            if job is not None:
                job.started(digest)
                job.save(self.pipelines.positions(), self.stats.snapshot(), [])

    def _admit(self, r: Request) -> Entry | None:
        """The frontier entry for a new request, or None if it is filtered out."""
        filtered = self.stats.filtered
        plain = r.method == "GET" and r.body is None and not r.dont_filter
        if plain:
            known = self._known.get(r.url)
            if known is not None:
                filtered[known] += 1
                return None
        if self.max_depth is not None and r.depth > self.max_depth:
            filtered["depth"] += 1
            return None
        host = r.host
        if self._domains and not self._allowed(host):
            filtered["offsite"] += 1
            if plain:
                self._remember(r.url, "offsite")
            return None
        if not self._valid_callbacks(r):
            return None
        if not r.dont_filter:
            if plain:
                self._remember(r.url, "duplicate")
            if not self.backend.seen.add(r.fingerprint):
                filtered["duplicate"] += 1
                return None
        data = self._encode(r)
        if data is None:
            return None
        return Entry(host, data, r.priority)

    def _remember(self, url: str, verdict: str) -> None:
        known = self._known
        if len(known) >= _KNOWN_URLS_MAX:
            known.clear()  # cheap and safe: the seen-set stays the authority
        known[url] = verdict

    def _allowed(self, host: str) -> bool:
        ok = self._host_ok.get(host)
        if ok is None:
            name = host.split("://", 1)[1].rsplit(":", 1)[0].strip("[]")
            ok = any(name == d or name.endswith("." + d) for d in self._domains)
            self._host_ok[host] = ok
        return ok

    def _offsite(self, url: str) -> bool:
        return not self._allowed(host_key(url))

    def _valid_callbacks(self, r: Request) -> bool:
        for attr in ("callback", "errback"):
            ref = getattr(r, attr)
            if ref is None:
                continue
            if isinstance(ref, str):
                ok = callable(getattr(self.spider, ref, None))
            else:
                ok = getattr(ref, "__self__", None) is self.spider
            if not ok:
                self.stats.error("bad-request")
                log.error("request %s: %s must be a method of the spider (they are stored by "
                          "name), got %r", r.url, attr, ref)
                return False
        return True

    def _encode(self, r: Request) -> Any:
        if not self._serialise:
            return r
        try:
            return json.dumps(r.to_dict(), separators=(",", ":"))
        except ValueError as e:
            self.stats.error("bad-request")
            log.error("%s", e)
            return None

    def _decode(self, data: Any) -> Request:
        return data if not self._serialise else Request.from_dict(json.loads(data))

    # -- the loop ------------------------------------------------------------
    def _budget(self) -> int:
        """How many more requests may be handed out now."""
        n = self.workers_n * 2 - self.in_flight
        if self.max_pages is not None:
            n = min(n, self.max_pages - self.stats.pages - self.in_flight)
        return n

    def _dispatch(self, now: float) -> None:
        if self._robots_retry:
            for host, t in list(self._robots_retry.items()):
                if t <= now:
                    del self._robots_retry[host]
                    self._fetch_robots(host)
        n = self._budget()
        if n <= 0:
            return
        slots, robots = self.slots, self.robots
        frontier = self.backend.frontier
        leases = frontier.pop(n, now=now, room=slots.room(now), default_room=slots.default_room)
        put = self.tasks.put
        held = []
        for lease in leases:
            host = lease.entry.host
            request = self._decode(lease.entry.data)
            if robots is not None:
                rules = robots.known(host)
                if rules is None:
                    held.append(lease.id)  # back to the frontier until robots.txt is known
                    if host not in robots.fetching:
                        self._fetch_robots(host)
                    continue
                if not rules.allowed(request.url, self.user_agent):
                    self.in_flight += 1
                    put((lease.id, request, RobotsBlocked(f"robots.txt disallows {request.url}",
                                                          request=request)))
                    continue
            slots.acquire(host, now)
            self.in_flight += 1
            put((lease.id, request, None))
        if held:
            frontier.release(held)

    def _fetch_robots(self, host: str) -> None:
        """Hand a worker the robots.txt of ``host``; the host gets no room until it is known."""
        assert self.robots is not None
        self.robots.fetching.add(host)
        self.slots.closed.add(host)
        self.in_flight += 1
        self.tasks.put((None, Request(f"{host}/robots.txt", meta={"robots_for": host},
                                      dont_filter=True), None))

    def _learn_robots(self, o: Outcome, now: float) -> None:
        assert self.robots is not None
        host = o.request.meta["robots_for"]
        self.stats.requests += 1
        status = o.status
        if status is None or status >= 500 or status == 429:
            failures = self.robots.failures[host] = self.robots.failures.get(host, 0) + 1
            if failures < self.retry.attempts:
                self.robots.fetching.discard(host)
                self._robots_retry[host] = now + self.retry.backoff(failures)
                log.info("%s/robots.txt: %s; host held back, retrying later", host,
                         f"HTTP {status}" if status else o.error)
                return
            log.warning("%s/robots.txt: unavailable after %d tries; not crawling that host",
                        host, failures)
            rules = self.robots.learn(host, 200, "User-agent: *\nDisallow: /\n")
        else:
            rules = self.robots.learn(host, status, o.robots_text)
        self.slots.closed.discard(host)
        if rules.sitemaps:
            self.spider._robots_sitemaps[host] = rules.sitemaps
        delay = rules.crawl_delay(self.user_agent)
        if delay:
            self.slots.set_min_delay(host, delay)

    def _loop(self) -> None:
        started = time.monotonic()
        deadline = started + self.max_duration if self.max_duration else None
        next_report = started + self.progress_interval
        frontier = self.backend.frontier
        get, get_nowait = self.results.get, self.results.get_nowait
        while True:
            now_m = time.monotonic()
            if deadline is not None and now_m >= deadline:
                self._begin_stop("max_duration")
            if now_m >= next_report:
                self._report()
                next_report = now_m + self.progress_interval
            if not self.stopping:
                self._dispatch(time.time())
            if self.in_flight == 0 and (self.stopping or frontier.pending() == 0):
                return
            timeout = self._wait_time(next_report - now_m,
                                      None if deadline is None else deadline - now_m)
            try:
                first = get(timeout=timeout)
            except queue.Empty:
                if self.stopping and self.in_flight:
                    self._grace_expired()
                continue
            batch = [first]
            try:
                while len(batch) < _BATCH:
                    batch.append(get_nowait())
            except queue.Empty:
                pass
            self._record([o for o in batch if o is not _WAKE])
            if self.stopping and self._stop_reason != "max_pages":
                self._drain_tasks()

    def _wait_time(self, to_report: float, to_deadline: float | None) -> float:
        candidates = [to_report]
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
        return max(0.0, min(candidates))

    # -- stopping ------------------------------------------------------------
    def _begin_stop(self, reason: str) -> None:
        if self._stop_reason is None:
            self._stop_reason = reason
            log.info("stopping: %s", reason)
        if reason != "max_pages":
            self._drain_tasks()

    _stop_started: float | None = None

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
            released.append(lease)
            if refusal is None:
                self.slots.release(request.host)
        if released:
            with self.backend.transaction():
                self.backend.frontier.release(released)

    # -- recording outcomes --------------------------------------------------
    def _record(self, outcomes: list[Outcome]) -> None:
        if not outcomes:
            return
        stats = self.stats
        now = time.time()
        acks: list[Any] = []
        entries: list[Entry] = []
        dead: list[tuple[str, str]] = []
        with self.backend.transaction():
            for o in outcomes:
                request = o.request
                self.in_flight -= 1
                if o.lease is None:
                    self._learn_robots(o, now)
                    continue
                host = request.host
                if o.fetched:
                    self.slots.release(host)
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
                        entry = self._admit(o.redirect)
                        if entry is not None:
                            entries.append(entry)
                    else:
                        stats.pages += 1
                if o.retry_in is not None:
                    stats.retries += 1
                    request.attempt += 1
                    data = self._encode(request)
                    if data is not None:
                        entries.append(Entry(request.host, data, request.priority, now + o.retry_in))
                elif o.error is not None:
                    stats.errors[o.error] += 1
                    if o.dead:
                        stats.dead += 1
                        if self.job is not None:
                            request.attempt = 0
                            data = self._encode(request)
                            if data is not None:
                                dead.append((data, o.error))
                if o.callback_errors:
                    stats.errors["callback"] += o.callback_errors
                if o.bad_outputs:
                    stats.errors["bad-output"] += o.bad_outputs
                depth = request.depth + 1
                for r in o.requests:
                    r.depth = depth
                    entry = self._admit(r)
                    if entry is not None:
                        entries.append(entry)
                for item in o.items:
                    self._item(item)
                if o.close_reason is not None:
                    self._begin_stop(o.close_reason)
            frontier = self.backend.frontier
            frontier.ack(acks)
            if entries:
                frontier.push(entries)
            if self.job is not None:
                self.job.save(self.pipelines.positions(), stats.snapshot(), dead)
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


def _nonzero(d: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in d.items() if v}

