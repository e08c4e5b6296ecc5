"""Which fetcher each worker gets, assembled once per crawl: the HTTP fetcher (one
``requests.Session`` per worker, one cookie jar for the crawl), behind the HTTP
cache when it is on, recorded into a cassette with ``--record``; or, with
``--replay``, the cassette alone and no HTTP at all."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..config import Settings
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


def worker_fetchers(settings: Settings, spider: str, watchdog: Watchdog,
                    cassette: CassetteMode | None = None) -> FetcherFactory:
    """The fetcher factory a crawl's settings and cassette mode call for."""
    if cassette is not None and cassette.replay:
        return replay_fetchers(cassette)
    factory = http_fetchers(settings, watchdog)
    if settings.httpcache.enabled:
        factory = caching_fetchers(factory, settings.httpcache, spider)
    if cassette is not None:
        factory = recording_fetchers(factory, cassette)
    return factory


def http_fetchers(settings: Settings, watchdog: Watchdog) -> FetcherFactory:
    """HTTP fetchers sharing one cookie jar (a cookielib jar locks itself) and one
    watchdog for the total deadline of every response."""
    config = FetchConfig.from_settings(settings.fetch, settings.politeness)
    if config.verify is False:
        log.warning("tls_verify is off: TLS certificates are not checked")
    jar = BoundedCookieJar()
    return lambda index: HttpFetcher(config, jar, watchdog)
