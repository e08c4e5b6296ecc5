"""Which requests enter the frontier: the cheap duplicate check, depth, allowed_domains,
callbacks, and the seen-set's test-and-set, in batches.

A duplicate link is the common case (most links on a page were seen before), so
the first check is an exact-string lookup in a bounded cache of URLs already
decided, before any canonical URL or fingerprint is computed. The seen-set stays
the authority: the cache only short-cuts answers it already gave. Survivors of
the cheap checks of a whole batch go to the seen-set in one ``add_many`` (one
round trip for a shared backend).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from ..http import Request, decode_request, encode_request, host_in_domains, host_key
from ..spider import Spider
from ..storage import Entry, SeenSet
from .stats import Stats

__all__ = ["Admission"]

log = logging.getLogger(__name__)

_KNOWN_URLS_MAX = 200_000  # per generation; two generations are kept


class Admission:
    """Filters and de-duplicates new requests and turns survivors into frontier entries."""

    def __init__(self, spider: Spider, seen: SeenSet, stats: Stats, *, max_depth: int | None,
                 serialise: bool, seen_ttl: float | None = None) -> None:
        self.spider = spider
        self.seen = seen
        self.max_depth = max_depth
        self.serialise = serialise
        # counters are read through ``stats`` each time: a resumed job replaces them
        self.stats = stats
        self.domains: tuple[str, ...] = ()
        self._host_ok: dict[str, bool] = {}
        self._known: dict[str, str] = {}
        self._older: dict[str, str] = {}
        self._seen_ttl = seen_ttl
        self._known_since = time.monotonic()

    def set_domains(self, domains: Iterable[str] | None) -> None:
        self.domains = tuple(d.lower().lstrip(".") for d in (domains or ()))
        self._host_ok.clear()

    # -- the checks ----------------------------------------------------------
    def admit(self, requests: Iterable[Request]) -> list[Entry]:
        """Frontier entries for the requests that pass every check, in order."""
        candidates = [r for r in requests if self._cheap_checks(r)]
        if not candidates:
            return []
        to_test = [r for r in candidates if not r.dont_filter]
        fresh = iter(self.seen.add_many([r.fingerprint for r in to_test]) if to_test else ())
        out = []
        for r in candidates:
            if not r.dont_filter and not next(fresh):
                self.stats.filtered["duplicate"] += 1
                continue
            data = self.encode(r)
            if data is not None:
                out.append(Entry(r.host, data, r.priority))
        return out

    def _cheap_checks(self, r: Request) -> bool:
        plain = r.method == "GET" and r.body is None and not r.dont_filter
        if plain:
            url = r.url
            known = self._known.get(url) or self._older.get(url)
            if known is not None:
                self.stats.filtered[known] += 1
                return False
        if self.max_depth is not None and r.depth > self.max_depth:
            self.stats.filtered["depth"] += 1
            return False
        if self.domains and not self.allowed(r.host):
            self.stats.filtered["offsite"] += 1
            if plain:
                self._remember(r.url, "offsite")
            return False
        if not self._valid_callbacks(r):
            return False
        if plain:
            self._remember(r.url, "duplicate")
        return True

    def _remember(self, url: str, verdict: str) -> None:
        known = self._known
        if len(known) >= _KNOWN_URLS_MAX or (
                self._seen_ttl and time.monotonic() - self._known_since > self._seen_ttl / 2):
            # start a new generation: bounded memory, and with seen_ttl, pages become
            # new again once the seen-set forgets them
            self._older = {} if self._seen_ttl else known
            self._known = known = {}
            self._known_since = time.monotonic()
        known[url] = verdict

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
                ok = callable(getattr(self.spider, ref, None))
            else:
                ok = getattr(ref, "__self__", None) is self.spider
            if not ok:
                self.stats.errors["bad-request"] += 1
                log.error("request %s: %s must be a method of the spider (they are stored by "
                          "name), got %r", r.url, attr, ref)
                return False
        return True

    # -- payloads --------------------------------------------------------------
    def encode(self, r: Request) -> Any:
        """The frontier payload: the Request itself in memory, JSON for persistent backends."""
        if not self.serialise:
            return r
        try:
            return encode_request(r)
        except ValueError as e:
            self.stats.errors["bad-request"] += 1
            log.error("%s", e)
            return None

    def decode(self, data: Any) -> Request:
        return decode_request(data)
