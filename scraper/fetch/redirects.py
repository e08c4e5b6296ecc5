"""Redirects: which statuses are redirects, the URL a ``Location`` header names, and the
request that follows one, with what it may carry to its new origin.

The framework follows redirects itself (``allow_redirects=False``), through the
coordinator, so every hop is de-duplicated, checked against robots.txt and
``allowed_domains``, and paced by its own host's politeness. requests' own redirect
handling never runs (the fetcher's session does not even read ``Location``), so what
requests would do on a redirect is done here, once, in ``redirect_request``:

- the target: ``location_url`` resolves the header as browsers do (WHATWG URL
  rules for http(s)) and percent-encodes it (w3lib's ``safe_url_string``); without a
  fragment of its own it inherits the request's (RFC 9110 10.2.2);
- credentials: ``Authorization``, ``Proxy-Authorization`` and ``meta["http_auth"]``
  go only to the origin (scheme, host, port) they were given for; the ``Cookie``
  header and per-request ``cookies`` only to the same host, and never from https
  down to http (the cookie jar scopes its own cookies, per hop); ``meta["proxy"]``
  stays, as in Scrapy: its credentials are for the proxy, not for any origin;
- the method: a 301/302 POST and a 303 other than GET/HEAD become a GET without
  body or body headers; 307/308 keep method and body.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from w3lib.url import safe_url_string

from ..exceptions import FetchError
from ..http import Request, host_key
from ..response import Response

__all__ = ["REDIRECT_STATUSES", "is_redirect", "location_url", "redirect_request"]

REDIRECT_STATUSES = frozenset((301, 302, 303, 307, 308))

# Sent only to the origin they were given for: the Fetch standard's "CORS non-wildcard
# request-header name" (Authorization), and what requests' rebuild_proxies strips on
# every redirect (Proxy-Authorization: without a proxy, or inside an https tunnel, it
# reaches the origin server itself).
_ORIGIN_HEADERS = frozenset(("authorization", "proxy-authorization"))
# Removed when a redirect turns the request into a GET without body: the Fetch
# standard's request-body-header names, as Scrapy's _redirect_request_using_get, and
# Content-Length, which described the body that is gone.
_BODY_HEADERS = frozenset(("content-type", "content-length", "content-encoding",
                           "content-language", "content-location"))

# WHATWG URL parsing: C0 controls and space are stripped from both ends, ASCII tab and
# newline removed everywhere.
_OUTER_JUNK = "".join(map(chr, range(0x21)))
_TAB_NEWLINE = str.maketrans("", "", "\t\n\r")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_SPECIAL = ("http", "https")
_QUERY_OR_FRAGMENT = re.compile(r"[?#]")


def is_redirect(status: int, headers: Any) -> bool:
    """True for a 3xx that names where to go."""
    return status in REDIRECT_STATUSES and "Location" in headers


def location_url(base: str, value: str) -> str:
    """The absolute URL that a ``Location`` header ``value`` names, relative to ``base``
    (the URL that answered), percent-encoded for the wire; ValueError when it cannot be
    one (a port out of range, a bad IPv6 address).

    ``value`` is a header as http.client gives it: its bytes decoded as latin-1, so
    ``value.encode("latin-1")`` is what the server sent. Those bytes are read as UTF-8
    when they are UTF-8 (what servers send in practice), else each byte of 0x80 and
    over is percent-encoded as it is, so the server gets its own bytes back: Scrapy's
    RedirectMiddleware does the same (it hands the header bytes to w3lib's
    ``safe_url_string``, which decodes UTF-8 and percent-encodes what is not).
    """
    try:
        text = _decoded(value.encode("latin-1"))
    except UnicodeEncodeError:
        text = value  # not from the wire (characters over U+00FF): already text
    url = _resolve(base, text.strip(_OUTER_JUNK).translate(_TAB_NEWLINE))
    url = safe_url_string(url)
    return _normal_path(url)


def _decoded(raw: bytes) -> str:
    """UTF-8 bytes as text; other bytes with every byte of 0x80 and over percent-encoded
    (the same wire bytes as w3lib's "percentencode": valid UTF-8 sequences would be
    encoded back to the very bytes they came from)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(chr(b) if b < 0x80 else f"%{b:02X}" for b in raw)


