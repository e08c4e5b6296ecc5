"""Integration tests of the crawl engine: spiders run in-process (``crawl``) against a real
local HTTP server (``site``); routes that must trickle bytes write to the socket themselves."""

from __future__ import annotations

import dataclasses
import email.utils
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from scraper import CloseSpider, DropItem, FetchError, Request, Spider
from scraper.crawl.runner import build_crawl

from .conftest import Collect, Reply, Site, crawl, page


# -- helpers -------------------------------------------------------------------
def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def crawl_through(spider_cls: type, pipelines: list[Any], settings: dict[str, Any] | None = None
                  ) -> tuple[Any, list[Any]]:
    """Like ``crawl``, with extra pipeline instances run before the collecting one."""
    collect = Collect()
    merged = {"obey_robots": False, "workers": 4, "retry.backoff": 0.01, **(settings or {})}
    stats = build_crawl(spider_cls, settings=merged, pipelines=[*pipelines, collect]).run()
    return stats, collect.items


def hit_paths(site: Site) -> list[str]:
    return [h.path for h in site.hits]


def hit_times(site: Site, path: str) -> list[float]:
    return [h.at for h in site.hits if h.path == path]


def nth_hit(reply: Callable[[int], Reply]) -> Callable[[Any], Reply]:
    """A route answering ``reply(n)`` for its n-th hit (from 1)."""
    lock = threading.Lock()
    count = [0]

    def route(hit: Any) -> Reply:
        with lock:
            count[0] += 1
            n = count[0]
        return reply(n)
    return route


def one_url_spider(url: str, **attrs: Any) -> type[Spider]:
    """A spider fetching ``url``: parse yields {"url", "status"}; its errback appends each
    Failure to the class's ``failures``."""

    class One(Spider):
        name = "one"
        failures: list[Any] = []

        def start_requests(self):
            yield Request(url, errback=self.failed)

        def parse(self, response):
            yield {"url": response.url, "status": response.status}

        def failed(self, failure):
            self.failures.append(failure)

    for k, v in attrs.items():
        setattr(One, k, v)
    return One


# -- callbacks -----------------------------------------------------------------
@dataclasses.dataclass
class Book:
    title: str


class FrozenItem(Mapping[str, Any]):
    """A read-only Mapping that is not a dict."""

    def __init__(self, **values: Any) -> None:
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FrozenItem) and self._values == other._values


@pytest.mark.parametrize("style", ["yield", "return-list"])
def test_callback_yielding_or_returning_a_list_delivers_items_and_requests(site, style):
    site.route("/", page())
    site.route("/next", page())

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/")

        def parse(self, response):
            if response.url.endswith("/next"):
                return None
            out = [{"kind": "dict"}, Book("b"), FrozenItem(kind="mapping"), Request(site.url + "/next")]
            if style == "return-list":
                return out
            return (x for x in out)

    stats, items = crawl(S)
    assert items == [{"kind": "dict"}, Book("b"), FrozenItem(kind="mapping")]
    assert site.count("/next") == 1
    assert stats.items == 3 and stats.pages == 2 and not stats.errors


def test_callback_returning_one_item_delivers_it(site):
    site.route("/", page())

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/")

        def parse(self, response):
            return Book("only")

    stats, items = crawl(S)
    assert items == [Book("only")]
    assert stats.items == 1


def test_callback_returning_one_request_follows_it(site):
    site.route("/", page())
    site.route("/next", page())
    seen: list[str] = []

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/")

        def parse(self, response):
            seen.append(response.url)
            if response.url.endswith("/"):
                return Request(site.url + "/next")
            return None

    stats, items = crawl(S)
    assert seen == [site.url + "/", site.url + "/next"]
    assert items == [] and stats.pages == 2 and not stats.errors and stats.reason == "finished"


def test_cb_kwargs_are_passed_and_meta_is_response_meta(site):
    site.route("/", page())
    site.route("/x", page())

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/", meta={"tag": "root"})

        def parse(self, response):
            yield {"meta": dict(response.meta)}
            yield Request(site.url + "/x", callback=self.parse_x, cb_kwargs={"n": 7, "word": "w"},
                          meta={"tag": "x"})

        def parse_x(self, response, n, word):
            yield {"n": n, "word": word, "meta": response.meta["tag"]}

    stats, items = crawl(S)
    assert {"meta": {"tag": "root"}} in items
    assert {"n": 7, "word": "w", "meta": "x"} in items
    assert not stats.errors


def test_opened_and_closed_hooks_see_settings_and_reason(site):
    site.route("/", page())
    calls: list[Any] = []

    class S(Spider):
        name = "hooks"

        def start_requests(self):
            yield Request(site.url + "/")

        def opened(self):
            calls.append(("opened", self.settings["workers"], self.settings["retry.attempts"]))

        def parse(self, response):
            yield {"url": response.url}

        def closed(self, reason):
            calls.append(("closed", reason))

    crawl(S, {"workers": 3, "retry.attempts": 5})
    assert calls == [("opened", 3, 5), ("closed", "finished")]


# -- errbacks and handle_statuses ----------------------------------------------
def test_errback_called_once_for_404_with_request_exception_and_response(site):
    S = one_url_spider(site.url + "/missing")
    stats, items = crawl(S)
    assert len(S.failures) == 1
    f = S.failures[0]
    assert f.request.url == site.url + "/missing"
    assert isinstance(f.exception, FetchError)
    assert f.response is not None and f.response.status == 404
    assert items == []
    assert stats.errors == {"http-404": 1}


