"""What becomes of a fetched request: the one place that decides between handing the
response to a callback, retrying, following a redirect and failing.

    fetch ──▶ Response ──▶ after_response ──▶ Deliver | Retry | Redirect | Fail
          └─▶ FetchError ─▶ after_error ───▶ Retry | Fail
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..exceptions import FetchError, HttpError
from ..http import Request
from ..response import Response
from .redirects import is_redirect, redirect_request
from .retry import RetryPolicy

__all__ = ["Decision", "Deliver", "Fail", "FetchPolicy", "Redirect", "Reschedule", "Retry"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Deliver:
    """A final response that a callback handles."""

    response: Response


@dataclass(frozen=True, slots=True)
class Retry:
    """Try again after ``delay`` seconds (the frontier holds it back that long)."""

    delay: float


@dataclass(frozen=True, slots=True)
class Redirect:
    """Follow a redirect: ``request`` is the next hop (the coordinator schedules it)."""

    request: Request


@dataclass(frozen=True, slots=True)
class Reschedule:
    """Schedule ``request`` instead (a middleware asked for it): it goes through the
    coordinator like any new request; the one it replaces is done, not a page."""

    request: Request


@dataclass(frozen=True, slots=True)
class Fail:
    """A final failure: the errback gets it. ``dead``: it failed after its last retry
    (a dead letter, for ``retry-failed``)."""

    error: FetchError
    response: Response | None = None
    dead: bool = False


Decision = Deliver | Retry | Redirect | Reschedule | Fail


class FetchPolicy:
    """Retries, redirects and which statuses reach callbacks, for one spider."""

    def __init__(self, retry: RetryPolicy, *, max_redirects: int = 10,
                 handle_statuses: Iterable[int] = (),
                 offsite: Callable[[str], bool] | None = None) -> None:
        self.retry = retry
        self.max_redirects = max_redirects
        self.handle_statuses = frozenset(handle_statuses)
        self.offsite = offsite

    def handles(self, request: Request, status: int) -> bool:
        """Whether a final ``status`` goes to the callback (2xx, or asked for)."""
        return 200 <= status < 300 or status in self.handle_statuses or status in (
            request.meta.get("handle_statuses") or ())

    def after_error(self, request: Request, error: FetchError) -> Decision:
        delay = self._retry_delay(request, error=error)
        if delay is not None:
            log.debug("retrying %s in %.2fs after %s", request.url, delay, error.kind)
            return Retry(delay)
        return Fail(error, error.response, dead=self.retry.retryable(error=error))

    def after_response(self, request: Request, response: Response) -> Decision:
        status = response.status
        handled = self.handles(request, status)
        if not handled and is_redirect(status, response.headers):
            return self._redirect(response)
        if handled:
            return Deliver(response)
        delay = self._retry_delay(request, response=response)
        if delay is not None:
            log.debug("retrying %s in %.2fs after HTTP %s", request.url, delay, status)
            return Retry(delay)
        return Fail(HttpError(response), response, dead=status in self.retry.statuses)

    def _retry_delay(self, request: Request, *, response: Response | None = None,
                     error: FetchError | None = None) -> float | None:
        """The retry policy's answer, with Scrapy's per-request meta keys:
        ``dont_retry`` (never retried) and ``max_retry_times`` (retries, not tries)."""
        meta = request.meta
        if not meta:
            return self.retry.delay(request.attempt + 1, response=response, error=error)
        if meta.get("dont_retry"):
            return None
        retries = meta.get("max_retry_times")
        attempts = retries + 1 if isinstance(retries, int) and retries >= 0 else None
        return self.retry.delay(request.attempt + 1, response=response, error=error,
                                attempts=attempts)

    def host_backoff(self, request: Request, response: Response) -> float | None:
        """Seconds the whole host should get no request after this answer (429, 503)."""
        if response.status in (429, 503):
            return self.retry.host_backoff(request.attempt + 1, response)
        return None

    def _redirect(self, response: Response) -> Decision:
        """The next hop, or a failure: loop, too many hops, not http, off-site."""
        try:
            nxt = redirect_request(response, self.max_redirects)
            if self.offsite is not None and self.offsite(nxt.url):
                raise FetchError(f"redirect from {response.request.url} to off-site {nxt.url}",
                                 request=response.request, response=response, kind="offsite")
        except FetchError as e:
            return Fail(e, response)
        return Redirect(nxt)
