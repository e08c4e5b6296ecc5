"""Worker processes (``--processes 2``) and stop signals, through the command line against
a real local site: the coordinator killed with SIGKILL mid-crawl (its worker processes
exit on their own, and the resumed job writes every item exactly once), and a graceful
SIGINT (exit 0, reason interrupted, no process of the crawl left within 5 s)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ..conftest import ROOT, Reply, Site, page, run_cli, write_project

PAGES = 200

SPIDER = '''
from scraper import Request, Spider

class Shop(Spider):
    name = "shop"
    base_url = ""

    def start_requests(self):
        yield Request(self.base_url + "/")

    def parse(self, response):
        yield {"url": response.url}
        yield from response.follow_all(response.links())
'''

CONFIG = "obey_robots: false\nworkers: 2\nprocesses: 2\nshutdown_timeout: 5\n"


@pytest.fixture
def shop(site: Site) -> set[str]:
    site.route("/", page(*[f"/p{i}" for i in range(PAGES)]))
    for i in range(PAGES):  # slow enough that the crawl lasts a few seconds
        site.route(f"/p{i}", Reply(page("/"), delay=0.03))
    return {site.url + "/"} | {f"{site.url}/p{i}" for i in range(PAGES)}


def _descendants(pid: int) -> set[int]:
    """Every live (not zombie) process below ``pid``."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            parents[int(entry)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        kids = {p for p, pp in parents.items() if pp in frontier}
        found |= kids
        frontier = kids
    return found


def _alive(pids: set[int]) -> set[int]:
    out = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.add(pid)
    return out


def _wait_until(ready: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _start(project: Path, site_url: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "scraper", "run", "shop", "-a", f"base_url={site_url}",
         "--job-dir", "job", "-o", "out.jsonl", *extra], cwd=project,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)


def _crawling(p: subprocess.Popen[str], site: Site) -> set[int]:
    """Wait until the crawl runs in its worker processes; their pids and the zygote's."""
    _wait_until(lambda: len(_descendants(p.pid)) == 3 and len(site.hits) >= 30,
                60, "the crawl to run in 2 worker processes")
    return _descendants(p.pid)


@pytest.mark.timeout(120)
def test_coordinator_killed_then_resumed(site, shop, tmp_path):
    project = write_project(tmp_path, {"shop": SPIDER}, CONFIG)
    p = _start(project, site.url)
    workers = _crawling(p, site)
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=30)
    # no orphan: the worker processes see their pipe close and exit on their own
    _wait_until(lambda: not _alive(workers), 5, "the worker processes to exit")
    r = run_cli("run", "shop", "-a", f"base_url={site.url}", "--job-dir", "job", "-o",
                "out.jsonl", "--summary", "s.json", cwd=project)
    assert r.returncode == 0, r.stderr
    assert json.loads((project / "s.json").read_text())["reason"] == "finished"
    urls = [json.loads(x)["url"] for x in (project / "out.jsonl").read_text().splitlines()]
    assert sorted(urls) == sorted(shop)  # every item exactly once


@pytest.mark.timeout(120)
def test_graceful_stop_leaves_no_process(site, shop, tmp_path):
    project = write_project(tmp_path, {"shop": SPIDER}, CONFIG)
    p = _start(project, site.url, "--summary", "s.json")
    workers = _crawling(p, site)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    summary = json.loads((project / "s.json").read_text())
    assert summary["reason"] == "interrupted" and 0 < summary["items"] < len(shop)
    assert summary["processes"]["count"] == 2 and summary["worker_restarts"] == 0
    assert not _alive(workers)  # gone before the coordinator exited
    assert "Traceback" not in err