def test_errback_called_once_for_connection_refused_after_retries(site):
    url = f"http://127.0.0.1:{closed_port()}/"
    S = one_url_spider(url)
    stats, items = crawl(S, {"retry.attempts": 3})
    assert len(S.failures) == 1
    f = S.failures[0]
    assert f.request.url == url
    assert isinstance(f.exception, FetchError)
    assert f.response is None
    assert stats.errors == {"connection": 1}
    assert stats.retries == 2
    assert stats.reason == "finished"


def test_items_and_requests_from_an_errback_are_kept(site):
    site.route("/after", page())

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/missing", errback=self.failed)

        def parse(self, response):
            yield {"parsed": response.url}

        def failed(self, failure):
            yield {"failed": failure.request.url}
            yield Request(site.url + "/after")

    stats, items = crawl(S)
    assert {"failed": site.url + "/missing"} in items
    assert {"parsed": site.url + "/after"} in items


def test_spider_handle_statuses_sends_404_to_the_callback(site):
    S = one_url_spider(site.url + "/missing", handle_statuses=[404])
    stats, items = crawl(S)
    assert items == [{"url": site.url + "/missing", "status": 404}]
    assert S.failures == []
    assert not stats.errors
    assert stats.statuses == {404: 1}


def test_meta_handle_statuses_applies_to_that_request_only(site):
    site.route("/gone", "gone", status=410)
    got: list[Any] = []

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/gone", meta={"handle_statuses": [410]})
            yield Request(site.url + "/missing", meta={"handle_statuses": [410]})
            yield Request(site.url + "/gone?other", errback=self.failed)

        def parse(self, response):
            yield {"url": response.url, "status": response.status}

        def failed(self, failure):
            got.append(failure.response.status)

    stats, items = crawl(S)
    assert items == [{"url": site.url + "/gone", "status": 410}]
    assert got == [410]
    assert stats.errors == {"http-404": 1, "http-410": 1}


# -- de-duplication --------------------------------------------------------------
def test_fragments_do_not_make_a_url_new(site):
    site.route("/", page("/a#x", "/a#y", "/a"))
    site.route("/a", page())

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/")

        def parse(self, response):
            if response.url.endswith("/"):
                for href in ("/a#x", "/a#y", "/a"):
                    yield response.follow(href)

    stats, _ = crawl(S)
    assert site.count("/a") == 1
    assert stats.filtered["duplicate"] == 2


def test_query_order_does_not_make_a_url_new(site):
    site.route("/q", page())

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/q?a=1&b=2")
            yield Request(site.url + "/q?b=2&a=1")
            yield Request(site.url + "/q", params={"b": 2, "a": 1})

        def parse(self, response):
            return None

    stats, _ = crawl(S)
    assert sum(n for p, n in site.paths().items() if p.startswith("/q")) == 1
    assert stats.filtered["duplicate"] == 2


def test_relative_and_absolute_forms_are_fetched_once(site):
    site.route("/dir/", page())
    site.route("/dir/x", page())

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/dir/")

        def parse(self, response):
            if response.url.endswith("/dir/"):
                for href in ("x", "./x", "/dir/x", "../dir/x", site.url + "/dir/x",
                             site.url.replace("http://", "HTTP://") + "/dir/x"):
                    yield response.follow(href)

    stats, _ = crawl(S)
    assert site.count("/dir/x") == 1
    assert stats.filtered["duplicate"] == 5


def test_many_pages_linking_to_one_url_fetch_it_once(site):
    site.route("/", page(*[f"/p{i}" for i in range(20)]))
    for i in range(20):
        site.route(f"/p{i}", page("/common", "/"))
    site.route("/common", page("/"))

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/")

        def parse(self, response):
            yield from response.follow_all(response.links())

    stats, _ = crawl(S, {"workers": 8})
    assert site.count("/common") == 1
    assert site.count("/") == 1
    assert stats.pages == 22


def test_dont_filter_fetches_again(site):
    site.route("/", page())

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/")
            yield Request(site.url + "/")
            yield Request(site.url + "/", dont_filter=True)

        def parse(self, response):
            return None

    stats, _ = crawl(S)
    assert site.count("/") == 2
    assert stats.filtered["duplicate"] == 1


def test_post_bodies_are_part_of_the_fingerprint(site):
    site.route("/form", page())

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/form", method="POST", data={"q": "1"})
            yield Request(site.url + "/form", method="POST", data={"q": "1"})
            yield Request(site.url + "/form", method="POST", data={"q": "2"})
            yield Request(site.url + "/form")

        def parse(self, response):
            return None

    crawl(S)
    assert sorted((h.method, h.body) for h in site.hits) == [
        ("GET", b""), ("POST", b"q=1"), ("POST", b"q=2")]


# -- priorities and depth ----------------------------------------------------------
def test_higher_priority_is_fetched_first(site):
    site.route("/", page())
    for p in (-1, 0, 5, 10):
        site.route(f"/p{p}", page())

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/")

        def parse(self, response):
            if response.url.endswith("/"):
                for p in (0, 5, -1, 10):
                    yield Request(site.url + f"/p{p}", priority=p)

    crawl(S, {"workers": 1, "per_host_workers": 1})
    assert hit_paths(site) == ["/", "/p10", "/p5", "/p0", "/p-1"]


