"""Downloader middlewares (issue 14): process_request / process_response /
process_exception with Scrapy's return rules, run in the worker threads around real
fetches from a local server; configured in settings or custom_settings."""

from __future__ import annotations

import threading

from scraper import Request, Response, Spider
from scraper import IgnoreRequest

from .conftest import Reply, Site, crawl, page, run_cli, write_project

M = "tests.test_middlewares."


def _spider(*urls, **attrs):
    class S(Spider):
        name = "mw"

        def start_requests(self):
            for u in urls:
                yield Request(u, errback=self.failed)

        def parse(self, response):
            yield {"url": response.url, "status": response.status,
                   "body": response.content.decode(errors="replace")}

        def failed(self, failure):
            yield {"failed": failure.request.url, "kind": failure.kind}

    for k, v in attrs.items():
        setattr(S, k, v)
    return S


class Order:
    """Records the order hooks ran in (one list shared by the instances of a crawl)."""

    seen: list[str] = []
    lock = threading.Lock()

    def __init__(self, label):
        self.label = label

    def process_request(self, request, spider):
        with self.lock:
            self.seen.append(f"req-{self.label}")

    def process_response(self, request, response, spider):
        with self.lock:
            self.seen.append(f"resp-{self.label}")
        return response


class AddHeader:
    def __init__(self, name="X-Token", value="secret-1"):
        self.name, self.value = name, value

    def process_request(self, request, spider):
        request.headers[self.name] = self.value


class Canned:
    """Answers /canned itself: the server never sees it."""

    def process_request(self, request, spider):
        if request.url.endswith("/canned"):
            return Response(url=request.url, status=200, headers={"Content-Type": "text/plain"},
                            content=b"from the middleware", request=request)
        return None


class Rewrite:
    """Sends /old to /new instead (a Request goes back through the coordinator)."""

    def process_request(self, request, spider):
        if request.url.endswith("/old"):
            return request.replace(url=request.url[:-4] + "/new")
        return None


class Upper:
    def process_response(self, request, response, spider):
        return Response(url=response.url, status=response.status, headers=response.headers,
                        content=response.content.upper(), request=request)


class RetryOnce:
    """A page saying "wait" is asked for again, once, as Scrapy's retry middleware would."""

    def process_response(self, request, response, spider):
        if b"wait" in response.content and not request.meta.get("again"):
            return request.replace(dont_filter=True, meta={**request.meta, "again": True})
        return response


class Rescue:
    """A failed fetch becomes a response of our own."""

    def process_exception(self, request, exception, spider):
        return Response(url=request.url, status=200, headers={}, content=b"rescued " +
                        exception.kind.encode(), request=request)


class Ignore:
    def process_request(self, request, spider):
        if "skip" in request.url:
            raise IgnoreRequest("not wanted")


class Broken:
    def process_request(self, request, spider):
        if "boom" in request.url:
            raise RuntimeError("bug in a middleware")


class Nothing:
    pass


def test_process_request_changes_the_headers_sent(site: Site):
    site.route("/a", page())
    stats, items = crawl(_spider(f"{site.url}/a"), {"middlewares": [{"class": M + "AddHeader"}]})
    assert items[0]["status"] == 200
    assert site.hits[0].headers.get("x-token") == "secret-1"


def test_a_response_from_process_request_skips_the_fetch(site: Site):
    site.route("/a", page())
    stats, items = crawl(_spider(f"{site.url}/canned", f"{site.url}/a"),
                         {"middlewares": [M + "Canned"]})
    bodies = {i["url"].rsplit("/", 1)[1]: i["body"] for i in items}
    assert bodies["canned"] == "from the middleware"
    assert [h.path for h in site.hits] == ["/a"]


def test_a_request_from_process_request_is_scheduled_instead(site: Site):
    site.route("/new", page(title="new"))
    stats, items = crawl(_spider(f"{site.url}/old"), {"middlewares": [M + "Rewrite"]})
    assert [h.path for h in site.hits] == ["/new"]
    assert [i["url"] for i in items] == [f"{site.url}/new"]
    assert stats.pages == 1


def test_process_response_may_replace_the_response(site: Site):
    site.route("/a", "hello", content_type="text/plain")
    stats, items = crawl(_spider(f"{site.url}/a"), {"middlewares": [M + "Upper"]})
    assert items[0]["body"] == "HELLO"


def test_a_request_from_process_response_is_fetched_again(site: Site):
    calls = []

    def route(hit):
        calls.append(hit.path)
        return Reply("wait" if len(calls) == 1 else "done", content_type="text/plain")
    site.route("/a", route)
    stats, items = crawl(_spider(f"{site.url}/a"), {"middlewares": [M + "RetryOnce"]})
    assert calls == ["/a", "/a"]
    assert [i["body"] for i in items] == ["done"]


def test_process_exception_may_rescue_a_failed_fetch(site: Site):
    url = site.url
    site.close()  # nothing listens there any more: connection refused
    stats, items = crawl(_spider(f"{url}/a"), {"middlewares": [M + "Rescue"],
                                               "retry.attempts": 1})
    assert items == [{"url": f"{url}/a", "status": 200, "body": "rescued connection"}]
    assert not stats.errors


def test_ignore_request_goes_to_the_errback_as_ignored(site: Site):
    site.route("/a", page())
    stats, items = crawl(_spider(f"{site.url}/skip", f"{site.url}/a"),
                         {"middlewares": [M + "Ignore"]})
    assert {"failed": f"{site.url}/skip", "kind": "ignored"} in items
    assert stats.errors["ignored"] == 1
    assert [h.path for h in site.hits] == ["/a"]


def test_a_middleware_that_raises_costs_one_request_not_the_crawl(site: Site, caplog):
    site.route("/a", page())
    stats, items = crawl(_spider(f"{site.url}/boom", f"{site.url}/a"),
                         {"middlewares": [M + "Broken"]})
    assert stats.errors["middleware"] == 1
    assert any(i.get("url") == f"{site.url}/a" for i in items)
    assert "bug in a middleware" in caplog.text


def test_requests_go_down_the_list_and_responses_come_back_up(site: Site):
    site.route("/a", page())
    Order.seen.clear()
    crawl(_spider(f"{site.url}/a"), {"middlewares": [{"class": M + "Order", "label": "1"},
                                                      {"class": M + "Order", "label": "2"}]})
    assert Order.seen == ["req-1", "req-2", "resp-2", "resp-1"]


def test_custom_settings_may_name_middlewares(site: Site):
    site.route("/a", page())
    spider = _spider(f"{site.url}/a", custom_settings={"middlewares": [M + "AddHeader"]})
    crawl(spider)
    assert site.hits[0].headers.get("x-token") == "secret-1"


def test_a_bad_middleware_is_a_one_line_usage_error(tmp_path):
    spider = '''
from scraper import Spider

class S(Spider):
    name = "s"
    start_urls = ["http://127.0.0.1:9/"]
'''
    project = write_project(tmp_path, {"s": spider})
    for value, words in [("[nowhere.Thing]", ["middleware", "nowhere.Thing"]),
                         (f"[{M}Nothing]", ["middleware", "Nothing", "process_request"])]:
        r = run_cli("run", "s", "-s", f"middlewares={value}", cwd=project)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.splitlines()
        assert len(lines) == 1, r.stderr
        for w in words:
            assert w in lines[0], lines[0]
