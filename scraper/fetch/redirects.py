"""Redirects: which statuses are redirects, and the request that follows one.

The framework follows redirects itself (``allow_redirects=False``), through the
coordinator, so every hop is de-duplicated, checked against robots.txt and
``allowed_domains``, and paced by its own host's politeness.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

from ..exceptions import FetchError
from ..http import Request
from ..response import Response

__all__ = ["REDIRECT_STATUSES", "is_redirect", "redirect_request"]

REDIRECT_STATUSES = frozenset((301, 302, 303, 307, 308))


def is_redirect(status: int, headers: Any) -> bool:
    """True for a 3xx that names where to go."""
    return status in REDIRECT_STATUSES and "Location" in headers


def redirect_request(response: Response, max_redirects: int) -> Request:
    """The request that follows a 3xx response; FetchError for a loop, too many hops,
    or a non-http target. The chain so far travels in ``meta["redirect_chain"]``."""
    request = response.request
    chain = list(request.meta.get("redirect_chain") or ())
    chain.append([request.url, response.status])
    if len(chain) > max_redirects:
        raise FetchError(f"more than {max_redirects} redirects from {chain[0][0]}",
                         request=request, response=response, kind="too-many-redirects")
    url = urljoin(request.url, (response.headers.get("Location") or "").strip()).split("#", 1)[0]
    if not url.startswith(("http://", "https://")):
        raise FetchError(f"redirect to a non-http URL {url!r} from {request.url}",
                         request=request, response=response, kind="bad-redirect")
    if any(url == hop[0] for hop in chain):
        raise FetchError(f"redirect loop at {url} from {chain[0][0]}",
                         request=request, response=response, kind="redirect-loop")
    changes: dict[str, Any] = {"url": url, "meta": {**request.meta, "redirect_chain": chain}}
    post_to_get = response.status == 303 or (response.status in (301, 302) and request.method == "POST")
    if post_to_get and request.method != "HEAD":
        headers = {k: v for k, v in (request.headers or {}).items()
                   if k.lower() not in ("content-type", "content-length")}
        changes.update(method="GET", headers=headers or None)
    new = request.replace(**changes)
    if post_to_get:
        new.body = None
    return new