def test_start_request_priorities_are_honoured(site):
    for p in (1, 2, 3):
        site.route(f"/s{p}", page())

    class S(Spider):
        name = "s"

        def start_requests(self):
            for p in (1, 3, 2):
                yield Request(site.url + f"/s{p}", priority=p)

        def parse(self, response):
            return None

    crawl(S, {"workers": 1, "per_host_workers": 1})
    assert hit_paths(site) == ["/s3", "/s2", "/s1"]


def chain_site(site: Site, n: int) -> None:
    """/ → /d1 → /d2 → ... → /dn."""
    site.route("/", page("/d1"))
    for i in range(1, n + 1):
        site.route(f"/d{i}", page(f"/d{i + 1}") if i < n else page())


class DepthSpider(Spider):
    name = "depth"
    start: list[str] = []

    def start_requests(self):
        for u in self.start:
            yield Request(u)

    def parse(self, response):
        yield {"path": response.url.split("/", 3)[3], "depth": response.depth}
        yield from response.follow_all(response.links())


def test_depth_counts_links_from_start_requests(site):
    chain_site(site, 3)
    site.route("/other-start", page("/d3"))
    S = type("S", (DepthSpider,), {"start": [site.url + "/", site.url + "/other-start"]})
    stats, items = crawl(S, {"workers": 1, "per_host_workers": 1})
    depths = {i["path"]: i["depth"] for i in items}
    assert depths == {"": 0, "other-start": 0, "d1": 1, "d2": 2, "d3": 1}


def test_max_depth_stops_deeper_links(site):
    chain_site(site, 5)
    S = type("S", (DepthSpider,), {"start": [site.url + "/"]})
    stats, items = crawl(S, {"max_depth": 2})
    assert sorted(i["depth"] for i in items) == [0, 1, 2]
    assert site.count("/d3") == 0
    assert stats.filtered["depth"] == 1
    assert stats.reason == "finished"


def test_max_depth_zero_fetches_only_start_requests(site):
    chain_site(site, 2)
    S = type("S", (DepthSpider,), {"start": [site.url + "/"]})
    stats, items = crawl(S, {"max_depth": 0})
    assert hit_paths(site) == ["/"]
    assert stats.filtered["depth"] == 1


# -- limits --------------------------------------------------------------------------
def fan_site(site: Site, n: int = 20, items_per_page: int = 1) -> type[Spider]:
    """/ links to /p0../p(n-1); every page yields ``items_per_page`` items."""
    site.route("/", page(*[f"/p{i}" for i in range(n)]))
    for i in range(n):
        site.route(f"/p{i}", page())

    class Fan(Spider):
        name = "fan"

        def start_requests(self):
            yield Request(site.url + "/")

        def parse(self, response):
            for k in range(items_per_page):
                yield {"url": response.url, "k": k}
            yield from response.follow_all(response.links())

    return Fan


@pytest.mark.parametrize("limit", [1, 5])
def test_max_pages_fetches_exactly_that_many_pages(site, limit):
    S = fan_site(site)
    stats, items = crawl(S, {"max_pages": limit, "workers": 8})
    assert stats.reason == "max_pages"
    assert stats.pages == limit
    assert len(site.hits) == limit
    assert len(items) == limit


def test_max_pages_does_not_count_responses_that_are_retried(site):
    site.route("/flaky", nth_hit(lambda n: Reply("ok", status=500 if n == 1 else 200)))
    S = one_url_spider(site.url + "/flaky")
    stats, items = crawl(S, {"max_pages": 1})
    assert items == [{"url": site.url + "/flaky", "status": 200}]
    assert stats.pages == 1


@pytest.mark.parametrize("limit", [1, 7])
def test_max_items_delivers_exactly_that_many_items(site, limit):
    S = fan_site(site, items_per_page=3)
    stats, items = crawl(S, {"max_items": limit, "workers": 8})
    assert stats.reason == "max_items"
    assert stats.items == limit
    assert len(items) == limit


def test_max_duration_ends_the_crawl_in_about_that_time(site):
    def endless(hit):
        k = int(hit.path.split("=", 1)[1])
        return Reply(page(f"/n?k={2 * k}", f"/n?k={2 * k + 1}"), delay=0.2)
    site.route("/n", endless)

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/n?k=1")

        def parse(self, response):
            yield {"url": response.url}
            yield from response.follow_all(response.links())

    t0 = time.monotonic()
    stats, items = crawl(S, {"max_duration": 1.0, "shutdown_timeout": 2})
    elapsed = time.monotonic() - t0
    assert stats.reason == "max_duration"
    assert 0.9 <= elapsed < 2.5
    assert stats.pages > 3


def test_a_stop_waits_no_longer_than_shutdown_timeout_for_requests_in_flight(site):
    site.route("/", page("/stuck"))
    site.route("/stuck", Reply(page(), delay=5))

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/")

        def parse(self, response):
            yield from response.follow_all(response.links())

    t0 = time.monotonic()
    stats, _ = crawl(S, {"max_duration": 0.5, "shutdown_timeout": 0.5})
    assert stats.reason == "max_duration"
    assert time.monotonic() - t0 < 2.5


