"""Crawl counters and the run summary (printed at the end, optionally written as JSON).

Only the engine's coordinator thread updates a Stats, so it needs no lock. Spider code
adds custom counters with ``spider.stats.inc(name)`` (``Stats.inc``) from any thread: in
a worker thread (where callbacks run) the increments go to that thread's
``WorkerCounters``, which the worker hands over with each outcome, so they are recorded
in the coordinator with the page that made them: exactly once, even across a resumed
job, and with no lock on the hot path.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..fetch.adaptive import bind_counts

__all__ = ["FAILURES_KEPT", "INVALID_KINDS_KEPT", "OTHER_INVALID", "Stats", "WorkerCounters"]

FAILURES_KEPT = 10
# distinct invalid-item problems listed: a validator whose message holds the bad value
# would otherwise grow the summary (and every job save) without bound
INVALID_KINDS_KEPT = 100
OTHER_INVALID = "(other problems)"

_thread = threading.local()  # .counters: the WorkerCounters of a worker thread
# custom counters kept by the crawl itself: pages the browser rendered ("@rendered") and
# pages adaptive rendering fetched with HTTP alone ("@http"); shown apart from the spider's
_OWN = "@"


class WorkerCounters:
    """The custom counters spider code incremented in one worker thread since the last
    outcome that thread handed over. ``install`` once in the thread, ``take`` after
    each task (the worker puts them in the outcome's Produced)."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    @classmethod
    def install(cls) -> WorkerCounters:
        """This thread's counters: from now on its ``Stats.inc`` calls add here, and so do
        its fetchers' counts of pages rendered or not (``@rendered``, ``@http``)."""
        counters = _thread.counters = cls()
        bind_counts(counters.counts)
        return counters

    def take(self) -> dict[str, int] | None:
        """What was counted since the last ``take`` (None: nothing)."""
        counts = self.counts
        if not counts:
            return None
        taken = dict(counts)
        counts.clear()  # the same dict: the fetchers of this thread hold it
        return taken


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def _cluster_summary(flat: dict[str, int]) -> dict[str, Any]:
    """The cluster's flat counters (``errors:timeout``...) shaped like a summary."""
    out: dict[str, Any] = {k: flat.get(k, 0) for k in ("pages", "items", "requests", "retries",
                                                        "bytes", "dead")}
    for group in ("errors", "statuses", "filtered"):
        out[group] = {k.split(":", 1)[1]: v for k, v in sorted(flat.items())
                      if k.startswith(group + ":") and v}
    out["errors_total"] = sum(out["errors"].values())
    out["custom"] = {k.split(":", 1)[1]: v for k, v in sorted(flat.items())
                     if k.startswith("custom:") and not k.startswith("custom:" + _OWN)}
    out["rendered"] = flat.get(f"custom:{_OWN}rendered", 0)
    out["http"] = flat.get(f"custom:{_OWN}http", 0)
    return out


def _refill(counter: Counter[Any], values: dict[Any, int]) -> None:
    counter.clear()
    counter.update(values)


def _optional_lines(s: dict[str, Any]) -> list[str]:
    """Summary lines shown only when there is something to show."""
    lines = []
    invalid = sorted(s["invalid_items"].items(), key=lambda kv: -kv[1]["count"])
    if invalid:
        more = f", and {len(invalid) - 5} more" if len(invalid) > 5 else ""
        lines.append("invalid   " + ", ".join(f"{k} {v['count']}" for k, v in invalid[:5]) + more
                     + "  (items not written; the first page of each is in the summary JSON)")
    if s["cache_hits"] or s["cache_misses"]:
        lines.append(f"cache     hits {s['cache_hits']}, misses {s['cache_misses']}")
    if s["rendered"] or s["http"]:
        lines.append(f"browser   rendered {s['rendered']}, http {s['http']}  (http: pages "
                     "adaptive rendering did not render)")
    if s["custom"]:
        lines.append("custom    " + ", ".join(f"{k} {v}" for k, v in s["custom"].items()))
    procs = s.get("processes")
    if procs:
        lines.append(f"processes {procs['count']} x {procs['threads_each']} threads "
                     f"(restarts {procs['restarts']}, coordinator CPU "
                     f"{procs['coordinator_cpu_s']:.1f} s)")
    return lines


@dataclass
class Stats:
    """Counters of one crawl."""

    spider: str
    started: float = field(default_factory=time.time)
    finished: float | None = None
    reason: str | None = None
    pages: int = 0
    items: int = 0
    requests: int = 0
    bytes: int = 0
    retries: int = 0
    dead: int = 0                 # requests that failed after their last retry
    cache_hits: int = 0           # answers the HTTP cache gave (a 304 revalidation included)
    cache_misses: int = 0         # cacheable requests the cache could not answer
    elapsed_before: float = 0.0   # seconds of earlier runs of the same job
    cluster: dict[str, int] | None = None  # the whole cluster's counters (shared backend)
    backend_round_trips: int | None = None  # calls to a shared backend by this process
    worker_restarts: int | None = None  # worker processes restarted (processes > 1)
    processes: dict[str, Any] | None = None  # worker processes: count, CPU, peak memory
    first_started: float | None = None
    errors: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    filtered: Counter[str] = field(default_factory=Counter)
    # the first FAILURES_KEPT final failures of each kind: which URLs, not just how many
    failures: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    custom: Counter[str] = field(default_factory=Counter)  # spider.stats.inc(name, n)
    # problem ("price: field required") -> {"count": items, "url": the first page with it}
    invalid_items: dict[str, dict[str, Any]] = field(default_factory=dict)

    def inc(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the custom counter ``name`` (``spider.stats.inc``). From a worker
        thread the increment travels with that thread's next outcome; elsewhere (opened,
        closed, start_requests, pipelines: the coordinator) it is counted at once."""
        if not isinstance(name, str):
            raise TypeError(f"stats.inc: the counter name must be a string, got {name!r}")
        if not name:
            raise ValueError("stats.inc: the counter name is empty")
        if name.startswith(_OWN):
            raise ValueError(f"stats.inc: counter names starting with {_OWN!r} are the "
                             f"crawl's own ({name!r})")
        if not isinstance(n, int) or isinstance(n, bool):
            raise TypeError(f"stats.inc({name!r}): n must be an int, got {n!r}")
        counters: WorkerCounters | None = getattr(_thread, "counters", None)
        if counters is None:
            self.custom[name] += n
        else:
            counts = counters.counts
            counts[name] = counts.get(name, 0) + n

    def invalid_item(self, problems: list[str], url: str) -> list[str]:
        """An item its item_class refused: counted (``invalid-item``), each problem with
        the first URL that had it. Returns the problems not seen before (to log once)."""
        self.errors["invalid-item"] += 1
        new = []
        listed = self.invalid_items
        for problem in problems:
            entry = listed.get(problem)
            if entry is None:
                if len(listed) >= INVALID_KINDS_KEPT:
                    problem = OTHER_INVALID
                    entry = listed.get(problem)
                if entry is None:
                    entry = listed[problem] = {"count": 0, "url": url}
                    new.append(problem)
            entry["count"] += 1
        return new

    def error(self, kind: str, n: int = 1) -> None:
        self.errors[kind] += n

    def failure(self, kind: str, url: str, status: int | None) -> None:
        """A request that failed for good: counted, and kept among its kind's first few."""
        self.errors[kind] += 1
        kept = self.failures.setdefault(kind, [])
        if len(kept) < FAILURES_KEPT:
            kept.append({"url": url, "status": status} if status else {"url": url})

    @property
    def rendered(self) -> int:
        """Pages the browser rendered (``meta["browser"]``, or adaptive rendering)."""
        return self.custom.get(_OWN + "rendered", 0)

    @property
    def http(self) -> int:
        """Pages adaptive rendering fetched with HTTP alone."""
        return self.custom.get(_OWN + "http", 0)

    @property
    def duration(self) -> float:
        return self.elapsed_before + (self.finished or time.time()) - self.started

    @property
    def pages_per_second(self) -> float:
        d = self.duration
        return self.pages / d if d > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """The run summary as a JSON-ready dict (the keys ``--summary`` promises)."""
        return {
            "spider": self.spider,
            "reason": self.reason,
            "pages": self.pages,
            "items": self.items,
            "requests": self.requests,
            "retries": self.retries,
            "dead_letters": self.dead,
            "bytes": self.bytes,
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
            "errors": dict(sorted(self.errors.items())),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "filtered": dict(sorted(self.filtered.items())),
            "failures": {k: list(v) for k, v in sorted(self.failures.items())},
            "invalid_items": {k: dict(v) for k, v in sorted(self.invalid_items.items())},
            "custom": {k: v for k, v in sorted(self.custom.items()) if not k.startswith(_OWN)},
            "rendered": self.custom.get(_OWN + "rendered", 0),
            "http": self.custom.get(_OWN + "http", 0),
            "started": _iso(self.first_started or self.started),
            "finished": _iso(self.finished or time.time()),
            "duration_s": round(self.duration, 3),
            "pages_per_s": round(self.pages_per_second, 1),
            **({"cluster": _cluster_summary(self.cluster)} if self.cluster is not None else {}),
            **({"backend_round_trips": self.backend_round_trips}
               if self.backend_round_trips is not None else {}),
            **({"worker_restarts": self.worker_restarts, "processes": self.processes}
               if self.processes is not None else {}),
        }

    def format_summary(self) -> str:
        """The summary as a few human lines."""
        s = self.summary()
        errors = ", ".join(f"{k} {v}" for k, v in s["errors"].items()) or "none"
        statuses = ", ".join(f"{k}: {v}" for k, v in s["statuses"].items()) or "none"
        filtered = ", ".join(f"{k} {v}" for k, v in s["filtered"].items()) or "none"
        return "\n".join([
            f"--- {self.spider}: {s['reason']} ---",
            f"pages     {s['pages']}  ({s['pages_per_s']} pages/s over {s['duration_s']:.1f} s)",
            f"items     {s['items']}",
            f"errors    {sum(self.errors.values())}  ({errors})",
            f"statuses  {statuses}",
            f"filtered  {filtered}",
            f"requests  {s['requests']}  (retries {s['retries']}, failed after retries "
            f"{s['dead_letters']}, {s['bytes'] / 1e6:.1f} MB)",
        ] + _optional_lines(s) + ([] if self.cluster is None else [
            "cluster   pages {pages}, items {items}, errors {errors_total}, requests {requests} "
            "(every process of this crawl)".format(**s["cluster"])]))

    def counters(self) -> dict[str, int]:
        """Every counter as one flat mapping (``errors:timeout``, ``statuses:200``...)."""
        flat = {"pages": self.pages, "items": self.items, "requests": self.requests,
                "bytes": self.bytes, "retries": self.retries, "dead": self.dead}
        flat.update({f"errors:{k}": v for k, v in self.errors.items()})
        flat.update({f"statuses:{k}": v for k, v in self.statuses.items()})
        flat.update({f"filtered:{k}": v for k, v in self.filtered.items()})
        flat.update({f"custom:{k}": v for k, v in self.custom.items()})
        return flat

    def snapshot(self) -> dict[str, Any]:
        """The counters, for a job dir to restore them when the crawl resumes."""
        return {
            "pages": self.pages, "items": self.items, "requests": self.requests,
            "bytes": self.bytes, "retries": self.retries, "dead": self.dead,
            "cache_hits": self.cache_hits, "cache_misses": self.cache_misses,
            "errors": dict(self.errors), "statuses": {str(k): v for k, v in self.statuses.items()},
            "filtered": dict(self.filtered), "elapsed": self.duration,
            "failures": self.failures,
            "custom": dict(self.custom), "invalid_items": self.invalid_items,
            "first_started": self.first_started or self.started,
        }

    def restore(self, snap: dict[str, Any]) -> None:
        """Continue counting from a snapshot of an earlier run of the same job."""
        for key in ("pages", "items", "requests", "bytes", "retries", "dead", "cache_hits",
                    "cache_misses"):
            setattr(self, key, int(snap.get(key, 0)))
        # in place: admission, the recorder and the cluster hold these very Counters
        _refill(self.errors, snap.get("errors", {}))
        _refill(self.statuses, {int(k): v for k, v in snap.get("statuses", {}).items()})
        _refill(self.filtered, snap.get("filtered", {}))
        self.failures = {k: list(v) for k, v in (snap.get("failures") or {}).items()}
        _refill(self.custom, snap.get("custom") or {})
        self.invalid_items = {k: dict(v) for k, v in (snap.get("invalid_items") or {}).items()}
        self.elapsed_before = float(snap.get("elapsed", 0.0))
        self.first_started = snap.get("first_started")

    def write_summary(self, path: str | Path) -> None:
        p = Path(path)
        if p.parent != Path("."):
            p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.summary(), indent=2) + "\n", encoding="utf-8")
