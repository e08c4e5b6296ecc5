"""Reading a robots.txt body: decoding (UTF-8, its BOM dropped, as Google's parser
does), parsing with protego, and its ``Sitemap:`` lines as absolute URLs."""

from __future__ import annotations

from urllib.parse import urljoin

from protego import Protego

__all__ = ["decode_robots", "parse_robots", "sitemap_urls"]


def decode_robots(body: bytes) -> str:
    """The text of a robots.txt body: UTF-8 (RFC 9309 2.3), a leading BOM dropped, so
    the first group is not lost to it."""
    return body.decode("utf-8-sig", "replace")


def parse_robots(text: str) -> Protego:
    return Protego.parse(text.removeprefix("\ufeff"))


def sitemap_urls(parser: Protego, robots_url: str) -> list[str]:
    """The ``Sitemap:`` lines of ``parser``, relative ones joined to ``robots_url``."""
    return [urljoin(robots_url, u.strip()) for u in parser.sitemaps if u.strip()]