# -- allowed_domains -----------------------------------------------------------------
@pytest.mark.parametrize("start_host,allowed,other_host", [
    ("127.0.0.1", "127.0.0.1", "localhost"),
    ("localhost", "localhost", "127.0.0.1"),
])
def test_allowed_domains_drops_links_to_another_host_name(site, start_host, allowed, other_host):
    port = site.port
    site.route("/", page(f"http://{start_host}:{port}/same", f"http://{other_host}:{port}/other"))
    site.route("/same", page())
    site.route("/other", page())

    class S(Spider):
        name = "s"
        allowed_domains = [allowed]

        def start_requests(self):
            yield Request(f"http://{start_host}:{port}/")

        def parse(self, response):
            yield from response.follow_all(response.links())

    stats, _ = crawl(S)
    assert site.count("/same") == 1
    assert site.count("/other") == 0
    assert stats.filtered["offsite"] == 1


def test_allowed_domains_ignores_the_port(site):
    other = Site()
    try:
        other.route("/there", page())
        site.route("/", page(other.url + "/there"))

        class S(Spider):
            name = "s"
            allowed_domains = ["127.0.0.1"]

            def start_requests(self):
                yield Request(site.url + "/")

            def parse(self, response):
                yield from response.follow_all(response.links())

        stats, _ = crawl(S)
        assert other.count("/there") == 1
        assert not stats.filtered["offsite"]
    finally:
        other.close()


def test_allowed_domains_match_subdomains_but_not_lookalikes(site):
    # the site is the proxy for every URL, so made-up host names need no DNS; the proxy
    # sees each absolute URL as the request's path
    start = "http://example.invalid/"
    allowed = ["http://example.invalid/a", "http://www.example.invalid/", "http://a.b.example.invalid/",
               "http://www.example.invalid:8080/"]
    dropped = ["http://notexample.invalid/", "http://example.invalid.evil.invalid/",
               "http://wwwexample.invalid/", "http://invalid/"]
    site.route(start, page(*allowed, *dropped))

    class S(Spider):
        name = "s"
        allowed_domains = ["example.invalid"]

        def start_requests(self):
            yield Request(start)

        def parse(self, response):
            yield from response.follow_all(response.links())

    stats, _ = crawl(S, {"proxy": site.url, "retry.attempts": 1})
    assert sorted(hit_paths(site)) == sorted([start, *allowed])
    assert stats.filtered["offsite"] == len(dropped)


# -- CloseSpider, errors in callbacks and pipelines -------------------------------------
@pytest.mark.parametrize("exc,reason", [(CloseSpider("enough"), "enough"), (CloseSpider(), "closespider")])
def test_close_spider_ends_the_crawl_with_its_reason(site, exc, reason):
    site.route("/", page(*[f"/p{i}" for i in range(10)]))
    for i in range(10):
        site.route(f"/p{i}", page())
    parsed: list[str] = []

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/")

        def parse(self, response):
            yield from response.follow_all(response.links(), callback=self.parse_page)

        def parse_page(self, response):
            parsed.append(response.url)
            if len(parsed) == 3:
                raise exc
            yield {"url": response.url}

    stats, items = crawl(S, {"workers": 1, "per_host_workers": 1})
    assert stats.reason == reason
    assert len(items) == 2
    assert stats.pages == 4
    assert not stats.errors


def test_close_spider_from_an_errback(site):
    site.route("/", page(*[f"/gone{i}" for i in range(5)]))

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/")

        def parse(self, response):
            yield from response.follow_all(response.links(), errback=self.failed)

        def failed(self, failure):
            raise CloseSpider("too many errors")

    stats, _ = crawl(S, {"workers": 1, "per_host_workers": 1})
    assert stats.reason == "too many errors"
    assert stats.errors == {"http-404": 1}


def test_callback_raising_after_yielding_keeps_what_it_yielded(site):
    site.route("/", page())
    site.route("/next", page())

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/")

        def parse(self, response):
            yield {"url": response.url}
            yield Request(site.url + "/next", callback=self.parse_next)
            raise ValueError("broken parser")

        def parse_next(self, response):
            yield {"url": response.url}

    stats, items = crawl(S)
    assert items == [{"url": site.url + "/"}, {"url": site.url + "/next"}]
    assert stats.errors == {"callback": 1}
    assert stats.reason == "finished"


class RaiseOn:
    """A pipeline that raises on the item whose ``n`` is ``value``."""

    def __init__(self, value: int) -> None:
        self.value = value

    def process(self, item, spider):
        if item["n"] == self.value:
            raise RuntimeError("pipeline bug")
        return item


class DropOn:
    """A pipeline that drops the item whose ``n`` is ``value``."""

    def __init__(self, value: int) -> None:
        self.value = value

    def process(self, item, spider):
        if item["n"] == self.value:
            raise DropItem("not wanted")
        return item


def numbers_spider(site: Site, n: int) -> type[Spider]:
    site.route("/", page())

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/")

        def parse(self, response):
            for i in range(n):
                yield {"n": i}

    return S


def test_a_raising_pipeline_drops_that_item_and_the_crawl_goes_on(site):
    S = numbers_spider(site, 4)
    stats, items = crawl_through(S, [RaiseOn(1)])
    assert items == [{"n": 0}, {"n": 2}, {"n": 3}]
    assert stats.errors == {"pipeline-error": 1}
    assert stats.items == 3
    assert stats.reason == "finished"


def test_drop_item_discards_the_item_and_is_counted(site):
    S = numbers_spider(site, 4)
    stats, items = crawl_through(S, [DropOn(2)])
    assert items == [{"n": 0}, {"n": 1}, {"n": 3}]
    assert stats.filtered["dropped-item"] == 1
    assert not stats.errors
    assert stats.items == 3


