"""Running spider code: a request's callback or errback, resolved on the spider by name,
called, and what it yields sorted into requests and items. Nothing spider code does
escapes: an exception is logged with its traceback and counted, and what was yielded
before it is kept; ``CloseSpider`` becomes the crawl's stop reason.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..exceptions import CloseSpider, SpiderError
from ..failure import Failure
from ..http import Request
from ..response import Response
from ..spider import Spider
from .stats import Stats
from .tasks import Produced

__all__ = ["SpiderCode", "is_item"]

log = logging.getLogger(__name__)


def is_item(value: Any) -> bool:
    """A dict, any Mapping, or a dataclass instance."""
    return isinstance(value, Mapping) or (dataclasses.is_dataclass(value) and not isinstance(value, type))


class SpiderCode:
    """Calls one spider's callbacks and errbacks."""

    def __init__(self, spider: Spider) -> None:
        self.spider = spider
        self._names: dict[str, bool] = {}  # method name -> the spider has it
        self._reported: set[str] = set()

    def unknown_name(self, request: Request) -> str | None:
        """The callback or errback name of ``request`` that the spider has no method
        for, or None (callables and None are always fine)."""
        for ref in (request.callback, request.errback):
            if type(ref) is str:
                known = self._names.get(ref)
                if known is None:
                    known = self._names[ref] = callable(getattr(self.spider, ref, None))
                if not known:
                    return ref
        return None

    def method(self, ref: Callable[..., Any] | str | None, default: str | None) -> Callable[..., Any] | None:
        """The spider method ``ref`` names (or is), ``default`` when None."""
        if ref is None:
            ref = default
        if ref is None:
            return None
        if isinstance(ref, str):
            fn = getattr(self.spider, ref, None)
            return fn if callable(fn) else None
        return ref

    def start_requests(self, requests: Iterable[Any], stats: Stats) -> list[Request]:
        """The spider's start requests, at depth 0; a non-Request or an exception is
        counted (``bad-output``, ``start-requests``) and the requests before it are kept."""
        starts: list[Request] = []
        try:
            for r in requests:
                if isinstance(r, Request):
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
                              f"{name!r}, which {type(self.spider).__name__} has no method for")

    def callback(self, response: Response, produced: Produced) -> None:
        request = response.request
        fn = self.method(request.callback, "parse")
        if fn is None:
            produced.callback_errors += 1
            log.error("%s has no callback %r for %s", type(self.spider).__name__,
                      request.callback, request.url)
            return
        self._call(fn, (response,), request.cb_kwargs, produced, request.url)
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
            log.error("%s has no errback %r for %s", type(self.spider).__name__,
                      request.errback, request.url)
            return
        self._call(fn, (failure,), None, produced, request.url)

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
                log.error("%s yielded a request for %s naming %r, which %s has no method for; "
                          "such requests are dropped", _name(fn), value.url, name,
                          type(self.spider).__name__)
        else:
            _sort_other(value, produced, fn)


def _sort_other(value: Any, produced: Produced, fn: Callable[..., Any]) -> None:
    if is_item(value):
        produced.items.append(value)
    elif value is not None:
        produced.bad_outputs += 1
        log.error("%s yielded %s; expected a Request or an item (dict, dataclass or Mapping)",
                  _name(fn), type(value).__name__)


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)
