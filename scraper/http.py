"""Request: what to fetch and what to call with the answer; its fingerprint, its host
key, its one serialised form (``encode_request``/``decode_request``, what every
persistent or shared frontier stores), and domain matching.

A Request is built for every link a spider follows, so its constructor is kept
to plain attribute stores on the common path (a GET with no body); everything
costly (canonical URL, fingerprint, host key) is computed lazily, once, and
only for requests that survive the cheap duplicate check in the engine.
"""

from __future__ import annotations

import hashlib
import json as jsonlib
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from w3lib.url import canonicalize_url

__all__ = ["Request", "canonical_url", "decode_request", "encode_request", "fingerprint",
           "host_in_domains", "host_key"]

_SCHEMES = ("http://", "https://")
_DEFAULT_PORTS = {"http": 80, "https": 443}


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
        if type(url) is not str or not url.startswith(_SCHEMES):
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
        """The inverse of ``to_dict``; callbacks come back as method names."""
        r = cls(d["url"], d.get("callback"), method=d.get("method", "GET"),
                headers=d.get("headers"), cookies=d.get("cookies"), meta=d.get("meta"),
                cb_kwargs=d.get("cb_kwargs"), priority=d.get("priority", 0),
                dont_filter=d.get("dont_filter", False), errback=d.get("errback"))
        if "body" in d:
            r.body = d["body"].encode("latin-1")
        r.depth = d.get("depth", 0)
        r.attempt = d.get("attempt", 0)
        return r


def _check_url(url: object) -> str:
    if not isinstance(url, str):
        raise TypeError(f"Request url must be a str, not {type(url).__name__}: {url!r}")
    stripped = url.strip()
    if stripped[:8].lower().startswith(_SCHEMES):
        scheme, sep, rest = stripped.partition("://")
        return scheme.lower() + sep + rest
    raise ValueError(f"Request url must be an absolute http(s) URL: {url!r}")


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
