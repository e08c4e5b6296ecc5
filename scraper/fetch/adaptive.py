"""Which requests a browser renders: the per-request choice (``meta["browser"]``, else the
spider's ``browser`` attribute), and adaptive rendering, where a page is fetched with
HTTP first and rendered only when a CSS selector (``browser_when_missing``) matches
nothing in what HTTP got.

    request ──▶ BrowserRouting.fetch ──▶ no browser ──────────────▶ inner fetcher (HTTP, cache)
                                     ├─▶ browser ─────────────────▶ BrowserPool.render
                                     └─▶ auto ─▶ pattern known? ──▶ render, or HTTP alone
                                                 else HTTP ─▶ selector there? ─▶ keep it
                                                                └─ missing ─▶ render, learn

What adaptive mode learns is kept per URL pattern (``url_pattern``: the host, the path
with digit runs and long ids generalised, the query's keys): once a page of a pattern
needed rendering (HTTP lacked the selector, the rendered DOM has it), later pages of
that pattern go straight to the browser; once rendering did not help (the selector is
missing either way), they are fetched with HTTP alone. It is kept in memory, per crawl
process.

Every page the browser rendered counts as ``rendered``, every adaptive page HTTP alone
answered as ``http``: the counts travel with the worker's outcome (``count``) and
show in the run summary.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..config import Settings
from ..exceptions import ConfigError, FetchError, SpiderError
from ..http import Request, host_key
from ..response import Response
from ..spider import Spider
from .base import Fetcher
from .browser import BrowserConfig, BrowserOptions, BrowserPool, browser_problem

__all__ = ["BrowserRouting", "SharedBrowser", "bind_counts", "browser_fetchers",
           "check_browser_use", "count", "url_pattern"]

log = logging.getLogger(__name__)

FetcherFactory = Callable[[int], Fetcher]

_local = threading.local()  # .counts: the dict the worker thread hands over with its outcome
_DIGITS = re.compile(r"\d+")
_ID = re.compile(r"^(?=.*\d)[0-9a-fA-F-]{16,}$|^[A-Za-z0-9_-]{22,}$")


def bind_counts(counts: dict[str, int]) -> None:
    """Counts made by fetchers in this thread go into ``counts`` (the worker's counters)."""
    _local.counts = counts


def count(name: str) -> None:
    """One more page of ``name`` ("rendered" or "http") in this thread's counts, under the
    key ``@name`` (no custom counter of a spider starts with "@")."""
    counts: dict[str, int] | None = getattr(_local, "counts", None)
    if counts is not None:
        key = "@" + name
        counts[key] = counts.get(key, 0) + 1


def url_pattern(url: str) -> str:
    """``url`` with what varies between pages of one kind generalised: digit runs are
    ``{n}``, segments that look like ids (long hex, UUIDs, slugs of 22+ characters with
    no separators) ``{id}``; the query is its sorted keys."""
    parts = urlsplit(url)
    segments = []
    for seg in parts.path.split("/"):
        if _ID.match(seg):
            segments.append("{id}")
        else:
            segments.append(_DIGITS.sub("{n}", seg))
    keys = sorted({k for k, _ in parse_qsl(parts.query, keep_blank_values=True)})
    query = ("?" + "&".join(keys)) if keys else ""
    return host_key(url) + "/".join(segments) + query


class RenderMemory:
    """Per URL pattern: True, render it at once; False, HTTP alone does (rendering did not
    help). Shared by the worker threads of one process."""

    def __init__(self) -> None:
        self._known: dict[str, bool] = {}
        self._lock = threading.Lock()

    def get(self, pattern: str) -> bool | None:
        return self._known.get(pattern)

    def learn(self, pattern: str, render: bool) -> None:
        with self._lock:
            if pattern not in self._known:
                self._known[pattern] = render
                log.info("adaptive rendering: pages like %s %s", pattern,
                         "need the browser" if render else "are fetched with HTTP alone "
                         "(rendering does not add the selector)")


class SharedBrowser:
    """The browser pool of this process, made at the first page rendered: a process
    forked after the factory was made gets its own (never its parent's), and the last
    worker fetcher to close closes it."""

    def __init__(self, config: BrowserConfig, jar: Any,
                 actions: Callable[[str], Callable[..., Any] | None]) -> None:
        self.config = config
        self.jar = jar
        self.actions = actions
        self._pool: BrowserPool | None = None
        self._pid = os.getpid()
        self._users = 0
        self._lock = threading.Lock()

    def pool(self) -> BrowserPool:
        with self._lock:
            if self._pid != os.getpid():  # a forked child: its parent's pool is not ours
                self._pid, self._pool = os.getpid(), None
            if self._pool is None:
                self._pool = BrowserPool(self.config, self.jar, self.actions)
            return self._pool

    def acquire(self) -> None:
        with self._lock:
            self._users += 1

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            pool = self._pool if self._users <= 0 and self._pid == os.getpid() else None
            if pool is not None:
                self._pool = None
        if pool is not None:
            pool.close()


class BrowserRouting:
    """A worker's fetcher: each request to the browser, to ``inner``, or to both
    (adaptive). Implements ``fetch.base.Fetcher``."""

    def __init__(self, inner: Fetcher, browser: SharedBrowser, *, default: Any = None,
                 when_missing: str | None = None, memory: RenderMemory | None = None) -> None:
        self.inner = inner
        self.browser = browser
        self.default = default
        self.when_missing = when_missing
        self.memory = memory or RenderMemory()
        self.offline = bool(getattr(inner, "offline", False))
        browser.acquire()

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.browser.release()

    def fetch(self, request: Request) -> Response:
        meta = request.meta
        value = meta["browser"] if meta and "browser" in meta else self.default
        if value is None or value is False or (value is self.default and _is_robots(request)):
            return self.inner.fetch(request)
        try:
            options = BrowserOptions.parse(value, self.when_missing)
        except ValueError as e:
            raise FetchError(f"{request.url}: {e}", request=request, kind="browser-options") from None
        if options is None:
            return self.inner.fetch(request)
        if options.when_missing is None:
            return self._render(request, options)
        return self._adaptive(request, options, options.when_missing)

    def _render(self, request: Request, options: BrowserOptions) -> Response:
        try:
            response = self.browser.pool().render(request, options)
        except ConfigError as e:  # checked at start; here only if Chromium vanished since
            raise FetchError(f"{request.url}: {e}", request=request,
                             kind="browser-unavailable") from None
        count("rendered")
        return response

    def _adaptive(self, request: Request, options: BrowserOptions, selector: str) -> Response:
        pattern = url_pattern(request.url)
        known = self.memory.get(pattern)
        if known:
            return self._render(request, options)
        response = self.inner.fetch(request)
        if known is False or not (200 <= response.status < 300) or not response.is_markup \
                or _matches(response, selector):
            count("http")
            return response
        rendered = self._render(request, options)
        if 200 <= rendered.status < 300:
            self.memory.learn(pattern, _matches(rendered, selector))
        return rendered


def _matches(response: Response, selector: str) -> bool:
    try:
        return bool(response.css(selector))
    except Exception:  # a selector that cannot be applied (checked at start) or no tree
        return False


def _is_robots(request: Request) -> bool:
    return not request.meta and urlsplit(request.url).path == "/robots.txt"


def spider_actions(spider: Spider | None) -> Callable[[str], Callable[..., Any] | None]:
    """Resolves ``actions`` names: only ``async def`` functions of the spider's class (or
    its bases), not instance attributes (a name read back from a frontier may have been
    written by anyone who can write to it)."""
    def resolve(name: str) -> Callable[..., Any] | None:
        if spider is None or not name or name.startswith("__"):
            return None
        for cls in type(spider).__mro__:
            found = vars(cls).get(name)
            if found is not None:
                return getattr(spider, name) if callable(found) else None
        return None
    return resolve


def browser_fetchers(factory: FetcherFactory, settings: Settings, spider: Spider | str,
                     jar: Any) -> FetcherFactory:
    """``factory``'s fetchers behind a BrowserRouting each, sharing one lazily started
    browser pool (per process) and one adaptive memory."""
    s = settings.fetch
    instance = spider if isinstance(spider, Spider) else None
    name = spider.name if isinstance(spider, Spider) else spider
    config = BrowserConfig.from_settings(settings.browser, user_agent=s.user_agent,
                                         headers=s.headers, max_response_size=s.max_response_size,
                                         spider=name, verify=bool(s.tls_verify),
                                         proxy=s.proxy.get("http") or s.proxy.get("https"))
    shared = SharedBrowser(config, jar, spider_actions(instance))
    memory = RenderMemory()
    default = getattr(instance, "browser", None)
    when_missing = getattr(instance, "browser_when_missing", None)
    return lambda index: BrowserRouting(factory(index), shared, default=default,
                                        when_missing=when_missing, memory=memory)


# -- checked before the crawl ----------------------------------------------------------
def check_browser_use(spider: Spider, starts: Iterable[Request], executable: str) -> None:
    """Raise before anything is fetched when the spider or a start request asks for a
    browser in a way that cannot work: a malformed option or an unknown actions method
    (SpiderError), or no Playwright / no Chromium here (ConfigError, one line naming the
    extra and the apt package)."""
    when_missing = getattr(spider, "browser_when_missing", None)
    if when_missing is not None and (not isinstance(when_missing, str) or not when_missing):
        raise SpiderError(f"spider {spider.name}: browser_when_missing must be a CSS selector")
    declared: list[tuple[str, Any]] = [("browser", getattr(spider, "browser", None))]
    declared += [(f"rules[{i}] browser", getattr(rule, "browser", None))
                 for i, rule in enumerate(getattr(spider, "rules", None) or ())]
    declared += [(f"start request {r.url} meta browser", r.meta.get("browser"))
                 for r in starts if r.meta and "browser" in r.meta]
    used = False
    resolve = spider_actions(spider)
    for where, value in declared:
        try:
            options = BrowserOptions.parse(value, when_missing)
        except ValueError as e:
            raise SpiderError(f"spider {spider.name}: {where}: {e}") from None
        if options is None:
            continue
        used = True
        for name in options.actions:
            _check_action(spider, where, name, resolve(name))
        if options.when_missing:
            _check_selector(spider, options.when_missing)
    if used:
        problem = browser_problem(executable)
        if problem is not None:
            raise ConfigError(problem)


def _check_action(spider: Spider, where: str, name: str, fn: Any) -> None:
    import inspect

    if fn is None or not inspect.iscoroutinefunction(fn):
        raise SpiderError(f"spider {spider.name}: {where}: actions {name!r} must be an "
                          f"async def method of {type(spider).__name__} taking the page")


def _check_selector(spider: Spider, selector: str) -> None:
    from parsel import Selector

    try:
        Selector(text="<html></html>").css(selector)
    except Exception as e:
        raise SpiderError(f"spider {spider.name}: browser_when_missing {selector!r} is not a "
                          f"CSS selector ({e})") from None
