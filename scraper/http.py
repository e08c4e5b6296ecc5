"""Request: what to fetch and what to call with the answer; its fingerprint, its host
key, its one serialised form (``encode_request``/``decode_request``, what every
persistent or shared frontier stores), and domain matching.

A Request is built for every link a spider follows, so its constructor is kept
to plain attribute stores on the common path (a GET with no body); everything
costly (canonical URL, fingerprint, host key) is computed lazily, once, and
only for requests that survive the cheap duplicate check in the engine.

The URL is checked at construction (scheme, host, port: ``url_problem``), so a
spider author gets the ValueError at the line that made the request, and a
malformed URL never reaches the coordinator, whose canonicalisation would choke
on it. The common shape (``http://host/path``, ASCII) is recognised by one regex
match; only other URLs are parsed.
"""

from __future__ import annotations

import hashlib
import json as jsonlib
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from w3lib.url import canonicalize_url

__all__ = ["Request", "canonical_url", "decode_request", "encode_request", "fingerprint",
           "host_in_domains", "host_key", "url_problem"]

_SCHEMES = ("http://", "https://")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# The common shape of a URL, accepted without parsing: lower-case http(s), a host name
# or IPv4 address that does not start with a dot, an optional port 0-65535, then the
# end or a path, query or fragment. Anything else is parsed by ``url_problem``.
_PLAIN_URL = re.compile(
    r"https?://[A-Za-z0-9_~-][A-Za-z0-9._~-]*"
    r"(?::(?:[1-5]?\d{1,4}|6[0-4]\d{3}|65[0-4]\d\d|655[0-2]\d|6553[0-5]))?(?=[/?#]|\Z)")
# WHATWG's forbidden host and domain code points, and C1 controls, which IDNA refuses
# (an IPv6 address in brackets is checked by urlsplit instead): a host with one of
# these cannot be looked up
_FORBIDDEN_IN_HOST = re.compile(r"[\x00-\x20#%/:<>?@\[\\\]^|\x7f-\x9f]")
# stands in for a URL that ``Request.unchecked`` keeps as given
_PLACEHOLDER_URL = "http://unchecked.invalid/"


def _checked_cookies(cookies: Mapping[str, Any]) -> dict[str, str]:
    """Per-request cookies as strings: numbers are converted; anything else is a
    TypeError here, at the line that made the Request, not inside requests later."""
    if not isinstance(cookies, Mapping):
        raise TypeError(f"Request cookies must be a mapping of names to values, got "
                        f"{type(cookies).__name__}")
    out: dict[str, str] = {}
    for name, value in cookies.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"Request cookie names must be non-empty strings, got {name!r}")
        if isinstance(value, str):
            out[name] = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = str(value)
        else:
            raise TypeError(f"Request cookie {name!r} must be a string or a number, got "
                            f"{type(value).__name__} {value!r}")
    return out


