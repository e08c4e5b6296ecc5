"""CrawlSpider and Rule against Scrapy's own tests, each case naming its source in Scrapy
(https://github.com/scrapy/scrapy, BSD licence) as ``file Class.test``.

Scrapy's unit cases call ``spider._requests_to_follow(response)`` on a built response;
here the same page is served by a real local server and crawled, and what was fetched
is compared (as a set: workers fetch in parallel). Its crawl cases use Scrapy's mock
server (``/status?n=404``, a POSTed body echoed back); here a route per status and a
start page stand in for them.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from scraper import CrawlSpider, LinkExtractor, Request, Rule, Spider
from scraper.exceptions import SpiderError

from ..conftest import Reply, Site, crawl

SPIDER_CRAWL = "tests/test_spider_crawl.py TestCrawlSpider"
CRAWL = "tests/test_crawl.py TestCrawlSpider"

# TestCrawlSpider.test_body, served at /somepage/index.html
TEST_BODY = b"""<html><head><title>Page title</title></head>
    <body>
    <p><a href="item/12.html">Item 12</a></p>
    <div class='links'>
    <p><a href="/about.html">About us</a></p>
    </div>
    <div>
    <p><a href="/nofollow.html">This shouldn't be followed</a></p>
    </div>
    </body></html>"""
FOLLOWED = {"/somepage/item/12.html", "/about.html", "/nofollow.html"}


@pytest.fixture
def somepage(site: Site) -> Site:
    site.route("/somepage/index.html", Reply(TEST_BODY))
    for path in [*FOLLOWED, "/ABOUT.HTML", "/SOMEPAGE/ITEM/12.HTML", "/NOFOLLOW.HTML",
                 "/about-us.html", "/somepage/item/12-us.html", "/nofollow-us.html"]:
        site.route(path, Reply(f"<html><body><p>{path}</p></body></html>"))
    return site


def fetched(site: Site) -> set[str]:
    return {path for path in site.paths() if path != "/somepage/index.html"}


def start(site: Site, cls: type[Spider]) -> type[Spider]:
    cls.start_urls = [site.url + "/somepage/index.html"]
    cls.allowed_domains = ["127.0.0.1"]
    return cls


def test_rule_without_link_extractor(somepage):
    # SPIDER_CRAWL.test_rule_without_link_extractor
    class _CrawlSpider(CrawlSpider):
        name = "test"
        rules = (Rule(),)

    crawl(start(somepage, _CrawlSpider))
    assert fetched(somepage) == FOLLOWED


@pytest.mark.parametrize("method", ["dummy_process_links", "generator_process_links"])
def test_process_links(somepage, method):
    # SPIDER_CRAWL.test_process_links, test_process_links_generator
    class _CrawlSpider(CrawlSpider):
        name = "test"
        rules = (Rule(LinkExtractor(), process_links=method),)

        def dummy_process_links(self, links):
            return links

        def generator_process_links(self, links):
            yield from links

    crawl(start(somepage, _CrawlSpider))
    assert fetched(somepage) == FOLLOWED


def test_process_links_filter(somepage):
    # SPIDER_CRAWL.test_process_links_filter
    class _CrawlSpider(CrawlSpider):
        name = "test"
        rules = (Rule(LinkExtractor(), process_links="filter_process_links"),)
        _test_regex = re.compile("nofollow")

        def filter_process_links(self, links):
            return [link for link in links if not self._test_regex.search(link.url)]

    crawl(start(somepage, _CrawlSpider))
    assert fetched(somepage) == {"/somepage/item/12.html", "/about.html"}


def test_process_request(somepage):
    # SPIDER_CRAWL.test_process_request (adapted: one local host, so the function rewrites
    # the path where Scrapy's rewrites the domain)
    def process_request_change_path(request, response):
        return request.replace(url=request.url.replace(".html", "-us.html"))

    class _CrawlSpider(CrawlSpider):
        name = "test"
        rules = (Rule(LinkExtractor(), process_request=process_request_change_path),)

    crawl(start(somepage, _CrawlSpider))
    assert fetched(somepage) == {"/somepage/item/12-us.html", "/about-us.html",
                                 "/nofollow-us.html"}


def test_process_request_with_response(somepage):
    # SPIDER_CRAWL.test_process_request_with_response, ..._instance_method_with_response
    class _CrawlSpider(CrawlSpider):
        name = "test"
        rules = (Rule(LinkExtractor(), callback="parse_item",
                      process_request="process_request_meta_response_class"),)

        def process_request_meta_response_class(self, request, response):
            request.meta["response_class"] = type(response).__name__
            return request

        def parse_item(self, response):
            yield {"path": response.url.split("/", 3)[3], "class": response.meta["response_class"]}

    _, items = crawl(start(somepage, _CrawlSpider))
    assert sorted(items, key=lambda i: i["path"]) == [
        {"path": "about.html", "class": "Response"},
        {"path": "nofollow.html", "class": "Response"},
        {"path": "somepage/item/12.html", "class": "Response"}]


def test_process_request_instance_method(somepage):
    # SPIDER_CRAWL.test_process_request_instance_method
    class _CrawlSpider(CrawlSpider):
        name = "test"
        rules = (Rule(LinkExtractor(), process_request="process_request_upper"),)

        def process_request_upper(self, request, response):
            return request.replace(url=request.url.upper())

    crawl(start(somepage, _CrawlSpider))
    assert fetched(somepage) == {"/SOMEPAGE/ITEM/12.HTML", "/ABOUT.HTML", "/NOFOLLOW.HTML"}


def test_process_request_returning_none_drops_the_request(somepage):
    # scrapy/spiders/crawl.py Rule docs: "must return a Request or None (to filter out)"
    class _CrawlSpider(CrawlSpider):
        name = "test"
        rules = (Rule(LinkExtractor(), process_request="only_about"),)

        def only_about(self, request, response):
            return request if "about" in request.url else None

    crawl(start(somepage, _CrawlSpider))
    assert fetched(somepage) == {"/about.html"}


def test_follow_defaults_to_true_without_a_callback_and_false_with_one():
    # scrapy/spiders/crawl.py Rule.__init__: follow if follow is not None else not callback
    assert Rule().follow is True
    assert Rule(callback="parse_item").follow is False
    assert Rule(callback="parse_item", follow=True).follow is True
    assert Rule(follow=False).follow is False


def test_follow_false_stops_at_the_pages_a_rule_reached(site):
    # the same rule, followed and not followed, on a chain of pages /1 -> /2 -> /3
    site.route("/", Reply('<a href="/1">1</a>'))
    site.route("/1", Reply('<a href="/2">2</a>'))
    site.route("/2", Reply('<a href="/3">3</a>'))
    site.route("/3", Reply("end"))

    def spider(follow: bool | None) -> type[CrawlSpider]:
        class _CrawlSpider(CrawlSpider):
            name = "test"
            start_urls = [site.url + "/"]
            rules = (Rule(LinkExtractor(), callback="parse_item", follow=follow),)

            def parse_item(self, response):
                yield {"path": response.url.rsplit("/", 1)[1]}
        return _CrawlSpider

    _, items = crawl(spider(None))  # a callback: follow defaults to False
    assert items == [{"path": "1"}]
    _, items = crawl(spider(True))
    assert sorted(i["path"] for i in items) == ["1", "2", "3"]


def test_parse_start_url_scrapes_the_start_pages(somepage):
    # scrapy/spiders/crawl.py CrawlSpider._parse: parse_start_url, then the rules
    class _CrawlSpider(CrawlSpider):
        name = "test"
        rules = (Rule(LinkExtractor(allow=r"/about"), callback="parse_item"),)

        def parse_start_url(self, response):
            return {"start": response.css("title::text").get()}

        def parse_item(self, response):
            yield {"item": response.css("p::text").get()}

    _, items = crawl(start(somepage, _CrawlSpider))
    assert sorted(items, key=str) == [{"item": "/about.html"}, {"start": "Page title"}]


def test_the_rule_index_and_link_text_travel_in_meta(somepage):
    # scrapy/spiders/crawl.py CrawlSpider._build_request: meta={"rule": i, "link_text": ...}
    class _CrawlSpider(CrawlSpider):
        name = "test"
        rules = (Rule(LinkExtractor(allow=r"item"), callback="parse_item"),
                 Rule(LinkExtractor(), callback="parse_item"))

        def parse_item(self, response):
            yield {"path": response.url.split("/", 3)[3], "rule": response.meta["rule"],
                   "text": response.meta["link_text"]}

    _, items = crawl(start(somepage, _CrawlSpider))
    assert sorted(items, key=lambda i: i["path"]) == [
        {"path": "about.html", "rule": 1, "text": "About us"},
        {"path": "nofollow.html", "rule": 1, "text": "This shouldn't be followed"},
        {"path": "somepage/item/12.html", "rule": 0, "text": "Item 12"}]


def test_a_rule_naming_a_missing_method_fails_before_the_crawl():
    # a deviation: Scrapy's _get_method returns None for it, and the rule silently does nothing
    class _CrawlSpider(CrawlSpider):
        name = "test"
        rules = (Rule(LinkExtractor(), callback="parse_itme"),)

    with pytest.raises(ValueError, match=r"rules\[0\]: callback 'parse_itme'"):
        _CrawlSpider()
    with pytest.raises(SpiderError, match="parse_itme"):
        crawl(_CrawlSpider)


# -- crawls (Scrapy's mock server cases) ---------------------------------------------------
def status_site(site: Site, statuses: list[int]) -> None:
    links = "".join(f'<p><a href="/status?n={n}">Item {n}</a></p>' for n in statuses)
    site.route("/", Reply(f"<html><head><title>Page title</title></head><body>{links}</body></html>"))

    def status(hit):
        n = int(hit.path.split("n=", 1)[1])
        return Reply(f"<html><body>status {n}</body></html>", status=n)
    site.route("/status", status)


class CrawlSpiderWithParseMethod(CrawlSpider):
    """tests/spiders.py CrawlSpiderWithParseMethod: a rule whose callback is an overridden
    ``parse``; it records what it saw instead of logging it."""

    name = "crawl_spider_with_parse_method"
    custom_settings: dict[str, Any] = {"retry.statuses": []}
    rules = (Rule(LinkExtractor(), callback="parse", follow=True),)
    base = ""

    def start_requests(self):
        yield Request(self.base + "/")

    def parse(self, response, foo=None):
        yield {"cb": "parse", "status": response.status, "foo": foo}
        yield Request(self.base + "/status?n=202", self.parse, cb_kwargs={"foo": "bar"})


def run(site: Site, cls: type[CrawlSpiderWithParseMethod]) -> list[dict[str, Any]]:
    cls.base = site.url
    _, items = crawl(cls)
    return sorted(items, key=lambda i: (i["cb"], i["status"]))


def test_crawlspider_with_parse(site):
    # CRAWL.test_crawlspider_with_parse
    status_site(site, [200, 201])
    assert run(site, CrawlSpiderWithParseMethod) == [
        {"cb": "parse", "status": 200, "foo": None},
        {"cb": "parse", "status": 201, "foo": None},
        {"cb": "parse", "status": 202, "foo": "bar"}]


def test_crawlspider_with_errback(site):
    # CRAWL.test_crawlspider_with_errback
    status_site(site, [200, 201, 404, 500, 501])

    class CrawlSpiderWithErrback(CrawlSpiderWithParseMethod):
        name = "crawl_spider_with_errback"
        rules = (Rule(LinkExtractor(), callback="parse", errback="errback", follow=True),)

        def errback(self, failure):
            assert failure.response is not None
            yield {"cb": "errback", "status": failure.response.status, "foo": None}

    assert run(site, CrawlSpiderWithErrback) == [
        {"cb": "errback", "status": 404, "foo": None},
        {"cb": "errback", "status": 500, "foo": None},
        {"cb": "errback", "status": 501, "foo": None},
        {"cb": "parse", "status": 200, "foo": None},
        {"cb": "parse", "status": 201, "foo": None},
        {"cb": "parse", "status": 202, "foo": "bar"}]


def test_crawlspider_without_errback(site):
    # CRAWL.test_crawlspider_without_errback: the failure is counted, nothing else happens
    status_site(site, [200, 404])

    class CrawlSpiderWithoutErrback(CrawlSpiderWithParseMethod):
        name = "crawl_spider_without_errback"

    CrawlSpiderWithoutErrback.base = site.url
    stats, items = crawl(CrawlSpiderWithoutErrback)
    assert {(i["status"], i["foo"]) for i in items} == {(200, None), (202, "bar")}
    assert stats.statuses[404] == 1 and stats.errors["http-404"] == 1
    assert "callback" not in stats.errors


def test_crawlspider_process_request_cb_kwargs(site):
    # CRAWL.test_crawlspider_process_request_cb_kwargs
    status_site(site, [200, 201])

    class CrawlSpiderWithProcessRequestCallbackKeywordArguments(CrawlSpiderWithParseMethod):
        name = "crawl_spider_with_process_request_cb_kwargs"
        rules = (Rule(LinkExtractor(), callback="parse", follow=True,
                      process_request="process_request"),)

        def process_request(self, request, response):
            request.cb_kwargs["foo"] = "process_request"
            return request

    assert run(site, CrawlSpiderWithProcessRequestCallbackKeywordArguments) == [
        {"cb": "parse", "status": 200, "foo": "process_request"},
        {"cb": "parse", "status": 201, "foo": "process_request"},
        {"cb": "parse", "status": 202, "foo": "bar"}]


def test_rule_cb_kwargs_reach_the_callback(site):
    # scrapy/spiders/crawl.py CrawlSpider._callback: {**rule.cb_kwargs, **request cb_kwargs}
    status_site(site, [200])

    class _CrawlSpider(CrawlSpiderWithParseMethod):
        name = "cb_kwargs"
        rules = (Rule(LinkExtractor(), callback="parse", cb_kwargs={"foo": "rule"}),)

    assert run(site, _CrawlSpider) == [
        {"cb": "parse", "status": 200, "foo": "rule"},
        {"cb": "parse", "status": 202, "foo": "bar"}]
