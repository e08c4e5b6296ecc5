"""The HTTP cache (``httpcache:``): policies against a real local server, the SQLite file
under 32 writing threads, hits skipping the politeness delay, hits and misses in the
summary."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any

from requests.structures import CaseInsensitiveDict

from scraper import Request, Spider
from scraper.fetch.cache import HttpCache, Rfc9111Policy, Stored
from scraper.response import Response
from tests.conftest import ROOT, Hit, Reply, Site, crawl, page, run_cli, write_project


def follower(*start: str) -> type[Spider]:
    """A spider following every link from ``start``; one item per page, body text included."""

    class Follow(Spider):
        name = "follow"
        start_urls = list(start)

        def parse(self, response):
            yield {"url": response.url, "body": response.text}
            yield from response.follow_all(response.links())

    return Follow


def cached(tmp_path: Path, policy: str = "dummy", **more: Any) -> dict[str, Any]:
    return {"httpcache.enabled": True, "httpcache.dir": str(tmp_path / "cache" / "{spider}"),
            "httpcache.policy": policy, **more}


# -- rfc9111 -------------------------------------------------------------------------------
def test_max_age_fresh_responses_are_served_without_asking_the_server(site, tmp_path):
    site.route("/", page("/a"), headers={"Cache-Control": "max-age=600"})
    site.route("/a", page(title="A"), headers={"Cache-Control": "public, max-age=600"})
    spider = follower(site.url + "/")
    first, items1 = crawl(spider, cached(tmp_path, "rfc9111"))
    assert (first.cache_hits, first.cache_misses) == (0, 2)
    second, items2 = crawl(spider, cached(tmp_path, "rfc9111"))
    assert (second.cache_hits, second.cache_misses) == (2, 0)
    assert site.paths() == {"/": 1, "/a": 1}
    assert sorted(items1, key=str) == sorted(items2, key=str)
    assert (tmp_path / "cache" / "follow" / "httpcache.sqlite").is_file()


def _validated(validator: str, stored_value: str, header: str) -> Any:
    """A route: 304 when the request carries ``header: stored_value``, else 200 with the
    validator and no freshness (so every later use revalidates)."""
    def answer(hit: Hit) -> Reply:
        if hit.headers.get(header.lower()) == stored_value:
            return Reply(b"", status=304, headers={validator: stored_value,
                                                    "X-Checked": "again"}, content_type=None)
        return Reply(page(title="v1"), headers={validator: stored_value,
                                                "Cache-Control": "no-cache", "X-Checked": "first"})
    return answer


def test_a_stale_entry_is_revalidated_with_its_etag_and_a_304_serves_the_stored_body(site, tmp_path):
    site.route("/", _validated("ETag", '"v1"', "If-None-Match"))
    spider = follower(site.url + "/")
    first, items1 = crawl(spider, cached(tmp_path, "rfc9111"))
    second, items2 = crawl(spider, cached(tmp_path, "rfc9111"))
    assert items1 == items2 and "v1" in items2[0]["body"]  # the body the 304 did not send
    assert site.count("/") == 2  # once for the page, once for the revalidation
    assert site.hits[1].headers["if-none-match"] == '"v1"'
    assert (first.cache_misses, second.cache_hits, second.cache_misses) == (1, 1, 0)
    assert second.statuses == {200: 1}  # the callback saw the stored 200
    # the 304's headers were stored: a third run sends the same validator
    crawl(spider, cached(tmp_path, "rfc9111"))
    assert site.count("/") == 3 and site.hits[2].headers["if-none-match"] == '"v1"'
    with sqlite3.connect(tmp_path / "cache" / "follow" / "httpcache.sqlite") as db:
        (headers,) = db.execute("SELECT headers FROM responses").fetchone()
    assert json.loads(headers)["X-Checked"] == "again"


def test_a_stale_entry_is_revalidated_with_last_modified(site, tmp_path):
    modified = formatdate(time.time() - 3600, usegmt=True)
    site.route("/", _validated("Last-Modified", modified, "If-Modified-Since"))
    spider = follower(site.url + "/")
    crawl(spider, cached(tmp_path, "rfc9111"))
    second, items = crawl(spider, cached(tmp_path, "rfc9111"))
    assert site.count("/") == 2 and site.hits[1].headers["if-modified-since"] == modified
    assert second.cache_hits == 1 and "v1" in items[0]["body"]


def test_no_store_responses_are_not_stored(site, tmp_path):
    site.route("/", page(title="secret"), headers={"Cache-Control": "no-store"})
    spider = follower(site.url + "/")
    for _ in range(2):
        stats, items = crawl(spider, cached(tmp_path, "rfc9111"))
        assert (stats.cache_hits, stats.cache_misses, len(items)) == (0, 1, 1)
    assert site.count("/") == 2


def _stored(headers: dict[str, str], stored_at: float, status: int = 200) -> Stored:
    return Stored("http://h/", status, CaseInsensitiveDict(headers), b"x", stored_at)


def test_rfc9111_freshness_rules():
    policy, req, t = Rfc9111Policy(), Request("http://h/"), 1_000_000.0
    date = formatdate(t, usegmt=True)
    assert policy.fresh(req, _stored({"Cache-Control": "max-age=60"}, t), t + 59)
    assert not policy.fresh(req, _stored({"Cache-Control": "max-age=60"}, t), t + 61)
    # Age the response already had counts; s-maxage is for shared caches
    assert not policy.fresh(req, _stored({"Cache-Control": "max-age=60", "Age": "50"}, t), t + 11)
    assert not policy.fresh(req, _stored({"Cache-Control": "s-maxage=600"}, t), t + 1)
    expires = {"Date": date, "Expires": formatdate(t + 30, usegmt=True)}
    assert policy.fresh(req, _stored(expires, t), t + 29)
    assert not policy.fresh(req, _stored(expires, t), t + 31)
    assert not policy.fresh(req, _stored({"Date": date, "Expires": "0"}, t), t)
    # heuristic: a tenth of the time since Last-Modified
    heuristic = {"Date": date, "Last-Modified": formatdate(t - 1000, usegmt=True)}
    assert policy.fresh(req, _stored(heuristic, t), t + 99)
    assert not policy.fresh(req, _stored(heuristic, t), t + 101)
    assert not policy.fresh(req, _stored({"Cache-Control": "max-age=60, no-cache"}, t), t)
    assert not policy.fresh(Request("http://h/", headers={"Cache-Control": "no-cache"}),
                            _stored({"Cache-Control": "max-age=60"}, t), t)
    # must-revalidate: a stale entry is never served as it is
    assert not policy.fresh(req, _stored({"Cache-Control": "max-age=1, must-revalidate"}, t), t + 2)


def test_expiration_s_and_ignore_statuses_with_the_dummy_policy(site, tmp_path):
    cache = HttpCache(tmp_path / "c.sqlite", expiration_s=10)
    req = Request("http://h/x")
    cache.put(req.fingerprint, Response("http://h/x", 200, {"A": "b"}, b"body", req), now=100.0)
    got = cache.get(req.fingerprint, now=109.0)
    assert got is not None and got.body == b"body" and got.headers["a"] == "b"
    assert cache.get(req.fingerprint, now=111.0) is None
    # in a crawl: a 404 in ignore_statuses is asked again; the 200 is not
    site.route("/", page("/gone"))
    spider = follower(site.url + "/")
    settings = cached(tmp_path, **{"httpcache.ignore_statuses": [404]})
    crawl(spider, settings)
    second, _ = crawl(spider, settings)
    assert site.paths() == {"/": 1, "/gone": 2}
    assert (second.cache_hits, second.cache_misses) == (1, 1)


# -- many threads --------------------------------------------------------------------------
def test_32_workers_fill_the_cache_and_a_second_run_is_served_from_it(site, tmp_path):
    n = 300
    site.route("/", page(*[f"/p{i}" for i in range(n)]))
    for i in range(n):
        site.route(f"/p{i}", page(title=f"p{i}", extra="x" * 2000))
    spider = follower(site.url + "/")
    settings = {**cached(tmp_path), "workers": 32, "per_host_workers": 32}
    first, items1 = crawl(spider, settings)
    assert first.cache_misses == n + 1 and not first.errors
    with sqlite3.connect(tmp_path / "cache" / "follow" / "httpcache.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == n + 1
    hits_before = len(site.hits)
    second, items2 = crawl(spider, settings)
    assert (second.cache_hits, second.cache_misses) == (n + 1, 0) and not second.errors
    assert len(site.hits) == hits_before
    assert sorted(items1, key=str) == sorted(items2, key=str)


def test_the_cache_file_takes_32_threads_writing_and_reading_at_once(tmp_path):
    cache = HttpCache(tmp_path / "c.sqlite")
    errors: list[BaseException] = []
    start = threading.Barrier(32)

    def work(t: int) -> None:
        try:
            start.wait()
            for i in range(40):
                req = Request(f"http://h/{t}/{i}")
                body = f"{t}-{i}".encode() * 100
                cache.put(req.fingerprint, Response(req.url, 200, {}, body, req), time.time())
                got = cache.get(req.fingerprint, time.time())
                assert got is not None and got.body == body
            cache.close_thread()
        except BaseException as e:  # collected: an assert in a thread would be lost
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(32)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert not errors
    with sqlite3.connect(tmp_path / "c.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 32 * 40


# -- politeness ------------------------------------------------------------------------------
def test_a_cache_hit_does_not_wait_for_the_hosts_delay(site, tmp_path):
    n = 7
    site.route("/", page(*[f"/p{i}" for i in range(n)]))
    for i in range(n):
        site.route(f"/p{i}", page(title=f"p{i}"))
    spider = follower(site.url + "/")
    settings = {**cached(tmp_path), "delay": 0.3}
    started = time.monotonic()
    first, _ = crawl(spider, settings)
    first_s = time.monotonic() - started
    assert first_s >= n * 0.3  # the delay held on the network
    started = time.monotonic()
    second, _ = crawl(spider, settings)
    second_s = time.monotonic() - started
    assert second.cache_hits == n + 1 and len(site.hits) == n + 1
    assert second_s < first_s / 2, (first_s, second_s)


# -- the command line ------------------------------------------------------------------------
SPIDER = '''
from scraper import Request, Spider


class Follow(Spider):
    name = "follow"
    base_url = ""

    def start_requests(self):
        yield Request(self.base_url + "/")

    def parse(self, response):
        yield {"url": response.url}
        yield from response.follow_all(response.links())
'''


def test_s_httpcache_enabled_counts_hits_and_misses_in_the_summary_json(site: Site, tmp_path):
    site.route("/", page("/a", "/b"))
    site.route("/a", page())
    site.route("/b", page())
    project = write_project(tmp_path, {"follow": SPIDER})
    summaries = []
    for run in ("1", "2"):
        r = run_cli("run", "follow", "-a", f"base_url={site.url}", "-s", "httpcache.enabled=true",
                    "-s", "obey_robots=false", "--summary", f"s{run}.json", cwd=project)
        assert r.returncode == 0, r.stderr
        summaries.append(json.loads((project / f"s{run}.json").read_text()))
    assert [(s["cache_hits"], s["cache_misses"]) for s in summaries] == [(0, 3), (3, 0)]
    assert "cache     hits 3, misses 0" in r.stderr
    assert (project / ".scraper" / "httpcache" / "follow" / "httpcache.sqlite").is_file()
    assert site.paths() == {"/": 1, "/a": 1, "/b": 1}


def test_a_crawl_killed_while_caching_leaves_a_usable_cache(site: Site, tmp_path):
    # kill -9 lands while workers are writing the cache (WAL): the next run opens it,
    # serves what was stored, and fetches only what was not
    links = [f"/p{i}" for i in range(40)]
    site.route("/", page(*links))
    for path in links:
        site.route(path, Reply(page(), delay=0.05))
    project = write_project(tmp_path, {"follow": SPIDER})
    args = ["run", "follow", "-a", f"base_url={site.url}", "-s", "httpcache.enabled=true",
            "-s", "obey_robots=false", "-s", "workers=4"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-m", "scraper", *args], cwd=project, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(site.hits) < 15:  # readiness: the server has answered a third of the pages
        assert p.poll() is None and time.monotonic() < deadline, "the first run ended early"
        time.sleep(0.01)
    p.kill()
    p.wait(30)
    fetched_before = len(site.hits)
    assert fetched_before < 41, "the kill came after the crawl"
    r = run_cli(*args, "--summary", "s.json", cwd=project)
    assert r.returncode == 0, r.stderr
    summary = json.loads((project / "s.json").read_text())
    assert summary["pages"] == 41 and not summary["errors"]
    # what the killed run stored (all but the few in flight at the kill) is served from
    # the cache: the server sees each page once, give or take those in flight
    assert summary["cache_hits"] >= fetched_before - 4 - 1, summary
    assert summary["cache_hits"] + summary["cache_misses"] == 41
    assert len(site.hits) - fetched_before == summary["cache_misses"]