def test_configured_pipelines_with_options_run_in_order(site):
    S = numbers_spider(site, 5)
    pipelines = [{"class": f"{__name__}.DropOn", "value": 0}, {"class": f"{__name__}.RaiseOn", "value": 3}]
    stats, items = crawl(S, {"pipelines": pipelines})
    assert items == [{"n": 1}, {"n": 2}, {"n": 4}]
    assert stats.filtered["dropped-item"] == 1
    assert stats.errors == {"pipeline-error": 1}


@pytest.mark.parametrize("attr", ["callback", "errback"])
def test_request_with_a_lambda_callback_is_a_bad_request(site, attr):
    site.route("/", page())
    site.route("/never", page())

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/")

        def parse(self, response):
            yield Request(site.url + "/never", **{attr: lambda *a: None})
            yield {"ok": 1}

    stats, items = crawl(S)
    assert stats.errors == {"bad-request": 1}
    assert site.count("/never") == 0
    assert items == [{"ok": 1}]
    assert stats.reason == "finished"


def test_request_with_another_objects_method_as_callback_is_a_bad_request(site):
    site.route("/", page())

    class Other:
        def parse(self, response):
            return None

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/", callback=Other().parse)

    stats, _ = crawl(S)
    assert stats.errors == {"bad-request": 1}
    assert site.hits == []


# -- retries ---------------------------------------------------------------------------
def test_503_twice_then_200_delivers_one_page_and_counts_retries(site):
    site.route("/flaky", nth_hit(lambda n: Reply("ok", status=503 if n <= 2 else 200)))
    S = one_url_spider(site.url + "/flaky")
    stats, items = crawl(S, {"retry.attempts": 3})
    assert items == [{"url": site.url + "/flaky", "status": 200}]
    assert site.count("/flaky") == 3
    assert stats.retries == 2
    assert not stats.errors and S.failures == []
    assert stats.statuses == {503: 2, 200: 1}


def test_retries_stop_after_retry_attempts(site):
    site.route("/down", "down", status=503)
    S = one_url_spider(site.url + "/down")
    stats, items = crawl(S, {"retry.attempts": 2})
    assert site.count("/down") == 2
    assert stats.errors == {"http-503": 1}
    assert len(S.failures) == 1 and S.failures[0].response.status == 503
    assert items == []


def test_404_is_not_retried(site):
    S = one_url_spider(site.url + "/missing")
    stats, _ = crawl(S, {"retry.attempts": 5})
    assert site.count("/missing") == 1
    assert stats.retries == 0


def test_meta_and_cb_kwargs_survive_a_retry(site):
    site.route("/flaky", nth_hit(lambda n: Reply("ok", status=500 if n == 1 else 200)))

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/flaky", meta={"k": "v"}, cb_kwargs={"n": 1},
                          callback=self.parse_it)

        def parse_it(self, response, n):
            yield {"k": response.meta["k"], "n": n}

    stats, items = crawl(S)
    assert items == [{"k": "v", "n": 1}]
    assert stats.retries == 1


def test_a_request_waiting_for_its_retry_does_not_block_the_worker(site):
    # 500, not 503: a 503 also backs off the whole host, which would hold /a back too
    site.route("/slow-retry", nth_hit(lambda n: Reply("ok", status=500 if n == 1 else 200)))
    site.route("/a", page("/b", "/c"))
    site.route("/b", page())
    site.route("/c", page())

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/slow-retry", priority=1)
            yield Request(site.url + "/a")

        def parse(self, response):
            yield from response.follow_all(response.links())

    stats, _ = crawl(S, {"workers": 1, "retry.backoff": 0.5})
    assert hit_paths(site) == ["/slow-retry", "/a", "/b", "/c", "/slow-retry"]
    first, second = hit_times(site, "/slow-retry")
    assert second - first >= 0.45
    assert stats.retries == 1


@pytest.mark.parametrize("retry_after", [
    lambda: "1",
    lambda: email.utils.formatdate(time.time() + 2, usegmt=True),  # 1 to 2 s ahead
], ids=["seconds", "http-date"])
def test_retry_after_is_honoured(site, retry_after):
    site.route("/busy", nth_hit(lambda n: Reply("busy", status=429, headers={"Retry-After": retry_after()})
                                if n == 1 else Reply("ok")))
    S = one_url_spider(site.url + "/busy")
    stats, items = crawl(S, {"retry.backoff": 0.01})
    first, second = hit_times(site, "/busy")
    assert second - first >= 0.95
    assert items == [{"url": site.url + "/busy", "status": 200}]


# -- redirects --------------------------------------------------------------------------
def redirect(to: str, status: int = 302) -> Reply:
    return Reply(b"", status=status, headers={"Location": to})


def test_redirect_chain_is_followed_to_the_final_url(site):
    site.route("/r1", redirect("/r2", 302))
    site.route("/r2", redirect("r3", 301))
    site.route("/r3", page(title="final"))
    got: list[Any] = []

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/r1", meta={"k": "v"})

        def parse(self, response):
            got.append((response.url, response.status,
                        [(h.url, h.status) for h in response.history], response.meta["k"]))

    stats, _ = crawl(S)
    assert got == [(site.url + "/r3", 200, [(site.url + "/r1", 302), (site.url + "/r2", 301)], "v")]
    assert stats.pages == 1
    assert not stats.errors


