"""Running spider code: a request's callback or errback, resolved on the spider by name
(only to a method meant as a callback: ``callback_method``), called, and what it yields
sorted into requests and items. Nothing spider code does escapes: an exception is
logged with its traceback and counted, and what was yielded before it is kept;
``CloseSpider`` becomes the crawl's stop reason.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..exceptions import CloseSpider, SpiderError
from ..failure import Failure
from ..http import Request, url_problem
from ..items import is_item
from ..response import Response
from ..spider import Spider
from .stats import Stats
from .tasks import Produced

__all__ = ["SpiderCode", "callback_method", "is_item"]

log = logging.getLogger(__name__)


# What Spider itself defines is never a callback, except the default one: the lifecycle
# hooks (start_requests, opened, closed) and helpers (sitemaps_for, logger, stats...)
_SPIDER_OWN = frozenset(vars(Spider)) - {"parse"}


def callback_method(spider: Spider, name: str) -> Callable[..., Any] | None:
    """The bound method a callback or errback ``name`` stands for, or None.

    A name read back from a frontier may have been written by anyone who can write to
    a shared store, so only methods meant as callbacks resolve: a function defined with
    ``def`` in the class body of the spider's class or of a base class (``parse``
    included), whose name is not a dunder (``__x``) and not anything the base Spider
    defines (``start_requests``, ``opened``, ``closed``, ``sitemaps_for``...) even when
    overridden. Not an attribute of the instance, a property, a staticmethod or
    classmethod, a callable object, nor anything ``object`` has. Private names
    (``_parse``) are callbacks: CrawlSpider and SitemapSpider use them.
    """
    if (not name or name.startswith("__") or name in _SPIDER_OWN
            or name in getattr(spider, "__dict__", ())):
        return None
    for cls in type(spider).__mro__:
        found = vars(cls).get(name)
        if found is not None:
            return getattr(spider, name) if inspect.isfunction(found) else None
    return None


class SpiderCode:
    """Calls one spider's callbacks and errbacks."""

    def __init__(self, spider: Spider) -> None:
        self.spider = spider
        self._names: dict[str, bool] = {}  # method name -> the spider has it
        self._reported: set[str] = set()

    def unknown_name(self, request: Request) -> str | None:
        """The callback or errback name of ``request`` that is not one of the spider's
        callback methods (see ``callback_method``), or None. A bound method of the
        spider is checked by its name, the name it is stored by; other callables and
        None are fine here."""
        for ref in (request.callback, request.errback):
            if type(ref) is not str:
                if getattr(ref, "__self__", None) is not self.spider:
                    continue
                ref = getattr(ref, "__name__", "")
            if self._known(ref) is None:
                return ref
        return None

    def _known(self, name: str) -> Callable[..., Any] | None:
        if name not in self._names:
            self._names[name] = callback_method(self.spider, name) is not None
        return getattr(self.spider, name) if self._names[name] else None

    def method(self, ref: Callable[..., Any] | str | None, default: str | None) -> Callable[..., Any] | None:
        """The spider method ``ref`` names (or is), ``default`` when None; None for a
        name that is not a callback method."""
        if ref is None:
            ref = default
        if ref is None:
            return None
        if isinstance(ref, str):
            return self._known(ref)
        return ref

    def start_requests(self, requests: Iterable[Any], stats: Stats) -> list[Request]:
        """The spider's start requests, at depth 0; a non-Request or an exception is
        counted (``bad-output``, ``start-requests``) and the requests before it are kept;
        a malformed URL (``start_urls`` are not checked one by one) is skipped and
        counted (``bad-url``)."""
        starts: list[Request] = []
        try:
            for r in requests:
                if isinstance(r, Request):
                    if _malformed_start(r, stats):
                        continue
                    self._check_start(r)
                    r.depth = 0
                    starts.append(r)
                else:
                    stats.error("bad-output")
                    log.error("start_requests yielded %s; expected a Request", type(r).__name__)
        except SpiderError:
            raise
        except Exception:
            stats.error("start-requests")
            log.exception("start_requests raised; continuing with the %d requests it gave",
                          len(starts))
        return starts

    def _check_start(self, request: Request) -> None:
        name = self.unknown_name(request)
        if name is not None:
            raise SpiderError(f"spider {self.spider.name}: start request {request.url} names "
                              f"{name!r}, which is not a callback method of "
                              f"{type(self.spider).__name__}")

    def callback(self, response: Response, produced: Produced) -> None:
        request = response.request
        fn = self.method(request.callback, self.spider.default_callback)
        if fn is None:
            produced.callback_errors += 1
            self._no_method("callback", request.callback, request.url)
            return
        self._call(fn, (response,), request.cb_kwargs, produced, request.url)
        if response.bad_urls:  # links the page has that links()/follow_all() skipped
            produced.errors["bad-url"] = produced.errors.get("bad-url", 0) + len(response.bad_urls)
        if response.truncated:
            produced.errors["truncated-html"] = 1
            log.warning("%s nests deeper than %d levels: what is below was not parsed",
                        request.url, 2048)

    def errback(self, failure: Failure, produced: Produced) -> None:
        request = failure.request
        if request.errback is None:
            return
        fn = self.method(request.errback, None)
        if fn is None:
            produced.callback_errors += 1
            self._no_method("errback", request.errback, request.url)
            return
        self._call(fn, (failure,), None, produced, request.url)

    def _no_method(self, kind: str, name: Any, url: str) -> None:
        """Logged once per name: a stored request naming no callback method (a spider
        changed since, or an entry someone else wrote to a shared store) may be one of
        thousands."""
        key = f"{kind} {name}"
        if key in self._reported:
            return
        self._reported.add(key)
        log.error("%s has no %s method %r (first for %s; requests naming it are counted as "
                  "callback errors, and their responses not handled)", type(self.spider).__name__,
                  kind, name, url)

    def _call(self, fn: Callable[..., Any], args: tuple[Any, ...],
              kwargs: Mapping[str, Any] | None, produced: Produced, url: str) -> None:
        """Run ``fn``, keeping whatever it yielded before any error."""
        try:
            result = fn(*args, **kwargs) if kwargs else fn(*args)
            if result is None:
                return
            if isinstance(result, Request) or is_item(result):
                result = (result,)
            for value in result:
                self._sort(value, produced, fn)
        except CloseSpider as e:
            produced.close_reason = e.reason or "closespider"
        except Exception:
            produced.callback_errors += 1
            log.exception("%s raised on %s", _name(fn), url)

    def _sort(self, value: Any, produced: Produced, fn: Callable[..., Any]) -> None:
        if type(value) is Request or isinstance(value, Request):
            name = self.unknown_name(value)
            if name is None:
                produced.requests.append(value)
                return
            produced.errors["bad-callback"] = produced.errors.get("bad-callback", 0) + 1
            if name not in self._reported:  # once per name, not once per request
                self._reported.add(name)
                log.error("%s yielded a request for %s naming %r, which is not a callback "
                          "method of %s; such requests are dropped", _name(fn), value.url, name,
                          type(self.spider).__name__)
        else:
            _sort_other(value, produced, fn)


def _malformed_start(request: Request, stats: Stats) -> bool:
    """True, counted as bad-url and logged, for a start request whose URL
    cannot be fetched (its fingerprint, computed before admission, would raise)."""
    url = request.url
    problem = url_problem(url) if type(url) is str else f"not a str but {type(url).__name__}"
    if problem is None:
        return False
    stats.error("bad-url")
    log.warning("skipped the malformed start URL %r: %s", url, problem)
    return True


def _sort_other(value: Any, produced: Produced, fn: Callable[..., Any]) -> None:
    if is_item(value):
        produced.items.append(value)
    elif value is not None:
        produced.bad_outputs += 1
        log.error("%s yielded %s; expected a Request or an item (a dict or Mapping, a dataclass, "
                  "attrs or pydantic object)",
                  _name(fn), type(value).__name__)


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)
