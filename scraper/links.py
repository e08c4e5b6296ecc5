"""Link extraction as Scrapy does it: ``LinkExtractor`` (which links of a page to follow,
by URL pattern, domain, extension, tag, attribute and page region) and ``Link``, what it
returns.

An extractor works on the response's lxml tree (the one parse that ``css``, ``xpath``
and ``links()`` share), joins hrefs with the response's own fast joiner and sends to
w3lib (Scrapy's URL rules) only the URLs that need escaping or checking. Its patterns
are compiled once, when it is made, so applying a rule costs about what ``links()``
costs plus a filter. Behaviour follows Scrapy's ``LxmlLinkExtractor`` (conformance cases
in tests/conformance/test_linkextractor.py); where it differs is said in its docstring.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from lxml import etree
from parsel.csstranslator import HTMLTranslator
from w3lib.url import canonicalize_url, safe_url_string

if TYPE_CHECKING:
    from .response import Response

__all__ = ["IGNORED_EXTENSIONS", "Link", "LinkExtractor"]

#: Extensions of links that are not followed unless ``deny_extensions`` says otherwise
#: (Scrapy's ``scrapy.linkextractors.IGNORED_EXTENSIONS``, same list, same order).
IGNORED_EXTENSIONS = [
    # archives
    "7z", "7zip", "bz2", "rar", "tar", "tar.gz", "xz", "zip",
    # images
    "mng", "pct", "bmp", "gif", "jpg", "jpeg", "png", "pst", "psp", "tif", "tiff", "ai",
    "drw", "dxf", "eps", "ps", "svg", "cdr", "ico", "webp",
    # audio
    "mp3", "wma", "ogg", "wav", "ra", "aac", "mid", "au", "aiff",
    # video
    "3gp", "asf", "asx", "avi", "mov", "mp4", "mpg", "qt", "rm", "swf", "wmv", "m4a", "m4v",
    "flv", "webm",
    # office suites
    "xls", "xlsm", "xlsx", "xltm", "xltx", "potm", "potx", "ppt", "pptm", "pptx", "pps",
    "doc", "docb", "docm", "docx", "dotm", "dotx", "odt", "ods", "odg", "odp",
    # other
    "css", "pdf", "exe", "bin", "rss", "dmg", "iso", "apk", "jar", "sh", "rb", "js", "hta",
    "bat", "cpl", "msi", "msp", "py",
]

_VALID_SCHEMES = frozenset({"http", "https", "file", "ftp"})
_VALID_PREFIXES = tuple(f"{scheme}://" for scheme in sorted(_VALID_SCHEMES))
_HTML5_WHITESPACE = " \t\n\r\x0c"
# A URL w3lib's safe_url_string would return unchanged: http(s), a lower-case host (it
# lower-cases hosts), a numeric port, a path (it adds one before a query), one "#", and
# only characters it does not escape. Anything else (spaces, non-ASCII, brackets, user
# info, odd ports) goes through w3lib itself.
_PLAIN_URL = re.compile(r"https?://[a-z0-9.\-]+(?::[0-9]+)?"
                        r"(?:/[A-Za-z0-9\-._~:/?@!$&'()*+,;=%]*)?"
                        r"(?:#[A-Za-z0-9\-._~:/?@!$&'()*+,;=%]*)?")
_CSS = HTMLTranslator()
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_NETLOC_AND_PATH = re.compile(r"[^/?#]*(/[^?#]*)?")  # always matches
_LAST_SEGMENT = re.compile(r"[^/?#]*://[^/?#]*/(?:[^?#]*/)?([^/?#;]*)")
_UNSEEN: Any = object()  # marks an href not joined yet

# characters w3lib escapes somewhere in a URL (a superset of what Response._absolute
# looks for): a page whose hrefs have none is joined without a look at each href
_UNSAFE = re.compile(r"[\x00-\x20\"'<>\[\\\]^`{|}\x7f%]")

Regexes = str | re.Pattern[str] | Iterable[str | re.Pattern[str]]
_Link = tuple[str, Any, str]  # a link before filtering: URL, element, last path segment
_Raw = list[_Link]       # the links of one region


class Link:
    """One extracted link: its absolute ``url`` (fragment included, as in Scrapy), the
    ``text`` of its element, ``fragment`` (kept for Scrapy's constructor; the extractor
    leaves it empty) and whether ``rel`` says ``nofollow``."""

    __slots__ = ("fragment", "nofollow", "text", "url")

    def __init__(self, url: str, text: str = "", fragment: str = "", nofollow: bool = False) -> None:
        if not isinstance(url, str):
            raise TypeError(f"Link urls must be str objects, got {type(url).__name__}")
        self.url = url
        self.text = text
        self.fragment = fragment
        self.nofollow = nofollow

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Link):
            return NotImplemented
        return (self.url, self.text, self.fragment, self.nofollow) == (
            other.url, other.text, other.fragment, other.nofollow)

    def __hash__(self) -> int:
        return hash((self.url, self.text, self.fragment, self.nofollow))

    def __repr__(self) -> str:
        return (f"Link(url={self.url!r}, text={self.text!r}, fragment={self.fragment!r}, "
                f"nofollow={self.nofollow!r})")


def _listed(value: Any) -> list[Any]:
    """Scrapy's ``arg_to_iter``: None is nothing, a string is one value, else each value."""
    if value is None:
        return []
    if isinstance(value, str | bytes | re.Pattern) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def _compiled(value: Any) -> list[re.Pattern[str]]:
    return [x if isinstance(x, re.Pattern) else re.compile(x) for x in _listed(value)]


