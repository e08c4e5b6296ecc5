"""Which fetcher each worker gets, assembled once per crawl: the HTTP fetcher (one
``requests.Session`` per worker, one cookie jar for the crawl), behind the HTTP
cache when it is on, then the browser routing (requests that ask for a browser are
rendered by Chromium, sharing the jar's cookies per host), recorded into a cassette
with ``--record``; or, with ``--replay``, the cassette alone and no HTTP and no
browser at all (rendered pages are replayed as recorded)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..config import Settings
from ..spider import Spider
from .adaptive import browser_fetchers
from .base import Fetcher
from .cache import caching_fetchers
from .cassette import CassetteMode, recording_fetchers, replay_fetchers
from .cookies import BoundedCookieJar
from .fetcher import FetchConfig, HttpFetcher
from .watchdog import Watchdog

__all__ = ["FetcherFactory", "http_fetchers", "worker_fetchers"]

log = logging.getLogger(__name__)

#: worker index -> that worker's fetcher
FetcherFactory = Callable[[int], Fetcher]


def worker_fetchers(settings: Settings, spider: Spider | str, watchdog: Watchdog,
                    cassette: CassetteMode | None = None) -> FetcherFactory:
    """The fetcher factory a crawl's settings and cassette mode call for. ``spider``: the
    spider (its ``browser`` attributes and ``actions`` methods), or just its name."""
    if cassette is not None and cassette.replay:
        return replay_fetchers(cassette)
    name = spider.name if isinstance(spider, Spider) else spider
    jar = BoundedCookieJar()
    factory = http_fetchers(settings, watchdog, jar)
    if settings.httpcache.enabled:
        factory = caching_fetchers(factory, settings.httpcache, name)
    factory = browser_fetchers(factory, settings, spider, jar)
    if cassette is not None:
        factory = recording_fetchers(factory, cassette)
    return factory


def http_fetchers(settings: Settings, watchdog: Watchdog,
                  jar: BoundedCookieJar | None = None) -> FetcherFactory:
    """HTTP fetchers sharing one cookie jar (a cookielib jar locks itself) and one
    watchdog for the total deadline of every response."""
    config = FetchConfig.from_settings(settings.fetch, settings.politeness)
    if config.verify is False:
        log.warning("tls_verify is off: TLS certificates are not checked")
    shared = jar if jar is not None else BoundedCookieJar()
    return lambda index: HttpFetcher(config, shared, watchdog)
