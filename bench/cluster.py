"""Scaling of one shared crawl over several processes (the Redis backend).

    python bench/cluster.py [--site latency|shop] [--procs 1,2,4] [--workers 8]
                            [--pages 1200] [--latency 0.2] [--per-host N] [--prefetch N]
                            [--backend redis|cluster] [--src DIR]

``--site latency`` (the default): a local site answers every page after --latency
seconds (so the 2 cores here are not the limit), each page linking to 10 more until
--pages exist. ``--site shop``: the benchmark's shop (5,000+ pages, bench/site.py)
served by nginx on loopback, crawled with the lxml bench spider: CPU-bound, where the
Redis frontier's own cost shows.

For each process count the same crawl runs from an empty Redis (or a fresh 3-master
Redis Cluster with ``--backend cluster``) with that many ``python -m scraper run ...
--backend`` processes. Reports pages/s (first to last page, from the summaries), the
ratio to one process, Redis round trips per page (counted by the backend: one per
command or pipeline sent), Redis CPU per page (the redis-server processes' own CPU time
over the run, ``INFO cpu``, and in brackets the scripts' time from ``INFO
commandstats``), each process's share of the pages and its CPU seconds. ``--src DIR``
runs the scraper package found in DIR (the code before a change, for a before/after
table).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/cluster.py`: import `bench` from the repository
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from typing import Any  # noqa: E402

from bench.redisload import RedisFleet, _cpu  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

SPIDER = '''
from scraper import Request, Spider


class Tree(Spider):
    name = "cluster_tree"
    base_url = ""

    def start_requests(self):
        yield Request(self.base_url + "/n/0")

    def parse(self, response):
        yield {"url": response.url, "title": response.xpath("string(//title)").get()}
        yield from response.follow_all(response.links())
'''


class LatencySite:
    """Pages /n/<i> linking to /n/<10i+1>..<10i+10> below ``pages``, each served after ``latency``."""

    def __init__(self, pages: int, latency: float) -> None:
        site = self
        self.pages, self.latency = pages, latency
        self.lock = threading.Lock()
        self.times: list[float] = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body leave in separate writes: without TCP_NODELAY, Nagle's
            # algorithm and the client's delayed ACK add ~40 ms to every response
            disable_nagle_algorithm = True

            def do_GET(self) -> None:  # noqa: N802
                time.sleep(site.latency)
                with site.lock:
                    site.times.append(time.monotonic())
                try:
                    n = int(self.path.rsplit("/", 1)[1])
                except ValueError:
                    n = -1
                kids = [k for k in range(10 * n + 1, 10 * n + 11) if 0 <= n and k < site.pages]
                links = "".join(f'<a href="/n/{k}">page {k}</a> <a href="/n/0">home</a>' for k in kids)
                body = (f"<html><head><title>page {n}</title></head><body>{links}"
                        f"{'<p>filler text</p>' * 100}</body></html>").encode()
                self.send_response(200 if 0 <= n < site.pages else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.request_queue_size = 256
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


def _when(stamp: Any) -> float:
    """A summary's time (ISO 8601 text, or seconds) as seconds since the epoch."""
    if isinstance(stamp, int | float):
        return float(stamp)
    from datetime import datetime

    return datetime.fromisoformat(stamp).timestamp()


def _commandstats(fleet: RedisFleet) -> dict[str, tuple[int, int]]:
    """command -> (calls, usec), summed over every node of the fleet."""
    out: dict[str, tuple[int, int]] = {}
    for client in fleet.clients():
        for name, v in client.info("commandstats").items():
            calls, usec = out.get(name, (0, 0))
            out[name] = (calls + int(v["calls"]), usec + int(v["usec"]))
    return out


