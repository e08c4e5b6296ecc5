"""Memory of an in-memory crawl: N discovered URLs through admission into ``memory://``.

    python bench/memory.py [--urls 1000000] [--links 95] [--hosts 50] [--breakdown]

Each URL becomes a ``Request`` the way a spider's ``follow_all`` makes one (callback
``parse``, depth 1) and goes through ``Admission.admit`` in batches of --links (one
page's links), as the coordinator records a page. Reported:

- ``bytes_per_url``: the resident set's growth (``/proc/self/statm``) over the push,
  divided by N: what each discovered-but-not-yet-fetched URL costs (frontier entry,
  seen-set fingerprint, admission's exact-URL cache, host state);
- ``admit_us_per_new``, ``admit_us_per_recent_duplicate``, ``admit_us_per_duplicate``:
  admission's CPU per link (Request construction not included) for new links, for the
  last 100,000 again (links seen recently: the common case on a real page) and for
  every URL again (seen long ago too, past the bounded exact-URL cache);
- ``pop_decode_us``: popping each entry, turning it back into a Request (what the
  dispatcher does) and acking it, per entry: set against a page's ~2-4 ms of CPU.

``--breakdown`` runs tracemalloc over the push instead (slower; use ~200k URLs) and
prints the live bytes per URL by the line that allocated them.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scraper.crawl.admission import Admission  # noqa: E402
from scraper.crawl.stats import Stats  # noqa: E402
from scraper.http import Request  # noqa: E402
from scraper.spider import Spider  # noqa: E402
from scraper.storage import MemoryBackend  # noqa: E402

_PAGE = os.sysconf("SC_PAGE_SIZE")


class ShopSpider(Spider):
    name = "bench-memory"

    def parse(self, response: Any) -> None:
        pass


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def peak_rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def url(i: int, hosts: int) -> str:
    # ~60 characters, the length of a typical product URL (bench/site.py's are 45-70)
    return f"http://shop{i % hosts}.example/catalogue/item-{i}/index.html?ref=list"


def batches(first: int, n: int, size: int, hosts: int, spider: Spider) -> Any:
    """One page's worth of follow-ups at a time, built as ``response.follow`` builds them."""
    for start in range(first, n, size):
        out = []
        for i in range(start, min(n, start + size)):
            r = Request(url(i, hosts), spider.parse)
            r.depth = 1
            out.append(r)
        yield out


def push(admission: Admission, n: int, size: int, hosts: int, spider: Spider,
         first: int = 0) -> float:
    """Admit URLs ``first`` to ``n``; returns admission's CPU seconds (Request building
    excluded)."""
    spent = 0.0
    for batch in batches(first, n, size, hosts, spider):
        t0 = time.process_time()
        with admission.backend.transaction():
            admission.admit(batch)
        spent += time.process_time() - t0
    return spent


def breakdown(args: argparse.Namespace) -> int:
    spider = ShopSpider()
    backend = MemoryBackend()
    admission = Admission(spider, backend, Stats(spider.name), max_depth=None,
                          serialise=backend.serialises)
    gc.collect()
    tracemalloc.start(1)
    before = tracemalloc.take_snapshot()
    push(admission, args.urls, args.links, args.hosts, spider)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    stats = after.compare_to(before, "lineno")
    total = sum(s.size_diff for s in stats)
    print(f"{args.urls} URLs, live bytes per URL {total / args.urls:.1f}, by allocating line:")
    for s in stats[:14]:
        frame = s.traceback[0]
        where = f"{Path(frame.filename).name}:{frame.lineno}"
        print(f"  {s.size_diff / args.urls:8.1f}  {where:28} {s.count_diff:>9} blocks")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--urls", type=int, default=1_000_000)
    ap.add_argument("--links", type=int, default=95, help="links per admitted batch (a page)")
    ap.add_argument("--hosts", type=int, default=50)
    ap.add_argument("--breakdown", action="store_true", help="tracemalloc, by allocating line")
    args = ap.parse_args()
    if args.breakdown:
        return breakdown(args)

    spider = ShopSpider()
    backend = MemoryBackend()
    stats = Stats(spider.name)
    admission = Admission(spider, backend, stats, max_depth=None, serialise=backend.serialises)
    n = args.urls
    gc.collect()
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    new_cpu = push(admission, n, args.links, args.hosts, spider)
    push_s = time.perf_counter() - t0
    gc.collect()
    grown = rss_bytes() - rss0
    pending = backend.frontier.pending()

    # the last 100,000 URLs again, in new Requests: duplicate links seen recently (the
    # common case: a site's navigation links on every page)
    recent = min(n, 100_000)
    recent_cpu = push(admission, n, args.links, args.hosts, spider, first=n - recent)
    # then every URL again: duplicates of URLs seen long ago too
    dup_cpu = push(admission, n, args.links, args.hosts, spider)
    duplicates = stats.filtered["duplicate"] - recent

    backend.hosts.set_defaults(10**9, 0.0)  # measure the store, not politeness
    popped = 0
    t0 = time.process_time()
    while True:
        leases = backend.frontier.pop(1000, now=time.time())
        if not leases:
            break
        for lease in leases:
            admission.decode(lease.entry.data, lease.entry.host)
        backend.frontier.ack([lease.id for lease in leases])
        popped += len(leases)
    pop_cpu = time.process_time() - t0

    result = {
        "urls": n, "mean_url_chars": round(sum(len(url(i, args.hosts)) for i in range(0, n, 997))
                                            / len(range(0, n, 997)), 1),
        "pending": pending, "duplicates": duplicates, "popped": popped,
        "bytes_per_url": round(grown / n, 1), "rss_growth_mib": round(grown / 2**20, 1),
        "peak_rss_mib": round(peak_rss_mib(), 1), "push_s": round(push_s, 2),
        "admit_us_per_new": round(new_cpu / n * 1e6, 2),
        "admit_us_per_recent_duplicate": round(recent_cpu / recent * 1e6, 2),
        "admit_us_per_duplicate": round(dup_cpu / max(duplicates, 1) * 1e6, 2),
        "pop_decode_us": round(pop_cpu / max(popped, 1) * 1e6, 2),
    }
    print(json.dumps(result, indent=2))
    return 0 if pending == popped == n == duplicates else 1


if __name__ == "__main__":
    raise SystemExit(main())
