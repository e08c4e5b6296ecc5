"""Faults of a crawl shared through Redis, through the command line, against real
redis-servers and real local sites: processes SIGKILLed right after marking links seen
and at random instants, a Redis that dies or hangs for good, one that loses its data
(FLUSHALL, a restart without persistence), entries written into the crawl's Redis by an
outsider, and the Redis password kept out of every line."""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scraper.storage import mask_url

from ..conftest import ROOT, Reply, Site, page, run_cli, write_project

PASSWORD = "s3cret-pw"  # never to be seen in any output

TREE = '''
from scraper import Request, Spider

class Tree(Spider):
    name = "tree"
    base_url = ""

    def start_requests(self):
        yield Request(self.base_url + "/")

    def parse(self, response):
        yield {"url": response.url}
        yield from response.follow_all(response.links())
'''

CONFIG = ("workers: 2\nper_host_workers: 8\nobey_robots: false\nheartbeat_interval: 0.3\n"
          "poll_interval: 0.1\nlease_seconds: 3\nprogress_interval: 60\n")

# How many times the random-kill test kills a process (each kill costs a lease expiry):
# 3 in the suite, to keep it short; SCRAPER_FAULT_KILLS=10 for the full count.
KILLS = int(os.environ.get("SCRAPER_FAULT_KILLS", "3"))
# The seen marks after which a process is killed: 1, the start request's; 2, the first
# link of the first page.
KILL_AT_MARKS = (1, 2)


