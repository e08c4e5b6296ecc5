"""SitemapSpider: crawl the pages that sitemaps (and sitemap indexes) list.

Sitemaps may be plain XML or gzip files; robots.txt URLs in ``sitemap_urls``
are read for their ``Sitemap:`` lines. Decompression is capped at
``max_response_size``, so a gzip bomb is a logged, counted skip, not an
out-of-memory. XML is parsed without entity expansion or network access.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from typing import Any, ClassVar

from lxml import etree

from .http import Request
from .response import Response
from .robotstxt import parse_robots, sitemap_urls
from .spider import Spider

__all__ = ["SitemapSpider", "gunzip_capped"]

_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, recover=True,
                              remove_comments=True)


def gunzip_capped(data: bytes, limit: int) -> bytes | None:
    """``data`` gunzipped, or None if it would grow past ``limit`` bytes."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = d.decompress(data, limit + 1)
    if len(out) > limit or d.unconsumed_tail:
        return None
    return out


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

    def start_requests(self) -> Iterator[Request]:
        for url in self.sitemap_urls:
            yield Request(url, callback=self._parse_sitemap)

    def sitemap_filter(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Override to filter sitemap entries (each has ``loc`` and maybe ``lastmod``)."""
        return entries

    def _parse_sitemap(self, response: Response) -> Iterator[Request]:
        if response.url.endswith("/robots.txt"):
            for url in sitemap_urls(parse_robots(response.text), response.url):
                yield Request(url, callback=self._parse_sitemap)
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
        entries = self.sitemap_filter(list(_entries(root, self.sitemap_alternate_links)))
        if kind == "sitemapindex":
            yield from self._follow_index(entries)
        elif kind == "urlset":
            yield from self._follow_urls(entries)
        else:
            self.logger.warning("%s: not a sitemap (root element <%s>)", response.url, kind)

    def _follow_index(self, entries: list[dict[str, Any]]) -> Iterator[Request]:
        follow = [re.compile(r) for r in self.sitemap_follow]
        for e in entries:
            if any(r.search(e["loc"]) for r in follow):
                yield Request(e["loc"], callback=self._parse_sitemap)

    def _follow_urls(self, entries: list[dict[str, Any]]) -> Iterator[Request]:
        rules = [(re.compile(r), cb) for r, cb in self.sitemap_rules]
        for e in entries:
            for regex, cb in rules:
                if regex.search(e["loc"]):
                    yield Request(e["loc"], callback=cb)
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


def _entries(root: Any, alternates: bool) -> Iterator[dict[str, Any]]:
    for node in root:
        if not isinstance(node.tag, str):
            continue
        entry: dict[str, Any] = {}
        for child in node:
            if not isinstance(child.tag, str):
                continue
            name = etree.QName(child).localname
            if name == "link":
                if alternates and child.get("href"):
                    entry.setdefault("alternate", []).append(child.get("href").strip())
            elif child.text:
                entry[name] = child.text.strip()
        if entry.get("loc"):
            yield entry
            for alt in entry.get("alternate", ()):
                yield {"loc": alt}
