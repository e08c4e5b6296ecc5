"""Persistent crawls (--job-dir) against a real local site, through the CLI: killed with
SIGKILL at random instants, stopped with SIGINT/SIGTERM, resumed: every item exactly once
in every output, finished pages not fetched again; dead letters; job mismatches."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from .conftest import ROOT, Reply, page, run_cli, write_project

PAGES = 120

SPIDER = '''
from scraper import Request, Spider

class Catalog(Spider):
    name = "catalog"
    base_url = ""

    def start_requests(self):
        yield Request(self.base_url + "/")

    def parse(self, response):
        yield {"url": response.url, "title": response.xpath("string(//title)").get()}
        yield from response.follow_all(response.links())
'''

OTHER = '''
from scraper import Spider

class Other(Spider):
    name = "other"
    def parse(self, response):
        yield {}
'''


@pytest.fixture
def catalog(site):
    # a tree: "/" links to 12 sections, each to 10 pages; pages link back (duplicates)
    sections = [f"/s{i}" for i in range(12)]
    site.route("/", Reply(page(*sections, title="home"), delay=0.01))
    for s in sections:
        kids = [f"{s}/p{j}" for j in range(10)]
        site.route(s, Reply(page(*kids, "/", title=s), delay=0.04))
        for k in kids:  # slow enough that a crawl lasts a few seconds: time to kill it
            site.route(k, Reply(page("/", s, title=k), delay=0.08))
    return site


def _project(tmp_path):
    return write_project(tmp_path, {"catalog": SPIDER, "other": OTHER},
                         "workers: 4\nobey_robots: false\nshutdown_timeout: 5\n")


def _cmd(site, *extra):
    return [sys.executable, "-m", "scraper", "run", "catalog", "-a", f"base_url={site.url}",
            "--job-dir", "job", "-o", "out.jsonl", "-o", "out.csv", "-o", "out.json",
            "-o", "out.db", *extra]


def _start(project, site, *extra):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(_cmd(site, *extra), cwd=project, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _check_outputs(project, site):
    expected = {site.url + "/"} | {f"{site.url}/s{i}" for i in range(12)} | {
        f"{site.url}/s{i}/p{j}" for i in range(12) for j in range(10)}
    jsonl = [json.loads(line)["url"] for line in (project / "out.jsonl").read_text().splitlines()]
    with open(project / "out.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    array = [i["url"] for i in json.loads((project / "out.json").read_text())]
    db = [r[0] for r in sqlite3.connect(project / "out.db").execute("SELECT url FROM catalog")]
    for name, urls in (("jsonl", jsonl), ("csv", [r["url"] for r in rows]), ("json", array),
                       ("db", db)):
        assert sorted(urls) == sorted(expected), f"{name}: not every item exactly once"
    return expected


def test_sigkill_at_random_instants_loses_and_duplicates_nothing(catalog, tmp_path):
    project = _project(tmp_path)
    rng = random.Random(7)
    kills = 0
    for _ in range(8):
        p = _start(project, catalog)
        time.sleep(rng.uniform(0.3, 1.2))
        if p.poll() is not None:
            p.communicate()
            break
        p.send_signal(signal.SIGKILL)
        p.communicate()
        kills += 1
    final = subprocess.run(_cmd(catalog), cwd=project, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert final.returncode == 0, final.stderr
    expected = _check_outputs(project, catalog)
    assert kills >= 3
    # only requests in flight at a kill may be fetched again (at most 2 x workers each time)
    fetched = [h for h in catalog.hits if h.path != "/robots.txt"]
    assert len(fetched) - len(expected) <= kills * 8
    summary = final.stderr
    assert "finished" in summary and f"items     {len(expected)}" in summary


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_graceful_stop_then_resume(catalog, tmp_path, sig):
    project = _project(tmp_path)
    p = _start(project, catalog, "--summary", "s1.json")
    # crawling (not starting up, when a signal stops it before any item): pages requested
    deadline = time.monotonic() + 30
    while len(catalog.hits) < 8 and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.01)
    p.send_signal(sig)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    first = json.loads((project / "s1.json").read_text())
    assert first["reason"] == "interrupted" and 0 < first["items"] < 133
    # the outputs are valid (closed cleanly) even before resuming
    json.loads((project / "out.json").read_text())
    hits_before = len(catalog.hits)
    r = run_cli(*_cmd(catalog)[3:], "--summary", "s2.json", cwd=project)
    assert r.returncode == 0, r.stderr
    _check_outputs(project, catalog)
    second = json.loads((project / "s2.json").read_text())
    assert second["reason"] == "finished" and second["items"] == 133
    # nothing fetched twice: the first run's pages were all finished or given back
    assert len(catalog.hits) - hits_before == 133 - first["pages"]


def test_second_signal_exits_at_once_and_job_still_resumes(catalog, tmp_path):
    project = _project(tmp_path)
    fast = dict(catalog.routes)
    for path, reply in fast.items():
        if path.count("/") == 2:  # make leaf pages slow so requests are in flight
            catalog.routes[path] = Reply(reply.body, delay=1.5)
    p = _start(project, catalog)
    time.sleep(1.2)
    p.send_signal(signal.SIGINT)
    time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    p.communicate(timeout=10)
    assert p.returncode == 130
    catalog.routes.update(fast)  # the resumed run need not wait
    r = run_cli(*_cmd(catalog)[3:], cwd=project, timeout=120)
    assert r.returncode == 0, r.stderr
    _check_outputs(project, catalog)


def test_failed_requests_are_dead_letters_and_can_be_retried(site, tmp_path):
    project = _project(tmp_path)
    state = {"up": False}
    site.route("/", page("/flaky", "/ok"))
    site.route("/ok", page())
    site.route("/flaky", lambda hit: Reply(page(), status=200 if state["up"] else 503))
    args = ["run", "catalog", "-a", f"base_url={site.url}", "--job-dir", "job", "-o", "out.jsonl",
            "-s", "retry.attempts=2", "-s", "retry.backoff=0.01", "--summary", "s.json"]
    r = run_cli(*args, cwd=project)
    assert r.returncode == 0, r.stderr
    s = json.loads((project / "s.json").read_text())
    assert s["dead_letters"] == 1 and s["errors"] == {"http-503": 1}
    assert site.count("/flaky") == 2
    state["up"] = True
    r = run_cli("retry-failed", "catalog", "--job-dir", "job", cwd=project)
    assert r.returncode == 0 and "1 failed request" in r.stderr
    r = run_cli(*args, cwd=project)
    assert r.returncode == 0, r.stderr
    urls = [json.loads(line)["url"] for line in (project / "out.jsonl").read_text().splitlines()]
    assert sorted(urls) == sorted([site.url + "/", site.url + "/ok", site.url + "/flaky"])
    assert site.count("/ok") == 1 and site.count("/") == 1


def test_mismatched_spider_or_start_requests_are_refused(catalog, tmp_path):
    project = _project(tmp_path)
    r = run_cli(*_cmd(catalog)[3:], "-s", "max_pages=3", cwd=project)
    assert r.returncode == 0, r.stderr
    r = run_cli("run", "other", "--job-dir", "job", cwd=project)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "'catalog'" in r.stderr
    r = run_cli("run", "catalog", "-a", "base_url=http://127.0.0.1:1", "--job-dir", "job",
                cwd=project)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "start requests changed" in r.stderr and "--force-resume" in r.stderr
    r = run_cli("run", "catalog", "-a", "base_url=http://127.0.0.1:1", "--job-dir", "job",
                "--force-resume", "-s", "retry.attempts=1", cwd=project)
    assert r.returncode == 0, r.stderr


def test_a_job_dir_in_use_is_refused(catalog, tmp_path):
    project = _project(tmp_path)
    for path, reply in list(catalog.routes.items()):
        catalog.routes[path] = Reply(reply.body, delay=0.5)
    p = _start(project, catalog)
    try:
        # the first crawl holds the job dir once it has sent its first request
        deadline = time.monotonic() + 30
        while not catalog.hits and time.monotonic() < deadline:
            time.sleep(0.02)
        assert catalog.hits, "the first crawl never started"
        r = run_cli(*_cmd(catalog)[3:], cwd=project)
        assert r.returncode == 2 and "in use" in r.stderr and r.stderr.count("\n") == 1
    finally:
        p.kill()
        p.communicate()


def test_overwrite_applies_only_to_a_fresh_job(catalog, tmp_path):
    project = _project(tmp_path)
    (project / "fresh.jsonl").write_text('{"old": 1}\n')
    args = ["run", "catalog", "-a", f"base_url={catalog.url}", "--job-dir", "job",
            "-O", "fresh.jsonl", "-s", "max_pages=5"]
    assert run_cli(*args, cwd=project).returncode == 0
    lines = (project / "fresh.jsonl").read_text().splitlines()
    assert len(lines) == 5 and '"old"' not in lines[0]
    args[-1] = "max_pages=9"
    assert run_cli(*args, cwd=project).returncode == 0
    assert len((project / "fresh.jsonl").read_text().splitlines()) == 9


def test_counters_keep_counting_after_a_resume(catalog, tmp_path):
    # issue 12: after a --job-dir resume the `filtered` counters froze, because
    # Stats.restore() replaced the Counters that admission still held
    project = _project(tmp_path)
    first = run_cli(*_cmd(catalog, "-s", "max_pages=20", "--summary", "s1.json")[3:], cwd=project)
    assert first.returncode == 0, first.stderr
    s1 = json.loads((project / "s1.json").read_text())
    assert s1["reason"] == "max_pages"
    second = run_cli(*_cmd(catalog, "--summary", "s2.json")[3:], cwd=project)
    assert second.returncode == 0, second.stderr
    s2 = json.loads((project / "s2.json").read_text())
    assert s2["reason"] == "finished" and s2["pages"] == 133
    # every page links back to "/" and its section: 133 pages give far more duplicates
    # than the first 20 did, and the job's totals carry on from the first run's
    assert s2["filtered"]["duplicate"] > s1["filtered"]["duplicate"] + 100