def test_a_redirect_keeps_the_depth_of_the_request(site):
    site.route("/", page("/go"))
    site.route("/go", redirect("/final"))
    site.route("/final", page())
    depths: dict[str, int] = {}

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/")

        def parse(self, response):
            depths[response.url.rsplit("/", 1)[1]] = response.depth
            yield from response.follow_all(response.links())

    crawl(S)
    assert depths == {"": 0, "final": 1}


def test_max_pages_does_not_count_redirect_hops(site):
    site.route("/r1", redirect("/r2"))
    site.route("/r2", redirect("/r3"))
    site.route("/r3", page())
    S = one_url_spider(site.url + "/r1")
    stats, items = crawl(S, {"max_pages": 1})
    assert items == [{"url": site.url + "/r3", "status": 200}]
    assert stats.pages == 1


def test_redirect_loop_is_an_error(site):
    site.route("/l1", redirect("/l2"))
    site.route("/l2", redirect("/l1"))
    S = one_url_spider(site.url + "/l1")
    stats, items = crawl(S)
    assert stats.errors == {"redirect-loop": 1}
    assert items == []
    assert len(S.failures) == 1
    assert site.count("/l1") == 1


def test_redirects_up_to_max_redirects_are_followed(site):
    site.route("/r1", redirect("/r2"))
    site.route("/r2", redirect("/r3"))
    site.route("/r3", page())
    S = one_url_spider(site.url + "/r1")
    stats, items = crawl(S, {"max_redirects": 2})
    assert items == [{"url": site.url + "/r3", "status": 200}]


def test_more_than_max_redirects_is_an_error(site):
    for i in range(1, 4):
        site.route(f"/r{i}", redirect(f"/r{i + 1}"))
    site.route("/r4", page())
    S = one_url_spider(site.url + "/r1")
    stats, items = crawl(S, {"max_redirects": 2})
    assert stats.errors == {"too-many-redirects": 1}
    assert items == [] and len(S.failures) == 1
    assert site.count("/r4") == 0


def test_off_site_redirect_is_an_error_with_allowed_domains(site):
    site.route("/away", redirect(f"http://localhost:{site.port}/there"))
    site.route("/there", page())
    S = one_url_spider(site.url + "/away", allowed_domains=["127.0.0.1"])
    stats, items = crawl(S)
    assert stats.errors == {"offsite": 1}
    assert site.count("/there") == 0
    assert items == [] and len(S.failures) == 1


# -- timeouts and sizes -------------------------------------------------------------------
def test_slow_endpoint_times_out_after_retries(site):
    site.route("/slow", Reply("late", delay=3))
    S = one_url_spider(site.url + "/slow")
    t0 = time.monotonic()
    stats, items = crawl(S, {"timeout": 0.5, "retry.attempts": 2})
    assert stats.errors == {"timeout": 1}
    assert site.count("/slow") == 2
    assert time.monotonic() - t0 < 2.5
    assert len(S.failures) == 1


def trickle(head: bytes, pieces: list[bytes], every: float) -> Callable[[Any], None]:
    """A route writing ``head`` at once, then each of ``pieces`` ``every`` seconds."""
    def route(hit: Any) -> None:
        h = hit.handler
        h.close_connection = True
        try:
            h.wfile.write(head)
            for piece in pieces:
                time.sleep(every)
                h.wfile.write(piece)
        except OSError:
            pass  # the client gave up, as a deadline should make it
        return None
    return route


def test_a_trickling_body_is_cut_at_the_total_deadline(site):
    site.route("/trickle", trickle(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                                   b"Content-Length: 40\r\n\r\n", [b"x"] * 40, 0.2))
    S = one_url_spider(site.url + "/trickle")
    t0 = time.monotonic()
    stats, items = crawl(S, {"timeout": 1, "retry.attempts": 1})
    assert time.monotonic() - t0 < 3
    assert stats.errors == {"timeout": 1}
    assert items == []


def test_trickling_headers_are_cut_at_the_total_deadline(site):
    site.route("/trickle", trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n",
                                   [b"X-Slow: 1\r\n"] * 20 + [b"\r\nok"], 0.15))
    S = one_url_spider(site.url + "/trickle")
    t0 = time.monotonic()
    stats, items = crawl(S, {"timeout": 1, "retry.attempts": 1})
    assert time.monotonic() - t0 < 2.5
    assert stats.errors == {"timeout": 1}


def test_body_over_max_response_size_is_too_large_and_the_crawl_goes_on(site):
    site.route("/", page("/big", "/small"))
    site.route("/big", "x" * 5000)
    site.route("/small", page())

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/")

        def parse(self, response):
            yield {"url": response.url}
            yield from response.follow_all(response.links())

    stats, items = crawl(S, {"max_response_size": 1000})
    assert stats.errors == {"too-large": 1}
    assert {i["url"] for i in items} == {site.url + "/", site.url + "/small"}
    assert site.count("/big") == 1
    assert stats.reason == "finished"


def test_body_at_max_response_size_is_accepted(site):
    site.route("/exact", "z" * 1000)
    S = one_url_spider(site.url + "/exact")
    stats, items = crawl(S, {"max_response_size": 1000})
    assert items == [{"url": site.url + "/exact", "status": 200}]


# -- politeness ---------------------------------------------------------------------------
def test_per_host_workers_caps_requests_in_flight_to_one_host(site):
    S = fan_site(site, n=12)
    for i in range(12):
        site.route(f"/p{i}", Reply(page(), delay=0.2))
    stats, _ = crawl(S, {"workers": 8, "per_host_workers": 2})
    assert stats.pages == 13
    assert site.max_in_flight == 2


