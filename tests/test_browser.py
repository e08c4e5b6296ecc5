"""Pages rendered by a real Chromium (Playwright) inside the crawl: content written by
JavaScript, actions (a click), robots.txt and per-host limits for browser fetches,
cookies shared with HTTP, a killed browser recovered, adaptive rendering, --job-dir
resume, and the one-line errors when no browser can be had. Each test shares one crawl
(a Chromium start is most of its cost)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from scraper import CrawlSpider, Request, Rule, Spider
from scraper.exceptions import SpiderError
from scraper.fetch.adaptive import check_browser_use, url_pattern
from scraper.fetch.browser import BrowserOptions, browser_problem

from .conftest import ROOT, Reply, Site, crawl, page, run_cli, write_project

CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def chromium() -> str:
    problem = browser_problem(CHROMIUM)
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must install Chromium and Playwright: {problem}")
        pytest.skip(problem)
    return CHROMIUM


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = Path(f"/proc/{name}/stat").read_text()
            except OSError:
                continue
            kids.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(name))
    return kids


def chromium_pids(root: int | None = None) -> list[int]:
    """Chromium processes under ``root`` (this process): the browser and its helpers."""
    kids, todo, out = _children(), [root or os.getpid()], []
    while todo:
        for pid in kids.get(todo.pop(), []):
            todo.append(pid)
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"chromium" in cmd[0] or cmd[0] == b"/proc/self/exe":
                out.append(pid)
    return out


def main_browser(pids: list[int]) -> int:
    for pid in pids:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"--type=" not in cmd:
            return pid
    raise AssertionError("no Chromium browser process")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pids: list[int], timeout: float = 20) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if alive(p)]
        if not left:
            return []
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


# -- the site ----------------------------------------------------------------------------
APP_JS = """
fetch('/api/items').then(r => r.json()).then(items => {
  const app = document.getElementById('app');
  for (const it of items) {
    const d = document.createElement('div'); d.className = 'product';
    d.innerHTML = '<a href="' + it.href + '">' + it.name + '</a>'; app.appendChild(d);
  }
});
"""
PRODUCT_JS = """
document.getElementById('app').innerHTML =
  '<h1 class="name">' + document.body.dataset.name + '</h1>';
