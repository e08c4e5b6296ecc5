"""SitemapSpider: crawl the pages that sitemaps (and sitemap indexes) list.

Sitemaps may be plain XML or gzip files; robots.txt URLs in ``sitemap_urls``
are read for their ``Sitemap:`` lines. Decompression is capped at
``max_response_size``, so a gzip bomb is a logged, counted skip, not an
out-of-memory; a gzip file in several members is read whole, and one that is
damaged (wrong trailer, cut short) yields what could be read, as Scrapy's gunzip.
XML is parsed without entity expansion or network access. Entries are read as
Scrapy's ``Sitemap`` reads them: every child element's text (empty for an empty
element), ``alternate`` from ``<xhtml:link href>``; ``sitemap_filter`` sees them
all, and alternates are followed after it when ``sitemap_alternate_links`` is set.
"""

from __future__ import annotations

import gzip
import io
import re
import struct
import zlib
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

from lxml import etree

from .http import Request
from .response import Response
from .robotstxt import decode_robots, parse_robots, sitemap_urls
from .spider import Spider

__all__ = ["SitemapSpider", "gunzip_capped"]

_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, recover=True,
                              remove_comments=True)


_CHUNK = 65536


def gunzip_capped(data: bytes, limit: int) -> bytes | None:
    """``data`` gunzipped (every member), or None if it would grow past ``limit`` bytes.
    Damaged data gives what was read before the damage (GzipFile checks the trailer
    only after handing out the member's bytes)."""
    reader = gzip.GzipFile(fileobj=io.BytesIO(data))
    out = bytearray()
    while True:
        try:
            chunk = reader.read1(_CHUNK)  # at most _CHUNK bytes: memory stays bounded
        except (OSError, EOFError, zlib.error, struct.error):
            return bytes(out)
        if not chunk:
            return bytes(out)
        out += chunk
        if len(out) > limit:
            return None


class SitemapSpider(Spider):
    """A spider whose start URLs are sitemaps (or robots.txt files naming them).

    sitemap_urls: sitemap, sitemap index or robots.txt URLs.
    sitemap_rules: (regex, callback name) pairs; a page URL goes to the callback of
        the first regex that matches it (searched, not anchored).
    sitemap_follow: regexes; only index entries matching one are followed.
    sitemap_alternate_links: also follow ``<xhtml:link rel="alternate">`` URLs.
    """

    sitemap_urls: ClassVar[list[str]] = []
    sitemap_rules: ClassVar[list[tuple[str, str]]] = [("", "parse")]
    sitemap_follow: ClassVar[list[str]] = [""]
    sitemap_alternate_links: ClassVar[bool] = False

    # URLs read from lists (sitemap_urls, robots.txt, sitemaps) make Request.unchecked:
    # a malformed one is skipped and counted as bad-url by the crawl, and the rest of
    # the list is still followed
    def start_requests(self) -> Iterator[Request]:
        for url in self.sitemap_urls:
            yield Request.unchecked(url, callback=self._parse_sitemap)

    def sitemap_filter(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Override to filter sitemap entries (each has ``loc`` and maybe ``lastmod``)."""
        return entries

    def _parse_sitemap(self, response: Response) -> Iterator[Request]:
        if response.url.endswith("/robots.txt"):
            # read as robots.txt (UTF-8, RFC 9309), not sniffed as a page would be
            for url in sitemap_urls(parse_robots(decode_robots(response.content)), response.url):
                yield Request.unchecked(url, callback=self._parse_sitemap)
            return
        body = self._sitemap_body(response)
        if body is None:
            return
        try:
            root = etree.fromstring(body, parser=_XML_PARSER)
        except etree.XMLSyntaxError:
            root = None
        if root is None:
            self.logger.warning("%s: not a sitemap (cannot parse XML)", response.url)
            return
        kind = etree.QName(root).localname
        entries = self.sitemap_filter(list(_entries(root)))
        if kind == "sitemapindex":
            yield from self._follow_index(_locs(entries, self.sitemap_alternate_links))
        elif kind == "urlset":
            yield from self._follow_urls(_locs(entries, self.sitemap_alternate_links))
        else:
            self.logger.warning("%s: not a sitemap (root element <%s>)", response.url, kind)

    def _follow_index(self, locs: Iterable[str]) -> Iterator[Request]:
        follow = [re.compile(r) for r in self.sitemap_follow]
        for loc in locs:
            if any(r.search(loc) for r in follow):
                yield Request.unchecked(loc, callback=self._parse_sitemap)

    def _follow_urls(self, locs: Iterable[str]) -> Iterator[Request]:
        rules = [(re.compile(r), cb) for r, cb in self.sitemap_rules]
        for loc in locs:
            for regex, cb in rules:
                if regex.search(loc):
                    yield Request.unchecked(loc, callback=cb)
                    break

    def _sitemap_body(self, response: Response) -> bytes | None:
        body: bytes | None = response.content
        if body is not None and body[:2] == b"\x1f\x8b":
            limit = int(self.settings["max_response_size"])
            body = gunzip_capped(body, limit)
            if body is None:
                self.logger.warning("%s: gzip sitemap over max_response_size (%d bytes) once "
                                    "decompressed; skipped", response.url, limit)
        return body


def _entries(root: Any) -> Iterator[dict[str, Any]]:
    for node in root:
        if not isinstance(node.tag, str):
            continue
        entry: dict[str, Any] = {}
        for child in node:
            if not isinstance(child.tag, str):
                continue
            name = etree.QName(child).localname
            if name == "link":
                if child.get("href"):
                    entry.setdefault("alternate", []).append(child.get("href").strip())
            else:
                entry[name] = (child.text or "").strip()
        if entry.get("loc"):
            yield entry


def _locs(entries: Iterable[dict[str, Any]], alternates: bool) -> Iterator[str]:
    """The URLs of the entries ``sitemap_filter`` kept, each followed by its alternates
    when those are wanted."""
    for entry in entries:
        if entry.get("loc"):
            yield entry["loc"]
        if alternates:
            yield from entry.get("alternate", ())