def _in_domains(host: str | None, domains: frozenset[str]) -> bool:
    """True when ``host`` is one of ``domains`` or a subdomain of one (whatever the port)."""
    if not host:
        return False
    return any(host == d or host.endswith("." + d) for d in domains)


def _host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def _path(url: str) -> str:
    """The path of ``url``, lower-cased, without ``;params`` (as ``urlparse`` splits it)."""
    start = url.find("://")
    m = _NETLOC_AND_PATH.match(url, start + 3 if start >= 0 else 0)
    path = m.group(1) if m is not None else None
    if not path:
        return ""
    params = path.find(";", path.rfind("/"))
    return (path if params < 0 else path[:params]).lower()


def _last_segment(url: str) -> str:
    """The last segment of the path of ``url``, lower-cased, without ``;params``: what
    ``_path(url)`` ends with after its last slash ("" when there is no path: the ``.js``
    of ``http://example.js`` is not an extension)."""
    m = _LAST_SEGMENT.match(url)
    return m.group(1).lower() if m is not None else ""


def _text(element: Any) -> str:
    """All the text inside ``element`` (XPath's ``string()``, as Scrapy's ``Link.text``)."""
    if len(element):  # children (or comments): their text and tails, not the comments'
        return "".join(element.itertext())
    return element.text or ""


def _nofollow(rel: str | None) -> bool:
    return rel is not None and "nofollow" in rel.lower().replace(",", " ").split()


def _searched(patterns: list[re.Pattern[str]], text: str) -> bool:
    """True when one of ``patterns`` is found in ``text`` (``any()`` without a generator)."""
    for pattern in patterns:
        if pattern.search(text):
            return True
    return False


def _first_of_each_url(links: list[_Link]) -> list[_Link]:
    seen: set[str] = set()
    out = []
    for link in links:
        if link[0] not in seen:
            seen.add(link[0])
            out.append(link)
    return out


def _other_join(base_url: str, page_url: str, value: str, encoding: str) -> str | None:
    """What the fast joiner leaves: a scheme that is not fetched (``mailto:``, ``tel:``,
    ``javascript:``) is dropped at once, as the scheme filter would drop it; the rest
    (``ftp:``, ``file:``, odd forms) takes Scrapy's steps."""
    m = _SCHEME.match(value)
    if m is not None and m.group(1).lower() not in _VALID_SCHEMES:
        return None
    return _scrapy_join(base_url, page_url, value, encoding, None)


