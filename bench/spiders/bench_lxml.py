"""Benchmark crawler (a): our framework on its fast path, lxml only.

Follows every same-site link with `links()` + `follow_all()` (the engine drops what was
seen) and extracts four fields from product pages with Scrapy's selectors (`css()` and
`xpath()` with `::text` and `.get()`, the same expressions as the Scrapy crawler (c)).

    python -m scraper run bench_lxml --config bench/config.yaml \
        -a base_url=http://127.0.0.1:PORT/ -O items.jsonl
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from scraper import Request, Response, Spider


class BenchLxmlSpider(Spider):
    """The shop crawl via `links()`, `css()` and `xpath()`."""

    name = "bench_lxml"
    allowed_domains = ["127.0.0.1"]
    base_url = "http://127.0.0.1:8000/"  # set with -a base_url=...

    def start_requests(self) -> Iterator[Request]:
        yield Request(self.base_url)

    def parse(self, response: Response) -> Iterator[Any]:
        if "/p/" in response.url:
            yield {
                "url": response.url,
                "title": response.css("h1.product-title::text").get("").strip(),
                "price": response.xpath(
                    "//div[@class='product-info']/p[@class='price']/text()").get("").strip(),
                "sku": response.xpath("//dd[@class='sku']/text()").get("").strip(),
                "availability": response.css("p.availability::text").get("").strip(),
            }
        yield from response.follow_all(response.links())