# -- redis-servers of our own (a password, a restart on the same port, a kill) ------------
@pytest.fixture
def redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (CI must install it: see .ci/run)")
        pytest.skip("redis-server is not installed")
    return binary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A redis-server with no persistence on a loopback port, optionally with a
    password; ``restart`` starts a new, empty one on the same port."""

    def __init__(self, binary: str, tmp: Path, password: str | None = None) -> None:
        self.binary, self.tmp, self.password = binary, tmp, password
        self.port = _free_port()
        auth = f":{password}@" if password else ""
        self.url = f"redis://{auth}127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.tmp), "--protected-mode", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        self.client = redis.Redis(port=self.port, password=self.password)
        _wait_until(self._answers, 20, "redis-server to answer")

    def _answers(self) -> bool:
        import redis

        try:
            return bool(self.client.ping())
        except redis.ConnectionError:
            return False

    def kill(self) -> None:
        """Gone for good, at once (SIGKILL)."""
        assert self.proc is not None
        self.client.close()
        self.proc.kill()
        self.proc.wait(timeout=10)

    def restart(self) -> None:
        """Stopped, and started again on the same port with nothing in it."""
        self.kill()
        self.start()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # also ends one that is stopped (SIGSTOP)
            self.proc.wait(timeout=10)


@pytest.fixture
def servers(redis_binary: str, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    made: list[Server] = []

    def make(password: str | None = None) -> Server:
        made.append(Server(redis_binary, tmp_path, password))
        return made[-1]
    yield make
    for s in made:
        s.close()


# -- the site, the project, the processes -----------------------------------------------
@pytest.fixture
def tree(site: Site) -> Site:
    """/ → 10 sections → 12 pages each (131 pages), slow enough for faults mid-crawl."""
    sections = [f"/s{i}" for i in range(10)]
    site.route("/", Reply(page(*sections), delay=0.02))
    for s in sections:
        kids = [f"{s}/p{j}" for j in range(12)]
        site.route(s, Reply(page(*kids, "/"), delay=0.05))
        for k in kids:
            site.route(k, Reply(page("/", s), delay=0.1))
    site.expected = {"/"} | set(sections) | {f"{s}/p{j}" for s in sections for j in range(12)}
    return site


def _pages(site: Site) -> int:
    return sum(1 for h in site.hits if h.path != "/robots.txt")


def _wait_until(ready: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``ready`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class Proc:
    """``scraper run`` in a child process, its standard error in a file (a pipe nobody
    reads while it runs could fill up and stall it)."""

    def __init__(self, project: Path, spider: str, site_url: str, backend: str, name: str,
                 *extra: str) -> None:
        self.err_path = project / f"{name}.err"
        cmd = [sys.executable, "-m", "scraper", "run", spider, "-a", f"base_url={site_url}",
               "--backend", backend, *extra]
        with open(self.err_path, "w") as err:
            self.p = subprocess.Popen(cmd, cwd=project, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                      stdout=subprocess.DEVNULL, stderr=err)

    def wait(self, timeout: float) -> int:
        return self.p.wait(timeout=timeout)

    @property
    def err(self) -> str:
        return self.err_path.read_text()

    def kill(self) -> None:
        self.p.send_signal(signal.SIGKILL)
        self.p.wait(timeout=10)

    def close(self) -> None:
        if self.p.poll() is None:
            self.kill()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for p in started:
        p.close()


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if " ERROR " in line or line.startswith("scraper: error")]


# -- 1. seen marks and pushes land together ------------------------------------------------
class KillAtSeenMark:
    """Watches every command the server runs (MONITOR, scripts' own included) and
    SIGKILLs a process the moment the ``nth`` fingerprint is marked seen: before it can
    send anything else."""

    def __init__(self, port: int, seen_key: str, nth: int) -> None:
        import redis

        self.client = redis.Redis(port=port)
        self.seen_key, self.nth = seen_key, nth
        self.pid = 0
        self.started = threading.Event()
        self.killed = threading.Event()
        self.watching = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()
        assert self.watching.wait(10)

    def _watch(self) -> None:
        marks = 0
        with self.client.monitor() as m:
            self.watching.set()
            for command in m.listen():
                text = command["command"]
                if text.startswith((f"SADD {self.seen_key} ", f"SET {self.seen_key}:")):
                    marks += 1
                    if marks == self.nth:
                        assert self.started.wait(10)  # the pid is known a moment after spawn
                        os.kill(self.pid, signal.SIGKILL)
                        self.killed.set()
                        return

    def arm(self, pid: int) -> None:
        self.pid = pid
        self.started.set()


@pytest.mark.parametrize("nth", KILL_AT_MARKS)
def test_a_process_killed_right_after_marking_urls_seen_loses_none(tree, redis_server, redis_url,
                                                                   tmp_path, procs, nth):
    project = write_project(tmp_path, {"tree": TREE}, CONFIG)
    killer = KillAtSeenMark(redis_server.port, "scraper:tree:seen", nth)
    a = Proc(project, "tree", tree.url, redis_url, "a")
    procs.append(a)
    killer.arm(a.p.pid)
    assert killer.killed.wait(30), a.err
    a.p.wait(timeout=10)
    # what `a` marked seen must be in the queue (or leased, back when the lease expires)
    b = Proc(project, "tree", tree.url, redis_url, "b")
    procs.append(b)
    assert b.wait(90) == 0, b.err
    assert {h.path for h in tree.hits} >= tree.expected


# -- 2. SIGKILL at random instants -----------------------------------------------------------
@pytest.mark.parametrize("processes", [2, 4])
def test_processes_killed_at_random_instants_lose_no_page_and_write_no_item_twice(
        tree, redis_server, redis_url, tmp_path, procs, processes):
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    project = write_project(tmp_path, {"tree": TREE},
                            CONFIG + "outputs: [{type: redis-stream}]\n")
    alive = [Proc(project, "tree", tree.url, redis_url, f"p{i}") for i in range(processes)]
    procs.extend(alive)
    # kill instants: after this many pages served, while much of the crawl is left
    instants = sorted(rng.sample(range(5, 80), KILLS))
    for n, at in enumerate(instants):
        _wait_until(lambda at=at: _pages(tree) >= at, 60, f"{at} pages (seed {seed})")
        victim = alive.pop(rng.randrange(len(alive)))
        assert victim.p.poll() is None, f"{victim.err}\n(seed {seed})"
        victim.kill()
        replacement = Proc(project, "tree", tree.url, redis_url, f"r{n}")
        procs.append(replacement)
        alive.append(replacement)
    for p in alive:
        assert p.wait(120) == 0, f"{p.err}\n(seed {seed})"
    assert {h.path for h in tree.hits} >= tree.expected, f"seed {seed}"
    entries = redis_server.client.xrange("scraper:tree:items")
    urls = sorted(json.loads(fields[b"item"])["url"] for _, fields in entries)
    assert urls == sorted(tree.url + path for path in tree.expected), f"seed {seed}"


# -- 3. a Redis gone for good ------------------------------------------------------------
@pytest.mark.parametrize("how", ["killed", "hung"])
def test_a_redis_gone_for_good_ends_the_crawl_in_its_retry_window_with_one_line(
        tree, servers, tmp_path, procs, how):
    window = 3
    server = servers(password=PASSWORD)
    project = write_project(tmp_path, {"tree": TREE}, CONFIG + f"redis_retry_window: {window}\n")
    p = Proc(project, "tree", tree.url, server.url, "a")
    procs.append(p)
    _wait_until(lambda: _pages(tree) >= 5, 60, "the crawl to be under way")
    t0 = time.monotonic()
    if how == "killed":
        server.kill()
    else:
        assert server.proc is not None
        server.proc.send_signal(signal.SIGSTOP)  # accepts connections, answers nothing
    status = p.wait(window + 30)
    elapsed = time.monotonic() - t0
    err = p.err
    assert status == 1, err
    assert elapsed <= window + 5, f"{elapsed:.1f} s\n{err}"
    assert "Traceback" not in err and PASSWORD not in err
    lines = _error_lines(err)
    assert len(lines) == 1, err
    assert "unreachable" in lines[0] and f"redis at {mask_url(server.url)}" in lines[0], err


# -- 4. a Redis that lost the crawl's data ---------------------------------------------------
class _Joined:
    """Whether every one of these processes has joined the crawl: its connection (named
    ``scraper:SPIDER:HOST:PID``) has run a script, and its first is the one that reads
    the crawl's identity."""

    def __init__(self, client: Any, spider: str, pids: list[int]) -> None:
        self.client, self.spider, self.waiting = client, spider, set(pids)

    def __call__(self) -> bool:
        for c in self.client.client_list():
            pid = c["name"].rpartition(":")[2]
            if (c["name"].startswith(f"scraper:{self.spider}:") and pid.isdigit()
                    and c["cmd"].startswith("evalsha")):
                self.waiting.discard(int(pid))
        return not self.waiting


@pytest.mark.parametrize("loss", ["flushall", "restart"])
def test_a_redis_that_loses_the_crawl_stops_every_process_naming_the_loss(
        tree, servers, tmp_path, procs, loss):
    server = servers()
    project = write_project(tmp_path, {"tree": TREE}, CONFIG + "redis_retry_window: 15\n")
    both = [Proc(project, "tree", tree.url, server.url, name) for name in "ab"]
    procs.extend(both)
    # both must have joined the crawl before it is lost: one that starts later finds an
    # empty Redis, which is a new crawl (nothing tells it from one), and crawls it
    joined = _Joined(server.client, "tree", [p.p.pid for p in both])
    _wait_until(lambda: joined() and _pages(tree) >= 10, 60, "both processes to be crawling")
    if loss == "flushall":
        server.client.flushall()
    else:
        server.restart()  # no persistence: the new server starts empty
    for p in both:
        status = p.wait(60)
        err = p.err
        assert status == 1, err
        assert "Traceback" not in err and "--- tree: finished ---" not in err, err
        lines = _error_lines(err)
        assert len(lines) == 1 and "the crawl's state was lost" in lines[0], err
        assert "scraper:tree:crawl" in lines[0], err
    assert _pages(tree) < len(tree.expected) + 5  # stopped, not crawled afresh


# -- 5. entries from a shared store are data, not instructions ------------------------------
VICTIM = '''
from scraper import Request, Spider


def note(path, what, args):
    with open(path, "a") as f:
        f.write(what + " " + ",".join(type(a).__name__ for a in args) + "\\n")


class Victim(Spider):
    """Every hook notes each call with the types of its arguments; each takes any
    arguments, so that one called as a callback would run and be seen."""

    name = "victim"
    base_url = ""
    calls = ""
    proxy = ""  # a per-request proxy of the spider's own: refused on a shared backend

    def __init__(self, *args, **kwargs):
        super().__init__(**kwargs)
        note(self.calls, "init", args)

    def start_requests(self, *args):
        note(self.calls, "start_requests", args)
        yield Request(self.base_url + "/")

    def opened(self, *args):
        note(self.calls, "opened", args)

    def closed(self, *args):
        note(self.calls, "closed", args)

    def parse(self, response):
        yield {"url": response.url}
        if response.url.endswith("/"):
            yield Request(self.base_url + "/own", meta={"proxy": self.proxy})
'''


def _inject(client, spider: str, host: str, requests: list[dict]) -> None:
    """Write requests into a crawl's frontier the way it stores them, as anyone with
    write access to its Redis can."""
    for r in requests:
        eid = f"{client.incr(f'scraper:{spider}:seq'):015d}"
        client.hset(f"scraper:{spider}:e", eid, f"0\t{host}\t0.0\t{json.dumps(r)}")
        client.zadd(f"scraper:{spider}:q", {eid: 0})


def test_entries_an_outsider_writes_send_no_credentials_and_call_no_hook(
        site, redis_server, redis_url, tmp_path):
    attacker = Site()  # the proxy an outsider would like the workers to use
    try:
        for path in ("/", "/a", "/b", "/c", "/d", "/e", "/p1", "/p2", "/p3"):
            site.route(path, page())
        calls = tmp_path / "calls.txt"
        project = write_project(tmp_path, {"victim": VICTIM},
                                CONFIG + "http_auth: {username: crawler, password: "
                                f"{PASSWORD}, domains: [127.0.0.1]}}\n")
        host = f"http://127.0.0.1:{site.port}"
        _inject(redis_server.client, "victim", host, [
            {"url": site.url + "/a", "callback": "closed"},
            {"url": site.url + "/b", "callback": "__init__"},
            {"url": site.url + "/c", "callback": "opened"},
            {"url": site.url + "/d", "callback": "start_requests"},
            {"url": site.url + "/e", "callback": "__class__"},
            {"url": site.url + "/404", "errback": "closed"},
            {"url": site.url + "/p1", "meta": {"proxy": attacker.url}},
            {"url": site.url + "/p2", "meta": {"proxy": attacker.url,
                                              "http_auth": ["mallory", "pw"]}},
            {"url": site.url + "/p3", "meta": {"http_auth": ["mallory", "pw"]}},
        ])
        r = run_cli("run", "victim", "-a", f"base_url={site.url}", "-a", f"calls={calls}",
                    "-a", f"proxy={attacker.url}", "--backend", redis_url, cwd=project,
                    timeout=90)
        assert r.returncode == 0, r.stderr
        assert attacker.hits == []                     # no request reached the proxy
        # the pages were fetched (URLs are data too), each with the crawl's own credentials
        paths = {h.path for h in site.hits}
        assert {"/", "/a", "/b", "/c", "/d", "/e", "/404", "/p1", "/p2", "/p3"} <= paths
        ours = "Basic " + base64.b64encode(f"crawler:{PASSWORD}".encode()).decode()
        assert {h.headers.get("authorization") for h in site.hits} == {ours}
        # each hook ran once, called by the framework: none as a callback or errback
        assert sorted(calls.read_text().splitlines()) == sorted(
            ["init ", "start_requests ", "opened ", "closed str"])
        # dropped meta: logged once, each entry counted
        assert r.stderr.count("set meta") == 1 and "untrusted-meta 3" in r.stderr, r.stderr
        for name in ("closed", "__init__", "opened", "start_requests", "__class__"):
            assert f"no callback method {name!r}" in r.stderr or \
                f"no errback method {name!r}" in r.stderr, r.stderr
        # the spider's own meta proxy cannot travel through the shared store either
        assert "/own" not in paths and "cannot go through a shared backend" in r.stderr
        assert PASSWORD not in r.stderr
    finally:
        attacker.close()


# -- 6. the password stays out of every line -------------------------------------------
def test_mask_url_hides_every_form_of_password():
    assert mask_url(f"redis://:{PASSWORD}@h:6379/0") == "redis://:***@h:6379/0"
    assert mask_url(f"rediss://user:{PASSWORD}@h:6379/0?password={PASSWORD}&db=1") == \
        "rediss://user:***@h:6379/0?password=***&db=1"
    assert mask_url(f"unix:///run/redis.sock?PASSWORD={PASSWORD}") == \
        "unix:///run/redis.sock?PASSWORD=***"
    assert mask_url(f"redis://:{PASSWORD}@h:port/0") == "redis://:***@h:port/0"   # unparsable
    assert mask_url(f"redis://:a@{PASSWORD}@h:1/0") == "redis://:***@h:1/0"       # '@' in it
    assert mask_url("redis://user@h:1/0") == "redis://user@h:1/0"


def test_the_redis_password_is_masked_in_every_error_line(site, tmp_path):
    project = write_project(tmp_path, {"tree": TREE}, CONFIG + "redis_retry_window: 0.2\n")
    port = _free_port()  # nothing listens there
    for command, url in (
            (["run", "tree", "-a", f"base_url={site.url}"],
             f"redis://user:{PASSWORD}@127.0.0.1:{port}/0"),            # unreachable
            (["push", "tree", site.url], f"redis://127.0.0.1:{port}/0?password={PASSWORD}"),
            (["reset", "tree"], f"redis://:{PASSWORD}@127.0.0.1:notaport/0")):  # malformed
        r = run_cli(*command, "--backend", url, cwd=project)
        assert r.returncode in (1, 2), r.stderr
        assert PASSWORD not in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.count("\n") == 1 and "***" in r.stderr, r.stderr
