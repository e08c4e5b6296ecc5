"""Reading a robots.txt body: decoding (UTF-8, its BOM dropped, as Google's parser
does), parsing with protego, and its ``Sitemap:`` lines as absolute URLs.

protego is followed everywhere but in one place where it breaks RFC 9309: a line
with a field protego does not know (``Noindex:``, ``Clean-param:``) ends its
group of User-agent lines there, while the RFC (2.2.4) says such records must not
interfere with the parsing of the defined ones. Those lines are dropped before
protego reads the text, as Google's reference parser ignores them.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin

from protego import Protego

__all__ = ["decode_robots", "parse_robots", "sitemap_urls"]


# The single-word field names protego reads (its aliases and misspellings included);
# multi-word ones ("user agent", "crawl delay") are never taken for unknown fields here.
_KNOWN_FIELDS = frozenset((
    "user-agent", "useragent", "allow", "disallow", "dissallow", "dissalow", "disalow",
    "diasllow", "disallaw", "sitemap", "sitemaps", "site-map", "crawl-delay",
    "request-rate", "visit-time", "host"))
_FIELD = re.compile(r"\s*([A-Za-z0-9_-]+)\s*:")


def decode_robots(body: bytes) -> str:
    """The text of a robots.txt body: UTF-8 (RFC 9309 2.3), a leading BOM dropped, so
    the first group is not lost to it; also a BOM cut short (``EF BB``, ``EF``), which
    Google's parser skips as well."""
    text = body.decode("utf-8", "replace")
    if text.startswith("\ufeff") or (body[:1] == b"\xef" and text.startswith("\ufffd")):
        # an EF not starting a valid character is a truncated BOM: one U+FFFD stands for it
        return text[1:]
    return text


def parse_robots(text: str) -> Protego:
    lines = text.removeprefix("\ufeff").splitlines()
    return Protego.parse("\n".join(line for line in lines if not _unknown_field(line)))


def _unknown_field(line: str) -> bool:
    """A ``Field: value`` line whose field protego does not know (see the module
    docstring); comments and lines without a colon are left to protego."""
    m = _FIELD.match(line)
    return m is not None and m.group(1).lower() not in _KNOWN_FIELDS


def sitemap_urls(parser: Protego, robots_url: str) -> list[str]:
    """The ``Sitemap:`` lines of ``parser``, relative ones joined to ``robots_url``; a
    line that cannot be joined (``http://[x``) is kept as written, for the request
    made of it to be skipped and counted as a malformed URL. A line that was not
    UTF-8 (decoded with U+FFFD in it) is left out, as Scrapy does: it cannot name the
    URL the site meant."""
    return [_joined(robots_url, u.strip()) for u in parser.sitemaps
            if u.strip() and "\ufffd" not in u]


def _joined(base: str, url: str) -> str:
    try:
        return urljoin(base, url)
    except ValueError:
        return url
