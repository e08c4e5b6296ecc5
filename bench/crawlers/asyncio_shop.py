"""The hand-written asyncio baseline (h): one `aiohttp.ClientSession`, N worker coroutines
on an `asyncio.Queue`, and lxml, the approach the usual guides to concurrent requests in
Python measure fastest.

The same job as the threads crawler (d), written the same way: links are stripped,
joined to the page URL, stripped of their fragment and kept only when they are on the
start URL's scheme and host:port; a seen-set (no lock needed: one thread) admits each URL
once; the crawl ends when the queue is drained and no page is in flight
(`Queue.join`). Pages are parsed in the event loop, between fetches, as those guides do.
The connector allows `--workers` connections in all and per host (32 by default), the
concurrency every crawler here gets. No robots.txt, no retries, no politeness.

    python -m bench.crawlers.asyncio_shop --start http://127.0.0.1:PORT/ \
        --out items.jsonl --summary summary.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO
from urllib.parse import urldefrag, urljoin, urlsplit

import aiohttp

from bench.crawlers.threaded import parse_with_lxml


class AsyncioCrawler:
    """Breadth-first crawl of one site with one ClientSession and a pool of coroutines."""

    def __init__(self, start_url: str, items: TextIO, workers: int) -> None:
        parts = urlsplit(start_url)
        self.origin = (parts.scheme, parts.netloc)
        self.start_url = start_url
        self.items_file = items
        self.workers = workers
        self.seen = {start_url}
        self.pages = 0
        self.items = 0
        self.errors: Counter[str] = Counter()

    async def run(self) -> None:
        todo: asyncio.Queue[str] = asyncio.Queue()
        todo.put_nowait(self.start_url)
        connector = aiohttp.TCPConnector(limit=self.workers, limit_per_host=self.workers)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            tasks = [asyncio.create_task(self._work(session, todo)) for _ in range(self.workers)]
            await todo.join()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _work(self, session: aiohttp.ClientSession, todo: asyncio.Queue[str]) -> None:
        while True:
            url = await todo.get()
            try:
                await self._visit(session, todo, url)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                self.errors[type(exc).__name__] += 1
            except Exception as exc:  # a page that breaks the parser must not stop the crawl
                self.errors[f"parse-{type(exc).__name__}"] += 1
            finally:
                todo.task_done()

    async def _visit(self, session: aiohttp.ClientSession, todo: asyncio.Queue[str],
                     url: str) -> None:
        async with session.get(url) as response:
            if response.status != 200:
                self.errors[f"http-{response.status}"] += 1
                return
            body = await response.read()
            page_url = str(response.url)
        hrefs, item = parse_with_lxml(page_url, body)
        self.pages += 1
        for link in self._same_site(page_url, hrefs):
            if link not in self.seen:
                self.seen.add(link)
                todo.put_nowait(link)
        if item is not None:
            self.items += 1
            self.items_file.write(json.dumps(item, ensure_ascii=False) + "\n")

    def _same_site(self, page_url: str, hrefs: list[str]) -> list[str]:
        links = []
        for href in hrefs:
            url = urldefrag(urljoin(page_url, href.strip())).url
            parts = urlsplit(url)
            if (parts.scheme, parts.netloc) == self.origin:
                links.append(url)
        return links


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Hand-written asyncio crawler (bench baseline).")
    parser.add_argument(
        "--start", required=True, help="start URL; only its scheme+host:port is crawled"
    )
    parser.add_argument("--workers", type=int, default=32, help="coroutines and connections")
    parser.add_argument("--out", type=Path, required=True, help="items, as JSON lines")
    parser.add_argument("--summary", type=Path, required=True, help="pages, items, errors as JSON")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with open(args.out, "w", encoding="utf-8") as items:
        crawler = AsyncioCrawler(args.start, items, args.workers)
        asyncio.run(crawler.run())
    summary = {
        "crawler": "asyncio-lxml",
        "pages": crawler.pages,
        "items": crawler.items,
        "errors": dict(crawler.errors),
        "duration_s": round(time.perf_counter() - started, 3),
    }
    args.summary.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
