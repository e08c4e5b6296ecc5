"""Recording outcomes: what each one changes in the stats, the host politeness state,
the frontier (acks, retries, redirects, new requests), the dead letters, the items
(checked against the spider's ``item_class``, then through the pipelines), the custom
counters spider code incremented, and the job, gathered per batch and committed by the
engine in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config import LimitSettings
from ..exceptions import BadItem
from ..fetch.policy import Fail, Redirect, Reschedule, Retry
from ..fetch.politeness import Politeness
from ..http import Request
from ..items import InvalidItem, ItemValidator, item_validator
from ..spider import Spider
from ..storage import Backend, Entry
from .admission import Admission
from .cluster import Cluster
from .job import Job
from .pipelines import PipelineChain
from .robots import RobotsGate
from .stats import Stats
from .tasks import PageOutcome, Produced, RobotsOutcome

__all__ = ["Batch", "Recorder"]

log = logging.getLogger(__name__)


@dataclass
class Batch:
    """What a batch of outcomes changes in the backend, applied by ``Recorder.commit``."""

    acks: list[Any] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    new: list[Request] = field(default_factory=list)
    dead: list[tuple[str, str]] = field(default_factory=list)


class Recorder:
    """Applies outcomes; ``stop`` is called with a reason when one ends the crawl."""

    def __init__(self, *, spider: Spider, backend: Backend, stats: Stats,
                 politeness: Politeness, gate: RobotsGate, admission: Admission,
                 pipelines: PipelineChain, cluster: Cluster, job: Job | None,
                 limits: LimitSettings, stop: Callable[[str], None],
                 fatal_kinds: frozenset[str] = frozenset()) -> None:
        self.spider = spider
        self.backend = backend
        self.stats = stats
        self.politeness = politeness
        self.gate = gate
        self.admission = admission
        self.pipelines = pipelines
        self.cluster = cluster
        self.job = job
        self.max_items = limits.max_items
        self.stop = stop
        # failure kinds that end the crawl as an error (``not-recorded`` under --strict)
        self.fatal_kinds = fatal_kinds
        # the spider's item_class (checked before the crawl started): None, no checking
        item_class = getattr(spider, "item_class", None)
        self.validate = item_validator(item_class) if item_class is not None else None

    def robots(self, o: RobotsOutcome, now: float) -> None:
        self.stats.requests += 1
        if o.error in self.fatal_kinds:
            log.error("%s/robots.txt: %s", o.host, o.error)
            self.stop("error")
        self.gate.learned(o.host, o.status, o.text, o.error, now)

    def page(self, o: PageOutcome, host: str, batch: Batch, now: float) -> None:
        self._exchange(o, host, now)
        batch.acks.append(o.lease)
        decision = o.decision
        if isinstance(decision, Retry):
            self._retry(o.request, host, decision.delay, batch, now)
        elif isinstance(decision, Redirect):
            batch.new.append(decision.request)
        elif isinstance(decision, Reschedule):
            decision.request.depth = o.request.depth  # it takes the place of the one it replaces
            batch.new.append(decision.request)
        elif isinstance(decision, Fail):
            self._failed(o.request, decision, batch)
        if o.exchange is not None and not isinstance(decision, Retry | Redirect | Reschedule):
            self.stats.pages += 1  # a final response (redirect hops and retried answers are not)
        self._produced(o.request, o.produced, batch)

    def _exchange(self, o: PageOutcome, host: str, now: float) -> None:
        ex = o.exchange
        if o.fetched:
            self.stats.requests += 1
            self.politeness.finished(host, o.lease, ex.latency if ex else None,
                                     ex.status if ex else None, sent_at=o.sent_at)
        if ex is None:
            return
        self.stats.statuses[ex.status] += 1
        self.stats.bytes += ex.nbytes
        if ex.cached is not None:
            self._cached(ex.cached)
        if ex.host_backoff is not None:
            self.politeness.back_off(host, now + ex.host_backoff)

    def _cached(self, how: str) -> None:
        if how == "miss":
            self.stats.cache_misses += 1
        elif how != "replayed":  # a hit, or a 304 that confirmed the stored body
            self.stats.cache_hits += 1

    def _retry(self, request: Request, host: str, delay: float, batch: Batch, now: float) -> None:
        self.stats.retries += 1
        request.attempt += 1
        data = self.admission.encode(request)
        if data is not None:
            batch.entries.append(Entry(host, data, request.priority, now + delay))

    def _failed(self, request: Request, decision: Fail, batch: Batch) -> None:
        kind = decision.error.kind
        status = decision.response.status if decision.response is not None else None
        self.stats.failure(kind, request.url, status)
        log.info("failed: %s (%s%s)", request.url, kind, f", HTTP {status}" if status else "")
        if kind in self.fatal_kinds:
            log.error("%s", decision.error)
            self.stop("error")
        if not decision.dead:
            return
        self.stats.dead += 1
        if self.backend.dead is not None:
            request.attempt = 0
            data = self.admission.encode(request)
            if data is not None:
                batch.dead.append((data, kind))

    def _produced(self, request: Request, p: Produced, batch: Batch) -> None:
        stats = self.stats
        if p.callback_errors:
            stats.errors["callback"] += p.callback_errors
        if p.bad_outputs:
            stats.errors["bad-output"] += p.bad_outputs
        if p.errors:
            stats.errors.update(p.errors)
        if p.custom:
            stats.custom.update(p.custom)
        if p.requests:
            depth = request.depth + 1
            for r in p.requests:
                r.depth = depth
            batch.new.extend(p.requests)
        for item in p.items:
            self._item(item, request)
        if p.close_reason is not None:
            self.stop(p.close_reason)

    def _item(self, item: Any, request: Request) -> None:
        stats, max_items = self.stats, self.max_items
        if max_items is not None and stats.items >= max_items:
            stats.filtered["over-max-items"] += 1
            return
        validate = self.validate
        if validate is not None:
            item = self._validated(validate, item, request)
            if item is None:
                return
        try:
            written = self.pipelines.process(item, self.spider)
        except BadItem as e:
            # one item an output cannot take must not stop the crawl (nor, when it is
            # resumed, stop it again on the same page): it is skipped, written nowhere
            stats.errors["bad-item"] += 1
            log.warning("bad item from %s skipped: %s", request.url, e)
            return
        if written is not None:
            stats.items += 1
            if max_items is not None and stats.items >= max_items:
                self.stop("max_items")

    def _validated(self, validate: ItemValidator, item: Any, request: Request) -> Any:
        """The item as its item_class makes it, or None (counted, not written) if it does
        not fit; each problem is logged once, with the first page that had it."""
        try:
            return validate(item)
        except InvalidItem as e:
            for problem in self.stats.invalid_item(e.problems, request.url):
                log.warning("invalid item from %s: %s (not written; such items are counted as "
                            "invalid-item and listed in the summary)", request.url, problem)
            return None

    def commit(self, batch: Batch) -> None:
        """Apply the batch to the backend (inside the engine's transaction)."""
        if batch.new:
            self.admission.admit(batch.new)  # marks them seen and pushes them, in one step
        backend = self.backend
        backend.frontier.ack(batch.acks)
        if batch.entries:
            backend.frontier.push(batch.entries)
        if batch.dead and backend.dead is not None:
            backend.dead.add(batch.dead)
        if self.job is not None:
            self.job.save(self.pipelines.positions(), self.stats.snapshot())
        if backend.shared:
            # items reach the files before their pages are acked: a process killed in
            # between loses nothing (another one fetches those pages again)
            self.pipelines.flush()
            self.cluster.send_stats()
