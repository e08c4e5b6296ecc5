"""scraper: a threaded web-scraping framework with Scrapy's vocabulary.

The public names are listed in ``__all__``; everything else is internal. They are
imported on first use, so that importing the package (as ``python -m scraper``
does before anything else) costs nothing and a Ctrl-C during start-up finds the
signal handlers already installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__

if TYPE_CHECKING:
    from .crawlspider import CrawlSpider, Rule
    from .exceptions import (CloseSpider, ConfigError, DropItem, FetchError, IgnoreRequest,
                             ScraperError, SpiderNotFound, StorageError)
    from .failure import Failure
    from .http import Request
    from .links import Link, LinkExtractor
    from .response import Response
    from .sitemap import SitemapSpider
    from .spider import Spider

_WHERE = {
    "CloseSpider": "exceptions", "ConfigError": "exceptions", "DropItem": "exceptions",
    "FetchError": "exceptions", "ScraperError": "exceptions", "SpiderNotFound": "exceptions",
    "StorageError": "exceptions", "Failure": "failure", "Request": "http",
    "Response": "response", "SitemapSpider": "sitemap", "Spider": "spider",
    "CrawlSpider": "crawlspider", "Rule": "crawlspider", "Link": "links",
    "LinkExtractor": "links", "IgnoreRequest": "exceptions",
}

__all__ = [
    "CloseSpider",
    "ConfigError",
    "CrawlSpider",
    "DropItem",
    "Failure",
    "FetchError",
    "IgnoreRequest",
    "Link",
    "LinkExtractor",
    "Request",
    "Response",
    "Rule",
    "ScraperError",
    "SitemapSpider",
    "Spider",
    "SpiderNotFound",
    "StorageError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'scraper' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