def _scrapy_join(base_url: str, page_url: str, value: str, encoding: str,
                 process: Callable[[Any], Any] | None) -> str | None:
    """Scrapy's own steps, for what the fast path does not take: join to the base,
    ``process_value``, escape (in the page's encoding), join to the page URL; None when
    a step rejects the link."""
    try:
        url = urljoin(base_url, value)
        if process is not None:
            url = process(url)
            if url is None:
                return None
        return urljoin(page_url, safe_url_string(url, encoding=encoding))
    except ValueError:  # bad IPv6 brackets, a port that is not a number
        return None


class LinkExtractor:
    """Which links of a page to follow: Scrapy's ``LinkExtractor`` (``LxmlLinkExtractor``)
    with its arguments and defaults.

    allow / deny: regexes (one or several) an absolute URL must match (``search``) to be
        kept / must not match; deny wins.
    allow_domains / deny_domains: host names; subdomains match too.
    restrict_xpaths / restrict_css: only links inside the regions these select.
    tags / attrs: where links are read (``"*"`` for any); deny_tags / deny_attrs win.
    canonicalize: return ``w3lib.url.canonicalize_url`` forms (off: the URL as written).
    unique: each URL once (first occurrence). process_value: a function of each joined
        value returning the URL to use, or None to drop the link.
    deny_extensions: extensions not followed; None means ``IGNORED_EXTENSIONS``.
    strip: strip HTML whitespace around attribute values. restrict_text: regexes the
        link's text must match.

    Differences from Scrapy, on purpose: ``allow_domains``/``deny_domains`` match the host
    whatever the port (as ``allowed_domains`` does here; Scrapy compares ``host:port``);
    every page is parsed as HTML (there is no separate XML response type); a region that
    is not an element (``//a/@href``) is skipped instead of failing.
    """

    def __init__(self, allow: Regexes = (), deny: Regexes = (),
                 allow_domains: str | Iterable[str] = (), deny_domains: str | Iterable[str] = (),
                 restrict_xpaths: str | Iterable[str] = (),
                 tags: str | Iterable[str] | None = ("a", "area"),
                 attrs: str | Iterable[str] | None = ("href",), canonicalize: bool = False,
                 unique: bool = True, process_value: Callable[[Any], Any] | None = None,
                 deny_extensions: str | Iterable[str] | None = None,
                 restrict_css: str | Iterable[str] = (), strip: bool = True,
                 restrict_text: Regexes | None = None, deny_tags: str | Iterable[str] = (),
                 deny_attrs: str | Iterable[str] = ()) -> None:
        self.allow_res = _compiled(allow)
        self.deny_res = _compiled(deny)
        self.restrict_text = _compiled(restrict_text)
        self.allow_domains = frozenset(d.lower() for d in _listed(allow_domains))
        self.deny_domains = frozenset(d.lower() for d in _listed(deny_domains))
        self.restrict_xpaths = tuple(_listed(restrict_xpaths)) + tuple(
            _CSS.css_to_xpath(css) for css in _listed(restrict_css))
        if deny_extensions is None:
            deny_extensions = IGNORED_EXTENSIONS
        self.deny_extensions = frozenset("." + e.lower() for e in _listed(deny_extensions))
        self.canonicalize = canonicalize
        self.unique = unique
        self.process_value = process_value
        self.strip = strip
        self._tags = frozenset(_listed(tags))
        self._deny_tags = frozenset(_listed(deny_tags))
        self._attrs = frozenset(_listed(attrs))
        self._deny_attrs = frozenset(_listed(deny_attrs))
        # the element names lxml's iter() filters on in C; None: every element is looked at
        self._iter_tags: tuple[str, ...] | None = (
            None if "*" in self._tags else tuple(sorted(self._tags - self._deny_tags)))
        # the common case, one attribute named outright: a dict lookup, no scan
        self._only_attr: str | None = None
        if len(self._attrs) == 1 and "*" not in self._attrs and not self._deny_attrs:
            self._only_attr = next(iter(self._attrs))
        self._ext_in_segment = all("/" not in e for e in self.deny_extensions)
        # what decides which links are read and how they are joined (not which are kept):
        # extractors equal in this read a page once between them (see _links_for); one
        # with a process_value of its own reads alone
        self._reading: tuple[Any, ...] | None = None if process_value is not None else (
            self._tags, self._deny_tags, self._attrs, self._deny_attrs, self.restrict_xpaths,
            strip)

    # -- filtering -------------------------------------------------------------
    def matches(self, url: str) -> bool:
        """True when ``url`` passes the domain and allow/deny filters (Scrapy's ``matches``)."""
        if self.allow_domains or self.deny_domains:
            host = _host(url)
            if self.allow_domains and not _in_domains(host, self.allow_domains):
                return False
            if self.deny_domains and _in_domains(host, self.deny_domains):
                return False
        allowed = any(r.search(url) for r in self.allow_res) if self.allow_res else True
        return allowed and not any(r.search(url) for r in self.deny_res)

    def _link_allowed(self, link: Link) -> bool:
        """Scrapy's ``_link_allowed``: the URL filters, then ``restrict_text``."""
        return self._url_allowed(link.url, _last_segment(link.url)) and self._text_allowed(link.text)

    def _text_allowed(self, text: str) -> bool:
        return not self.restrict_text or _searched(self.restrict_text, text)

    def _url_allowed(self, url: str, segment: str) -> bool:
        """The URL filters, ``segment`` being the last segment of its path (see _last_segment)."""
        if not url.startswith(_VALID_PREFIXES):
            return False
        if self.allow_res and not _searched(self.allow_res, url):
            return False
        if self.deny_res and _searched(self.deny_res, url):
            return False
        if (self.allow_domains or self.deny_domains) and not self._domain_allowed(url):
            return False
        return not (self.deny_extensions and self._denied_extension(url, segment))

    def _domain_allowed(self, url: str) -> bool:
        host = _host(url)
        if self.allow_domains and not _in_domains(host, self.allow_domains):
            return False
        return not (self.deny_domains and _in_domains(host, self.deny_domains))

    def _denied_extension(self, url: str, segment: str) -> bool:
        if not self._ext_in_segment:
            path = _path(url)
            return any(path.endswith(e) for e in self.deny_extensions)
        # a set lookup per dot of the path's last segment instead of ~100 endswith() calls
        dot = segment.find(".")
        while dot >= 0:
            if segment[dot:] in self.deny_extensions:
                return True
            dot = segment.find(".", dot + 1)
        return False

    # -- extraction ------------------------------------------------------------
    def extract_links(self, response: Response) -> list[Link]:
        """The links of ``response`` this extractor keeps, in document order."""
        return self._kept(self._extract(response))

    def _links_for(self, response: Response, memo: dict[Any, list[_Raw]]) -> list[Link]:
        """``extract_links``, sharing the reading of the page (which links, joined how) with
        the other extractors of the same page that read it the same way: CrawlSpider's
        rules usually differ only in their filters."""
        key = self._reading
        if key is None:
            return self.extract_links(response)
        raw = memo.get(key)
        if raw is None:
            raw = memo[key] = self._extract(response)
        return self._kept(raw)

    def _kept(self, regions: list[_Raw]) -> list[Link]:
        """Each region's links de-duplicated as written, then filtered, then canonicalised
        (Scrapy's order, which decides which of two same-URL links a text filter sees),
        then all of them de-duplicated again. A Link is made only for a link kept."""
        unique, canonicalize = self.unique, self.canonicalize
        allowed, text_allowed = self._url_allowed, self._text_allowed
        seen: set[str] = set()
        out: list[Link] = []
        for links in regions:
            for url, element, segment in _first_of_each_url(links) if unique else links:
                if not allowed(url, segment):
                    continue
                text = _text(element)
                if not text_allowed(text):
                    continue
                if canonicalize:
                    url = canonicalize_url(url)
                if unique:
                    if url in seen:
                        continue
                    seen.add(url)
                out.append(Link(url, text, nofollow=_nofollow(element.get("rel"))))
        return out

    def _extract(self, response: Response) -> list[_Raw]:
        """(URL, element, last path segment) for every link of each region, joined, in
        document order, before any filter."""
        found = [list(self._values(region)) for region in self._regions(response)]
        # one look at every value at once: on most pages none has anything to escape
        together = "".join(value for pairs in found for _, value in pairs)
        join = self._joiner(response, not together.isascii() or _UNSAFE.search(together) is not None)
        joined: dict[str, tuple[str, str] | None] = {}  # a page may repeat an href
        regions = []
        for pairs in found:
            links = []
            for element, value in pairs:
                done = joined.get(value, _UNSEEN)
                if done is _UNSEEN:
                    url = join(value)
                    done = joined[value] = None if url is None else (url, _last_segment(url))
                if done is not None:
                    links.append((done[0], element, done[1]))
            regions.append(links)
        return regions

    def _regions(self, response: Response) -> list[Any]:
        if not self.restrict_xpaths:
            return [response.tree]
        return [s.root for xp in self.restrict_xpaths for s in response.xpath(xp)
                if isinstance(s.root, etree._Element)]

    def _values(self, region: Any) -> Iterator[tuple[Any, str]]:
        """(element, attribute value) for each tag and attribute looked at, in document
        order and, within an element, in attribute order."""
        tags = self._iter_tags
        if tags is not None and not tags:
            return
        elements = region.iter(*tags) if tags is not None else region.iter(etree.Element)
        only = self._only_attr
        if only is not None and tags is not None:  # the usual case, in one pass
            yield from [(el, value) for el in elements if (value := el.get(only)) is not None]
            return
        for el in elements:
            if tags is None and el.tag in self._deny_tags:
                continue
            if only is not None:
                value = el.get(only)
                if value is not None:
                    yield el, value
                continue
            for name, value in el.items():
                if self._wanted_attr(name):
                    yield el, value

    def _wanted_attr(self, name: str) -> bool:
        if name in self._deny_attrs:
            return False
        return "*" in self._attrs or name in self._attrs

    def _joiner(self, response: Response, escape: bool) -> Callable[[str], str | None]:
        """The function that turns one attribute value into an absolute URL (or None);
        ``escape=False``: no value has anything to percent-encode."""
        base, page, encoding = response.base_url, response.url, response.encoding
        strip, process = self.strip, self.process_value
        if process is None and strip:
            return _FastJoin(response, escape)

        def scrapy_join(value: str) -> str | None:
            if strip:
                value = value.strip(_HTML5_WHITESPACE)
            return _scrapy_join(base, page, value, encoding, process)
        return scrapy_join


