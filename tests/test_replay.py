"""Record and replay (``run --record DIR`` / ``run --replay DIR``) and ``scraper.testing``:
a replayed crawl writes the recorded crawl's outputs byte for byte, sends nothing, and
counts (or, with --strict, stops on) a request the cassette does not hold."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.conftest import Hit, Reply, Site, page, run_cli, write_project

SPIDER = '''
from scraper import Request, Spider


class Shop(Spider):
    name = "shop"
    base_url = ""
    extra = ""

    def start_requests(self):
        yield Request(self.base_url + "/")
        if self.extra:
            yield Request(self.base_url + self.extra)

    def parse(self, response):
        yield {"url": response.url, "title": response.css("title::text").get(),
               "status": response.status}
        yield from response.follow_all(response.links())
'''

CONFIG = "workers: 1\nretry:\n  backoff: 0.01\n  attempts: 2\n"


def shop(site: Site) -> Site:
    """Pages, a redirect, a 404, a retried 503, a connection that always breaks, and a
    robots.txt that forbids one page."""
    site.route("/robots.txt", "User-agent: *\nDisallow: /private\n", content_type="text/plain")
    site.route("/", page("/a", "/old", "/missing", "/flaky", "/broken", "/private", title="Home"))
    site.route("/a", page("/b", title="A"))
    site.route("/b", page("/", title="B"))
    site.route("/old", Reply(b"", status=301, headers={"Location": "/new"}))
    site.route("/new", page(title="New"))
    site.route("/private", page(title="Private"))
    flaky = iter([Reply(b"busy", status=503)])

    def flaky_answer(hit: Hit) -> Reply:
        return next(flaky, Reply(page(title="Flaky")))

    def broken(hit: Hit) -> None:
        hit.handler.close_connection = True  # no answer: the client sees the connection drop

    site.route("/flaky", flaky_answer)
    site.route("/broken", broken)
    return site


def scraper(project: Path, *args: str) -> tuple[int, str, dict]:
    r = run_cli(*args, "--summary", "summary.json", cwd=project)
    summary = json.loads((project / "summary.json").read_text()) if r.returncode != 2 else {}
    return r.returncode, r.stderr, summary


def recorded(site: Site, tmp_path: Path) -> Path:
    project = write_project(tmp_path, {"shop": SPIDER}, CONFIG)
    code, err, summary = scraper(project, "run", "shop", "-a", f"base_url={site.url}",
                                 "--record", "cassette", "-O", "recorded.jsonl")
    assert code == 0, err
    assert summary["errors"] == {"connection": 1, "http-404": 1, "robots": 1}
    assert summary["retries"] == 2  # /flaky's 503 and /broken's first try
    return project


def test_a_replayed_crawl_writes_the_recorded_outputs_byte_for_byte_with_the_site_gone(
        site, tmp_path):
    project = recorded(shop(site), tmp_path)
    live = json.loads((project / "summary.json").read_text())
    hits = len(site.hits)
    site.close()  # nothing can answer now: whatever replays comes from the cassette
    code, err, summary = scraper(project, "run", "shop", "-a", f"base_url={site.url}",
                                 "--replay", "cassette", "-O", "replayed.jsonl")
    assert code == 0, err
    recorded_out = (project / "recorded.jsonl").read_bytes()
    assert recorded_out.count(b"\n") == 5  # /, /a, /b, /new and /flaky (after its retry)
    assert (project / "replayed.jsonl").read_bytes() == recorded_out
    for key in ("pages", "items", "requests", "retries", "errors", "statuses", "filtered"):
        assert summary[key] == live[key], key
    assert len(site.hits) == hits
    # one row per exchange, robots.txt, the redirect hop and both failed tries included
    with sqlite3.connect(project / "cassette" / "cassette.sqlite") as db:
        rows = db.execute("SELECT url, status, error_kind FROM exchanges ORDER BY seq").fetchall()
    urls = [u.removeprefix(site.url) for u, _, _ in rows]
    assert urls[0] == "/robots.txt" and urls.count("/broken") == 2 and urls.count("/flaky") == 2
    assert ("/old", 301) in [(u, s) for u, (_, s, _) in zip(urls, rows)]
    assert [k for _, _, k in rows if k] == ["connection", "connection"]


def test_replay_never_opens_a_socket_even_with_the_site_up(site, tmp_path):
    project = recorded(shop(site), tmp_path)
    site.hits.clear()
    code, err, summary = scraper(project, "run", "shop", "-a", f"base_url={site.url}",
                                 "--replay", "cassette", "-s", "workers=8")
    assert code == 0, err
    assert site.hits == [] and summary["pages"] == 6


def test_a_request_not_recorded_is_a_counted_failure_and_strict_stops_the_crawl(site, tmp_path):
    project = recorded(shop(site), tmp_path)
    site.close()
    args = ("run", "shop", "-a", f"base_url={site.url}", "-a", "extra=/elsewhere",
            "--replay", "cassette")
    code, err, summary = scraper(project, *args)
    assert code == 0, err
    assert summary["errors"]["not-recorded"] == 1
    assert summary["failures"]["not-recorded"] == [{"url": site.url + "/elsewhere"}]
    code, err, summary = scraper(project, *args, "--strict")
    assert code == 1 and summary["reason"] == "error", err
    assert "/elsewhere is not in the cassette" in err


def test_replay_without_a_cassette_and_strict_without_replay_are_usage_errors(tmp_path):
    project = write_project(tmp_path, {"shop": SPIDER}, CONFIG)
    r = run_cli("run", "shop", "--replay", "nowhere", cwd=project)
    assert r.returncode == 2 and "no cassette" in r.stderr
    r = run_cli("run", "shop", "--strict", cwd=project)
    assert r.returncode == 2 and "--strict goes with --replay" in r.stderr


def test_run_spider_replays_a_cassette_in_this_process(site, tmp_path, monkeypatch):
    from scraper.testing import run_spider

    shop(site)
    fixed = SPIDER.replace('base_url = ""', f'base_url = "{site.url}"')
    project = write_project(tmp_path, {"shop": fixed}, CONFIG)
    r = run_cli("run", "shop", "--record", "tests/cassettes/shop", cwd=project)
    assert r.returncode == 0, r.stderr
    site.close()
    monkeypatch.chdir(project)  # as a project's own tests run: from its directory
    run = run_spider("shop", replay="tests/cassettes/shop")
    assert sorted(i["title"] for i in run.items) == ["A", "B", "Flaky", "Home", "New"]
    assert run.failures == {"connection": 1, "http-404": 1, "robots": 1}
    assert run.stats is not None and run.stats.pages == 6
    fetched = [r.url.removeprefix(site.url) for r in run.requests]
    assert fetched[0] == "/robots.txt" and fetched.count("/flaky") == 2 and "/old" in fetched
    # a class, a setting over the config, and a request the cassette lacks
    from scraper.loader import load_spider

    cls = load_spider("shop", "spiders", project)
    again = run_spider(cls, replay=project / "tests" / "cassettes" / "shop",
                       settings={"workers": 4})
    assert len(again.items) == 5
    cls.extra = "/elsewhere"
    missing = run_spider(cls, replay="tests/cassettes/shop")
    assert missing.failures["not-recorded"] == 1 and len(missing.items) == 5


def test_repeats_of_one_request_replay_in_the_order_they_were_recorded(site, tmp_path):
    from scraper import Request, Spider
    from scraper.fetch.cassette import CassetteMode
    from scraper.testing import run_spider
    from tests.conftest import crawl

    answers = iter(range(100))
    site.route("/n", lambda hit: Reply(f"<title>{next(answers)}</title>"))

    class Again(Spider):
        name = "again"

        def start_requests(self):
            yield Request(site.url + "/n")

        def parse(self, response):
            title = response.css("title::text").get()
            yield {"n": title}
            if int(title) < 3:  # the same URL again, one after the other
                yield Request(site.url + "/n", dont_filter=True)

    _, live = crawl(Again, cassette=CassetteMode(tmp_path / "c", replay=False))
    site.close()
    replayed = run_spider(Again, replay=tmp_path / "c", settings={"obey_robots": False})
    assert live == replayed.items == [{"n": "0"}, {"n": "1"}, {"n": "2"}, {"n": "3"}]


def test_an_exported_cassette_is_readable_and_diffs_page_by_page(site, tmp_path):
    project = recorded(shop(site), tmp_path)
    r = run_cli("cassette", "export", "cassette", "review", cwd=project)
    assert r.returncode == 0, r.stderr
    out = project / "review"
    records = {p.name: json.loads(p.read_text()) for p in out.glob("*.json")}
    by_url = {}
    for name, rec in records.items():
        by_url.setdefault(rec["url"].removeprefix(site.url), []).append((name, rec))
    assert len(by_url["/broken"]) == 2 and all(
        rec["error_kind"] == "connection" for _, rec in by_url["/broken"])
    assert [rec["status"] for _, rec in sorted(by_url["/flaky"])] == [503, 200]
    (name, home), = by_url["/"]
    assert home["status"] == 200 and "seq" not in home and "elapsed" not in home
    assert b"<title>Home</title>" in (out / name).with_suffix(".body").read_bytes()
    # named by request, not by time: a second recording (where /flaky answers at once)
    # exports to the same names, less /flaky's second try
    code, err, _ = scraper(project, "run", "shop", "-a", f"base_url={site.url}",
                           "--record", "again")
    assert code == 0, err
    assert run_cli("cassette", "export", "again", "review2", cwd=project).returncode == 0
    again = {p.name for p in (project / "review2").iterdir()}
    flaky_second = {n for n, _ in by_url["/flaky"] if n.endswith("-2.json")}
    assert again == {p.name for p in out.iterdir()} - {
        n for f in flaky_second for n in (f, f.replace(".json", ".body"))}
    missing = run_cli("cassette", "export", "nowhere", "x", cwd=project)
    assert missing.returncode == 2 and "no cassette there" in missing.stderr
