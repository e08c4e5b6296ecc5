"""The hand-written baselines (d) and (e): a `queue.Queue`, N threads each with its own
`requests.Session`, and lxml (d) or BeautifulSoup with the lxml parser (e).

Minimal but correct, as a competent programmer writes it in an afternoon: links are
stripped, joined to the page URL, stripped of their fragment and kept only when they are
http(s) on the start URL's scheme and host:port; a lock-protected seen-set admits each
URL once; the crawl ends when the queue is drained and no page is in flight
(`Queue.join`). Product pages (`/p/` in the path) yield the four fields. No robots.txt,
no retries, no politeness: the floor our framework is measured against.

    python -m bench.crawlers.threaded --parser lxml --start http://127.0.0.1:PORT/ \
        --out items.jsonl --summary summary.json
"""

from __future__ import annotations

import argparse
import json
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO
from urllib.parse import urldefrag, urljoin, urlsplit

import lxml.html
import requests
from bs4 import BeautifulSoup

# A page parser takes (url, body) and returns the page's hrefs and its item, if any.
PageParser = Callable[[str, bytes], tuple[list[str], dict[str, str] | None]]


def parse_with_lxml(url: str, body: bytes) -> tuple[list[str], dict[str, str] | None]:
    """Hrefs and product fields via lxml.html and XPath.

    The bytes go in, not text: lxml reads the encoding from `<meta charset>`.
    """
    doc = lxml.html.fromstring(body)
    hrefs = doc.xpath("//a/@href")
    item = None
    if "/p/" in url:
        item = {
            "url": url,
            "title": doc.xpath("string(//h1[@class='product-title'])").strip(),
            "price": doc.xpath("string(//div[@class='product-info']/p[@class='price'])").strip(),
            "sku": doc.xpath("string(//dd[@class='sku'])").strip(),
            "availability": doc.xpath(
                "string(//p[contains(concat(' ', @class, ' '), ' availability ')])"
            ).strip(),
        }
    return hrefs, item


def parse_with_soup(url: str, body: bytes) -> tuple[list[str], dict[str, str] | None]:
    """Hrefs and product fields via BeautifulSoup("lxml") and CSS selectors."""
    soup = BeautifulSoup(body, "lxml")
    hrefs = [str(a["href"]) for a in soup.select("a[href]")]
    item = None
    if "/p/" in url:
        item = {
            "url": url,
            "title": _soup_text(soup, "h1.product-title"),
            "price": _soup_text(soup, "div.product-info p.price"),
            "sku": _soup_text(soup, "dd.sku"),
            "availability": _soup_text(soup, "p.availability"),
        }
    return hrefs, item


def _soup_text(soup: BeautifulSoup, selector: str) -> str:
    tag = soup.select_one(selector)
    return tag.get_text(strip=True) if tag is not None else ""


PARSERS: dict[str, PageParser] = {"lxml": parse_with_lxml, "bs4": parse_with_soup}


class ThreadedCrawler:
    """Breadth-first crawl of one site with a shared queue and a pool of threads."""

    def __init__(self, start_url: str, parse_page: PageParser, items: TextIO, workers: int) -> None:
        parts = urlsplit(start_url)
        self.origin = (parts.scheme, parts.netloc)
        self.parse_page = parse_page
        self.items_file = items
        self.workers = workers
        self.todo: queue.Queue[str | None] = queue.Queue()
        self.seen = {start_url}
        self.lock = threading.Lock()
        self.pages = 0
        self.items = 0
        self.errors: Counter[str] = Counter()
        self.todo.put(start_url)

    def run(self) -> None:
        threads = [threading.Thread(target=self._work, daemon=True) for _ in range(self.workers)]
        for thread in threads:
            thread.start()
        self.todo.join()
        for _ in threads:
            self.todo.put(None)
        for thread in threads:
            thread.join()

    def _work(self) -> None:
        session = requests.Session()
        while (url := self.todo.get()) is not None:
            try:
                self._visit(session, url)
            except requests.RequestException as exc:
                self._count_error(type(exc).__name__)
            except Exception as exc:  # a page that breaks the parser must not stop the crawl
                self._count_error(f"parse-{type(exc).__name__}")
            finally:
                self.todo.task_done()
        self.todo.task_done()
        session.close()

    def _visit(self, session: requests.Session, url: str) -> None:
        response = session.get(url, timeout=30)
        if response.status_code != 200:
            self._count_error(f"http-{response.status_code}")
            return
        hrefs, item = self.parse_page(response.url, response.content)
        links = self._same_site(response.url, hrefs)
        with self.lock:
            self.pages += 1
            new = []
            for link in links:  # one at a time: a page often repeats a link
                if link not in self.seen:
                    self.seen.add(link)
                    new.append(link)
            if item is not None:
                self.items += 1
                self.items_file.write(json.dumps(item, ensure_ascii=False) + "\n")
        for link in new:
            self.todo.put(link)

    def _same_site(self, page_url: str, hrefs: list[str]) -> list[str]:
        links = []
        for href in hrefs:
            url = urldefrag(urljoin(page_url, href.strip())).url
            parts = urlsplit(url)
            if (parts.scheme, parts.netloc) == self.origin:
                links.append(url)
        return links

    def _count_error(self, kind: str) -> None:
        with self.lock:
            self.errors[kind] += 1


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Hand-written threaded crawler (bench baseline).")
    parser.add_argument(
        "--start", required=True, help="start URL; only its scheme+host:port is crawled"
    )
    parser.add_argument("--parser", choices=sorted(PARSERS), default="lxml")
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--out", type=Path, required=True, help="items, as JSON lines")
    parser.add_argument("--summary", type=Path, required=True, help="pages, items, errors as JSON")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with open(args.out, "w", encoding="utf-8") as items:
        crawler = ThreadedCrawler(args.start, PARSERS[args.parser], items, args.workers)
        crawler.run()
    summary = {
        "crawler": f"threaded-{args.parser}",
        "pages": crawler.pages,
        "items": crawler.items,
        "errors": dict(crawler.errors),
        "duration_s": round(time.perf_counter() - started, 3),
    }
    args.summary.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
