"""The Fetcher protocol: how a worker gets a Response for a Request.

This is where other ways of fetching plug in: the HTTP fetcher (``fetcher``), the
HTTP cache wrapping it (``cache``), a cassette recording or replaying exchanges
(``cassette``), later a browser; the engine's fetcher factory stacks them per worker. A fetcher does one exchange and nothing else: whether to
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