class _FastJoin:
    """Scrapy's join (see ``_scrapy_join``) for the usual attribute value, through the
    response's own joiner, the one ``links()`` uses (http(s) only, fragment removed);
    anything it does not give exactly as w3lib would goes the Scrapy way."""

    __slots__ = ("_absolute", "_base", "_encoding", "_escape", "_itself", "_page")

    def __init__(self, response: Response, escape: bool) -> None:
        self._absolute = response._absolute
        self._base, self._page, self._encoding = response.base_url, response.url, response.encoding
        self._escape = escape
        self._itself: list[str | None] = []  # what "#top" joins to, once known

    def __call__(self, value: str) -> str | None:
        value = value.strip(_HTML5_WHITESPACE)
        hash_at = value.find("#")
        head = value if hash_at < 0 else value[:hash_at]
        if head:
            url = self._absolute(head, self._escape) if head != "?" else None
            if url is None:  # not http(s), or a form it does not take
                return _other_join(self._base, self._page, value, self._encoding)
        else:
            url = self._page_itself()
            if url is None:
                return None
        if 0 <= hash_at < len(value) - 1:  # an empty fragment goes, as in urljoin
            url += value[hash_at:]
        if _PLAIN_URL.fullmatch(url):
            return url
        return _scrapy_join(self._page, self._page, url, self._encoding, None)

    def _page_itself(self) -> str | None:
        """The page's own URL as ``urljoin`` gives it for "" (the base's query kept)."""
        if not self._itself:
            self._itself.append(_scrapy_join(self._base, self._page, "", self._encoding, None))
        return self._itself[0]
