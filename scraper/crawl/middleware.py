"""Downloader middlewares: the user's hooks around every exchange, with Scrapy's rules.

A middleware is a class with any of::

    process_request(request, spider)               -> None | Response | Request
    process_response(request, response, spider)   -> Response | Request
    process_exception(request, exception, spider)  -> None | Response | Request

They run in the worker threads, one instance per crawl shared by every worker
(so a middleware that keeps state must lock it). ``process_request`` runs in
the order of the ``middlewares`` setting; ``process_response`` and
``process_exception`` in the reverse order, as in Scrapy:

- ``process_request``: None goes on; a Response skips the fetch (and the
  remaining ``process_request`` hooks) and goes through every
  ``process_response``; a Request is scheduled instead, through the coordinator
  (so de-duplication, politeness, robots.txt and persistence apply to it).
- ``process_response``: the Response goes on (maybe another one); a Request is
  scheduled instead.
- ``process_exception`` (a fetch failed, or ``process_request`` raised): None
  lets the next one look at it and, in the end, the failure take its course
  (retry or errback); a Response is handled as if fetched; a Request is
  scheduled instead.

``IgnoreRequest`` raised by a hook drops the request (error kind ``ignored``, its
errback runs); any other exception is a bug in the middleware: logged with its
traceback and counted as ``middleware``, and the crawl goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from ..exceptions import ConfigError, FetchError, IgnoreRequest
from ..http import Request
from ..loader import build_instance
from ..response import Response
from ..spider import Spider

__all__ = ["MiddlewareChain", "build_middlewares"]

log = logging.getLogger(__name__)

_HOOKS = ("process_request", "process_response", "process_exception")

Fetch = Callable[[Request], Response]


def build_middlewares(specs: Sequence[dict[str, Any]]) -> list[Any]:
    """Instantiate each ``{class: dotted.path, **options}``; ConfigError names the culprit."""
    out = []
    for spec in specs:
        instance = build_instance(spec, "middleware")
        if not any(callable(getattr(instance, h, None)) for h in _HOOKS):
            raise ConfigError(f"middleware {spec['class']!r}: has none of " + ", ".join(_HOOKS))
        out.append(instance)
    return out


class MiddlewareChain:
    """The configured middlewares' hooks, ready to wrap one fetch."""

    def __init__(self, middlewares: Sequence[Any], spider: Spider) -> None:
        self.spider = spider
        self.on_request = [m.process_request for m in middlewares
                           if callable(getattr(m, "process_request", None))]
        self.on_response = [m.process_response for m in reversed(middlewares)
                            if callable(getattr(m, "process_response", None))]
        self.on_exception = [m.process_exception for m in reversed(middlewares)
                             if callable(getattr(m, "process_exception", None))]

    def exchange(self, request: Request, fetch: Fetch) -> Response | Request:
        """The Response for ``request`` (fetched or made by a hook), or the Request a hook
        wants scheduled instead; FetchError when the request failed."""
        # hooks may change request.headers: give the request a dict of its own (a
        # request made by replace() or follow_all() may share its caller's)
        request.headers = dict(request.headers) if request.headers else {}
        try:
            early = self._requests(request)
            if isinstance(early, Request):
                return early
            response = early if early is not None else fetch(request)
        except FetchError as e:
            return self._exception(request, e)
        return self._responses(request, response)

    def _requests(self, request: Request) -> Response | Request | None:
        for hook in self.on_request:
            out = self._call(hook, request, request, self.spider)
            if out is None:
                continue
            return _checked(out, hook, request, "None, a Response or a Request")
        return None

    def _responses(self, request: Request, response: Response) -> Response | Request:
        for hook in self.on_response:
            out = self._call(hook, request, request, response, self.spider)
            out = _checked(out, hook, request, "a Response or a Request")
            if isinstance(out, Request):
                return out
            response = out
        return response

    def _exception(self, request: Request, error: FetchError) -> Response | Request:
        for hook in self.on_exception:
            out = self._call(hook, request, request, error, self.spider)
            if out is None:
                continue
            out = _checked(out, hook, request, "None, a Response or a Request")
            if isinstance(out, Request):
                return out
            return self._responses(request, out)
        raise error

    @staticmethod
    def _call(hook: Callable[..., Any], request: Request, *args: Any) -> Any:
        """``hook(*args)``; what it raises becomes a FetchError the policy understands."""
        try:
            return hook(*args)
        except FetchError:
            raise
        except IgnoreRequest as e:
            raise FetchError(f"{request.url}: ignored by {_name(hook)}"
                             + (f": {e}" if str(e) else ""), request=request, kind="ignored") from e
        except Exception as e:
            log.exception("middleware %s raised on %s", _name(hook), request.url)
            raise FetchError(f"{request.url}: middleware {_name(hook)} raised "
                             f"{type(e).__name__}: {e}", request=request, kind="middleware") from e


def _checked(out: Any, hook: Callable[..., Any], request: Request,
             expected: str) -> Response | Request:
    if isinstance(out, Response | Request):
        return out
    log.error("middleware %s returned %s on %s; expected %s", _name(hook), type(out).__name__,
              request.url, expected)
    raise FetchError(f"{request.url}: middleware {_name(hook)} returned {type(out).__name__}",
                     request=request, kind="middleware")


def _name(hook: Callable[..., Any]) -> str:
    owner = getattr(hook, "__self__", None)
    return f"{type(owner).__name__}.{hook.__name__}" if owner is not None else repr(hook)
