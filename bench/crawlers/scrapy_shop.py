"""Crawler (c): Scrapy doing the benchmark job, as the plain spider most users write.

Every `<a href>` of every page is joined and yielded as a Request; Scrapy's offsite
middleware drops other hosts and its dupefilter drops what was seen. Product pages
(`/p/` in the path) yield the four fields, written by a JSON-lines feed. Settings are
Scrapy's defaults except: 32 concurrent requests (per domain too), robots.txt obeyed,
no telnet console nor remote-control server, INFO logging.

    python -m bench.crawlers.scrapy_shop --start http://127.0.0.1:PORT/ \
        --out items.jsonl --summary summary.json
"""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import scrapy
from scrapy.crawler import Crawler, CrawlerProcess
from scrapy.http import Response


class ShopSpider(scrapy.Spider):
    """Follows every same-site link; extracts title, price, SKU, availability from products."""

    name = "bench_scrapy"
    allowed_domains = ["127.0.0.1"]

    def __init__(self, start_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_url = start_url
        self.pages = 0

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for request in self.start_requests():
            yield request

    def start_requests(self) -> Iterator[scrapy.Request]:
        # Not `start_urls`: their requests skip the dupefilter, so the home page,
        # linked from every page, would be fetched twice. (`start()` is Scrapy >= 2.13,
        # `start_requests()` what older versions call.)
        yield scrapy.Request(self.start_url, callback=self.parse)

    def parse(self, response: Response) -> Iterator[dict[str, str] | scrapy.Request]:
        self.pages += 1
        if "/p/" in response.url:
            yield {
                "url": response.url,
                "title": response.css("h1.product-title::text").get("").strip(),
                "price": response.css("div.product-info p.price::text").get("").strip(),
                "sku": response.xpath("//dd[@class='sku']/text()").get("").strip(),
                "availability": response.css("p.availability::text").get("").strip(),
            }
        for href in response.css("a::attr(href)").getall():
            url = response.urljoin(href)
            if url.startswith(("http://", "https://")):  # not mailto:, tel:, javascript:
                yield scrapy.Request(url, callback=self.parse)


def crawl_settings(out: Path, concurrency: int) -> dict[str, Any]:
    return {
        "CONCURRENT_REQUESTS": concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
        "ROBOTSTXT_OBEY": True,
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,  # Scrapy 2.19's debugging server, like telnet
        "LOG_LEVEL": "INFO",
        "FEEDS": {str(out): {"format": "jsonlines", "overwrite": True}},
    }


def errors_from_stats(stats: dict[str, Any]) -> dict[str, int]:
    """Failures by kind: download exceptions, callback exceptions, non-2xx statuses."""
    errors: dict[str, int] = {}
    for key, value in stats.items():
        if key.startswith("downloader/exception_type_count/"):
            errors[key.rsplit("/", 1)[1].rsplit(".", 1)[-1]] = value
        elif key.startswith("spider_exceptions/"):
            errors[f"callback-{key.split('/', 1)[1]}"] = value
        elif key.startswith("downloader/response_status_count/"):
            status = key.rsplit("/", 1)[1]
            if not status.startswith("2"):
                errors[f"http-{status}"] = value
    return errors


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Scrapy crawler (bench comparison).")
    parser.add_argument("--start", required=True, help="start URL")
    parser.add_argument(
        "--workers", type=int, default=32, help="CONCURRENT_REQUESTS (and per domain)"
    )
    parser.add_argument("--out", type=Path, required=True, help="items, as JSON lines")
    parser.add_argument("--summary", type=Path, required=True, help="pages, items, errors as JSON")
    args = parser.parse_args(argv)
    process = CrawlerProcess(crawl_settings(args.out.resolve(), args.workers))
    crawler: Crawler = process.create_crawler(ShopSpider)
    process.crawl(crawler, start_url=args.start)
    process.start()
    stats = crawler.stats.get_stats() if crawler.stats else {}
    spider = crawler.spider
    summary = {
        "crawler": f"scrapy-{scrapy.__version__}",
        "pages": spider.pages if isinstance(spider, ShopSpider) else 0,
        "items": stats.get("item_scraped_count", 0),
        "errors": errors_from_stats(stats),
        "duration_s": stats.get("elapsed_time_seconds"),
        "reason": stats.get("finish_reason"),
    }
    args.summary.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
