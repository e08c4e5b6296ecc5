"""One crawl, many processes, through a real redis-server: every URL fetched exactly once,
a SIGKILLed process loses none of its leased requests, per-host limits and delays hold for
the whole cluster, robots.txt fetched once, push/keep-alive, reset, a dead Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from .conftest import ROOT, Reply, page, run_cli, write_project

SPIDER = '''
from scraper import Request, Spider

class Tree(Spider):
    name = "tree"
    base_url = ""

    def start_requests(self):
        yield Request(self.base_url + "/")

    def parse(self, response):
        yield {"url": response.url, "pid": __import__("os").getpid()}
        yield from response.follow_all(response.links())
'''


@pytest.fixture
def tree(site):
    sections = [f"/s{i}" for i in range(10)]
    site.route("/", Reply(page(*sections), delay=0.02))
    for s in sections:
        kids = [f"{s}/p{j}" for j in range(12)]
        site.route(s, Reply(page(*kids, "/"), delay=0.02))
        for k in kids:
            site.route(k, Reply(page("/", s), delay=0.05))
    site.expected = {site.url + "/"} | {site.url + s for s in sections} | {
        f"{site.url}{s}/p{j}" for s in sections for j in range(12)}
    return site


def _project(tmp_path, extra=""):
    return write_project(tmp_path, {"tree": SPIDER},
                         "workers: 4\nobey_robots: false\nheartbeat_interval: 0.5\n"
                         "poll_interval: 0.1\nlease_seconds: 3\n" + extra)


def _start(project, site, redis_url, out, *extra):
    cmd = [sys.executable, "-m", "scraper", "run", "tree", "-a", f"base_url={site.url}",
           "--backend", redis_url, "-o", out, *extra]
    return subprocess.Popen(cmd, cwd=project, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _items(project, *names):
    out = []
    for n in names:
        path = project / n
        if path.exists():
            out += [json.loads(line)["url"] for line in path.read_text().splitlines()]
    return out


def _when_clients(redis_server, n, reply):
    """A route that answers only once ``n`` processes are connected to Redis (or after 20 s),
    so every process is up before the crawl fans out."""
    def route(hit):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            names = {c.get("name") for c in redis_server.client.client_list()}
            if len([x for x in names if x and x.startswith("scraper:tree:")]) >= n:
                break
            time.sleep(0.05)
        return reply
    return route


def test_two_processes_fetch_every_url_exactly_once(tree, redis_server, redis_url, tmp_path):
    tree.route("/", _when_clients(redis_server, 2, tree.routes["/"]))
    project = _project(tmp_path, "per_host_workers: 8\n")  # one host: room for both
    a = _start(project, tree, redis_url, "a.jsonl", "--summary", "a.json")
    b = _start(project, tree, redis_url, "b.jsonl", "--summary", "b.json")
    errs = [p.communicate(timeout=60)[1] for p in (a, b)]
    assert a.returncode == 0 and b.returncode == 0, errs
    urls = _items(project, "a.jsonl", "b.jsonl")
    assert sorted(urls) == sorted(tree.expected)           # every page, exactly once
    assert len(_items(project, "a.jsonl")) > 10 and len(_items(project, "b.jsonl")) > 10
    fetched = [h.path for h in tree.hits if h.path != "/robots.txt"]
    assert len(fetched) == len(set(fetched)) == len(tree.expected)
    summary = json.loads((project / "a.json").read_text())
    assert summary["cluster"]["pages"] == len(tree.expected)
    assert summary["cluster"]["items"] == len(tree.expected)
    assert "cluster" in errs[0]


def test_a_killed_process_loses_none_of_its_leased_requests(tree, redis_url, tmp_path):
    project = _project(tmp_path)
    a = _start(project, tree, redis_url, "a.jsonl")
    time.sleep(1.0)
    b = _start(project, tree, redis_url, "b.jsonl")
    time.sleep(0.8)
    a.send_signal(signal.SIGKILL)   # dies holding leases
    a.communicate()
    _, err = b.communicate(timeout=90)
    assert b.returncode == 0, err
    urls = _items(project, "a.jsonl", "b.jsonl")
    assert set(urls) == tree.expected                       # nothing lost
    # only what the dead process had in flight may have been fetched twice
    assert len(urls) - len(tree.expected) <= 8


def test_per_host_limit_and_delay_hold_across_processes(site, redis_url, tmp_path):
    kids = [f"/p{i}" for i in range(24)]
    site.route("/", page(*kids))
    for k in kids:
        site.route(k, Reply(page(), delay=0.3))
    project = _project(tmp_path, "per_host_workers: 2\n")
    procs = [_start(project, site, redis_url, f"{n}.jsonl") for n in "abc"]
    errs = [p.communicate(timeout=90)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errs
    assert site.max_in_flight == 2
    assert len(_items(project, "a.jsonl", "b.jsonl", "c.jsonl")) == 25


class SentStamp:
    """A downloader middleware: each request carries the wall time its process hands it
    to the fetcher, just after the worker noted it as sent (where the delay runs from).
    The server's arrival times add loopback and thread scheduling noise: on a loaded
    machine two requests sent 0.2 s apart have arrived 4 ms apart."""

    def process_request(self, request, spider):
        request.headers["X-Sent"] = repr(time.time())


def test_delay_and_robots_are_shared_by_the_cluster(site, redis_url, tmp_path):
    site.route("/robots.txt", "User-agent: *\nCrawl-delay: 0.2\n", content_type="text/plain")
    kids = [f"/p{i}" for i in range(10)]
    site.route("/", page(*kids))
    for k in kids:
        site.route(k, page())
    project = _project(tmp_path, "middlewares: [tests.test_redis.SentStamp]\n")
    procs = [_start(project, site, redis_url, f"{n}.jsonl", "-s", "obey_robots=true")
             for n in "ab"]
    errs = [p.communicate(timeout=90)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert site.count("/robots.txt") == 1
    pages = [h for h in site.hits if h.path != "/robots.txt"]
    assert len(pages) == 11
    sent = sorted(float(h.headers["x-sent"]) for h in pages)
    # 10 gaps of 0.2 s for the cluster, whichever process sent each request (two
    # processes each keeping their own delay would take half that)
    assert sent[-1] - sent[0] >= 1.8
    assert min(b - a for a, b in zip(sent, sent[1:])) >= 0.15  # a stalled thread: noise


def test_keep_alive_waits_for_pushed_urls_and_reset_clears(site, redis_url, tmp_path):
    site.route("/", page())
    site.route("/later", page())
    project = _project(tmp_path)
    p = _start(project, site, redis_url, "a.jsonl", "--keep-alive")
    try:
        time.sleep(1.5)
        assert p.poll() is None                       # idle, but still there
        r = run_cli("push", "tree", site.url + "/later", site.url + "/", "--backend", redis_url,
                    cwd=project)
        assert r.returncode == 0 and "1 URL(s) added" in r.stderr and "1 already seen" in r.stderr
        for _ in range(50):
            if site.count("/later"):
                break
            time.sleep(0.1)
        assert site.count("/later") == 1
    finally:
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert "interrupted" in err
    import redis

    client = redis.Redis.from_url(redis_url)
    assert list(client.scan_iter(match="scraper:tree:*"))
    r = run_cli("reset", "tree", "--backend", redis_url, cwd=project)
    assert r.returncode == 0 and "deleted" in r.stderr
    assert list(client.scan_iter(match="scraper:tree:*")) == []
    client.close()


def test_items_stream_holds_each_item_once(tree, redis_url, tmp_path):
    project = _project(tmp_path, "outputs: [{type: redis-stream}]\n")
    procs = [_start(project, tree, redis_url, f"{n}.jsonl") for n in "ab"]
    errs = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    import redis

    client = redis.Redis.from_url(redis_url)
    entries = client.xrange("scraper:tree:items")
    urls = [json.loads(fields[b"item"])["url"] for _, fields in entries]
    client.close()
    assert sorted(urls) == sorted(tree.expected)


def test_an_unreachable_redis_is_a_clear_error(site, tmp_path):
    project = _project(tmp_path, "redis_retry_window: 0.5\n")
    t0 = time.monotonic()
    r = run_cli("run", "tree", "-a", f"base_url={site.url}", "--backend",
                "redis://127.0.0.1:1/0", cwd=project)
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "redis at redis://127.0.0.1:1/0" in r.stderr
    assert time.monotonic() - t0 < 20


def test_job_dir_and_backend_together_is_a_usage_error(site, redis_url, tmp_path):
    project = _project(tmp_path)
    r = run_cli("run", "tree", "--backend", redis_url, "--job-dir", "j", cwd=project)
    assert r.returncode == 2 and "use one" in r.stderr


def test_a_redis_blip_within_the_retry_window_loses_nothing(tree, redis_server, redis_url, tmp_path):
    project = _project(tmp_path, "redis_retry_window: 10\n")
    a = _start(project, tree, redis_url, "a.jsonl")
    time.sleep(1.2)
    # the server stops answering for a while, then every connection is dropped
    redis_server.proc.send_signal(signal.SIGSTOP)
    time.sleep(1.5)
    redis_server.proc.send_signal(signal.SIGCONT)
    redis_server.client.client_kill_filter(_type="normal", skipme=True)
    _, err = a.communicate(timeout=90)
    assert a.returncode == 0, err
    urls = _items(project, "a.jsonl")
    assert sorted(urls) == sorted(tree.expected)


def test_a_redis_that_dies_stops_the_crawl_with_one_clear_line(tree, tmp_path):
    import shutil

    from .conftest import RedisServer

    server = RedisServer(shutil.which("redis-server"), tmp_path)
    project = _project(tmp_path, "redis_retry_window: 1\n")
    p = _start(project, tree, server.url, "a.jsonl")
    time.sleep(1.0)
    server.stop()
    _, err = p.communicate(timeout=60)
    assert p.returncode == 1
    assert f"redis at {server.url}" in err
    assert "Traceback" not in err


def test_two_equal_processes_on_one_host_get_fair_shares(tree, redis_server, redis_url, tmp_path):
    tree.route("/", _when_clients(redis_server, 2, tree.routes["/"]))
    # one host, fewer slots than the two processes' workers: slots are contended all along
    project = _project(tmp_path, "per_host_workers: 4\n")
    procs = [_start(project, tree, redis_url, f"{n}.jsonl") for n in "ab"]
    errs = [p.communicate(timeout=90)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    a, b = len(_items(project, "a.jsonl")), len(_items(project, "b.jsonl"))
    assert a + b == len(tree.expected)
    assert max(a, b) <= 0.6 * (a + b), (a, b)


def test_a_dead_process_prefetch_buffer_comes_back(tree, redis_server, redis_url, tmp_path):
    # 4 workers and 4 requests leased beyond them
    project = _project(tmp_path, "per_host_workers: 16\nprefetch: 4\n")
    a = _start(project, tree, redis_url, "a.jsonl")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and redis_server.client.zcard("scraper:tree:leases") < 8:
        time.sleep(0.02)
    held = redis_server.client.zcard("scraper:tree:leases")
    a.send_signal(signal.SIGKILL)
    a.communicate()
    assert held >= 8                                     # workers + prefetch, leased
    b = _start(project, tree, redis_url, "b.jsonl")
    _, err = b.communicate(timeout=90)
    assert b.returncode == 0, err
    assert set(_items(project, "a.jsonl", "b.jsonl")) == tree.expected