"""
MORE_PAGE = """<html><body><ul id="list"><li>first</li></ul><button id="more">more</button>
<script>document.getElementById('more').onclick = () => setTimeout(() => {
  const li = document.createElement('li'); li.textContent = 'second'; li.className = 'late';
  document.getElementById('list').appendChild(li); }, 50);</script></body></html>"""
WHOAMI = """<html><body><p id="c"></p><script>
document.getElementById('c').textContent = document.cookie; document.cookie = 'js=1; path=/';
</script></body></html>"""


def js_site(site: Site, products: int = 6, delay: float = 0.0) -> list[str]:
    """A shop whose home page lists its products by JavaScript (fetch + DOM), and each
    product page writes its name by JavaScript too."""
    names = [f"p{i}" for i in range(products)]
    site.route("/", "<html><body><div id=app></div><script src='/app.js'></script></body></html>")
    site.route("/app.js", APP_JS, content_type="application/javascript")
    site.route("/api/items", json.dumps([{"name": n, "href": f"/product/{n}"} for n in names]),
               content_type="application/json")
    site.route("/product.js", PRODUCT_JS, content_type="application/javascript")
    for n in names:
        site.route(f"/product/{n}", Reply(
            f"<html><body data-name='{n}'><div id=app></div>"
            "<img src='/pic.png'><script src='/product.js'></script></body></html>", delay=delay))
    site.route("/pic.png", Reply(b"\x89PNG", content_type="image/png"))
    return names


class Shop(Spider):
    name = "shop"
    browser = True
    start_urls: list[str] = []

    def start_requests(self):
        base = self.base_url
        yield Request(base + "/", meta={"browser": {"wait_for": "div.product"}})  # after an XHR
        yield Request(base + "/more", self.parse_more,
                      meta={"browser": {"actions": "click_more", "wait_until": "domcontentloaded"}})
        yield Request(base + "/private", self.parse_product)
        yield Request(base + "/old", self.parse_product, meta={"browser": {"screenshot": True}})
        yield Request(base + "/login", self.parse_login, meta={"browser": False})

    def parse(self, response):
        for href in response.css("div.product a::attr(href)").getall():
            yield response.follow(href, self.parse_product)

    def parse_product(self, response):
        yield {"name": response.css("h1.name::text").get(), "url": response.url,
               "history": [(r.url, r.status) for r in response.history],
               "meta": response.meta["browser"]}

    async def click_more(self, page):
        await page.click("#more")
        await page.wait_for_selector("li.late")

    def parse_more(self, response):
        yield {"more": response.css("#list li::text").getall()}

    def parse_login(self, response):
        yield Request(response.urljoin("/whoami"), self.parse_whoami)

    def parse_whoami(self, response):
        yield {"cookie_in_browser": response.css("#c::text").get()}
        yield Request(response.urljoin("/echo"), self.parse_echo, meta={"browser": False})

    def parse_echo(self, response):
        yield {"cookie_over_http": response.text}


def test_javascript_pages_actions_robots_limits_cookies_and_no_leftover_chromium(
        chromium, site, tmp_path, monkeypatch):
    names = js_site(site, products=6, delay=0.1)
    site.route("/robots.txt", Reply("User-agent: *\nDisallow: /private\n", content_type="text/plain"))
    site.route("/more", MORE_PAGE)
    site.route("/old", Reply(b"", status=302, headers={"Location": "/product/p0?from=old"}))
    site.route("/login", Reply("<p>in</p>", headers={"Set-Cookie": "sid=abc; Path=/"}))
    site.route("/whoami", WHOAMI)
    site.route("/echo", lambda hit: Reply(hit.headers.get("cookie", ""), content_type="text/plain"))
    monkeypatch.chdir(tmp_path)
    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:  # the Chromium processes of this crawl, to check none is left
        while not done.wait(0.1):
            seen.extend(p for p in chromium_pids() if p not in seen)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    Shop.base_url = site.url
    stats, items = crawl(Shop, {"obey_robots": True, "per_host_workers": 2, "workers": 8})
    done.set()
    watcher.join()

    products = sorted(i["name"] for i in items if "name" in i and "old" not in i["url"])
    assert products == names  # written by JavaScript on each page, listed by JavaScript
    assert {"more": ["first", "second"]} in items  # the click action ran before the snapshot
    redirected = next(i for i in items if "from=old" in i.get("url", ""))
    assert redirected["history"] == [(site.url + "/old", 302)]
    shot = redirected["meta"]["screenshot"]
    assert Path(shot).is_file() and Path(shot).read_bytes()[:4] == b"\x89PNG"
    assert redirected["meta"]["rendered"] is True
    # robots.txt was checked before navigation: the browser never asked for /private
    assert site.count("/private") == 0 and stats.errors["robots"] == 1
    # images are not loaded by default
    assert site.count("/pic.png") == 0
    # per-host limit: documents, scripts and XHRs of browser pages never overlapped more
    assert site.max_in_flight <= 2
    # cookies: HTTP's reached the browser, the browser's came back to HTTP
    assert {"cookie_in_browser": "sid=abc"} in items
    echo = next(i["cookie_over_http"] for i in items if "cookie_over_http" in i)
    assert "js=1" in echo and "sid=abc" in echo
    assert stats.rendered == 6 + 4 and stats.summary()["rendered"] == 10
    assert not stats.errors.keys() - {"robots"}
    # the crawl is over: Chromium and its helpers are gone
    assert seen and wait_gone(seen) == []


def test_a_killed_browser_is_restarted_and_its_pages_rendered_again(chromium, site, caplog):
    names = js_site(site, products=6, delay=0.2)
    killed = threading.Event()

    def killer() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if sum(1 for h in site.hits if h.path.startswith("/product/")) >= 3:
                os.kill(main_browser(chromium_pids()), signal.SIGKILL)
                killed.set()
                return
            time.sleep(0.01)

    threading.Thread(target=killer, daemon=True).start()
    Shop.base_url = site.url

    class Killed(Shop):
        def start_requests(self):
            yield Request(self.base_url + "/", meta={"browser": {"wait_for": "div.product"}})

    with caplog.at_level("INFO", logger="scraper.fetch.browser"):
        stats, items = crawl(Killed, {"per_host_workers": 4})
    assert killed.is_set()
    assert sorted(i["name"] for i in items) == names
    assert not stats.errors
    assert sum("browser started" in r.message for r in caplog.records) == 2


# -- adaptive rendering ---------------------------------------------------------------------
class Adaptive(Spider):
    name = "adaptive"
    browser = "auto"
    browser_when_missing = "div.product"

    def start_requests(self):
        yield Request(self.base_url + "/")

    def parse(self, response):
        for p in response.css("div.product"):
            yield {"url": response.url, "name": p.css("::text").get()}
        yield from response.follow_all(response.links())


def test_adaptive_mode_renders_only_the_pages_that_need_it(chromium, site):
    static = [f"/static/{i}" for i in range(4)]
    dynamic = [f"/js/{i}" for i in range(4)]
    empty = [f"/about/{i}" for i in range(2)]
    site.route("/", page(*static, *dynamic, *empty))
    for p in static:
        site.route(p, page(extra=f"<div class=product>{p}</div>"))
    site.route("/write.js", "document.getElementById('app').innerHTML = "
               "'<div class=product>' + location.pathname + '</div>';",
               content_type="application/javascript")
    for p in dynamic:
        site.route(p, "<html><body><div id=app></div><script src='/write.js'></script></body></html>")
    for p in empty:
        site.route(p, page(title="about"))
    Adaptive.base_url = site.url
    stats, items = crawl(Adaptive, {"per_host_workers": 1, "workers": 2})
    assert sorted(i["name"] for i in items) == sorted(static + dynamic)
    # the first /js/ page was fetched with HTTP, found lacking and rendered: the others went
    # straight to the browser. "/" and the first /about/ page were rendered in vain (no
    # product either way): the second /about/ page was fetched with HTTP alone.
    assert sorted(site.count(p) for p in dynamic) == [1, 1, 1, 2]
    assert sorted(site.count(p) for p in empty) == [1, 2] and site.count("/") == 2
    assert all(site.count(p) == 1 for p in static)
    assert (stats.rendered, stats.http) == (1 + 4 + 1, 4 + 1)
    summary = stats.summary()
    assert (summary["rendered"], summary["http"]) == (6, 5)
    assert "rendered 6, http 5" in stats.format_summary()


def test_url_patterns_generalise_ids():
    assert url_pattern("http://h/product/123?page=2&q=x") == "http://h:80/product/{n}?page&q"
    assert url_pattern("https://h/item/3f2a9c1e-77aa-4e55-9bc1-0a1b2c3d4e5f") == \
        "https://h:443/item/{id}"
    assert url_pattern("http://h/book-12.html") == "http://h:80/book-{n}.html"


# -- per request choice and checks ---------------------------------------------------------
def test_rule_browser_goes_into_the_requests_it_makes():
    from scraper import LinkExtractor
    from scraper.response import Response

    class Rules(CrawlSpider):
        name = "rules"
        rules = [Rule(LinkExtractor(allow="/js/"), browser=True),
                 Rule(LinkExtractor(allow="/auto/"), browser={"wait_for": "h1"})]

    body = page("/js/1", "/auto/2", "/plain").encode()
    response = Response("http://h/", 200, {"Content-Type": "text/html"}, body, Request("http://h/"))
    metas = {r.url: r.meta.get("browser") for r in Rules()._requests_to_follow(response)}
    assert metas == {"http://h/js/1": True, "http://h/auto/2": {"wait_for": "h1"}}
    with pytest.raises(TypeError, match="Rule browser"):
        Rule(browser=3)  # type: ignore[arg-type]


def test_browser_options_are_checked_before_the_crawl():
    assert BrowserOptions.parse(True) == BrowserOptions()
    assert BrowserOptions.parse(False) is None
    assert BrowserOptions.parse({"block": []}).block == frozenset()
    with pytest.raises(ValueError, match="wait_untill"):
        BrowserOptions.parse({"wait_untill": "load"})
    with pytest.raises(ValueError, match="browser_when_missing"):
        BrowserOptions.parse("auto")

    class Bad(Spider):
        name = "bad"
        browser = {"actions": "scroll"}

        def scroll(self, page):  # not async
            pass

    with pytest.raises(SpiderError, match="actions 'scroll' must be an async def"):
        check_browser_use(Bad(), [], CHROMIUM)
    with pytest.raises(SpiderError, match="start request .* timeout"):
        check_browser_use(Spider(), [Request("http://h/", meta={"browser": {"timeout": -1}})],
                          CHROMIUM)


SPIDER = '''
from scraper import Request, Spider

class Js(Spider):
    name = "js"
    base_url = "http://127.0.0.1:1"

    def start_requests(self):
        yield Request(self.base_url + "/", meta={"browser": True})

    def parse(self, response):
        for href in response.css("div.product a::attr(href)").getall():
            yield response.follow(href, self.parse_product, meta={"browser": True})

    def parse_product(self, response):
        yield {"name": response.css("h1.name::text").get()}
'''


def test_no_playwright_or_no_chromium_is_one_line_at_start(tmp_path):
    project = write_project(tmp_path, {"js": SPIDER}, "obey_robots: false\n")
    hide = ("import sys, runpy; sys.modules['playwright'] = None; "
            "sys.argv = ['scraper', 'run', 'js']; runpy.run_module('scraper', run_name='__main__')")
    r = subprocess.run([sys.executable, "-c", hide], cwd=project, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "pip install 'scraper[browser]'" in lines[0] \
        and "apt-get install chromium" in lines[0], r.stderr
    r = run_cli("run", "js", "-s", "browser.executable=/nowhere/chromium", cwd=project)
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "/nowhere/chromium" in lines[0], r.stderr


def test_job_dir_resume_with_browser_requests(chromium, site, tmp_path):
    names = js_site(site, products=8, delay=0.2)
    project = write_project(tmp_path, {"js": SPIDER},
                            "obey_robots: false\nper_host_workers: 2\nshutdown_timeout: 5\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "scraper", "run", "js", "-a", f"base_url={site.url}",
           "--job-dir", "job", "-o", "out.jsonl"]
    first = subprocess.Popen(cmd, cwd=project, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    # ready: a few product pages written out (the crawl is mid-way, pages in the browser)
    while time.monotonic() < deadline and first.poll() is None:
        out = project / "out.jsonl"
        if out.exists() and len(out.read_text().splitlines()) >= 2:
            break
        time.sleep(0.02)
    assert first.poll() is None, f"the first crawl ended early: {first.communicate()[1]}"
    orphans = chromium_pids(first.pid)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    for pid in orphans:  # a SIGKILL leaves nobody to close Chromium: the driver's end does
        if wait_gone([pid], 5):
            os.kill(pid, signal.SIGKILL)
    done = len((project / "out.jsonl").read_text().splitlines())
    assert 2 <= done < len(names)
    second = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=90)
    assert second.returncode == 0, second.stderr
    got = [json.loads(line)["name"] for line in (project / "out.jsonl").read_text().splitlines()]
    assert sorted(got) == sorted(names)  # every item exactly once
    assert "rendered" in second.stderr
