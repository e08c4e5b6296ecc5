"""Benchmark crawler (b): the same job as (a) through BeautifulSoup.

Links come from `select("a[href]")` and are followed with `follow_all()`; `mailto:`,
`tel:` and `javascript:` hrefs are left out first, as `follow()` only makes http(s)
requests. Fields come from `select_one()`.

    python -m scraper run bench_soup --config bench/config.yaml \
        -a base_url=http://127.0.0.1:PORT/ -O items.jsonl
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from scraper import Request, Response, Spider

_WEB = ("http://", "https://")


class BenchSoupSpider(Spider):
    """The shop crawl via `select()` and `select_one()` on the soup."""

    name = "bench_soup"
    allowed_domains = ["127.0.0.1"]
    base_url = "http://127.0.0.1:8000/"  # set with -a base_url=...

    def start_requests(self) -> Iterator[Request]:
        yield Request(self.base_url)

    def parse(self, response: Response) -> Iterator[Any]:
        if "/p/" in response.url:
            yield {
                "url": response.url,
                "title": _text(response, "h1.product-title"),
                "price": _text(response, "div.product-info p.price"),
                "sku": _text(response, "dd.sku"),
                "availability": _text(response, "p.availability"),
            }
        urls = (response.urljoin(str(a["href"])) for a in response.select("a[href]"))
        yield from response.follow_all(url for url in urls if url.startswith(_WEB))


def _text(response: Response, selector: str) -> str:
    """The stripped text of the first tag matching `selector` ("" if none does)."""
    tag = response.select_one(selector)
    return tag.get_text(strip=True) if tag is not None else ""
