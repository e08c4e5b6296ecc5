"""Crawl counters and the run summary (printed at the end, optionally written as JSON).

Only the engine's coordinator thread updates a Stats, so it needs no lock.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["FAILURES_KEPT", "Stats"]

FAILURES_KEPT = 10


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
    return out


def _refill(counter: Counter[Any], values: dict[Any, int]) -> None:
    counter.clear()
    counter.update(values)


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
    elapsed_before: float = 0.0   # seconds of earlier runs of the same job
    cluster: dict[str, int] | None = None  # the whole cluster's counters (shared backend)
    backend_round_trips: int | None = None  # calls to a shared backend by this process
    first_started: float | None = None
    errors: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    filtered: Counter[str] = field(default_factory=Counter)
    # the first FAILURES_KEPT final failures of each kind: which URLs, not just how many
    failures: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def error(self, kind: str, n: int = 1) -> None:
        self.errors[kind] += n

    def failure(self, kind: str, url: str, status: int | None) -> None:
        """A request that failed for good: counted, and kept among its kind's first few."""
        self.errors[kind] += 1
        kept = self.failures.setdefault(kind, [])
        if len(kept) < FAILURES_KEPT:
            kept.append({"url": url, "status": status} if status else {"url": url})

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
            "errors": dict(sorted(self.errors.items())),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "filtered": dict(sorted(self.filtered.items())),
            "failures": {k: list(v) for k, v in sorted(self.failures.items())},
            "started": _iso(self.first_started or self.started),
            "finished": _iso(self.finished or time.time()),
            "duration_s": round(self.duration, 3),
            "pages_per_s": round(self.pages_per_second, 1),
            **({"cluster": _cluster_summary(self.cluster)} if self.cluster is not None else {}),
            **({"backend_round_trips": self.backend_round_trips}
               if self.backend_round_trips is not None else {}),
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
        ] + ([] if self.cluster is None else [
            "cluster   pages {pages}, items {items}, errors {errors_total}, requests {requests} "
            "(every process of this crawl)".format(**s["cluster"])]))

    def counters(self) -> dict[str, int]:
        """Every counter as one flat mapping (``errors:timeout``, ``statuses:200``...)."""
        flat = {"pages": self.pages, "items": self.items, "requests": self.requests,
                "bytes": self.bytes, "retries": self.retries, "dead": self.dead}
        flat.update({f"errors:{k}": v for k, v in self.errors.items()})
        flat.update({f"statuses:{k}": v for k, v in self.statuses.items()})
        flat.update({f"filtered:{k}": v for k, v in self.filtered.items()})
        return flat

    def snapshot(self) -> dict[str, Any]:
        """The counters, for a job dir to restore them when the crawl resumes."""
        return {
            "pages": self.pages, "items": self.items, "requests": self.requests,
            "bytes": self.bytes, "retries": self.retries, "dead": self.dead,
            "errors": dict(self.errors), "statuses": {str(k): v for k, v in self.statuses.items()},
            "filtered": dict(self.filtered), "elapsed": self.duration,
            "failures": self.failures,
            "first_started": self.first_started or self.started,
        }

    def restore(self, snap: dict[str, Any]) -> None:
        """Continue counting from a snapshot of an earlier run of the same job."""
        for key in ("pages", "items", "requests", "bytes", "retries", "dead"):
            setattr(self, key, int(snap.get(key, 0)))
        # in place: admission, the recorder and the cluster hold these very Counters
        _refill(self.errors, snap.get("errors", {}))
        _refill(self.statuses, {int(k): v for k, v in snap.get("statuses", {}).items()})
        _refill(self.filtered, snap.get("filtered", {}))
        self.failures = {k: list(v) for k, v in (snap.get("failures") or {}).items()}
        self.elapsed_before = float(snap.get("elapsed", 0.0))
        self.first_started = snap.get("first_started")

    def write_summary(self, path: str | Path) -> None:
        p = Path(path)
        if p.parent != Path("."):
            p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.summary(), indent=2) + "\n", encoding="utf-8")
