"""The daily tools through the real command line (``python -m scraper`` in a subprocess, in
a project made in tmp_path) against the ``site`` fixture: new/startproject, genspider,
fetch, shell (``-c`` and a pseudo-terminal session), parse, check (Scrapy's contracts),
runspider, crawl and settings."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import select
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import ROOT, Hit, Reply, Site, page, run_cli, write_project


# -- helpers -------------------------------------------------------------------
def assert_usage_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit 2, nothing on stdout, exactly one line on stderr naming every word."""
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for w in words:
        assert w in lines[0], lines[0]


def assert_failed(result: subprocess.CompletedProcess[Any], *words: str) -> str:
    """Exit 1 and an error line (the last on stderr) naming every word; returns it."""
    stderr = result.stderr if isinstance(result.stderr, str) else result.stderr.decode()
    assert result.returncode == 1, stderr
    last = stderr.splitlines()[-1]
    assert last.startswith("scraper: error: "), stderr
    for w in words:
        assert w in last, last
    return last


def run_bytes(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "scraper", *args], cwd=cwd, env=env,
                          capture_output=True, timeout=60)


def jsonlines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines()]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


FAST = ["-s", "retry.backoff=0.01"]


# -- new / startproject ----------------------------------------------------------
def test_new_writes_a_project_whose_own_tests_pass_offline(tmp_path):
    result = run_cli("new", "shop", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    proj = tmp_path / "shop"
    for rel in ("config.yaml", "spiders/__init__.py", "spiders/books.py", "tests/test_books.py",
                "tests/pages/index.html", "README.md", ".gitignore"):
        assert (proj / rel).is_file(), rel
    assert run_cli("list", cwd=proj).stdout == "books\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                           cwd=proj, env=env, capture_output=True, text=True, timeout=120)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "3 passed" in tests.stdout


def test_the_new_projects_spider_crawls_the_bundled_demo_shop(tmp_path):
    run_cli("new", "shop", cwd=tmp_path)
    out = tmp_path / "shop" / "books.jsonl"
    result = run_cli("demo", "books", "-o", str(out), cwd=tmp_path / "shop")
    assert result.returncode == 0, result.stderr
    items = jsonlines(out.read_text())
    assert len(items) == 200
    assert all(i["title"] and i["price"].startswith("£") for i in items)


def _uncommented(config: str) -> str:
    """config.yaml with every setting line uncommented (``#key: v``, ``#  sub: v``)."""
    return "".join(line[1:] if re.match(r"#(\S|  )", line) else line
                   for line in config.splitlines(True))


def test_new_config_lists_every_setting_commented_out_at_its_default(tmp_path):
    from scraper.config.schema import SCHEMA

    run_cli("new", "proj", cwd=tmp_path)
    config = (tmp_path / "proj" / "config.yaml").read_text()
    defaults = run_cli("settings", cwd=tmp_path)
    assert defaults.returncode == 0, defaults.stderr
    assert run_cli("settings", cwd=tmp_path / "proj").stdout == defaults.stdout
    for key in SCHEMA:
        group, _, leaf = key.rpartition(".")
        assert re.search(rf"^#{re.escape(group) + ':' if group else ''}", config, re.M)
        pattern = rf"^#  {re.escape(leaf)}:" if group else rf"^#{re.escape(key)}:"
        assert re.search(pattern, config, re.M), key
    # uncommented, every line says its default: the settings do not change
    (tmp_path / "all.yaml").write_text(_uncommented(config))
    assert yaml.safe_load(_uncommented(config))["workers"] == 16
    merged = run_cli("settings", "--config", str(tmp_path / "all.yaml"), cwd=tmp_path)
    assert merged.returncode == 0, merged.stderr
    assert merged.stdout == defaults.stdout


def test_new_refuses_a_directory_that_is_not_empty(tmp_path):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "notes.txt").write_text("mine")
    assert_usage_error(run_cli("new", "proj", cwd=tmp_path), "proj", "not empty")
    assert sorted(p.name for p in (tmp_path / "proj").iterdir()) == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    assert_usage_error(run_cli("new", "file", cwd=tmp_path), "file", "not a directory")


def test_startproject_is_new_and_takes_an_empty_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_cli("startproject", "empty", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "empty" / "spiders" / "books.py").is_file()


# -- genspider -----------------------------------------------------------------------
def shop_pages(site: Site) -> Site:
    site.route("/", page("/a", "/b", title="Home"))
    site.route("/a", page("/b", title="Page A"))
    site.route("/b", page(title="Page B"))
    return site


