"""Worker processes (``processes`` > 1) against real local sites: the exact page and item
counts on the memory, SQLite (job dir) and Redis backends, custom counters, items that
cannot cross between processes, the per-host limit held across processes (measured at
the server), a worker process killed mid-crawl (restarted, nothing lost, nothing twice),
a page that kills every process it is in, and the setting's values."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from scraper import Request, Spider
from scraper.crawl.processes import usable_cpus
from scraper.exceptions import ConfigError

from .conftest import Reply, Site, crawl, page, run_cli, write_project

PAGES = 240


@dataclasses.dataclass
class Product:
    url: str
    n: int


def _catalog(site: Site, delay: float = 0.0) -> set[str]:
    """A home page linking to PAGES pages, each linking home and to its neighbour."""
    site.route("/", page(*[f"/p{i}" for i in range(PAGES)]))
    for i in range(PAGES):
        site.route(f"/p{i}", Reply(page("/", f"/p{(i + 1) % PAGES}"), delay=delay))
    return {site.url + "/"} | {f"{site.url}/p{i}" for i in range(PAGES)}


class Catalog(Spider):
    name = "catalog"
    base_url = ""
    kill_at = ""  # a marker file: the first worker process to see /p7 kills itself (once)
    poison = ""   # a path whose page kills every process it is in

    def start_requests(self):
        yield Request(self.base_url + "/")

    def parse(self, response):
        if self.kill_at and response.url.endswith("/p7") and not os.path.exists(self.kill_at):
            Path(self.kill_at).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        if self.poison and response.url.endswith(self.poison):
            os.kill(os.getpid(), signal.SIGKILL)
        self.stats.inc("parsed")
        if response.url.endswith("/p3"):
            yield {"url": response.url, "lock": lambda: None}  # cannot be pickled
        yield Product(response.url, 1)
        yield from response.follow_all(response.links(), callback=self.parse)


def _urls(items: list[Any]) -> list[str]:
    return sorted(i.url if isinstance(i, Product) else i["url"] for i in items)


SETTINGS = {"processes": 2, "workers": 3}


def _check(stats: Any, items: list[Any], expected: set[str]) -> None:
    assert stats.reason == "finished", stats.summary()
    assert stats.pages == len(expected)
    assert _urls(items) == sorted(expected)  # every item once, the unpicklable one left out
    assert stats.errors == {"bad-item": 1}
    assert stats.custom == {"parsed": len(expected)}  # spider.stats.inc, from every process
    procs = stats.summary()["processes"]
    assert procs["count"] == 2 and len(procs["workers"]) == 2
    assert all(w["peak_rss_mb"] > 0 for w in procs["workers"])


@pytest.mark.timeout(60)
def test_memory_backend_exact_counts(site):
    expected = _catalog(site)
    stats, items = crawl(Catalog, SETTINGS, spider_args={"base_url": site.url})
    _check(stats, items, expected)
    assert all(isinstance(i, Product) for i in items)  # dataclass items come back as such
    assert stats.worker_restarts == 0
    assert site.count("/p5") == 1 and site.count("/") == 1


@pytest.mark.timeout(60)
def test_job_dir_exact_counts_and_a_killed_worker_process(site, tmp_path):
    expected = _catalog(site, delay=0.01)
    marker = tmp_path / "killed"
    stats, items = crawl(Catalog, SETTINGS, job_dir=tmp_path / "job",
                         spider_args={"base_url": site.url, "kill_at": str(marker)})
    assert marker.exists()  # a worker process was killed with SIGKILL mid-crawl
    _check(stats, items, expected)
    assert stats.worker_restarts == 1 and stats.summary()["worker_restarts"] == 1
    # the page it was handling was fetched again; nothing else is counted twice
    assert site.count("/p7") == 2


@pytest.mark.timeout(60)
def test_redis_backend_exact_counts(site, redis_url):
    expected = _catalog(site)
    stats, items = crawl(Catalog, {**SETTINGS, "backend": redis_url},
                         spider_args={"base_url": site.url})
    _check(stats, items, expected)


@pytest.mark.timeout(60)
def test_a_page_that_kills_every_process_fails_alone(site):
    expected = _catalog(site)
    stats, items = crawl(Catalog, SETTINGS, spider_args={"base_url": site.url, "poison": "/p9"})
    assert stats.reason == "finished"
    # it died with others in its process; then alone in another: the culprit
    assert stats.errors["worker-died"] == 1 and stats.worker_restarts == 2
    assert stats.failures["worker-died"] == [{"url": site.url + "/p9"}] and stats.dead == 1
    assert _urls(items) == sorted(expected - {site.url + "/p9"})  # no other page failed


@pytest.mark.timeout(60)
def test_per_host_limit_holds_across_processes(site):
    _catalog(site, delay=0.03)
    stats, items = crawl(Catalog, {"processes": 2, "workers": 4, "per_host_workers": 3},
                         spider_args={"base_url": site.url})
    assert stats.reason == "finished" and stats.pages == PAGES + 1
    # 8 threads in 2 processes, never more than 3 in flight at the server
    assert 2 <= site.max_in_flight <= 3


CRASHY = '''
import os, signal
from scraper import Request, Spider

class Crashy(Spider):
    name = "crashy"
    base_url = ""
    crash = ""

    def start_requests(self):
        yield Request(self.base_url + "/")

    def parse(self, response):
        if self.crash and response.url != self.base_url + "/":
            os.kill(os.getpid(), signal.SIGKILL)
        yield {"url": response.url}
        yield from response.follow_all(response.links())
'''


@pytest.mark.timeout(90)
def test_a_spider_that_kills_its_processes_ends_the_crawl_losing_nothing(site, tmp_path):
    expected = _catalog(site)
    project = write_project(tmp_path, {"crashy": CRASHY},
                            "obey_robots: false\nworkers: 2\nprocesses: 2\n")
    args = ("run", "crashy", "-a", f"base_url={site.url}", "--job-dir", "job", "-o", "out.jsonl",
            "--summary", "s.json")
    r = run_cli(*args, "-a", "crash=1", cwd=project)
    assert r.returncode == 1, r.stderr
    assert "worker processes died 11 times within a minute; stopping the crawl" in r.stderr
    assert json.loads((project / "s.json").read_text())["reason"] == "error"
    died = json.loads((project / "s.json").read_text())["errors"].get("worker-died", 0)
    assert died >= 1  # pages that killed a process alone: dead letters, not lost
    again = run_cli(*args, cwd=project)  # the spider fixed: resumed
    assert again.returncode == 0, again.stderr
    assert run_cli("retry-failed", "crashy", "--job-dir", "job", cwd=project).returncode == 0
    last = run_cli(*args, cwd=project)
    assert last.returncode == 0, last.stderr
    urls = [json.loads(x)["url"] for x in (project / "out.jsonl").read_text().splitlines()]
    assert sorted(urls) == sorted(expected)  # every item exactly once


def test_processes_setting_values(site, tmp_path):
    assert crawl_settings_processes("auto") == usable_cpus()
    assert crawl_settings_processes(3) == 3
    for bad in (0, -1, "many", 1.5, True):
        with pytest.raises(ConfigError, match="processes must be an integer >= 1 or \"auto\""):
            crawl_settings_processes(bad)
    project = write_project(tmp_path, {"crashy": CRASHY}, "obey_robots: false\n")
    r = run_cli("run", "crashy", "--processes", "x", cwd=project)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "processes must be an integer >= 1 or \"auto\", got 'x'" in r.stderr
    site.route("/", page())
    r = run_cli("run", "crashy", "-a", f"base_url={site.url}", "--processes", "auto",
                "--summary", "s.json", cwd=project)
    assert r.returncode == 0, r.stderr
    summary = json.loads((project / "s.json").read_text())
    assert summary["items"] == 1
    if usable_cpus() > 1:
        assert summary["processes"]["count"] == usable_cpus()


def crawl_settings_processes(value: Any) -> int:
    from scraper.crawl.runner import crawl_settings

    return crawl_settings(Catalog, settings={"processes": value}).crawl.processes
