"""The Fetcher protocol: how a worker gets a Response for a Request.

This is where other ways of fetching plug in: the HTTP fetcher (``fetcher``), and
later a cache, a recorded cassette or a browser, each chosen per request by the
worker's fetcher factory. A fetcher does one exchange and nothing else: whether to
retry, follow a redirect or hand the answer to a callback is ``policy``'s decision.
"""

from __future__ import annotations

from typing import Protocol

from ..http import Request
from ..response import Response

__all__ = ["Fetcher"]


class Fetcher(Protocol):
    """One request, one exchange: a Response (a 3xx included, with no body), or a
    FetchError subclass naming what went wrong."""

    def fetch(self, request: Request) -> Response: ...

    def close(self) -> None: ...
