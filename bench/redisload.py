"""A load generator for the Redis frontier: N simulated fast consumers against one Redis
or a 3-master Redis Cluster, measuring the pages/s ceiling of the store itself.

    python bench/redisload.py [--consumers 16] [--seconds 20] [--hosts 50]
                              [--backend redis|cluster] [--links 10]

Each consumer is a thread with its own backend (its own connection, as a process
would have): it pops a batch as large as its free "workers" (8 each, plus as much
prefetch), and for every page leased it at once records the outcome as the engine
does: the page's ack, its host slot given back, ``--links`` discovered URLs
(``push_unseen``; most already seen, as on a real site) and a counter delta, in one
transaction. Four links in five go to URLs already seen, the fifth to a new one (two
new URLs per page with ``--links 10``). No HTTP: a consumer is as fast as Redis lets it
be. The frontier is seeded with ``--urls`` URLs over ``--hosts`` hosts.

Reports pages/s for the whole fleet, Redis CPU µs per page: the redis-server
processes' own CPU time over the run (``INFO cpu``: ``used_cpu_user + used_cpu_sys``,
summed over the nodes) divided by the pages, round trips per page, and, secondary, the
µs per ``evalsha`` call from ``INFO commandstats`` (a script's time there already
includes the commands it runs, which commandstats lists again on their own lines: their
sum counts those twice). The client side runs on this machine's 2 cores too, so the
measured pages/s is a lower bound; the ceiling on paper is where the busiest node
reaches one core: 1 s / (its Redis CPU µs per page).

``RedisFleet`` (also used by bench/cluster.py and the tests) starts the servers.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/redisload.py`
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402


def free_port() -> int:
    """A free loopback port below 55535: a cluster node also listens on port + 10000."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port < 55535:
            return port


class RedisFleet:
    """One redis-server (``masters=0``) or a Redis Cluster of ``masters`` masters and no
    replicas, each on a free loopback port in ``workdir``, without persistence."""

    def __init__(self, workdir: Path, masters: int = 0) -> None:
        import redis

        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.workdir = workdir
        self.ports: list[int] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        for i in range(max(1, masters)):
            port = free_port()
            d = workdir / f"n{i}"
            d.mkdir(parents=True, exist_ok=True)
            cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", str(d), "--protected-mode", "no"]
            if masters:
                cmd += ["--cluster-enabled", "yes", "--cluster-config-file", str(d / "nodes.conf"),
                        "--cluster-node-timeout", "2000"]
            self.procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL))
            self.ports.append(port)
        self._clients = [redis.Redis(host="127.0.0.1", port=p) for p in self.ports]
        for c in self._clients:
            self._wait(lambda c=c: c.ping())
        if masters:
            subprocess.run(["redis-cli", "--cluster", "create",
                            *[f"127.0.0.1:{p}" for p in self.ports],
                            "--cluster-replicas", "0", "--cluster-yes"],
                           check=True, capture_output=True, timeout=60)
            for c in self._clients:
                self._wait(lambda c=c: c.cluster("info")["cluster_state"] == "ok")
            self.url = "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports) + "/0"
        else:
            self.url = f"redis://127.0.0.1:{self.ports[0]}/0"

    @staticmethod
    def _wait(ready: Any, seconds: float = 30.0) -> None:
        import redis

        deadline = time.monotonic() + seconds
        while True:
            try:
                if ready():
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("redis did not become ready")
            time.sleep(0.05)

    def clients(self) -> list[Any]:
        """A plain client per node (for INFO, CONFIG RESETSTAT)."""
        return self._clients

    def flush(self) -> None:
        for c in self._clients:
            c.flushall()

    def stop(self) -> None:
        for c in self._clients:
            c.close()
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


class Consumer(threading.Thread):
    """One simulated process: pops what its free workers want, records every page at once."""

    def __init__(self, url: str, spider: str, workers: int, links: int, urls: int, hosts: int,
                 stop: threading.Event, index: int = 0) -> None:
        super().__init__(daemon=True)
        from scraper.storage.registry import BackendOptions, open_backend

        self.backend = open_backend(url, BackendOptions(spider=spider))
        self.backend.hosts.set_defaults(1000, 0.0)
        self.workers, self.links, self.urls, self.hosts = workers, links, urls, hosts
        self.stop = stop
        self.index = index  # its new URLs are its own: no two consumers find the same
        self.pages = 0
        self.fresh = 0  # new URLs queued
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # reported by the main thread
            self.error = e

    def _run(self) -> None:
        from scraper.storage import Entry

        b = self.backend
        n = self.index * 10**9
        while not self.stop.is_set():
            leases = b.frontier.pop(2 * self.workers, now=time.time())
            if not leases:
                time.sleep(0.005)
                continue
            with b.transaction():
                new, fps = [], []
                for _ in leases:
                    for _ in range(self.links):
                        n += 1
                        # four links in five go to URLs seen before (the seeded ones),
                        # the fifth to a new URL: two new URLs per page with --links 10
                        u = (n * 7919) % self.urls if n % 5 else self.urls + n
                        host = f"http://h{u % self.hosts}.test:80"
                        new.append(Entry(host, f'{{"url": "{host}/{u}"}}'))
                        fps.append(hashlib.blake2b(str(u).encode(), digest_size=16).digest())
                self.fresh += sum(b.push_unseen(new, fps))
                for lease in leases:
                    b.hosts.give(lease.entry.host, lease.id)
                b.frontier.ack([lease.id for lease in leases])
                assert b.counters is not None
                b.counters.add({"pages": len(leases), "items": len(leases)})
            self.pages += len(leases)