def _resolve(base: str, text: str) -> str:
    """``text`` joined to ``base`` by the WHATWG URL rules for the special schemes
    http(s), where urljoin (RFC 3986) differs: a backslash before the query is a slash
    (``\\\\host\\x`` is ``//host/x``), any number of slashes may introduce the host
    (``///host/x`` is ``http://host/x``, ``https:host`` is ``https://host``), and
    ``http:path`` against an http base is a relative path."""
    query = _QUERY_OR_FRAGMENT.search(text)
    cut = query.start() if query else len(text)
    text = text[:cut].replace("\\", "/") + text[cut:]
    base_scheme = urlsplit(base).scheme
    scheme = _SCHEME.match(text)
    if scheme is not None:
        name, rest = scheme.group()[:-1].lower(), text[scheme.end():]
        if name not in _SPECIAL:
            return text  # not http(s): the caller refuses it
        if name != base_scheme or rest.startswith("//"):
            return f"{name}://{rest.lstrip('/')}"
        text = rest  # "http:foo" against an http base: a relative reference
    if text.startswith("//"):
        return f"{base_scheme}://{text.lstrip('/')}"
    return urljoin(base, text)


def _normal_path(url: str) -> str:
    """``url`` with ``.`` and ``..`` path segments resolved, as WHATWG does for absolute
    URLs too (urljoin resolves them only in relative references), and an empty path
    written ``/``."""
    parts = urlsplit(url)
    if parts.scheme not in _SPECIAL:
        return url
    if not parts.path:
        return urlunsplit(parts._replace(path="/"))
    if "/." not in parts.path:
        return url
    path = urlsplit(urljoin(f"{parts.scheme}://host/", parts.path)).path
    return urlunsplit(parts._replace(path=path))


def redirect_request(response: Response, max_redirects: int) -> Request:
    """The request that follows a 3xx response; FetchError for a loop, too many hops,
    or a target that is not a well-formed http(s) URL. The chain so far travels in
    ``meta["redirect_chain"]``."""
    request = response.request
    chain = list(request.meta.get("redirect_chain") or ())
    chain.append([request.url, response.status])
    if len(chain) > max_redirects:
        raise FetchError(f"more than {max_redirects} redirects from {chain[0][0]}",
                         request=request, response=response, kind="too-many-redirects")
    location = response.headers.get("Location") or ""
    try:
        url = location_url(request.url, location)
        if "#" not in url and "#" in request.url:
            # RFC 9110 10.2.2: a Location without a fragment inherits the request's
            url += request.url[request.url.index("#"):]
        if not url.startswith(("http://", "https://")):
            raise ValueError("not an http(s) URL")
        if any(_defragged(url) == _defragged(hop[0]) for hop in chain):
            raise FetchError(f"redirect loop at {url} from {chain[0][0]}",
                             request=request, response=response, kind="redirect-loop")
        return _next_hop(request, response.status, url, chain)
    except ValueError as e:  # from w3lib or Request: a bad scheme, host or port
        raise FetchError(f"bad redirect from {request.url} to {location!r}: {e}",
                         request=request, response=response, kind="bad-redirect") from e


def _next_hop(request: Request, status: int, url: str, chain: list[Any]) -> Request:
    """``request`` sent on to ``url``: the one place that decides what a hop carries.

    As browsers and Scrapy (``BaseRedirectMiddleware._build_redirect_request``) do.
    ``meta["proxy"]`` stays, credentials included: they go to the proxy, never to
    the origin, and dropping the proxy would send the next hop around it."""
    meta = {**request.meta, "redirect_chain": chain}
    changes: dict[str, Any] = {"url": url, "meta": meta}
    drop: set[str] = set()
    if host_key(url) != host_key(request.url):  # scheme, host and port
        drop |= _ORIGIN_HEADERS
        meta.pop("http_auth", None)
    if not _cookies_may_follow(request.url, url):
        drop.add("cookie")
        changes["cookies"] = None
    to_get = _becomes_get(status, request.method)
    if to_get:
        drop |= _BODY_HEADERS
        changes["method"] = "GET"
    if drop and request.headers:
        changes["headers"] = _without(request.headers, drop)
    new = request.replace(**changes)
    if to_get:
        new.body = None
    return new


def _defragged(url: str) -> str:
    return url.split("#", 1)[0]


def _cookies_may_follow(old: str, new: str) -> bool:
    """Cookies the request carries by hand (not from the jar, which scopes its own) go
    on to the same host only, and not from https down to http: the value cannot tell
    whether they were secure-only (Scrapy drops its Cookie header on both)."""
    a, b = urlsplit(old), urlsplit(new)
    return a.hostname == b.hostname and not (a.scheme == "https" and b.scheme != "https")


def _becomes_get(status: int, method: str) -> bool:
    """The Fetch standard (HTTP-redirect fetch) and Scrapy: a 301/302 POST and
    a 303 of anything but GET/HEAD are followed with a GET; 307/308 never change it."""
    return (status in (301, 302) and method == "POST") or (
        status == 303 and method not in ("GET", "HEAD"))


def _without(headers: Mapping[str, str], names: set[str]) -> dict[str, str] | None:
    kept = {k: v for k, v in headers.items() if k.lower() not in names}
    return kept or None