def test_genspider_basic_writes_a_spider_that_runs_and_passes_its_contracts(tmp_path, site):
    shop_pages(site)
    result = run_cli("genspider", "my-shop", f"{site.url}/", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    path = tmp_path / "spiders" / "my_shop.py"
    source = path.read_text()
    assert "class MyShopSpider(Spider):" in source and 'allowed_domains = ["127.0.0.1"]' in source
    assert run_cli("list", cwd=tmp_path).stdout == "my-shop\n"
    crawl = run_cli("run", "my-shop", "-o", "-", cwd=tmp_path)
    assert crawl.returncode == 0, crawl.stderr
    assert jsonlines(crawl.stdout) == [{"title": "Home", "url": f"{site.url}/"}]
    check = run_cli("check", "my-shop", cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert check.stdout == "ok: my-shop.parse\n"


def test_genspider_crawl_template_follows_its_rules(tmp_path, site):
    shop_pages(site)
    result = run_cli("genspider", "rules", f"{site.url}/", "--template", "crawl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "class RulesSpider(CrawlSpider):" in (tmp_path / "spiders" / "rules.py").read_text()
    crawl = run_cli("run", "rules", "-o", "-", cwd=tmp_path)
    assert crawl.returncode == 0, crawl.stderr
    assert sorted(i["title"] for i in jsonlines(crawl.stdout)) == ["Page A", "Page B"]


def test_genspider_sitemap_template_crawls_what_the_sitemap_lists(tmp_path, site):
    shop_pages(site)
    site.route("/sitemap.xml", Reply(
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{site.url}/a</loc></url><url><loc>{site.url}/b</loc></url></urlset>",
        content_type="application/xml"))
    result = run_cli("genspider", "maps", site.url, "--template", "sitemap", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f'sitemap_urls = ["{site.url}/sitemap.xml"]' in (tmp_path / "spiders" / "maps.py").read_text()
    crawl = run_cli("run", "maps", "-o", "-", cwd=tmp_path)
    assert crawl.returncode == 0, crawl.stderr
    assert sorted(i["url"] for i in jsonlines(crawl.stdout)) == [f"{site.url}/a", f"{site.url}/b"]


def test_genspider_goes_into_spiders_path_and_refuses_what_exists(tmp_path):
    write_project(tmp_path, {}, "spiders_path: crawlers\n")
    (tmp_path / "crawlers").mkdir()
    (tmp_path / "crawlers" / "other.py").write_text(
        "from scraper import Spider\n\nclass Taken(Spider):\n    name = 'taken'\n")
    assert run_cli("genspider", "fresh", "example.com", cwd=tmp_path).returncode == 0
    fresh = (tmp_path / "crawlers" / "fresh.py").read_text()
    assert 'start_urls = ["https://example.com/"]' in fresh
    assert_usage_error(run_cli("genspider", "fresh", "example.org", cwd=tmp_path),
                       "fresh", "already exists")
    assert (tmp_path / "crawlers" / "fresh.py").read_text() == fresh
    assert_usage_error(run_cli("genspider", "taken", "example.org", cwd=tmp_path),
                       "taken", "already exists", "Taken")
    assert not (tmp_path / "crawlers" / "taken.py").exists()
    assert_usage_error(run_cli("genspider", "9lives", "example.org", cwd=tmp_path), "9lives")
    assert_usage_error(run_cli("genspider", "ok", "ftp://example.org/", cwd=tmp_path), "ftp://")


# -- fetch -------------------------------------------------------------------------
def test_fetch_writes_the_body_byte_for_byte(tmp_path, site):
    body = b"\xff\xfe binary \x00 bytes\r\n\x80"
    site.route("/blob", Reply(body, content_type="application/octet-stream"))
    result = run_bytes("fetch", f"{site.url}/blob", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == body
    assert result.stderr == b""
    assert site.count("/robots.txt") == 1  # robots.txt asked first, as a crawl does


def test_fetch_sends_what_a_crawl_of_that_spider_would(tmp_path, site):
    site.route("/", "hello")
    write_project(tmp_path, {"polite": (
        "from scraper import Spider\n\nclass Polite(Spider):\n    name = 'polite'\n"
        "    custom_settings = {'user_agent': 'spiderbot/2'}\n")},
        "user_agent: configbot/1\nheaders: {X-From: config}\n")
    assert run_cli("fetch", f"{site.url}/", cwd=tmp_path).stdout == "hello"
    assert run_cli("fetch", f"{site.url}/", "--spider", "polite", cwd=tmp_path).stdout == "hello"
    assert run_cli("fetch", f"{site.url}/", "--spider", "polite", "-s", "user_agent=clibot/3",
                   cwd=tmp_path).returncode == 0
    agents = [h.headers["user-agent"] for h in site.hits if h.path == "/"]
    assert agents == ["configbot/1", "spiderbot/2", "clibot/3"]
    assert {h.headers["x-from"] for h in site.hits if h.path == "/"} == {"config"}


def test_fetch_follows_redirects_and_retries_as_a_crawl_does(tmp_path, site):
    site.route("/old", Reply(status=301, headers={"Location": "/flaky"}))
    tries = []

    def flaky(hit: Hit) -> Reply:
        tries.append(hit)
        return Reply("busy", status=503) if len(tries) < 3 else Reply("finally")
    site.route("/flaky", flaky)
    result = run_cli("fetch", f"{site.url}/old", *FAST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "finally"
    assert len(tries) == 3


def test_fetch_headers_prints_the_status_then_the_headers(tmp_path, site):
    site.route("/", Reply("body", status=200, headers={"X-Custom": "yes, it is"}))
    result = run_cli("fetch", "--headers", f"{site.url}/", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "200"
    assert "X-Custom: yes, it is" in lines
    assert "Content-Type: text/html; charset=utf-8" in lines
    assert "body" not in result.stdout


def test_fetch_of_a_url_robots_txt_forbids_is_not_sent(tmp_path, site):
    site.route("/robots.txt", Reply("User-agent: *\nDisallow: /private\n", content_type="text/plain"))
    site.route("/private", "secret")
    result = run_cli("fetch", f"{site.url}/private", cwd=tmp_path)
    assert_failed(result, f"{site.url}/private", "robots.txt")
    assert len(result.stderr.splitlines()) == 1
    assert result.stdout == ""
    assert site.count("/private") == 0


def test_fetch_of_a_404_prints_its_body_and_exits_1(tmp_path, site):
    result = run_cli("fetch", f"{site.url}/missing", cwd=tmp_path)
    assert result.stdout == "not found"  # the page, as Scrapy's fetch shows it
    assert_failed(result, f"{site.url}/missing", "http-404")
    assert len(result.stderr.splitlines()) == 1


def test_fetch_of_an_unreachable_host_exits_1_naming_it(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/"
    result = run_cli("fetch", url, *FAST, cwd=tmp_path)
    assert_failed(result, "127.0.0.1", "connection")
    assert len(result.stderr.splitlines()) == 1
    assert result.stdout == ""


def test_fetch_usage_errors_are_one_line(tmp_path, site):
    assert_usage_error(run_cli("fetch", "example.com/page", cwd=tmp_path), "example.com/page",
                       "http")
    assert_usage_error(run_cli("fetch", f"{site.url}/", "-s", "wrkers=2", cwd=tmp_path),
                       "wrkers", "workers")
    assert_usage_error(run_cli("fetch", f"{site.url}/", "--spider", "nobody", cwd=tmp_path),
                       "nobody")
    assert site.hits == []


# -- shell ---------------------------------------------------------------------------
def test_shell_c_evaluates_code_on_the_fetched_page(tmp_path, site):
    site.route("/", page("/next", title="Front page"))
    result = run_cli("shell", f"{site.url}/", "-c", "response.xpath('//title/text()').get()",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Front page\n"  # a string is printed as print() prints it
    status = run_cli("shell", f"{site.url}/", "-c", "response.status, request.url", cwd=tmp_path)
    assert status.stdout == f"(200, '{site.url}/')\n"
    css = run_cli("shell", f"{site.url}/", "-c", "response.css('title::text').get()", cwd=tmp_path)
    assert css.stdout == "Front page\n"
    statements = run_cli("shell", f"{site.url}/", "-c", "for u in response.links(): print(u)",
                         cwd=tmp_path)
    assert statements.stdout == f"{site.url}/next\n"


def test_shell_c_with_fetch_rebinds_response(tmp_path, site):
    site.route("/one", page(title="One"))
    site.route("/two", page(title="Two"))
    result = run_cli("shell", f"{site.url}/one", "-c",
                     f"(fetch('{site.url}/two'), response.url, request.url)", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"(None, '{site.url}/two', '{site.url}/two')\n"


def test_shell_c_on_a_file_reads_it_as_a_page(tmp_path):
    html = tmp_path / "saved page.html"
    html.write_text('<html><head><meta charset="utf-8"><title>Café</title></head>'
                    '<body><a href="next.html">n</a><a href="http://example.com/x">x</a></body></html>')
    result = run_cli("shell", "./saved page.html", "-c",
                     "response.url, response.status, response.css('title::text').get()",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    url = html.resolve().as_uri()
    assert result.stdout == f"('{url}', 200, 'Café')\n"
    assert url.startswith("file:///") and "%20" in url
    links = run_cli("shell", str(html.resolve()), "-c", "response.links()", cwd=tmp_path)
    assert "http://example.com/x" in links.stdout
    via_url = run_cli("shell", url, "-c", "response.headers['content-type']", cwd=tmp_path)
    assert via_url.stdout == "text/html\n"


def test_shell_binds_the_spider_and_its_settings(tmp_path, site):
    site.route("/", page(title="T"))
    write_project(tmp_path, {"polite": (
        "from scraper import Spider\n\nclass Polite(Spider):\n    name = 'polite'\n"
        "    custom_settings = {'user_agent': 'spiderbot/2'}\n"
        "    def parse(self, response):\n        yield {'title': response.css('title::text').get()}\n")})
    result = run_cli("shell", f"{site.url}/", "--spider", "polite", "-c",
                     "spider.name, settings['user_agent'], list(spider.parse(response))",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "('polite', 'spiderbot/2', [{'title': 'T'}])\n"
    assert site.hits[-1].headers["user-agent"] == "spiderbot/2"


def test_shell_non_2xx_is_bound_with_a_warning(tmp_path, site):
    result = run_cli("shell", f"{site.url}/gone", "-c", "response.status, response.text",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "(404, 'not found')\n"
    assert "http-404" in result.stderr


def test_shell_errors(tmp_path, site):
    site.route("/", "x")
    assert_usage_error(run_cli("shell", f"{site.url}/", "-c", "response.(", cwd=tmp_path),
                       "SyntaxError")
    assert site.hits == []  # a syntax error is found before anything is fetched
    failed = run_cli("shell", f"{site.url}/", "-c", "1/0", cwd=tmp_path)
    assert_failed(failed, "ZeroDivisionError")
    assert_usage_error(run_cli("shell", "missing.html", "-c", "1", cwd=tmp_path),
                       "missing.html", "no such file")
    assert_usage_error(run_cli("shell", "ftp://host/x", "-c", "1", cwd=tmp_path), "ftp://host/x")
    unreachable = run_cli("shell", f"http://127.0.0.1:{closed_port()}/", "-c", "1", *FAST,
                          cwd=tmp_path)
    assert_failed(unreachable, "connection")
    assert unreachable.stdout == ""
    if importlib.util.find_spec("IPython") is None:
        assert_usage_error(run_cli("shell", "--console", "ipython", cwd=tmp_path), "IPython")


def test_shell_without_a_target_has_no_response_yet(tmp_path):
    result = run_cli("shell", "-c", "response, request, spider.name", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "(None, None, 'default')\n"


class Terminal:
    """A command on a pseudo-terminal: what it writes is collected; ``expect`` waits for
    text with a deadline."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        import pty

        self.master, slave = pty.openpty()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "dumb"}
        self.proc = subprocess.Popen([sys.executable, "-m", "scraper", *args], cwd=cwd, env=env,
                                     stdin=slave, stdout=slave, stderr=slave, close_fds=True)
        os.close(slave)
        self.seen = b""

    def expect(self, text: str, timeout: float = 30) -> None:
        end = time.monotonic() + timeout
        while text.encode() not in self.seen:
            left = end - time.monotonic()
            assert left > 0, f"{text!r} never came; got:\n{self.seen.decode(errors='replace')}"
            ready, _, _ = select.select([self.master], [], [], min(left, 0.5))
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk:
                    assert text.encode() in self.seen, self.seen.decode(errors="replace")
                self.seen += chunk

    def send(self, line: str) -> None:
        self.seen = b""
        os.write(self.master, line.encode() + b"\n")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        os.close(self.master)


def test_shell_is_an_interactive_console_on_a_terminal(tmp_path, site):
    site.route("/", page(title="Home"))
    site.route("/other", page(title="Elsewhere"))
    term = Terminal(["shell", f"{site.url}/", "--console", "python"], tmp_path)
    try:
        term.expect(">>> ")
        term.send("response.status")
        term.expect("200")
        term.expect(">>> ")
        term.send(f"fetch('{site.url}/other')")
        term.expect(">>> ")
        term.send("response.css('title::text').get()")
        term.expect("'Elsewhere'")
        term.send("exit()")
        assert term.proc.wait(30) == 0
    finally:
        term.close()


# -- parse ---------------------------------------------------------------------------
CATALOGUE = '''
from scraper import Request, Spider


class Catalogue(Spider):
    name = "catalogue"
    tag = "none"
    allowed_domains = ["127.0.0.1"]

    def parse(self, response):
        yield {"listing": response.css("title::text").get(), "tag": self.tag}
        for href in response.css("a::attr(href)").getall():
            yield response.follow(href, callback=self.parse_item if "item" in href else self.parse)

    def parse_item(self, response):
        yield {"item": response.css("title::text").get()}
        if "boom" in response.url:
            raise ValueError("no price on this page")
'''


@pytest.fixture
def catalogue(tmp_path: Path, site: Site) -> Path:
    site.route("/", page("/item1", "/more", title="Listing"))
    site.route("/item1", page(title="Item 1"))
    site.route("/more", page("/item2", "/item3", title="More"))
    site.route("/item2", page(title="Item 2"))
    site.route("/item3", page(title="Item 3"))
    site.route("/item-boom", page(title="Boom"))
    return write_project(tmp_path, {"catalogue": CATALOGUE})


def test_parse_prints_items_on_stdout_and_requests_on_stderr(catalogue, site):
    result = run_cli("parse", f"{site.url}/", "--spider", "catalogue", cwd=catalogue)
    assert result.returncode == 0, result.stderr
    assert jsonlines(result.stdout) == [{"listing": "Listing", "tag": "none"}]
    assert result.stderr.splitlines() == [f"GET {site.url}/item1 parse_item",
                                          f"GET {site.url}/more parse"]
    assert site.count("/item1") == 0  # depth 1: only the page itself


def test_parse_depth_follows_the_requests_in_level_order(catalogue, site):
    result = run_cli("parse", f"{site.url}/", "--spider", "catalogue", "--depth", "3",
                     "-a", "tag=x", cwd=catalogue)
    assert result.returncode == 0, result.stderr
    assert jsonlines(result.stdout) == [
        {"listing": "Listing", "tag": "x"}, {"item": "Item 1"}, {"listing": "More", "tag": "x"},
        {"item": "Item 2"}, {"item": "Item 3"}]
    assert result.stderr.splitlines() == [
        f"GET {site.url}/item1 parse_item", f"GET {site.url}/more parse",
        f"GET {site.url}/item2 parse_item", f"GET {site.url}/item3 parse_item"]


def test_parse_with_a_callback(catalogue, site):
    result = run_cli("parse", f"{site.url}/item2", "--spider", "catalogue", "-c", "parse_item",
                     cwd=catalogue)
    assert result.returncode == 0, result.stderr
    assert result.stdout == '{"item": "Item 2"}\n'
    assert result.stderr == ""


def test_parse_a_callback_that_raises_keeps_its_items_and_exits_1(catalogue, site):
    result = run_cli("parse", f"{site.url}/item-boom", "--spider", "catalogue", "-c", "parse_item",
                     cwd=catalogue)
    assert result.stdout == '{"item": "Boom"}\n'
    assert_failed(result, "catalogue.parse_item", "ValueError", "no price on this page")
    assert "Traceback" in result.stderr


def test_parse_a_page_that_cannot_be_fetched_exits_1(catalogue, site):
    result = run_cli("parse", f"{site.url}/nowhere", "--spider", "catalogue", cwd=catalogue)
    assert result.stdout == ""
    assert_failed(result, f"{site.url}/nowhere", "http-404")


def test_parse_an_off_site_url_says_so(catalogue):
    result = run_cli("parse", "http://localhost:9/", "--spider", "catalogue", cwd=catalogue)
    assert_failed(result, "http://localhost:9/", "off-site")


def test_parse_usage_errors(catalogue, site):
    assert_usage_error(run_cli("parse", f"{site.url}/", "--spider", "catalogue", "-c", "nope",
                               cwd=catalogue), "nope", "catalogue")
    assert_usage_error(run_cli("parse", f"{site.url}/", "--spider", "nobody", cwd=catalogue),
                       "nobody")
    assert_usage_error(run_cli("parse", f"{site.url}/", cwd=catalogue), "--spider")
    assert_usage_error(run_cli("parse", f"{site.url}/", "--spider", "catalogue", "--depth", "0",
                               cwd=catalogue), "--depth")
    assert site.hits == []


SHOP_RULES = '''
from scraper import CrawlSpider, LinkExtractor, Rule


class Shop(CrawlSpider):
    name = "rules"
    rules = [
        Rule(LinkExtractor(allow=r"/category/"), follow=True),
        Rule(LinkExtractor(allow=r"/product/"), callback="parse_product"),
    ]

    def parse_product(self, response):
        yield {"product": response.css("title::text").get()}
'''


def test_parse_of_a_crawlspider_applies_its_rules(tmp_path, site):
    site.route("/", page("/category/a", "/product/1", "/about", title="Home"))
    site.route("/category/a", page("/product/2", title="Category A"))
    site.route("/product/1", page(title="P1"))
    site.route("/product/2", page(title="P2"))
    write_project(tmp_path, {"rules": SHOP_RULES})
    one = run_cli("parse", f"{site.url}/", "--spider", "rules", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    assert one.stdout == ""
    assert one.stderr.splitlines() == [f"GET {site.url}/category/a (follow)",
                                       f"GET {site.url}/product/1 parse_product"]
    two = run_cli("parse", f"{site.url}/", "--spider", "rules", "--depth", "3", cwd=tmp_path)
    assert two.returncode == 0, two.stderr
    assert jsonlines(two.stdout) == [{"product": "P1"}, {"product": "P2"}]


# -- check ----------------------------------------------------------------------------
# The contract cases below are ported from Scrapy's tests/test_contracts.py (DemoSpider and
# TestContractsManager: test_returns, test_returns_range_fail, test_scrapes,
# test_cb_kwargs, test_meta, test_regex, test_returns_and_scrapes_ignore_other_types,
# test_same_url), with our @url pointing at the local site.
CONTRACTS = '''
from dataclasses import dataclass

from scraper import Request, Spider

URL = "{url}"


@dataclass
class DemoItem:
    name: str = ""
    url: str = ""


class Demo(Spider):
    name = "demo"

    def returns_request(self, response):
        """method which returns request
        @url {url}/page
        @returns requests 1
        """
        return Request(URL + "/other", callback=self.returns_item)

    def returns_item(self, response):
        """method which returns item
        @url {url}/page
        @returns items 1 1
        """
        return DemoItem(url=response.url)

    def returns_dict_item(self, response):
        """@url {url}/page
        @returns items 1 1
        """
        return {{"url": response.url}}

    def returns_fail(self, response):
        """@url {url}/page
        @returns items 0 0
        """
        return DemoItem(url=response.url)

    def returns_request_range_fail(self, response):
        """@url {url}/page
        @returns requests 2 3
        """
        return Request(URL + "/other", callback=self.returns_item)

    def yields_item_and_request(self, response):
        """@url {url}/page
        @returns items 1 1
        @scrapes name url
        """
        yield DemoItem(name="test", url=response.url)
        yield Request(URL + "/other", callback=self.returns_item)

    def scrapes_item_ok(self, response):
        """@url {url}/page
        @returns items 1 1
        @scrapes name url
        """
        return DemoItem(name="test", url=response.url)

    def scrapes_dict_item_fail(self, response):
        """@url {url}/page
        @returns items 1 1
        @scrapes name url
        """
        return {{"url": response.url}}

    def scrapes_multiple_missing_fields(self, response):
        """@url {url}/page
        @returns items 1 1
        @scrapes name url
        """
        return {{}}

    def returns_item_cb_kwargs(self, response, name):
        """@url {url}/page
        @cb_kwargs {{"name": "Scrapy"}}
        @returns items 1 1
        """
        return DemoItem(name=name, url=response.url)

    def cb_kwargs_unexpected_keyword(self, response):
        """@url {url}/page
        @cb_kwargs {{"arg": "value"}}
        @returns items 1 1
        """
        return DemoItem(url=response.url)

    def cb_kwargs_missing_argument(self, response, arg):
        """@url {url}/page
        @returns items 1 1
        """
        return DemoItem(url=response.url)

    def returns_item_meta(self, response):
        """@url {url}/page
        @meta {{"key": "example"}}
        @returns items 1 1
        """
        return DemoItem(name=response.meta["key"], url=response.url)

    def returns_error_missing_meta(self, response):
        """@url {url}/page
        @returns items 1
        """
        yield {{response.meta["key"]: "value"}}

    def parse_no_url(self, response):
        """method with no url
        @returns items 1 1
        """

    def invalid_regex(self, response):
        """method with invalid regex
        @ Scrapy is awsome
        """

    def invalid_regex_with_valid_contract(self, response):
        """method with invalid regex
        @ scrapy is awsome
        @url {url}/page
        """

    def same_url_first(self, response):
        """@url {url}/same
        """

    def same_url_second(self, response):
        """@url {url}/same
        """
'''

EXPECTED_CHECK = {
    "cb_kwargs_missing_argument": "FAIL: demo.cb_kwargs_missing_argument: the callback raised TypeError",
    "cb_kwargs_unexpected_keyword": "FAIL: demo.cb_kwargs_unexpected_keyword: the callback raised TypeError",
    "invalid_regex_with_valid_contract": "ok: demo.invalid_regex_with_valid_contract",
    "parse_no_url": "skip: demo.parse_no_url: no @url",
    "returns_dict_item": "ok: demo.returns_dict_item",
    "returns_error_missing_meta": "FAIL: demo.returns_error_missing_meta: the callback raised KeyError",
    "returns_fail": "FAIL: demo.returns_fail: @returns items 0 0: got 1, expected 0",
    "returns_item": "ok: demo.returns_item",
    "returns_item_cb_kwargs": "ok: demo.returns_item_cb_kwargs",
    "returns_item_meta": "ok: demo.returns_item_meta",
    "returns_request": "ok: demo.returns_request",
    "returns_request_range_fail": "FAIL: demo.returns_request_range_fail: @returns requests 2 3: "
                                  "got 1, expected 2..3",
    "same_url_first": "ok: demo.same_url_first",
    "same_url_second": "ok: demo.same_url_second",
    "scrapes_dict_item_fail": "FAIL: demo.scrapes_dict_item_fail: @scrapes name url: missing "
                              "fields name in",
    "scrapes_item_ok": "ok: demo.scrapes_item_ok",
    "scrapes_multiple_missing_fields": "FAIL: demo.scrapes_multiple_missing_fields: @scrapes name "
                                       "url: missing fields name, url in {}",
    "yields_item_and_request": "ok: demo.yields_item_and_request",
}


def test_check_runs_scrapy_contracts_with_scrapy_semantics(tmp_path, site):
    site.route("/page", page(title="P"))
    site.route("/same", page(title="S"))
    write_project(tmp_path, {"demo": CONTRACTS.format(url=site.url)})
    result = run_cli("check", cwd=tmp_path)
    lines = result.stdout.splitlines()
    assert len(lines) == len(EXPECTED_CHECK), result.stdout
    for line, (method, expected) in zip(lines, sorted(EXPECTED_CHECK.items())):
        assert line.startswith(expected), (method, line)
    assert site.count("/same") == 2  # one URL, two callbacks: both tried (dont_filter)
    assert site.count("/other") == 0  # what a callback returns is not followed
    last = assert_failed(result, "demo.returns_fail", "demo.scrapes_dict_item_fail")
    assert "demo.returns_item," not in last
    assert "17 callback(s) checked: 10 ok, 7 failed" in result.stderr


GOOD_AND_BROKEN = '''
from scraper import Spider


class Good(Spider):
    name = "good"

    def parse(self, response):
        """@url {url}/
        @returns items 1
        @scrapes title
        """
        yield {{"title": response.css("title::text").get()}}


class Broken(Spider):
    name = "broken"

    def parse(self, response):
        """@url {url}/gone
        @returns items 1
        """
        yield {{"title": "never"}}
'''


def test_check_name_runs_one_spider_and_a_page_that_fails_is_a_failure(tmp_path, site):
    site.route("/", page(title="Home"))
    write_project(tmp_path, {"spiders": GOOD_AND_BROKEN.format(url=site.url)})
    good = run_cli("check", "good", cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    assert good.stdout == "ok: good.parse\n"
    assert site.count("/gone") == 0
    both = run_cli("check", cwd=tmp_path)
    assert both.stdout.splitlines() == [
        f"FAIL: broken.parse: @url {site.url}/gone: HTTP 404 (http-404)", "ok: good.parse"]
    assert_failed(both, "broken.parse")


def test_check_records_and_replays_offline(tmp_path, site):
    # issue 15: contracts checked against a cassette, with nothing sent over the network
    site.route("/", page(title="Home"))
    write_project(tmp_path, {"spiders": GOOD_AND_BROKEN.format(url=site.url)})
    recorded = run_cli("check", "good", "--record", "tape", cwd=tmp_path)
    assert recorded.returncode == 0, recorded.stderr
    served = len(site.hits)
    site.close()  # nothing listens any more: a replay that fetched would fail
    replayed = run_cli("check", "good", "--replay", "tape", "--strict", cwd=tmp_path)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == "ok: good.parse\n"
    assert len(site.hits) == served
    missing = run_cli("check", "broken", "--replay", "tape", cwd=tmp_path)
    assert missing.returncode == 1
    assert "not-recorded" in missing.stdout, missing.stdout


@pytest.mark.parametrize("contract, words", [
    ("@returns things 1", ["@returns things 1", "items|requests"]),
    ("@returns items one", ["@returns items one", "whole numbers"]),
    ("@returns items 3 1", ["@returns items 3 1", "MAX"]),
    ("@cb_kwargs {not json}", ["@cb_kwargs", "JSON"]),
    ("@meta [1, 2]", ["@meta", "JSON object"]),
    ("@url /relative", ["@url /relative", "http"]),
    ("@scrapes", ["@scrapes", "fields"]),
    ("@checks nothing", ["unknown contract @checks", "@returns"]),
])
def test_check_a_malformed_contract_is_a_usage_error(tmp_path, site, contract, words):
    src = GOOD_AND_BROKEN.format(url=site.url).replace("@returns items 1\n        @scrapes title",
                                                        contract)
    write_project(tmp_path, {"spiders": src})
    assert_usage_error(run_cli("check", cwd=tmp_path), "good", "parse", *words)
    assert site.hits == []  # nothing is fetched when a contract cannot be read


def test_check_without_contracts_says_so(tmp_path):
    write_project(tmp_path, {"plain": "from scraper import Spider\n\nclass P(Spider):\n"
                                      "    name = 'plain'\n"})
    result = run_cli("check", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "no contracts found" in result.stderr
    assert_usage_error(run_cli("check", "nobody", cwd=tmp_path), "nobody")


# -- runspider and crawl ---------------------------------------------------------------
ONE_FILE = '''
from scraper import Spider
from helper import TAG


class Lone(Spider):
    name = "lone"
    suffix = ""

    def start_requests(self):
        from scraper import Request
        yield Request(self.base_url)

    def parse(self, response):
        yield {"title": response.css("title::text").get() + self.suffix, "tag": TAG}
'''


def test_runspider_runs_the_spider_of_a_file_without_a_project(tmp_path, site):
    site.route("/", page(title="Solo"))
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "lone.py").write_text(ONE_FILE)
    (tmp_path / "elsewhere" / "helper.py").write_text("TAG = 'beside'\n")
    result = run_cli("runspider", "elsewhere/lone.py", "-a", f"base_url={site.url}/",
                     "-a", "suffix=!", "-o", "-", "-s", "workers=2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert jsonlines(result.stdout) == [{"title": "Solo!", "tag": "beside"}]
    assert "--- lone: finished ---" in result.stderr


def test_runspider_picks_the_spider_or_says_why_not(tmp_path, site):
    site.route("/", page(title="Two"))
    two = tmp_path / "two.py"
    two.write_text("from scraper import Spider\n\n"
                   "class A(Spider):\n    name = 'a'\n"
                   f"    start_urls = ['{site.url}/']\n"
                   "    def parse(self, response):\n        yield {'by': self.name}\n\n"
                   "class B(A):\n    name = 'b'\n")
    assert_usage_error(run_cli("runspider", "two.py", cwd=tmp_path), "two.py", "a, b",
                       "--spider")
    picked = run_cli("runspider", "two.py", "--spider", "b", "-o", "-", cwd=tmp_path)
    assert picked.returncode == 0, picked.stderr
    assert jsonlines(picked.stdout) == [{"by": "b"}]
    assert_usage_error(run_cli("runspider", "two.py", "--spider", "c", cwd=tmp_path), "'c'")
    (tmp_path / "none.py").write_text("X = 1\n")
    assert_usage_error(run_cli("runspider", "none.py", cwd=tmp_path), "none.py", "no spider")
    (tmp_path / "bad.py").write_text("def broken(:\n")
    assert_usage_error(run_cli("runspider", "bad.py", cwd=tmp_path), "bad.py", "SyntaxError")
    assert_usage_error(run_cli("runspider", "missing.py", cwd=tmp_path), "missing.py")


def test_crawl_is_run(tmp_path, site):
    site.route("/", page(title="Crawled"))
    write_project(tmp_path, {"one": (
        "from scraper import Spider\n\nclass One(Spider):\n    name = 'one'\n"
        f"    start_urls = ['{site.url}/']\n"
        "    def parse(self, response):\n        yield {'t': response.css('title::text').get()}\n")})
    result = run_cli("crawl", "one", "-o", "-", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert jsonlines(result.stdout) == [{"t": "Crawled"}]


# -- settings ---------------------------------------------------------------------------
def test_settings_prints_the_merged_settings_as_yaml_blocks(tmp_path):
    write_project(tmp_path, {"tuned": (
        "from scraper import Spider\n\nclass T(Spider):\n    name = 'tuned'\n"
        "    custom_settings = {'delay': 1.5, 'retry': {'backoff': 2}}\n")},
        "workers: 3\nretry:\n  statuses: [500]\n")
    result = run_cli("settings", "-s", "retry.attempts=7", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    merged = yaml.safe_load(result.stdout)
    assert merged["workers"] == 3 and merged["obey_robots"] is True and merged["delay"] == 0
    assert merged["retry"]["attempts"] == 7 and merged["retry"]["statuses"] == [500]
    assert "\nretry:\n  attempts: 7\n" in result.stdout
    assert "retry.attempts" not in result.stdout
    tuned = yaml.safe_load(run_cli("settings", "--spider", "tuned", cwd=tmp_path).stdout)
    assert tuned["delay"] == 1.5 and tuned["retry"]["backoff"] == 2 and tuned["workers"] == 3
    # the output is a config file that gives the same settings
    (tmp_path / "copy.yaml").write_text(result.stdout)
    again = run_cli("settings", "--config", "copy.yaml", cwd=tmp_path)
    assert again.stdout == result.stdout


def test_settings_get_prints_one_value(tmp_path):
    (tmp_path / "config.yaml").write_text("user_agent: mybot/1.0 (+https://example.com)\n")
    def get(key: str) -> str:
        result = run_cli("settings", "--get", key, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return result.stdout
    assert get("user_agent") == "mybot/1.0 (+https://example.com)\n"
    assert get("workers") == "16\n"
    assert get("obey_robots") == "true\n"
    assert get("max_pages") == "null\n"
    assert get("retry.statuses") == "[429, 500, 502, 503, 504]\n"
    assert yaml.safe_load(get("retry"))["attempts"] == 3
    assert run_cli("settings", "--get", "workers", "-s", "workers=5", cwd=tmp_path).stdout == "5\n"


@pytest.mark.parametrize("key, words", [
    ("wrkers", ["wrkers", "did you mean 'workers'"]),
    ("retry.atempts", ["retry.atempts", "'retry.attempts'"]),
    ("CONCURRENT_REQUESTS", ["CONCURRENT_REQUESTS", "'workers'"]),
])
def test_settings_get_an_unknown_key_is_a_usage_error(tmp_path, key, words):
    assert_usage_error(run_cli("settings", "--get", key, cwd=tmp_path), *words)


# -- help -------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["new", "startproject", "genspider", "fetch", "shell",
                                     "parse", "check", "runspider", "crawl", "settings"])
def test_every_tool_has_help(tmp_path, command):
    result = run_cli(command, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    canonical = {"startproject": "new", "crawl": "run"}.get(command, command)
    assert result.stdout.startswith(f"usage: scraper {canonical}")
    assert len(result.stdout.splitlines()) > 4
