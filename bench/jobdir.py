"""Bounded memory of a persistent job: N URLs through a job dir's seen-set and frontier.

    python bench/jobdir.py [--urls 2000000] [--batch 1000] [--backend sqlite|memory]

Each URL is fingerprinted, tested-and-set in the seen-set and, if new, pushed to the
frontier, in transactions of --batch URLs (as the engine records a batch of pages);
then everything is popped and acked. Prints rates and the process's peak RSS, which
for the SQLite job dir stays flat whatever --urls is.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scraper.http import fingerprint  # noqa: E402
from scraper.storage import Entry, MemoryBackend  # noqa: E402
from scraper.storage.sqlite import SQLiteBackend  # noqa: E402


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--urls", type=int, default=2_000_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--backend", choices=["sqlite", "memory"], default="sqlite")
    ap.add_argument("--hosts", type=int, default=50)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="jobdir-bench-")
    backend = SQLiteBackend(Path(tmp) / "job") if args.backend == "sqlite" else MemoryBackend()
    rss_start = peak_rss_mib()
    n, batch = args.urls, args.batch

    t0 = time.perf_counter()
    new = 0
    for start in range(0, n, batch):
        urls = [f"http://shop{i % args.hosts}.example/p/{i}.html?ref={i % 7}"
                for i in range(start, min(n, start + batch))]
        fps = [fingerprint("GET", u) for u in urls]
        with backend.transaction():
            fresh = backend.seen.add_many(fps)
            entries = [Entry(f"http://shop{i % args.hosts}.example:80", json.dumps({"url": u}))
                       for i, (u, f) in enumerate(zip(urls, fresh), start) if f]
            backend.frontier.push(entries)
        new += len(entries)
    push_s = time.perf_counter() - t0

    # the same URLs again: every one a duplicate (the common case in a crawl)
    t0 = time.perf_counter()
    for start in range(0, min(n, 200_000), batch):
        fps = [fingerprint("GET", f"http://shop{i % args.hosts}.example/p/{i}.html?ref={i % 7}")
               for i in range(start, min(n, start + batch))]
        with backend.transaction():
            assert not any(backend.seen.add_many(fps))
    dup_n = min(n, 200_000)
    dup_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    popped = 0
    backend.hosts.set_defaults(10**9, 0.0)  # measure the store, not politeness
    while True:
        with backend.transaction():
            leases = backend.frontier.pop(batch, now=time.time())
            if not leases:
                break
            backend.frontier.ack([lease.id for lease in leases])
        popped += len(leases)
    pop_s = time.perf_counter() - t0

    size = sum(f.stat().st_size for f in (Path(tmp) / "job").glob("*")) if args.backend == "sqlite" else 0
    result = {
        "backend": args.backend, "urls": n, "new": new, "popped": popped,
        "push_per_s": round(n / push_s), "duplicate_checks_per_s": round(dup_n / dup_s),
        "pop_ack_per_s": round(popped / pop_s), "peak_rss_mib": round(peak_rss_mib(), 1),
        "rss_at_start_mib": round(rss_start, 1), "job_dir_mib": round(size / 2**20, 1),
    }
    backend.close()
    print(json.dumps(result, indent=2))
    for f in (Path(tmp) / "job").glob("*") if args.backend == "sqlite" else ():
        f.unlink()
    return 0 if popped == new == n else 1


if __name__ == "__main__":
    raise SystemExit(main())