# -- the crawl always ends ---------------------------------------------------------------------
def test_crawl_ends_when_every_callback_raises(site):
    site.route("/", page(*[f"/p{i}" for i in range(5)]))
    for i in range(5):
        site.route(f"/p{i}", page())

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/")
            for i in range(5):
                yield Request(f"{site.url}/p{i}")

        def parse(self, response):
            raise RuntimeError("always")

    stats, items = crawl(S)
    assert stats.reason == "finished"
    assert stats.errors == {"callback": 6}
    assert stats.pages == 6


def test_crawl_ends_when_the_start_url_is_unreachable():
    S = one_url_spider(f"http://127.0.0.1:{closed_port()}/")
    stats, items = crawl(S)
    assert stats.reason == "finished"
    assert stats.pages == 0
    assert stats.errors == {"connection": 1}


def test_crawl_ends_when_start_requests_raises_midway(site):
    site.route("/a", page())
    site.route("/b", page())

    class S(Spider):
        name = "s"

        def start_requests(self):
            yield Request(site.url + "/a")
            yield Request(site.url + "/b")
            raise RuntimeError("broken start_requests")

        def parse(self, response):
            yield {"url": response.url}

    stats, items = crawl(S)
    assert stats.reason == "finished"
    assert sorted(i["url"] for i in items) == [site.url + "/a", site.url + "/b"]
    assert sum(stats.errors.values()) == 1


def test_crawl_ends_when_start_requests_yields_nothing():
    class S(Spider):
        name = "s"

    stats, items = crawl(S)
    assert stats.reason == "finished"
    assert stats.pages == 0 and items == []


# -- callbacks named by strings ---------------------------------------------------------
def test_a_request_naming_a_missing_callback_is_dropped_and_counted_once(site, caplog):
    # issue 12: one ERROR per request, each fetched for nothing, exit 0
    site.route("/", page(*[f"/p{i}" for i in range(5)]))

    class S(Spider):
        name = "names"
        start_urls = [site.url + "/"]

        def parse(self, response):
            for url in response.links():
                yield Request(url, callback="parse_itme")  # a typo
            yield {"url": response.url}

    stats, items = crawl(S)
    assert len(items) == 1 and site.count("/p0") == 0
    assert stats.errors == {"bad-callback": 5}
    named = [r for r in caplog.records if "'parse_itme'" in r.getMessage()]
    assert len(named) == 1 and "not a callback method" in named[0].getMessage()


def test_a_start_request_naming_a_missing_method_fails_the_start(tmp_path, site):
    from .conftest import run_cli, write_project

    src = ("from scraper import Request, Spider\n\n\nclass S(Spider):\n    name = 's'\n\n"
           "    def start_requests(self):\n"
           f"        yield Request({site.url + '/'!r}, errback='on_eror')\n\n"
           "    def parse(self, response):\n        yield {}\n\n"
           "    def on_error(self, failure):\n        pass\n")
    p = write_project(tmp_path, {"s": src})
    r = run_cli("run", "s", cwd=p)
    assert r.returncode == 2, r.stderr
    assert "'on_eror'" in r.stderr and "Traceback" not in r.stderr
    assert site.count("/") == 0


# -- malformed and over-long URLs never end a crawl (issue 12) --------------------------
def test_malformed_links_are_skipped_counted_and_the_good_ones_fetched(site, caplog):
    import logging

    caplog.set_level(logging.DEBUG, logger="scraper")
    site.route("/", page("/a", "http://[example.org/x", "http://host:notaport/", "/b"))
    site.route("/a", page("/c", "http://host:notaport/"))
    site.route("/b", page())
    site.route("/c", page())

    class S(Spider):
        name = "badlinks"
        start_urls = [site.url + "/"]

        def parse(self, response):
            for url in response.links():
                yield Request(url)

    stats, _ = crawl(S)
    assert stats.reason == "finished"
    assert stats.errors == {"bad-url": 3}  # once per page it is on
    assert {p: site.count(p) for p in ("/a", "/b", "/c")} == {"/a": 1, "/b": 1, "/c": 1}
    logged = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)
    assert "http://[example.org/x" in logged and "http://host:notaport/" in logged


def test_follow_all_of_malformed_links_is_counted_and_the_crawl_goes_on(site):
    site.route("/", page("/a", "http://[example.org/x", "http://host:99999/"))
    site.route("/a", page())

    class S(Spider):
        name = "followall"
        start_urls = [site.url + "/"]

        def parse(self, response):
            yield from response.follow_all(response.css("a"))

    stats, _ = crawl(S)
    assert (stats.reason, stats.errors, site.count("/a")) == ("finished", {"bad-url": 2}, 1)


def test_a_callback_making_a_request_of_a_malformed_url_is_a_callback_error(site):
    site.route("/", page("/a"))
    site.route("/a", page())

    class S(Spider):
        name = "makesbad"
        start_urls = [site.url + "/"]

        def parse(self, response):
            yield {"page": response.url}
            yield from response.follow_all(response.links())
            yield Request("http://[example.org/x")  # ValueError here, at the spider's line

    stats, items = crawl(S)
    assert stats.reason == "finished"
    assert stats.errors == {"callback": 2}  # both pages raised after yielding
    assert len(items) == 2 and site.count("/a") == 1