class Request:
    """One HTTP request and the spider method (by name) that handles its response."""

    __slots__ = (
        "url", "callback", "method", "headers", "body", "cookies", "meta",
        "cb_kwargs", "priority", "dont_filter", "errback", "depth", "attempt",
        "_fp", "_host",
    )

    def __init__(
        self,
        url: str,
        callback: Callable[..., Any] | str | None = None,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        data: bytes | str | Mapping[str, Any] | None = None,
        json: Any = None,
        cookies: Mapping[str, str | int | float] | None = None,
        meta: dict[str, Any] | None = None,
        cb_kwargs: dict[str, Any] | None = None,
        priority: int = 0,
        dont_filter: bool = False,
        errback: Callable[..., Any] | str | None = None,
    ) -> None:
        if type(url) is not str or _PLAIN_URL.match(url) is None or not url.isascii():
            url = _check_url(url)
        self.url = url
        self.callback = callback
        self.method = method if method == "GET" else method.upper()
        self.headers = headers
        self.body: bytes | None = None
        self.cookies: Mapping[str, str] | None = _checked_cookies(cookies) if cookies else None
        self.meta = meta if meta is not None else {}
        self.cb_kwargs = cb_kwargs
        self.priority = priority
        self.dont_filter = dont_filter
        self.errback = errback
        self.depth = 0
        self.attempt = 0
        self._fp: bytes | None = None
        self._host: str | None = None
        if params or data is not None or json is not None:
            self._encode(params, data, json)

    def _encode(self, params: Mapping[str, Any] | None, data: Any, json: Any) -> None:
        if params:
            parts = urlsplit(self.url)
            query = urlencode(list(params.items()), doseq=True)
            query = f"{parts.query}&{query}" if parts.query else query
            self.url = urlunsplit(parts._replace(query=query))
        content_type = None
        if json is not None:
            self.body = jsonlib.dumps(json, separators=(",", ":")).encode()
            content_type = "application/json"
        elif isinstance(data, Mapping):
            self.body = urlencode(list(data.items()), doseq=True).encode()
            content_type = "application/x-www-form-urlencoded"
        elif isinstance(data, str):
            self.body = data.encode()
        elif data is not None:
            self.body = bytes(data)
        if content_type:
            headers = dict(self.headers or {})
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = content_type
            self.headers = headers

    @property
    def fingerprint(self) -> bytes:
        """16 bytes identifying method, canonical URL and body (for de-duplication)."""
        fp = self._fp
        if fp is None:
            fp = self._fp = fingerprint(self.method, self.url, self.body)
        return fp

    @property
    def host(self) -> str:
        """The politeness key: ``scheme://host:port`` (port always explicit)."""
        h = self._host
        if h is None:
            h = self._host = host_key(self.url)
        return h

    def replace(self, **changes: Any) -> Request:
        """A copy with some constructor arguments changed (``url``, ``priority``...)."""
        args: dict[str, Any] = {
            "url": self.url, "callback": self.callback, "method": self.method,
            "headers": self.headers, "cookies": self.cookies, "meta": dict(self.meta),
            "cb_kwargs": self.cb_kwargs, "priority": self.priority,
            "dont_filter": self.dont_filter, "errback": self.errback,
        }
        body_given = any(k in changes for k in ("data", "json"))
        args.update(changes)
        new = Request(**args)
        if not body_given:
            new.body = self.body
        new.depth = self.depth
        return new

    @classmethod
    def unchecked(cls, url: str, callback: Callable[..., Any] | str | None = None,
                  **kwargs: Any) -> Request:
        """A Request that keeps ``url`` as given even when it is malformed: for URLs
        the framework reads from lists (``start_urls``, ``sitemap_urls``, sitemaps, a
        stored frontier), where one bad entry must be skipped and counted as
        ``bad-url`` when the crawl admits it, not end the list with a ValueError.
        (``params`` would be lost on a malformed URL: lists have none.)"""
        try:
            return cls(url, callback, **kwargs)
        except ValueError:
            if not isinstance(url, str):
                raise
            request = cls(_PLACEHOLDER_URL, callback, **kwargs)
            request.url = url
            return request

    def __repr__(self) -> str:
        return f"<{self.method} {self.url}>"

    # -- persistence ---------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (callbacks by name); raises ValueError if it cannot be."""
        d: dict[str, Any] = {"url": self.url}
        if self.method != "GET":
            d["method"] = self.method
        for key in ("headers", "cookies", "cb_kwargs"):
            value = getattr(self, key)
            if value:
                d[key] = dict(value)
        if self.body is not None:
            d["body"] = self.body.decode("latin-1")
        for key in ("callback", "errback"):
            value = getattr(self, key)
            if value is not None:
                d[key] = value if isinstance(value, str) else value.__name__
        # falsy values are the defaults: not stored
        d.update((k, v) for k, v in (("meta", self.meta), ("priority", self.priority),
                                     ("depth", self.depth), ("attempt", self.attempt),
                                     ("dont_filter", self.dont_filter)) if v)
        try:
            jsonlib.dumps(d)
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"request {self.url}: meta and cb_kwargs must be JSON-serialisable "
                f"for a persistent or distributed frontier ({e})") from None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Request:
        """The inverse of ``to_dict``; callbacks come back as method names. The URL is
        not checked again: a stored request was admitted once, and one stored by an
        older version that no longer passes must fail as a fetch, not stop the crawl."""
        r = cls.unchecked(d["url"], d.get("callback"), method=d.get("method", "GET"),
                          headers=d.get("headers"), cookies=d.get("cookies"), meta=d.get("meta"),
                          cb_kwargs=d.get("cb_kwargs"), priority=d.get("priority", 0),
                          dont_filter=d.get("dont_filter", False), errback=d.get("errback"))
        if "body" in d:
            r.body = d["body"].encode("latin-1")
        r.depth = d.get("depth", 0)
        r.attempt = d.get("attempt", 0)
        return r


