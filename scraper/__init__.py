"""scraper: a threaded web-scraping framework with Scrapy's vocabulary.

The public names are listed in ``__all__``; everything else is internal.
"""

__version__ = "0.1.0"

from .exceptions import (  # noqa: E402
    CloseSpider,
    ConfigError,
    DropItem,
    FetchError,
    ScraperError,
    SpiderNotFound,
    StorageError,
)
from .http import Request  # noqa: E402
from .response import Response  # noqa: E402
from .sitemap import SitemapSpider  # noqa: E402
from .spider import Spider  # noqa: E402
from .worker import Failure  # noqa: E402

__all__ = [
    "CloseSpider",
    "ConfigError",
    "DropItem",
    "Failure",
    "FetchError",
    "Request",
    "Response",
    "ScraperError",
    "SitemapSpider",
    "Spider",
    "SpiderNotFound",
    "StorageError",
    "__version__",
]
