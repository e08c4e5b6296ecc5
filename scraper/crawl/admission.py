"""Which requests enter the frontier: the cheap duplicate check, URL length and form,
depth, allowed_domains, callbacks, and the seen-set's test-and-set, in batches.

A duplicate link is the common case (most links on a page were seen before), so
the first check is an exact-string lookup in a bounded cache of URLs already
decided, before any canonical URL or fingerprint is computed: first in a small dict
of the URLs met most recently (menus, footers, pagination: the links on every page;
one dict lookup, ~0.1 µs), then in the cache of all decided URLs, which keeps each
URL's 64-bit ``hash()`` (computed once per string by Python, and cached on it) in
flat arrays, ~16 bytes a URL rather than the URL itself; a new URL whose hash
matches one decided before is wrongly skipped with probability ~n/2**64 (n ≤
2 × 500,000 remembered). The seen-set stays the authority: the cache only
short-cuts answers it already gave. Survivors of the cheap checks of a whole batch
go to ``Backend.push_unseen`` in one call (one round trip for a shared backend),
which marks the new ones seen and pushes them in one atomic step.

Payloads: JSON (``encode_request``) for a backend that serialises. In memory, a
plain request (a GET with no body, headers, cookies, meta or cb_kwargs: what link
following makes) becomes one compact ``bytes`` (depth, priority, attempt, callback
and errback names, URL), which the memory frontier stores as it is: ~80 bytes plus
the URL instead of ~500 for a Request object with its dict and strings. It is
rebuilt when popped (~2 µs, against ~2-4 ms of CPU per page), with callbacks the
same bound methods or names they were. Any other request stays the Request object
itself, so meta and cb_kwargs keep their identity and any values.

An entry read back from a shared backend is data, not instructions: anyone who can
write to the store may have written it. ``decode`` drops the meta keys that choose a
proxy, credentials or TLS checks (``UNTRUSTED_META``), and ``encode`` refuses a
request that sets them (read back, it would go out without them); its callback
resolves only to a callback method (``callbacks.callback_method``).

No URL can end the crawl here: one over ``max_url_length`` is dropped and counted
as ``url-too-long``; one that is malformed (``Request`` checks URLs it is built
with, but framework lists and code that sets ``url`` afterwards bypass that), or
whose host key or fingerprint cannot be computed, as ``bad-url``. Both are logged
at DEBUG with the URL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from ..http import (Request, decode_request, encode_request, host_in_domains, host_key,
                    url_problem)
from ..spider import Spider
from ..storage import Backend, Entry
from ..storage.flatset import FlatKeySet
from .callbacks import callback_method
from .stats import Stats

__all__ = ["UNTRUSTED_META", "Admission"]

log = logging.getLogger(__name__)

_KNOWN_URLS_MAX = 500_000  # per generation; two are kept: 12-24 MiB at most (FlatKeySet)
_HOT_URLS_MAX = 16_384     # URLs whose verdict is kept by the URL itself (~2 MiB), then cleared
#: meta keys that choose where a request goes or which credentials and TLS checks it
#: uses: they come from settings and spider code only, never from an entry read back
#: from a shared store. (No TLS option is read from meta today; they are listed so one
#: added later is covered from its first day.)
UNTRUSTED_META = frozenset({"proxy", "http_auth", "tls_verify", "ca_bundle", "verify", "cert"})
#: Scrapy's URLLENGTH_LIMIT, after the longest URL Internet Explorer took
DEFAULT_MAX_URL_LENGTH = 2083
_LOGGED_URL_CHARS = 200  # how much of an over-long URL the log shows


class Admission:
    """Filters and de-duplicates new requests and turns survivors into frontier entries."""

    def __init__(self, spider: Spider, backend: Backend, stats: Stats, *, max_depth: int | None,
                 serialise: bool, seen_ttl: float | None = None,
                 max_url_length: int = DEFAULT_MAX_URL_LENGTH) -> None:
        self.spider = spider
        self.backend = backend
        self.max_depth = max_depth
        self.max_url_length = max_url_length
        self.serialise = serialise
        # counters are read through ``stats`` each time: a resumed job replaces them
        self.stats = stats
        self.domains: tuple[str, ...] = ()
        self._host_ok: dict[str, bool] = {}
        # verdict -> hashes of URLs given it; the current generation, then the older one
        self._known: dict[str, FlatKeySet] = {}
        self._older: dict[str, FlatKeySet] = {}
        self._known_count = 0
        # URL -> verdict, for URLs met recently: what _known says of them, found faster
        self._hot: dict[str, str] = {}
        self._seen_ttl = seen_ttl
        self._known_since = time.monotonic()
        self._meta_refused = self._meta_dropped = False  # each logged once

    def set_domains(self, domains: Iterable[str] | None) -> None:
        self.domains = tuple(d.lower().lstrip(".") for d in (domains or ()))
        self._host_ok.clear()

    # -- the checks ----------------------------------------------------------
    def admit(self, requests: Iterable[Request]) -> int:
        """Push the requests that pass every check and were not seen before, in order;
        returns how many. Their fingerprints are marked seen in the same atomic step as
        their push (``Backend.push_unseen``): a process killed in between would leave
        URLs seen that no process ever fetches."""
        entries: list[Entry] = []
        fingerprints: list[bytes | None] = []
        for r in requests:
            if not self._cheap_checks(r):
                continue
            data = self.encode(r)
            if data is not None:
                entries.append(Entry(r.host, data, r.priority))
                fingerprints.append(None if r.dont_filter else r.fingerprint)
        if not entries:
            return 0
        duplicates = self.backend.push_unseen(entries, fingerprints).count(False)
        if duplicates:
            self.stats.filtered["duplicate"] += duplicates
        return len(entries) - duplicates

    def _cheap_checks(self, r: Request) -> bool:
        plain = r.method == "GET" and r.body is None and not r.dont_filter
        if plain:
            known = self._decided(r.url)
            if known is not None:
                self.stats.filtered[known] += 1
                return False
        if self.max_depth is not None and r.depth > self.max_depth:
            self.stats.filtered["depth"] += 1
            return False
        if not self._fetchable(r):
            return False
        if self.domains and not self.allowed(r.host):
            self.stats.filtered["offsite"] += 1
            if plain:
                self._remember(r.url, "offsite")
            return False
        if not self._valid_callbacks(r) or not self._keyed(r):
            return False
        if plain:
            self._remember(r.url, "duplicate")
        return True

    def _fetchable(self, r: Request) -> bool:
        """False, counted and logged, for a URL over ``max_url_length`` or malformed."""
        url = r.url
        if type(url) is not str:
            return self._bad_url(url, f"a URL must be a str, not {type(url).__name__}")
        if len(url) > self.max_url_length:
            self.stats.errors["url-too-long"] += 1
            log.debug("dropped a URL of %d characters (max_url_length is %d): %s...",
                      len(url), self.max_url_length, url[:_LOGGED_URL_CHARS])
            return False
        problem = url_problem(url)
        return True if problem is None else self._bad_url(url, problem)

    def _keyed(self, r: Request) -> bool:
        """Computes (and keeps) the host key and, unless ``dont_filter``, the fingerprint,
        which canonicalises the URL; False, counted as bad-url, if either raises."""
        try:
            r.host  # noqa: B018
            if not r.dont_filter:
                r.fingerprint  # noqa: B018
        except Exception as e:  # whatever it is, one request's URL never ends the crawl
            return self._bad_url(r.url, f"cannot canonicalise it: {type(e).__name__}: {e}")
        return True

    def _bad_url(self, url: Any, problem: str) -> bool:
        self.stats.errors["bad-url"] += 1
        log.debug("skipped the malformed URL %r: %s", url, problem)
        return False

    def _decided(self, url: str) -> str | None:
        """The verdict remembered for ``url``, if any: the recent URLs first."""
        known = self._hot.get(url)
        if known is None:
            known = self._verdict(hash(url))
            if known is not None:
                self._heat(url, known)
        return known

    def _verdict(self, key: int) -> str | None:
        """What was decided for the URL whose hash is ``key``, if it is remembered."""
        for generation in (self._known, self._older):
            for verdict, keys in generation.items():
                if key in keys:
                    return verdict
        return None

    def _heat(self, url: str, verdict: str) -> None:
        hot = self._hot
        if len(hot) >= _HOT_URLS_MAX:
            hot.clear()
        hot[url] = verdict

    def _remember(self, url: str, verdict: str) -> None:
        if self._known_count >= _KNOWN_URLS_MAX or (
                self._seen_ttl and time.monotonic() - self._known_since > self._seen_ttl / 2):
            # start a new generation: bounded memory, and with seen_ttl, pages become
            # new again once the seen-set forgets them (and so once this forgets them)
            self._older = {} if self._seen_ttl else self._known
            self._known = {}
            self._known_count = 0
            self._known_since = time.monotonic()
            self._hot.clear()
        keys = self._known.get(verdict)
        if keys is None:
            keys = self._known[verdict] = FlatKeySet()
        self._known_count += keys.add(hash(url))
        self._heat(url, verdict)

    def allowed(self, host: str) -> bool:
        """Whether ``host`` (``scheme://name:port``) matches allowed_domains."""
        ok = self._host_ok.get(host)
        if ok is None:
            name = host.split("://", 1)[1].rsplit(":", 1)[0].strip("[]")
            ok = host_in_domains(name, self.domains)
            self._host_ok[host] = ok
        return ok

    def offsite(self, url: str) -> bool:
        return bool(self.domains) and not self.allowed(host_key(url))

    def _valid_callbacks(self, r: Request) -> bool:
        for attr in ("callback", "errback"):
            ref = getattr(r, attr)
            if ref is None:
                continue
            if isinstance(ref, str):
                ok = callback_method(self.spider, ref) is not None
            else:
                ok = getattr(ref, "__self__", None) is self.spider and callback_method(
                    self.spider, getattr(ref, "__name__", "")) is not None
            if not ok:
                self.stats.errors["bad-request"] += 1
                log.error("request %s: %s must be a method of the spider meant as a callback "
                          "(they are stored by name), got %r", r.url, attr, ref)
                return False
        return True

    # -- payloads --------------------------------------------------------------
    def encode(self, r: Request) -> Any:
        """The frontier payload: in memory, compact bytes for a plain request and the
        Request itself otherwise; JSON for persistent backends. None (counted as
        bad-request) for a request that cannot be stored, or whose meta sets a proxy,
        credentials or TLS options while the store is shared: read back, that meta
        would be dropped (see ``decode``) and the request sent without it."""
        if not self.serialise:
            return self._compact(r)
        if self.backend.shared and r.meta and not UNTRUSTED_META.isdisjoint(r.meta):
            self.stats.errors["bad-request"] += 1
            if not self._meta_refused:
                self._meta_refused = True
                log.error("request %s: meta %s cannot go through a shared backend (anyone "
                          "who can write to it could set them too); use the proxy and "
                          "http_auth settings. Such requests are dropped", r.url,
                          sorted(UNTRUSTED_META.intersection(r.meta)))
            return None
        try:
            return encode_request(r)
        except ValueError as e:
            self.stats.errors["bad-request"] += 1
            log.error("%s", e)
            return None

    def decode(self, data: Any, host: str | None = None) -> Request:
        """A frontier payload as a Request. An entry of a shared backend is data that
        anyone who can write to the store may have written: its ``UNTRUSTED_META`` keys
        are dropped (counted as untrusted-meta, logged once), so no entry can send the
        crawl's credentials through a proxy of its choosing. ``host``: the entry's host,
        which a compact in-memory payload leaves out of its URL."""
        if type(data) is bytes and not self.serialise:
            return self._from_compact(data, host)
        r = decode_request(data)
        if self.backend.shared and r.meta and not UNTRUSTED_META.isdisjoint(r.meta):
            dropped = sorted(UNTRUSTED_META.intersection(r.meta))
            r.meta = {k: v for k, v in r.meta.items() if k not in UNTRUSTED_META}
            self.stats.errors["untrusted-meta"] += 1
            if not self._meta_dropped:
                self._meta_dropped = True
                log.warning("an entry of the shared frontier for %s set meta %s: dropped (they "
                            "come from settings and spider code only); such entries are "
                            "counted as untrusted-meta", r.url, dropped)
        return r

    # -- the compact in-memory form ----------------------------------------------
    def _compact(self, r: Request) -> Request | bytes:
        """``b"depth priority attempt callback errback url"`` for a plain request (a
        callback as ``-`` for None, ``=name`` for a name, ``@name`` for the spider's
        bound method), else the Request itself."""
        if (r.method != "GET" or r.body is not None or r.headers or r.cookies or r.meta
                or r.cb_kwargs is not None or r.dont_filter):
            return r
        callback, errback = self._callback_token(r.callback), self._callback_token(r.errback)
        if callback is None or errback is None:
            return r
        text = f"{r.depth} {r.priority} {r.attempt} {callback} {errback} {_elided(r.url, r.host)}"
        # surrogatepass: a URL kept by Request.unchecked may hold any str
        return text.encode("utf-8", "surrogatepass")

    def _callback_token(self, ref: Any) -> str | None:
        if ref is None:
            return "-"
        if isinstance(ref, str):
            return "=" + ref if ref and " " not in ref else None
        name = getattr(ref, "__name__", "")
        # the very method ``getattr(spider, name)`` gives back when decoded
        if name and getattr(ref, "__self__", None) is self.spider and getattr(
                self.spider, name, None) == ref:
            return "@" + name
        return None

    def _from_compact(self, data: bytes, host: str | None) -> Request:
        depth, priority, attempt, callback, errback, url = data.decode(
            "utf-8", "surrogatepass").split(" ", 5)
        if not url.startswith(_SCHEMES):
            if host is None:
                raise ValueError("a compact entry's URL needs the host of its entry")
            url = host[:host.rindex(":")] + url
        r = Request.unchecked(url, self._callback_ref(callback), priority=int(priority),
                              errback=self._callback_ref(errback))
        r.url = url  # exactly as admitted (the constructor strips and lower-cases)
        r.depth = int(depth)
        r.attempt = int(attempt)
        return r

    def _callback_ref(self, token: str) -> Any:
        if token == "-":
            return None
        return token[1:] if token[0] == "=" else getattr(self.spider, token[1:])


_SCHEMES = ("http://", "https://")


def _elided(url: str, host: str) -> str:
    """``url`` without its ``scheme://name`` when that is its host key's (``scheme://
    name:port``) with the default port left out, which is the common case; the entry's
    host gives it back. Otherwise the whole URL (it starts with ``http``)."""
    origin = host[:host.rindex(":")]
    if url.startswith(origin):
        rest = url[len(origin):]
        if not rest or rest[0] in "/?#":
            return rest
    return url
