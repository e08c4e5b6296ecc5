"""Scaling of one shared crawl over 1, 2 and 4 processes (the Redis backend).

    python bench/cluster.py [--pages 1200] [--latency 0.2] [--workers 8] [--procs 1,2,4]

A local site answers every page after --latency seconds (so the 2 cores here are
not the limit), each page linking to 10 more until --pages exist. For each
process count, the same crawl runs from an empty Redis with that many
`python -m scraper run ... --backend` processes, 8 workers each, per-host limit
high enough not to bind. Reports pages/s (first to last page served), the ratio to
one process, and Redis round trips per page (counted by the backend: one per
command or pipeline sent).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=1200)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--procs", default="1,2,4")
    args = ap.parse_args()
    binary = shutil.which("redis-server")
    if binary is None:
        print("redis-server is not installed (apt-get install redis-server)", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="cluster-bench-"))
    port = free_port()
    redis_proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no", "--dir", str(tmp)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    (tmp / "spiders").mkdir()
    (tmp / "spiders" / "cluster_tree.py").write_text(SPIDER)
    (tmp / "config.yaml").write_text("obey_robots: false\nlog_level: WARNING\n")
    site = LatencySite(args.pages, args.latency)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    results = []
    try:
        time.sleep(0.5)
        for n in [int(x) for x in args.procs.split(",")]:
            subprocess.run([sys.executable, "-m", "scraper", "reset", "cluster_tree", "--backend", url],
                           cwd=tmp, env=env, check=True, capture_output=True)
            site.times.clear()
            procs = [subprocess.Popen(
                [sys.executable, "-m", "scraper", "run", "cluster_tree", "--backend", url,
                 "-a", f"base_url={site.url}", "-s", f"workers={args.workers}",
                 "-s", "per_host_workers=1000", "--summary", f"s{n}-{i}.json"],
                cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                for i in range(n)]
            for p in procs:
                _, err = p.communicate(timeout=600)
                if p.returncode != 0:
                    print(err, file=sys.stderr)
                    return 1
            summaries = [json.loads((tmp / f"s{n}-{i}.json").read_text()) for i in range(n)]
            pages = sum(s["pages"] for s in summaries)
            trips = sum(s.get("backend_round_trips", 0) for s in summaries)
            span = max(site.times) - min(site.times)
            results.append({"processes": n, "pages": pages, "pages_per_s": round(pages / span, 1),
                            "round_trips_per_page": round(trips / pages, 2),
                            "served": len(site.times)})
            print(json.dumps(results[-1]), file=sys.stderr)
    finally:
        redis_proc.terminate()
        redis_proc.wait()
        site.server.shutdown()
    base = results[0]["pages_per_s"]
    ideal = args.workers / args.latency
    print(f"\n{args.pages} pages, {args.latency * 1000:.0f} ms per response, {args.workers} workers "
          f"per process (ideal {ideal:.0f} pages/s per process)\n")
    print("| processes | pages/s | vs 1 process | Redis round trips / page |")
    print("|---|---|---|---|")
    for r in results:
        print(f"| {r['processes']} | {r['pages_per_s']} | {r['pages_per_s'] / base:.2f}x | "
              f"{r['round_trips_per_page']} |")
    ok = all(r["pages"] == args.pages and r["served"] == args.pages for r in results)
    if not ok:
        print("\nWARNING: a run did not fetch every page exactly once", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