def _seed(url: str, spider: str, urls: int, hosts: int) -> None:
    from scraper.storage import Entry
    from scraper.storage.registry import BackendOptions, open_backend

    b = open_backend(url, BackendOptions(spider=spider))
    b.clear()
    entries = [Entry(f"http://h{i % hosts}.test:80", f'{{"url": "/{i}"}}') for i in range(urls)]
    fps = [hashlib.blake2b(str(i).encode(), digest_size=16).digest() for i in range(urls)]
    for start in range(0, urls, 5000):
        with b.transaction():
            b.push_unseen(entries[start:start + 5000], fps[start:start + 5000])
    b.close()


def _cpu(fleet: RedisFleet) -> list[float]:
    """CPU seconds (user + system) each redis-server of the fleet has used."""
    out = []
    for c in fleet.clients():
        info = c.info("cpu")
        out.append(float(info["used_cpu_sys"]) + float(info["used_cpu_user"]))
    return out


def _evalsha(fleet: RedisFleet) -> tuple[int, int]:
    """(calls, usec) of evalsha over the fleet, from INFO commandstats."""
    calls = usec = 0
    for c in fleet.clients():
        v = c.info("commandstats").get("cmdstat_evalsha")
        if v:
            calls, usec = calls + int(v["calls"]), usec + int(v["usec"])
    return calls, usec


def measure(fleet: RedisFleet, consumers: int, seconds: float, hosts: int, links: int,
            urls: int, workers: int = 8) -> dict[str, Any]:
    spider = "load"
    _seed(fleet.url, spider, urls, hosts)
    for c in fleet.clients():
        c.config_resetstat()
    stop = threading.Event()
    fleet_threads = [Consumer(fleet.url, spider, workers, links, urls, hosts, stop, i)
                     for i in range(consumers)]
    cpu0, t0 = _cpu(fleet), time.monotonic()
    for t in fleet_threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in fleet_threads:
        t.join(timeout=30)
    elapsed = time.monotonic() - t0
    cpu = [b - a for a, b in zip(cpu0, _cpu(fleet))]
    for t in fleet_threads:
        if t.error is not None:
            raise t.error
    pages = max(1, sum(t.pages for t in fleet_threads))
    trips = sum(t.backend.round_trips() or 0 for t in fleet_threads)
    calls, usec = _evalsha(fleet)
    memory = sum(int(c.info("memory")["used_memory"]) for c in fleet.clients())
    known = urls + sum(t.fresh for t in fleet_threads)  # each in the seen-set; most queued
    for t in fleet_threads:
        t.backend.close()
    return {"consumers": consumers, "nodes": len(cpu), "pages": pages,
            "pages_per_s": round(pages / elapsed, 1),
            "new_urls_per_page": round(sum(t.fresh for t in fleet_threads) / pages, 2),
            "redis_cpu_us_per_page": round(sum(cpu) * 1e6 / pages, 1),
            "busiest_node_us_per_page": round(max(cpu) * 1e6 / pages, 1),
            "redis_cpu_cores": round(sum(cpu) / elapsed, 2),
            "evalsha_us_per_call": round(usec / max(1, calls), 1),
            "evalsha_calls_per_page": round(calls / pages, 2),
            "round_trips_per_page": round(trips / pages, 2),
            "ceiling_pages_per_s": round(1e6 / max(1.0, max(cpu) * 1e6 / pages)),
            "used_memory_mb": round(memory / 2**20, 1),
            "urls_known": known, "bytes_per_url": round(memory / known)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--consumers", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--hosts", type=int, default=50)
    ap.add_argument("--links", type=int, default=10)
    ap.add_argument("--urls", type=int, default=200_000)
    ap.add_argument("--backend", choices=("redis", "cluster", "both"), default="both")
    ap.add_argument("--src", type=Path, default=None,
                    help="the directory holding the `scraper/` to load (the code before a change)")
    args = ap.parse_args()
    if args.src is not None:
        sys.path.insert(0, str(args.src.resolve()))
    rows = []
    for kind in (("redis", "cluster") if args.backend == "both" else (args.backend,)):
        tmp = Path(tempfile.mkdtemp(prefix="redisload-"))
        fleet = RedisFleet(tmp, masters=3 if kind == "cluster" else 0)
        try:
            row = {"backend": kind, **measure(fleet, args.consumers, args.seconds, args.hosts,
                                              args.links, args.urls)}
        finally:
            fleet.stop()
            shutil.rmtree(tmp, ignore_errors=True)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    print("\n| backend | consumers | new URLs / page | pages/s measured | Redis CPU µs / page (busiest node) "
          "| Redis CPU (cores) | evalsha µs / call | round trips / page "
          "| ceiling pages/s (busiest node at 1 core) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} ({r['nodes']} node(s)) | {r['consumers']} | "
              f"{r['new_urls_per_page']} | {r['pages_per_s']} | "
              f"{r['redis_cpu_us_per_page']} ({r['busiest_node_us_per_page']}) | "
              f"{r['redis_cpu_cores']} | {r['evalsha_us_per_call']} | "
              f"{r['round_trips_per_page']} | {r['ceiling_pages_per_s']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