def test_a_request_whose_url_is_made_malformed_after_construction_is_counted(site):
    # the coordinator does not trust the constructor alone: nothing it cannot parse or
    # canonicalise ends the crawl
    site.route("/", page("/a"))
    site.route("/a", page())

    class S(Spider):
        name = "mutates"
        start_urls = [site.url + "/"]

        def parse(self, response):
            if response.url != site.url + "/":
                return
            for url, bad in (("/a", None), ("/b", "http://[example.org/x"),
                             ("/c", "http://host:notaport/"), ("/d", "http://h/\ud800")):
                r = response.follow(url)
                if bad is not None:
                    r.url = bad
                yield r

    stats, _ = crawl(S)
    assert (stats.reason, stats.errors, site.count("/a")) == ("finished", {"bad-url": 3}, 1)


def test_malformed_start_urls_are_skipped_counted_and_the_others_fetched(site):
    site.route("/a", page())
    site.route("/b", page())

    class S(Spider):
        name = "badstarts"
        start_urls = ["http://[example.org/x", site.url + "/a", "http:///no-host",
                      "http://host:notaport/", site.url + "/b"]

        def parse(self, response):
            yield {"url": response.url}

    stats, items = crawl(S)
    assert stats.reason == "finished"
    assert stats.errors == {"bad-url": 3}
    assert sorted(i["url"] for i in items) == [site.url + "/a", site.url + "/b"]


def test_malformed_start_urls_do_not_break_a_job_dir(site, tmp_path):
    # a job fingerprints its start requests before admission: bad ones must be gone by then
    site.route("/a", page())

    class S(Spider):
        name = "badstartsjob"
        start_urls = ["http://host:notaport/", site.url + "/a"]

        def parse(self, response):
            yield {"url": response.url}

    stats, items = crawl(S, job_dir=tmp_path / "job")
    assert (stats.reason, stats.errors, len(items)) == ("finished", {"bad-url": 1}, 1)


def test_sitemap_and_robots_entries_with_malformed_urls_are_skipped_and_counted(site):
    from scraper import SitemapSpider

    u = site.url
    site.route("/robots.txt", f"Sitemap: http://[example.org/s.xml\nSitemap: {u}/s.xml\n",
               content_type="text/plain")
    locs = "".join(f"<url><loc>{x}</loc></url>" for x in (
        f"{u}/p1", "http://host:notaport/p", "http://[example.org/p", f"{u}/p2"))
    site.route("/s.xml", '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/'
                         f'schemas/sitemap/0.9">{locs}</urlset>', content_type="application/xml")
    site.route("/p1", page())
    site.route("/p2", page())

    class S(SitemapSpider):
        name = "badsitemap"
        sitemap_urls = [u + "/robots.txt", "http://[example.org/sitemap.xml"]

        def parse(self, response):
            yield {"url": response.url}

    stats, items = crawl(S)
    assert stats.reason == "finished"
    assert stats.errors == {"bad-url": 4}  # one start URL, one robots line, two locs
    assert sorted(i["url"] for i in items) == [u + "/p1", u + "/p2"]


def test_a_redirect_to_a_malformed_location_fails_that_request_only(site):
    site.route("/", page("/r1", "/r2", "/ok"))
    site.route("/r1", Reply("", status=302, headers={"Location": "http://[example.org/x"}))
    site.route("/r2", Reply("", status=302, headers={"Location": "http://host:notaport/"}))
    site.route("/ok", page())

    class S(Spider):
        name = "badredirect"
        start_urls = [site.url + "/"]

        def parse(self, response):
            yield from response.follow_all(response.links())

    stats, _ = crawl(S)
    assert stats.reason == "finished" and site.count("/ok") == 1
    # a failed request of the redirecting page, whichever name the redirect code gives it
    assert sum(stats.errors.values()) == 2
    assert set(stats.errors) <= {"bad-url", "bad-redirect"}


def test_a_url_over_max_url_length_is_dropped_and_counted(site, caplog):
    import logging

    caplog.set_level(logging.DEBUG, logger="scraper")
    long_path = "/long?q=" + "x" * 3000
    site.route("/", page("/short", long_path))
    site.route("/short", page())
    site.route("/long", page())

    class S(Spider):
        name = "longurl"
        start_urls = [site.url + "/"]

        def parse(self, response):
            yield from response.follow_all(response.links())

    stats, _ = crawl(S)
    assert stats.reason == "finished"
    assert stats.errors == {"url-too-long": 1}
    assert site.count("/short") == 1 and not any(p.startswith("/long") for p in site.paths())
    logged = [r.getMessage() for r in caplog.records if "max_url_length" in r.getMessage()]
    assert len(logged) == 1 and site.url + "/long?q=xxx" in logged[0] and len(logged[0]) < 400


def test_max_url_length_is_a_setting(site):
    site.route("/", page("/" + "a" * 40, "/" + "b" * 60))
    site.route("/" + "a" * 40, page())
    site.route("/" + "b" * 60, page())

    class S(Spider):
        name = "urllength"
        start_urls = [site.url + "/"]

        def parse(self, response):
            yield from response.follow_all(response.links())

    limit = len(site.url) + 50
    stats, _ = crawl(S, {"max_url_length": limit})
    assert stats.errors == {"url-too-long": 1}
    assert site.count("/" + "a" * 40) == 1 and site.count("/" + "b" * 60) == 0
