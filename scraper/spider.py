"""The Spider base class: what a user subclasses to say where to start and how to parse."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from .http import Request

if TYPE_CHECKING:
    from .response import Response

__all__ = ["CrawlStats", "Crawler", "Spider"]


class CrawlStats(Protocol):
    """What ``spider.stats`` offers: custom counters, shown in the run summary."""

    def inc(self, name: str, n: int = 1) -> None: ...


class Crawler(Protocol):
    """What a running crawl offers its spider (``spider.crawler``, set before ``opened``)."""

    @property
    def stats(self) -> CrawlStats: ...

    def sitemaps_for(self, url: str) -> list[str]: ...


class _LooseCounters:
    """``spider.stats`` outside a crawl (a callback called from a test or a command): it
    counts, so spider code runs the same, but nothing shows the counts."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def inc(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n


_LIST_ARGS = frozenset({"start_urls", "allowed_domains"})


class Spider:
    """Base class for spiders: ``name``, ``start_urls`` and a ``parse`` callback.

    Class attributes:
        name: unique; what ``python -m scraper run NAME`` takes.
        start_urls: where the crawl starts (``start_requests`` may be overridden).
        allowed_domains: optional; links to other hosts are dropped (subdomains allowed).
        custom_settings: optional; overrides config.yaml for this spider.
        handle_statuses: non-2xx statuses that still reach callbacks.
        item_class: optional; a dataclass, attrs class or pydantic model that dict items
            must fit (they are made into instances of it; one that does not fit is
            counted as ``invalid-item`` and not written).
        default_callback: the method a request without a callback goes to (``parse``).
        browser: how its requests are fetched when their ``meta`` has no ``"browser"``:
            False (HTTP), True (rendered by Chromium), a dict of browser options
            (``wait_until``, ``wait_for``, ``timeout``, ``actions``, ``screenshot``,
            ``block``), or "auto": fetched with HTTP, rendered only when
            ``browser_when_missing`` matches nothing (README: Pages that need JavaScript).
        browser_when_missing: a CSS selector; in "auto" mode a page whose HTTP answer has
            no element it matches is rendered by the browser.
    """

    name: ClassVar[str] = ""
    start_urls: ClassVar[list[str]] = []
    allowed_domains: ClassVar[list[str]] = []
    custom_settings: ClassVar[dict[str, Any]] = {}
    handle_statuses: ClassVar[list[int]] = []
    # CrawlSpider's is "_parse", as in Scrapy, so that its rules still apply to start
    # pages when a subclass overrides parse
    default_callback: ClassVar[str] = "parse"
    item_class: ClassVar[type | None] = None
    browser: ClassVar[bool | str | dict[str, Any]] = False
    browser_when_missing: ClassVar[str | None] = None

    settings: Mapping[str, Any]
    crawler: Crawler | None = None

    def __init__(self, **kwargs: Any) -> None:
        for key, value in kwargs.items():
            if key in _LIST_ARGS and isinstance(value, str):
                # -a start_urls=URL[,URL...]: a string is one URL or a comma-separated list
                value = [v.strip() for v in value.split(",") if v.strip()]
            setattr(self, key, value)

    @property
    def logger(self) -> logging.Logger:
        """A logger named after the spider (works even if a subclass skips super().__init__)."""
        return logging.getLogger(self.name or type(self).__name__)

    @property
    def stats(self) -> CrawlStats:
        """The crawl's counters (from ``opened()`` on): ``self.stats.inc(name, n=1)`` adds
        to a custom counter shown in the summary and its JSON (``custom``)."""
        crawler = self.crawler
        if crawler is not None:
            return crawler.stats
        loose = self.__dict__.get("_loose_stats")
        if loose is None:
            loose = self.__dict__["_loose_stats"] = _LooseCounters()
        return loose

    def sitemaps_for(self, url: str) -> list[str]:
        """The Sitemap URLs the robots.txt of ``url``'s host declares (empty when that
        robots.txt is not known: not fetched yet, or ``obey_robots`` is off)."""
        crawler = self.crawler
        return crawler.sitemaps_for(url) if crawler is not None else []

    def start_requests(self) -> Iterable[Request]:
        """The first requests: by default one GET per URL of ``start_urls`` (a malformed
        one is skipped and counted as ``bad-url`` by the crawl, not a ValueError that
        ends the list)."""
        for url in self.start_urls:
            yield Request.unchecked(url)

    def parse(self, response: Response) -> Any:
        """The default callback; yield items and Requests."""
        raise NotImplementedError(f"{type(self).__name__}.parse is not defined")

    def opened(self) -> None:
        """Called once before the first request (``self.settings`` is set)."""

    def closed(self, reason: str) -> None:
        """Called once at the end of the crawl with its reason."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
