"""Spider tests: ``run_spider`` runs a spider in this process, usually from a recorded
cassette (``run NAME --record DIR``), and hands back what it produced, for asserting::

    from scraper.testing import run_spider

    def test_books():
        run = run_spider("books", replay="tests/cassettes/books")
        assert len(run.items) == 3 and not run.failures
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import load_config, resolve_settings
from .crawl.engine import FetcherFactory
from .crawl.runner import build_crawl
from .crawl.stats import Stats
from .fetch.base import Fetcher
from .fetch.cassette import CassetteMode
from .http import Request
from .loader import load_spider
from .response import Response
from .spider import Spider

__all__ = ["SpiderRun", "run_spider"]


@dataclass
class SpiderRun:
    """What one crawl produced: ``items`` in the order the pipelines got them,
    ``requests`` in the order they were fetched (robots.txt, redirect hops and retries
    included), the ``stats``, and ``failures``: error kind -> count (``not-recorded``,
    ``http-404``, ``callback``...), empty when nothing went wrong."""

    items: list[Any] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    stats: Stats | None = None
    failures: dict[str, int] = field(default_factory=dict)

    def process(self, item: Any, spider: Spider) -> Any:
        """The pipeline that keeps every item."""
        self.items.append(item)
        return item


class _Noting:
    """A Fetcher that notes each request before ``inner`` fetches it."""

    def __init__(self, inner: Fetcher, requests: list[Request], lock: threading.Lock) -> None:
        self.inner = inner
        self.requests = requests
        self.lock = lock

    def fetch(self, request: Request) -> Response:
        with self.lock:
            self.requests.append(request)
        return self.inner.fetch(request)

    def close(self) -> None:
        self.inner.close()


def run_spider(name_or_class: str | type[Spider], replay: str | Path | None = None,
               settings: Mapping[str, Any] | None = None,
               config: str | Path | None = None,
               spider_args: Mapping[str, str] | None = None) -> SpiderRun:
    """Run a spider (by name, found through the config file, or a class) to its end.

    With ``replay`` every exchange comes from the cassette in that directory and nothing
    is sent over the network; a request it does not hold counts as ``not-recorded``.
    ``settings`` go over the config file's (as ``-s`` does); ``config`` is the config
    file (default: ./config.yaml if there is one); ``spider_args`` set spider attributes
    (as ``-a``)."""
    conf = load_config(config)
    if isinstance(name_or_class, str):
        base = resolve_settings(conf, cli=settings)
        cls = load_spider(name_or_class, base.crawl.spiders_path, conf.base_dir)
    else:
        cls = name_or_class
    result = SpiderRun()
    lock = threading.Lock()

    def noting(factory: FetcherFactory) -> FetcherFactory:
        return lambda index: _Noting(factory(index), result.requests, lock)

    cassette = CassetteMode(Path(replay), replay=True) if replay is not None else None
    crawl = build_crawl(cls, config=conf, settings=settings, spider_args=spider_args,
                        pipelines=[result], cassette=cassette)
    crawl.wrap_fetchers = noting
    stats = result.stats = crawl.run()
    result.failures = dict(sorted(stats.errors.items()))
    return result
