"""Cookies as browsers bound them: the crawl's shared jar, the Cookie header a request
sends, and per-request cookie values on the wire.

A host cannot make the crawler lock itself out: the jar keeps at most
``MAX_PER_DOMAIN`` cookies per domain (Chrome keeps 180; RFC 6265 6.1 asks for at
least 50), dropping the oldest first, and refuses a cookie whose name and value
exceed ``MAX_COOKIE_BYTES`` (4,096, as every browser). The Cookie header of one
request is capped at ``MAX_HEADER_BYTES`` (8 KB, the header size common servers
accept; more gets 431 answers): the least specific cookies go first (the jar
lists the longest paths first). Values are sent as UTF-8 bytes, as browsers do.

Domains are checked more strictly than cookielib's defaults: ``Domain=co.uk`` (a
two-letter country code under a generic second level, cookielib's
``strict_domain``) is refused, so a host cannot set cookies for every site under
a public suffix; without a public suffix list, private suffixes (``blogspot.com``)
are not known. A dotless host naming itself (``Domain=localhost``) gets its cookie
back, which cookielib would store and never send.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping
from http.cookiejar import Cookie, CookiePolicy, DefaultCookiePolicy
from typing import Any

from requests.cookies import RequestsCookieJar

__all__ = ["BoundedCookieJar", "cap_cookie_header", "wire_cookies",
           "MAX_PER_DOMAIN", "MAX_COOKIE_BYTES", "MAX_HEADER_BYTES"]

log = logging.getLogger(__name__)

MAX_PER_DOMAIN = 180
MAX_COOKIE_BYTES = 4096
MAX_HEADER_BYTES = 8192

_created = itertools.count()


class BoundedCookieJar(RequestsCookieJar):
    """A RequestsCookieJar with browsers' per-domain and per-cookie limits."""

    def __init__(self, policy: CookiePolicy | None = None) -> None:
        super().__init__(policy or DefaultCookiePolicy(strict_domain=True))

    def set_cookie(self, cookie: Cookie, *args: Any, **kwargs: Any) -> None:
        size = len(cookie.name) + len(cookie.value or "")
        if size > MAX_COOKIE_BYTES:
            log.debug("cookie %r of %s is %d bytes (over %d): not kept", cookie.name,
                      cookie.domain, size, MAX_COOKIE_BYTES)
            return
        if cookie.domain_specified and "." not in cookie.domain.strip("."):
            # Domain=HOST from a dotless HOST (the policy lets nothing else through):
            # cookielib keys such a host as "HOST.local" and would never match ".HOST"
            cookie.domain = cookie.domain.strip(".") + ".local"
        cookie._created = next(_created)  # type: ignore[attr-defined]  # for eviction order
        with self._cookies_lock:  # type: ignore[attr-defined]  # cookielib's own RLock
            super().set_cookie(cookie, *args, **kwargs)
            self._evict(cookie.domain)

    def _evict(self, domain: str) -> None:
        by_path: dict[str, dict[str, Cookie]] = self._cookies.get(domain, {})  # type: ignore[attr-defined]
        kept = [c for names in by_path.values() for c in names.values()]
        over = len(kept) - MAX_PER_DOMAIN
        if over <= 0:
            return
        kept.sort(key=lambda c: getattr(c, "_created", -1))
        for old in kept[:over]:
            self.clear(old.domain, old.path, old.name)
        log.debug("%s set more than %d cookies: dropped the %d oldest", domain,
                  MAX_PER_DOMAIN, over)

    def copy(self) -> BoundedCookieJar:
        new = BoundedCookieJar()
        new.set_policy(self.get_policy())
        new.update(self)
        return new


def cap_cookie_header(value: str, limit: int = MAX_HEADER_BYTES) -> str:
    """``value`` (``a=1; b=2``) cut to whole cookies within ``limit`` bytes."""
    if len(value) <= limit:
        return value
    out: list[str] = []
    used = 0
    for part in value.split("; "):
        cost = len(part) + (2 if out else 0)
        if used + cost > limit:
            break
        out.append(part)
        used += cost
    return "; ".join(out)


def wire_cookies(cookies: Mapping[str, str]) -> dict[str, str]:
    """Per-request cookies as requests must be given them so the bytes on the wire are
    UTF-8: http.client writes header strings as latin-1, so each value becomes the
    latin-1 reading of its UTF-8 bytes (which the jar's own cookies, read from
    headers as latin-1, already are)."""
    return {name: value if value.isascii() else value.encode("utf-8").decode("latin-1")
            for name, value in cookies.items()}