def _check_url(url: object) -> str:
    """``url`` with outer spaces stripped and the scheme lower-cased; TypeError or
    ValueError naming it when it is not an absolute http(s) URL with a valid host and port."""
    if not isinstance(url, str):
        raise TypeError(f"Request url must be a str, not {type(url).__name__}: {url!r}")
    stripped = url.strip()
    if not stripped[:8].lower().startswith(_SCHEMES):
        raise ValueError(f"Request url must be an absolute http(s) URL: {url!r}")
    scheme, sep, rest = stripped.partition("://")
    checked = scheme.lower() + sep + rest
    problem = url_problem(checked)
    if problem is not None:
        raise ValueError(f"Request url {url!r} is malformed: {problem}")
    return checked


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be requested, or None when it is an absolute http(s) URL with a
    host, a valid port (0-65535) and text that encodes to UTF-8. Cheap for the common
    shape (one regex match); other URLs are parsed."""
    if _PLAIN_URL.match(url) is not None and url.isascii():
        return None
    if not url.startswith(_SCHEMES):
        return "not an absolute http(s) URL"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not 0-65535
    except ValueError as e:  # "Invalid IPv6 URL", "Port could not be cast to integer ..."
        return str(e)
    problem = _host_problem(parts.hostname, parts.netloc)
    if problem is not None:
        return problem
    if not url.isascii():
        try:
            url.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: no byte sequence to send
            return "it has text that cannot be encoded (a lone surrogate)"
    return None


def _host_problem(host: str | None, netloc: str) -> str | None:
    if not host:
        return "no host"
    if "[" in netloc:  # urlsplit checked that an IPv6 address is one; IPvFuture is not
        return None if ":" in host else f"[{host}] is not an IPv6 address"
    if _FORBIDDEN_IN_HOST.search(host):
        return f"the host {host!r} has a character no host name may have"
    if host[0] in ".*":
        return f"the host {host!r} has an empty first label"
    return None


def canonical_url(url: str) -> str:
    """The URL with its fragment removed, query sorted, escapes normalised (w3lib)."""
    return canonicalize_url(url, keep_fragments=False)


def fingerprint(method: str, url: str, body: bytes | None = None) -> bytes:
    """16 bytes of SHA-1 over method, canonical URL and body."""
    h = hashlib.sha1(method.encode())
    h.update(b" ")
    h.update(canonical_url(url).encode())
    if body:
        h.update(b" ")
        h.update(body)
    return h.digest()[:16]


def host_key(url: str) -> str:
    """``scheme://host:port`` of a URL, lower-cased, with the default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme, 0)
    except ValueError:
        port = 0
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


def encode_request(request: Request) -> str:
    """The request as the JSON text a frontier stores; ValueError if it cannot be."""
    return jsonlib.dumps(request.to_dict(), separators=(",", ":"))


def decode_request(data: str | Request) -> Request:
    """The inverse of ``encode_request`` (an in-memory frontier stores Requests as they are)."""
    if isinstance(data, Request):
        return data
    return Request.from_dict(jsonlib.loads(data))


def host_in_domains(host: str, domains: tuple[str, ...]) -> bool:
    """True when ``host`` (a bare host name, lower case) is one of ``domains`` or a
    subdomain of one."""
    return any(host == d or host.endswith("." + d) for d in domains)
