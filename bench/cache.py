"""What the HTTP cache buys on a slow site: the same crawl twice, the second from the cache.

    python bench/cache.py [--pages 600] [--latency 0.2] [--workers 32] [--rounds 3]

A local site answers every page after --latency seconds (bench/cluster.py's
LatencySite: pages linking to 10 more until --pages exist). Each round starts from
an empty cache directory, runs `python -m scraper run ... -s httpcache.enabled=true`
twice, and reports both runs' pages/s (from their summaries), their CPU seconds per
page (the child's user + system time), and the second run's hits. The ratios are
the medians over the rounds. For the loopback bench site, where fetching is cheap,
`bench/run.py --only a,g --rounds 3` compares CPU per page of a run from the cache
with (a) in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cluster import SPIDER, LatencySite  # noqa: E402


def _crawl(tmp: Path, site: LatencySite, workers: int, summary: Path) -> tuple[dict, float]:
    """One crawl through the CLI; its summary and its CPU seconds."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "scraper", "run", "cluster_tree",
                    "-a", f"base_url={site.url}", "-s", f"workers={workers}",
                    "-s", f"per_host_workers={workers}", "-s", "httpcache.enabled=true",
                    "-s", f"httpcache.dir={tmp / 'cache'}", "--summary", str(summary)],
                   cwd=tmp, env=env, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(summary.read_text()), cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=600)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--workers", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="scraper-cache-bench-"))
    (tmp / "spiders").mkdir()
    (tmp / "spiders" / "cluster_tree.py").write_text(SPIDER)
    (tmp / "config.yaml").write_text("obey_robots: false\nlog_level: WARNING\n")
    site = LatencySite(args.pages, args.latency)
    speedups, cpu_ratios = [], []
    try:
        for r in range(1, args.rounds + 1):
            shutil.rmtree(tmp / "cache", ignore_errors=True)
            first, cpu1 = _crawl(tmp, site, args.workers, tmp / "first.json")
            second, cpu2 = _crawl(tmp, site, args.workers, tmp / "second.json")
            pages = first["pages"]
            assert second["pages"] == pages and second["cache_hits"] == pages, second
            speedups.append(second["pages_per_s"] / first["pages_per_s"])
            cpu_ratios.append((cpu2 / pages) / (cpu1 / pages))
            print(f"round {r}: network {first['pages_per_s']:.1f} pages/s, "
                  f"{1000 * cpu1 / pages:.2f} ms CPU/page; cache {second['pages_per_s']:.1f} "
                  f"pages/s, {1000 * cpu2 / pages:.2f} ms CPU/page, {second['cache_hits']} hits")
    finally:
        site.server.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{args.pages} pages at {args.latency * 1000:.0f} ms, {args.workers} workers, "
          f"{args.rounds} rounds: from the cache {statistics.median(speedups):.1f}x the pages/s, "
          f"{statistics.median(cpu_ratios):.2f}x the CPU per page (medians)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
