"""Admission's in-memory payloads and URL cache: a plain request becomes compact bytes
and comes back the same request; anything else stays the Request itself."""

from __future__ import annotations

import time

import pytest

from scraper import Request, Spider
from scraper.crawl.admission import Admission
from scraper.crawl.stats import Stats
from scraper.storage import MemoryBackend


class Shop(Spider):
    name = "shop"

    def parse(self, response):
        pass

    def parse_item(self, response):
        pass

    def failed(self, failure):
        pass


@pytest.fixture
def admission():
    spider = Shop()
    return Admission(spider, MemoryBackend(), Stats("shop"), max_depth=None, serialise=False)


def _popped(admission, n=100):
    backend = admission.backend
    backend.hosts.set_defaults(100, 0.0)
    leases = backend.frontier.pop(n, now=time.time())
    return [admission.decode(lease.entry.data, lease.entry.host) for lease in leases]


def _same(a, b):
    for attr in ("url", "method", "callback", "errback", "priority", "depth", "attempt",
                 "meta", "cb_kwargs", "headers", "body", "dont_filter"):
        assert getattr(a, attr) == getattr(b, attr), attr


@pytest.mark.parametrize("url", [
    "http://shop.example/p/1.html?ref=a b",       # the path is kept, spaces and all
    "https://shop.example",                       # no path at all
    "http://shop.example:8080/p/2",               # an explicit port: the URL is kept whole
    "http://Shop.Example/p/3",                    # the host key is lower case: kept whole
    "https://shop.example:443/p/4#frag",          # the default port written out
    "http://bücher.example/straße?q=ü",           # not ASCII
    "http://user@shop.example/p/5",
])
def test_plain_requests_are_compact_and_come_back_the_same(admission, url):
    spider = admission.spider
    r = Request(url, spider.parse_item, priority=-3, errback="failed")
    r.depth, r.attempt = 4, 2
    data = admission.encode(r)
    assert type(data) is bytes and len(data) < len(url.encode()) + 40
    assert admission.admit([r]) == 1
    (back,) = _popped(admission)
    _same(back, r)
    assert back.callback == spider.parse_item and back.errback == "failed"


def test_requests_with_more_than_a_url_stay_request_objects(admission):
    spider = admission.spider
    item = {"name": "kept by identity"}
    for r in (Request("http://shop.example/a", spider.parse, meta={"item": item}),
              Request("http://shop.example/b", cb_kwargs={}),
              Request("http://shop.example/c", method="POST", data=b"x"),
              Request("http://shop.example/d", headers={"X": "1"}),
              Request("http://shop.example/e", dont_filter=True),
              Request("http://shop.example/f", lambda response: None)):
        assert admission.encode(r) is r
    admission.admit([Request("http://shop.example/a", spider.parse, meta={"item": item})])
    (back,) = _popped(admission)
    assert back.meta["item"] is item


def test_a_compact_entry_without_its_host_is_refused(admission):
    data = admission.encode(Request("http://shop.example/p"))
    with pytest.raises(ValueError):
        admission.decode(data)


def test_repeated_links_are_answered_by_the_url_cache(admission):
    admission.set_domains(["shop.example"])
    links = [Request(f"http://shop.example/p/{i}") for i in range(50)]
    offsite = [Request("http://elsewhere.example/x") for _ in range(3)]
    assert admission.admit(links + offsite) == 50
    again = [Request(f"http://shop.example/p/{i}") for i in range(50)]
    assert admission.admit(again) == 0
    assert all(r._fp is None for r in again)  # no canonical URL nor fingerprint computed
    filtered = admission.stats.filtered
    assert filtered["duplicate"] == 50 and filtered["offsite"] == 3
    assert admission.backend.frontier.pending() == 50