def _run(args: argparse.Namespace, n: int, tmp: Path, fleet: RedisFleet, target: dict[str, Any],
         env: dict[str, str]) -> dict[str, Any]:
    url = fleet.url
    spider = target["spider"]
    subprocess.run([sys.executable, "-m", "scraper", "reset", spider, "--backend", url,
                    *target["config"]], cwd=tmp, env=env, check=True, capture_output=True)
    for client in fleet.clients():
        client.config_resetstat()
    cpu0 = sum(_cpu(fleet))
    settings = ["-s", f"workers={args.workers}", "-s", f"per_host_workers={args.per_host}"]
    if args.prefetch is not None:
        settings += ["-s", f"prefetch={args.prefetch}"]
    procs = [subprocess.Popen(
        [sys.executable, "-m", "scraper", "run", spider, "--backend", url, *target["config"],
         "-a", f"base_url={target['base_url']}", *settings, "-s", "log_level=WARNING",
         "--summary", f"s{n}-{i}.json"],
        cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for i in range(n)]
    for p in procs:
        _, err = p.communicate(timeout=900)
        if p.returncode != 0:
            raise RuntimeError(err)
    summaries = [json.loads((tmp / f"s{n}-{i}.json").read_text()) for i in range(n)]
    cpu = sum(_cpu(fleet)) - cpu0
    stats = _commandstats(fleet)
    pages = sum(s["pages"] for s in summaries)
    trips = sum(s.get("backend_round_trips") or 0 for s in summaries)
    span = max(_when(s["finished"]) for s in summaries) - min(_when(s["started"]) for s in summaries)
    scripts = sum(usec for name, (_, usec) in stats.items() if name.startswith("cmdstat_eval"))
    script_calls = sum(c for name, (c, _) in stats.items() if name.startswith("cmdstat_eval"))
    return {"processes": n, "pages": pages, "duration_s": round(span, 1),
            "pages_per_s": round(pages / span, 1),
            "round_trips_per_page": round(trips / pages, 2),
            "redis_cpu_us_per_page": round(cpu * 1e6 / pages, 1),
            "script_us_per_page": round(scripts / pages, 1),
            "script_calls": script_calls,
            "us_per_script_call": round(scripts / max(1, script_calls), 1),
            "pages_by_process": [s["pages"] for s in summaries],
            "max_share": round(max(s["pages"] for s in summaries) / pages, 3),
            "items": sum(s["items"] for s in summaries)}


def _target(args: argparse.Namespace, tmp: Path) -> tuple[dict[str, Any], Any]:
    if args.site == "latency":
        (tmp / "spiders").mkdir()
        (tmp / "spiders" / "cluster_tree.py").write_text(SPIDER)
        (tmp / "config.yaml").write_text("obey_robots: false\nlog_level: WARNING\n")
        site = LatencySite(args.pages, args.latency)
        return {"spider": "cluster_tree", "config": [], "base_url": site.url,
                "expected": args.pages}, site
    from bench import serve
    from bench.site import generate

    port = serve.free_port()
    shop = generate(tmp / "shop", f"http://127.0.0.1:{port}")
    server = serve.start(shop.root, port)
    config = ["--config", str(ROOT / "bench" / "config.yaml")]
    return {"spider": "bench_lxml", "config": config, "base_url": shop.start_url,
            "expected": shop.pages}, server


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", choices=("latency", "shop"), default="latency")
    ap.add_argument("--pages", type=int, default=1200)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--per-host", type=int, default=1000)
    ap.add_argument("--prefetch", type=int, default=None)
    ap.add_argument("--procs", default="1,2,4")
    ap.add_argument("--backend", choices=("redis", "cluster"), default="redis")
    ap.add_argument("--src", type=Path, default=ROOT, help="the directory holding `scraper/` to run")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args()
    if shutil.which("redis-server") is None:
        print("redis-server is not installed (apt-get install redis-server)", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="cluster-bench-"))
    fleet = RedisFleet(tmp / "redis", masters=3 if args.backend == "cluster" else 0)
    target, server = _target(args, tmp)
    env = {**os.environ, "PYTHONPATH": f"{args.src.resolve()}{os.pathsep}{ROOT}"}
    results = []
    try:
        for n in [int(x) for x in args.procs.split(",")]:
            results.append(_run(args, n, tmp, fleet, target, env))
            print(json.dumps(results[-1]), file=sys.stderr)
    finally:
        fleet.stop()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    base = results[0]["pages_per_s"]
    print(f"\nsite {args.site}, {args.workers} workers and per_host_workers {args.per_host} per "
          f"process, backend {args.backend}, code from {args.src}\n")
    print("| processes | pages/s | vs 1 | round trips / page | Redis CPU µs / page (scripts) "
          "| µs / script call | pages by process |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['processes']} | {r['pages_per_s']} | {r['pages_per_s'] / base:.2f}x | "
              f"{r['round_trips_per_page']} | {r['redis_cpu_us_per_page']} "
              f"({r['script_us_per_page']}) | {r['us_per_script_call']} | "
              f"{r['pages_by_process']} |")
    ok = all(r["pages"] == target["expected"] for r in results)
    if not ok:
        print("\nWARNING: a run did not fetch every page exactly once", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
