"""Response: a fetched page, its decoding, its lazily built trees, and following links.

Two parse paths, each built at most once and only when asked for:
``tree`` (lxml, the fast path behind ``links()``, and behind ``css``/``xpath``, which
return Scrapy's selectors: parsel ``SelectorList``s wrapping that same tree, never a
second parse) and ``soup`` (BeautifulSoup with the lxml builder, behind ``select``). Building
soups from many threads at once is slower than building them one at a time
(the builder calls back into Python for every parser event and fights for the
GIL), so soup building is serialised by one lock; see PERFORMANCE.md.
"""

from __future__ import annotations

import codecs
import functools
import json as jsonlib
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Set
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from lxml import etree
from lxml import html as lxml_html
from parsel import Selector, SelectorList
from parsel.csstranslator import HTMLTranslator
from w3lib.url import safe_url_string

from .encoding import decode, detect_encoding
from .http import Request, url_problem
from .links import Link

if TYPE_CHECKING:
    from bs4 import BeautifulSoup, Tag

__all__ = ["Response"]

log = logging.getLogger(__name__)

_SOUP_LOCK = threading.Lock()
_HREFS_EXPR = "//a/@href | //area/@href"
_BASE_RE = re.compile(rb"<base\s[^>]*?href\s*=\s*[\"']?([^\"'\s>]+)", re.I)
_MARKUP_TYPES = ("text/html", "application/xhtml", "text/xml", "application/xml")
_local = threading.local()
_EXCESSIVE_DEPTH = etree.ErrorTypes.ERR_RESOURCE_LIMIT  # "Excessive depth in document"
_SCHEMES = ("http://", "https://")
_DOT_SEGMENT = re.compile(r"(^|/)\.\.?(/|$)")
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
# characters w3lib's safe_url_string would percent-encode (in a path, a query, or both):
# an href without any of them, and ASCII, needs no escaping work at all
_UNSAFE_IN_URL = re.compile(r"[\x00-\x20\"'<>\[\\\]^`{|}\x7f]")
_NO_URLS: frozenset[str] = frozenset()
_NO_LINKS: set[str] = set()  # never added to: a Response's links() makes a set of its own
_CSS_TRANSLATOR = HTMLTranslator()
# parsel's default prefixes: `re:` always; `set:` only when used (see Response.xpath)
_XPATH_NAMESPACES = {"re": "http://exslt.org/regular-expressions"}


# what WHATWG URL parsing strips from both ends of a URL: C0 controls and space (not
# other Unicode spaces: a no-break space is part of the URL, as in browsers)
_C0_OR_SPACE = "".join(map(chr, range(0x21)))


def _clean(href: str) -> str:
    """An href as browsers read it: C0 controls and spaces trimmed from both ends, tabs
    and newlines removed."""
    href = href.strip(_C0_OR_SPACE)
    if "\n" in href or "\t" in href or "\r" in href:
        href = href.replace("\n", "").replace("\t", "").replace("\r", "")
    return href


def _compiled() -> dict[str, Any]:
    """This thread's compiled selectors (lxml serialises calls to one XPath object with
    a lock, so each worker thread keeps its own; compiling CSS is ~4x a query's cost)."""
    cache = getattr(_local, "compiled", None)
    if cache is None:
        cache = _local.compiled = {
            _HREFS_EXPR: etree.XPath(_HREFS_EXPR, smart_strings=False)}
    return cache


def _xpath(query: str) -> Any:
    """This thread's compiled XPath for ``query``, as parsel compiles it (plain strings,
    EXSLT regular expressions under ``re:``); ValueError for a bad expression."""
    cache = _compiled()
    compiled = cache.get(query)
    if compiled is None:
        if len(cache) > 512:
            cache.clear()
            cache[_HREFS_EXPR] = etree.XPath(_HREFS_EXPR, smart_strings=False)
        try:
            compiled = cache[query] = etree.XPath(query, namespaces=_XPATH_NAMESPACES,
                                                  smart_strings=False)
        except etree.XPathError as e:
            raise ValueError(f"XPath error: {e} in {query}") from None
    return compiled


def _css(query: str) -> Any:
    """This thread's compiled XPath for a CSS selector (with parsel's ``::text`` and
    ``::attr(name)``); keyed apart from XPath strings, which may look like CSS."""
    cache = getattr(_local, "css", None)
    if cache is None:
        cache = _local.css = {}
    compiled = cache.get(query)
    if compiled is None:
        if len(cache) > 512:
            cache.clear()
        compiled = cache[query] = _xpath(_CSS_TRANSLATOR.css_to_xpath(query))
    return compiled


def _selected(compiled: Any, root: Any, variables: Mapping[str, Any]) -> SelectorList[Selector]:
    """What ``Selector.xpath`` returns, from this thread's compiled expression: each
    result (element, string, number) wrapped as parsel wraps it."""
    try:
        found = compiled(root, **variables) if variables else compiled(root)
    except etree.XPathError as e:
        raise ValueError(f"XPath error: {e} in {compiled.path}") from None
    if not isinstance(found, list):
        found = [found]
    query = compiled.path
    # _expr is parsel's own (it is how Selector.xpath labels its results, for repr)
    return SelectorList([Selector(root=x, type="html", _expr=query) for x in found])


def _parser(encoding: str) -> lxml_html.HTMLParser:
    """A per-thread lxml parser for one encoding (parsers are not thread-safe)."""
    cache = getattr(_local, "parsers", None)
    if cache is None:
        cache = _local.parsers = {}
    parser = cache.get(encoding)
    if parser is None:
        # huge_tree: libxml2's depth limit goes from 256 to 2048 levels (the body is
        # already capped by max_response_size, so this opens no memory hole)
        parser = cache[encoding] = lxml_html.HTMLParser(encoding=encoding, huge_tree=True)
    return parser


def _parse(body: bytes, parser: lxml_html.HTMLParser) -> tuple[Any, bool]:
    """The tree of ``body`` and whether libxml2 dropped content nested too deep."""
    tree = lxml_html.document_fromstring(body, parser=parser)
    truncated = any(e.type == _EXCESSIVE_DEPTH for e in parser.error_log)
    return tree, truncated


class Response:
    """A final (post-redirect) HTTP response handed to a spider callback."""

    def __init__(self, url: str, status: int, headers: Mapping[str, str], content: bytes,
                 request: Request, *, history: list[Response] | None = None,
                 elapsed: float = 0.0) -> None:
        self.url = url
        self.status = status
        self.headers = headers
        self.content = content
        self.request = request
        self._history = history
        self.elapsed = elapsed
        #: how a cache took part: None (no cache, or not cacheable), "miss" (fetched and
        #: maybe stored), "hit" (served from disk: nothing was sent), "revalidated" (a
        #: 304 confirmed the stored body), "replayed" (from a cassette: nothing was sent)
        self.cached: str | None = None
        self._encoding: str | None = None
        self._text: str | None = None
        self._tree: Any = None
        self._selector: Selector | None = None
        #: True when the HTML nests deeper than the parser goes (2,048 levels) and the
        #: content below that depth was dropped; counted as ``truncated-html``
        self.truncated = False
        self._soup: BeautifulSoup | None = None
        self._base: str | None = None
        self._join_parts: tuple[str, str, str, str, str] | None = None
        self._bad_urls: set[str] | None = None
        self._linked: set[str] = _NO_LINKS  # what links() returned: absolute, clean, escaped

    def __repr__(self) -> str:
        return f"<{self.status} {self.url}>"

    # -- metadata ------------------------------------------------------------
    @property
    def history(self) -> list[Response]:
        """The redirect hops that led here, oldest first (each with url and status)."""
        if self._history is None:
            chain = self.request.meta.get("redirect_chain") or ()
            self._history = [Response(url, status, {}, b"", self.request) for url, status in chain]
        return self._history

    @property
    def meta(self) -> dict[str, Any]:
        """The request's ``meta`` dict."""
        return self.request.meta

    @property
    def depth(self) -> int:
        """Links from a start URL to this page (start requests are depth 0)."""
        return self.request.depth

    @property
    def content_type(self) -> str:
        """The media type of the body, lower-cased, without parameters."""
        return (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()

    # -- decoding ------------------------------------------------------------
    @property
    def encoding(self) -> str:
        """BOM, then HTTP charset, then ``<meta charset>``, then UTF-8, then detection
        (the rules are in ``scraper.encoding``)."""
        if self._encoding is None:
            self._encoding = self._detect_encoding()
        return self._encoding

    def _detect_encoding(self) -> str:
        return detect_encoding(self.content, self.headers.get("Content-Type"))

    @property
    def text(self) -> str:
        """The body decoded with ``encoding`` (undecodable bytes replaced)."""
        if self._text is None:
            self._text = decode(self.content, self.encoding)
        return self._text

    def json(self, **kwargs: Any) -> Any:
        """The body parsed as JSON, which is UTF-8 (or UTF-16/32 with its BOM or by
        its zero bytes) whatever charset the server declared (RFC 8259 8.1); a body
        that is none of those is decoded with ``encoding`` instead (as Scrapy 2.18)."""
        try:
            return jsonlib.loads(self.content, **kwargs)
        except UnicodeDecodeError:
            return jsonlib.loads(self.text, **kwargs)

    # -- trees ---------------------------------------------------------------
    @property
    def is_markup(self) -> bool:
        """True when the body is HTML or XML (or untyped), so trees make sense."""
        ctype = self.content_type
        return not ctype or ctype.startswith(_MARKUP_TYPES)

    @property
    def tree(self) -> Any:
        """The lxml.html tree of the body, built once on first use."""
        if self._tree is None:
            tree = None
            body = self.content
            if body.strip() and self.is_markup:
                try:
                    tree, self.truncated = _parse(body, _parser(self.encoding))
                except LookupError:
                    # libxml2 does not know every Python codec (euc_jp, utf-16-le, ...):
                    # decode in Python and let lxml read UTF-8
                    tree = self._tree_from_text()
                except (etree.ParserError, ValueError):
                    tree = None
            if tree is None:
                tree = lxml_html.document_fromstring("<html></html>")
            self._tree = tree
        return self._tree

    def _tree_from_text(self) -> Any:
        try:
            tree, self.truncated = _parse(self.text.encode("utf-8"), _parser("utf-8"))
        except (etree.ParserError, ValueError):
            return None
        return tree

    @property
    def soup(self) -> BeautifulSoup:
        """A BeautifulSoup of the body (lxml parser), built once on first use."""
        if self._soup is None:
            from bs4 import BeautifulSoup

            markup = self.content if self.is_markup else b""
            with _SOUP_LOCK:
                self._soup = BeautifulSoup(markup, "lxml", from_encoding=self.encoding)
        return self._soup

    @property
    def selector(self) -> Selector:
        """A parsel ``Selector`` around ``tree`` (its ``root``), made once on first use."""
        if self._selector is None:
            self._selector = Selector(root=self.tree, type="html")
        return self._selector

    def css(self, query: str) -> SelectorList[Selector]:
        """Scrapy's ``response.css``: a parsel ``SelectorList`` of what a CSS selector
        (with ``::text`` and ``::attr(name)``) matches in ``tree``."""
        # the same result as self.selector.css(query), through this thread's compiled
        # expressions: no translation, no evaluator lookup, no lock shared with other workers
        return _selected(_css(query), self.tree, {})

    def xpath(self, query: str, namespaces: Mapping[str, str] | None = None,
              **variables: Any) -> SelectorList[Selector]:
        """Scrapy's ``response.xpath``: a parsel ``SelectorList`` of what an XPath
        expression selects in ``tree`` (``$name`` variables as keyword arguments)."""
        if namespaces or "set:" in query:
            # parsel registers extra prefixes (and EXSLT sets) per call: let it
            return self.selector.xpath(query, namespaces, **variables)
        return _selected(_xpath(query), self.tree, variables)

    def select(self, selector: str) -> list[Tag]:
        """Tags of ``soup`` matching a CSS selector."""
        return self.soup.select(selector)

    def select_one(self, selector: str) -> Tag | None:
        """The first tag of ``soup`` matching a CSS selector, or None."""
        return self.soup.select_one(selector)

    # -- URLs ----------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The URL relative links resolve against: ``<base href>`` if any, else ``url``.
        A ``<base href>`` that is not a well-formed http(s) URL once joined is ignored."""
        if self._base is None:
            base = self.url
            # a cheap look first: most pages have no <base> and need no tree for this
            if self.is_markup and _BASE_RE.search(self.content, 0, 65536):
                found = self.tree.xpath("//base/@href")
                if found and found[0].strip():
                    base = _joined_base(self.url, _clean(found[0]))
            self._base = base
        return self._base

    @property
    def bad_urls(self) -> Set[str]:
        """The malformed URLs (no host, a bad port or IPv6 address, text that cannot be
        encoded) that ``links()``, ``follow_all()`` and link extraction skipped on this
        page; the crawl counts them as ``bad-url`` once the callback returns."""
        return self._bad_urls or _NO_URLS

    def _skip(self, url: str, why: str) -> None:
        bad = self._bad_urls
        if bad is None:
            bad = self._bad_urls = set()
        if url not in bad:
            bad.add(url)
            log.debug("%s: skipped the malformed URL %r (%s)", self.url, url, why)

    def urljoin(self, href: str) -> str:
        """An absolute URL for ``href``, honouring ``<base href>``, joined as ``links()``
        joins it and percent-encoded as a browser sends it (see ``_browser_url``); the
        fragment is kept. Host and port are not checked here (``Request`` does that);
        ValueError naming the URL when it cannot be parsed at all."""
        href = _clean(href)
        hash_at = href.find("#")
        head, fragment = (href, "") if hash_at < 0 else (href[:hash_at], href[hash_at:])
        joined = _join(head, self._parts())
        if joined is None:  # not http(s) (mailto:, ftp:): as the standard library joins it
            try:
                return urljoin(self.base_url, href)
            except ValueError as e:
                raise ValueError(f"malformed URL {href!r}: {e}") from None
        url = joined + fragment
        if not url.isascii() or _UNSAFE_IN_URL.search(url) is not None:
            url = _browser_url(url, self._url_codec())
        return url

    def _parts(self) -> tuple[str, str, str, str, str]:
        """The base URL split once for joining (see ``_split_base``)."""
        parts = self._join_parts
        if parts is None:
            parts = self._join_parts = _split_base(self.base_url)
        return parts

    def _url_codec(self) -> str:
        """The encoding of query strings in this page's links (see ``_query_codec``)."""
        return _query_codec(self.encoding)

    def _absolute(self, href: str, escape: bool = True) -> str | None:
        """``href`` as the absolute http(s) URL a browser would request, fragment removed;
        None for other schemes (``mailto:``...), and for a malformed URL, which is
        recorded in ``bad_urls``. ``escape=False``: the caller knows the href is ASCII
        with nothing to escape.

        Cheap for the common case: an ASCII href with nothing to escape, on the page's
        own host, is only joined; one naming another host has its host and port checked
        (one regex match); only hrefs with non-ASCII or unsafe characters are escaped.
        """
        href = _clean(href)
        hash_at = href.find("#")
        if hash_at >= 0:
            href = href[:hash_at]
        parts = self._join_parts or self._parts()
        url = _join(href, parts)
        if url is None:
            return None
        if escape and (not href.isascii() or _UNSAFE_IN_URL.search(href) is not None):
            try:
                url = _browser_url(url, self._url_codec())
            except ValueError as e:
                self._skip(url, str(e))
                return None
        elif url.startswith(parts[4]):
            return url  # the base's own scheme, host and port, which are well-formed
        problem = url_problem(url)
        if problem is not None:
            self._skip(url, problem)
            return None
        return url

    def links(self) -> list[str]:
        """Every absolute http(s) link of ``<a href>``/``<area href>``, defragged, once each,
        percent-encoded as a browser sends it; malformed ones are skipped (``bad_urls``)."""
        absolute = self._absolute
        hrefs = _compiled()[_HREFS_EXPR](self.tree)
        # one look at all the hrefs at once: on most pages none has anything to escape,
        # and no href then needs a look of its own
        together = "".join(hrefs)
        escape = not together.isascii() or _UNSAFE_IN_URL.search(together) is not None
        seen: set[str] = set()
        out: list[str] = []
        for href in hrefs:
            url = absolute(href, escape)
            if url is not None and url not in seen:
                seen.add(url)
                out.append(url)
        # follow_all() takes these as they are, as follow() would, unless the base URL
        # itself has characters follow() escapes (then a joined link has them too)
        base = self._parts()[2]  # path and query: an empty href is the base itself
        if base.isascii() and _UNSAFE_IN_URL.search(base) is None:
            self._linked = seen
        return out

    def follow(self, href: Any, callback: Callable[..., Any] | str | None = None,
               **request_kwargs: Any) -> Request:
        """A Request for a URL (relative or absolute), a ``Link``, or an element with
        ``href`` (or ``src``): a parsel Selector, a bs4 Tag or an lxml element. An attribute
        Selector (``a::attr(href)``, ``//img/@src``) stands for its value. The URL is
        percent-encoded as ``urljoin`` does; a malformed one (a bad host or port) is a
        ValueError naming it."""
        if not isinstance(href, str):
            href = _href_of(href)
        if href.startswith(_SCHEMES) and "#" not in href and not (
                "\n" in href or "\t" in href or "\r" in href or href[-1:].isspace()):
            url = href
            if not url.isascii() or _UNSAFE_IN_URL.search(url) is not None:
                url = _browser_url(url, self._url_codec())
        else:
            url = self.urljoin(href)
        # a malformed URL is a ValueError here (from Request), at the spider's line
        return Request(url, callback, **request_kwargs)

    def follow_all(self, urls: Iterable[Any] | None = None,
                   callback: Callable[..., Any] | str | None = None, *,
                   css: str | None = None, xpath: str | None = None,
                   **request_kwargs: Any) -> list[Request]:
        """``follow`` for each of ``urls`` (strings, Links, Selectors or elements) that is an
        http(s) link; ``mailto:``, ``javascript:``, ``tel:`` links and elements without href
        are skipped. As in Scrapy, ``css=`` or ``xpath=`` instead of ``urls`` follows the
        links of the elements they select (exactly one of the three)."""
        if (urls is not None) + (css is not None) + (xpath is not None) != 1:
            raise ValueError("follow_all() takes exactly one of: urls, css, xpath")
        if css is not None:
            urls = self.css(css)
        elif xpath is not None:
            urls = self.xpath(xpath)
        linked = self._linked
        out = []
        for h in urls if urls is not None else ():
            if type(h) is str and h in linked:  # links() made it: nothing to join or check
                request = self._request(h, callback, request_kwargs)
            else:
                request = self._follow_any(h, callback, request_kwargs)
            if request is not None:
                out.append(request)
        return out

    def _follow_any(self, h: Any, callback: Callable[..., Any] | str | None,
                    request_kwargs: dict[str, Any]) -> Request | None:
        """``follow(h)``, or None for what follow_all() skips: no href, not http(s), or
        malformed (skipped and counted, not the page's end)."""
        if not isinstance(h, str):
            h = _href_of(h, missing_ok=True)
            if h is None:
                return None
        if not h.startswith(_SCHEMES):
            m = _SCHEME_RE.match(h.strip())
            if m is not None and m.group(1).lower() not in ("http", "https"):
                return None
        try:
            return self.follow(h, callback, **request_kwargs)
        except ValueError as e:
            self._skip(h, str(e))
            return None

    def _request(self, url: str, callback: Callable[..., Any] | str | None,
                 request_kwargs: dict[str, Any]) -> Request | None:
        """A Request for a URL ``links()`` returned, which is what ``follow`` would make
        of it; None (skipped and counted) if ``Request`` refuses it."""
        try:
            return Request(url, callback, **request_kwargs)
        except ValueError as e:
            self._skip(url, str(e))
            return None


def _join(href: str, parts: tuple[str, str, str, str, str]) -> str | None:
    """A clean, defragmented ``href`` made absolute on a base split by ``_split_base``;
    None if not http(s).

    The common forms (absolute, root-relative, plain relative) are joined by
    string operations on the once-parsed base; anything unusual (dot segments,
    odd schemes) goes through ``urljoin``.
    """
    origin, directory, path_query, scheme, _ = parts
    if href.startswith(_SCHEMES):
        return href
    if not href:
        return path_query
    first = href[0]
    if first == "/":
        if href.startswith("//"):
            return scheme + ":" + href
        if "/." not in href:
            return origin + href
        return _checked(urljoin(path_query, href))
    if first == "?":
        return path_query.split("?", 1)[0] + href
    return _relative(href, directory, path_query)


def _checked(url: str) -> str | None:
    return url if url.startswith(_SCHEMES) else None


def _relative(href: str, directory: str, path_query: str) -> str | None:
    """An href that starts with neither ``/`` nor ``?``: a scheme, or a path relative to
    the base's directory."""
    m = _SCHEME_RE.match(href)
    if m is not None:
        name = m.group(1).lower()
        if name not in ("http", "https"):
            return None  # mailto:, javascript:, tel:, data: ...
        rest = href[m.end():]
        if rest.startswith("//"):
            return f"{name}:{rest}"
        return _checked(urljoin(path_query, f"{name}:{rest}"))
    if _DOT_SEGMENT.search(href.split("?", 1)[0]):
        return _dotted(href, directory, path_query)
    return directory + href


def _dotted(href: str, directory: str, path_query: str) -> str | None:
    """``urljoin(path_query, href)`` for a relative path with dot segments (``./x``,
    ``../x``), by urljoin's own steps on the base's directory, without parsing either
    URL again (~1/5 of the cost): the base's segments and the href's, empty ones
    inside dropped, ``.`` skipped, ``..`` taking one back. An href with ``;`` (path
    parameters, which urljoin splits off) goes to urljoin itself."""
    path, _, query = href.partition("?")
    if ";" in path:
        return _checked(urljoin(path_query, href))
    start = directory.index("/", directory.index("//") + 2)  # where the base's path starts
    segments = directory[start:].split("/") + path.split("/")
    segments[1:-1] = [s for s in segments[1:-1] if s]
    resolved: list[str] = []
    for segment in segments:
        if segment == "..":
            if resolved:
                resolved.pop()
        elif segment != ".":
            resolved.append(segment)
    if segments[-1] in (".", ".."):
        resolved.append("")
    joined = "/".join(resolved) or "/"
    if joined[0] != "/":
        joined = "/" + joined
    url = directory[:start] + joined
    return url + "?" + query if query else url


def _split_base(base: str) -> tuple[str, str, str, str, str]:
    """The base's origin, directory, path and query, scheme, and ``origin/`` (what every
    URL on the base's own host starts with)."""
    parts = urlsplit(base)
    origin = f"{parts.scheme}://{parts.netloc}"
    path = parts.path or "/"
    directory = origin + path[: path.rfind("/") + 1]
    path_query = origin + path + (f"?{parts.query}" if parts.query else "")
    return origin, directory, path_query, parts.scheme, origin + "/"


def _joined_base(url: str, href: str) -> str:
    """``href`` of a ``<base>`` joined to the page's URL, or the page's URL when that is
    not a well-formed http(s) URL (browsers fall back to the document's URL too)."""
    try:
        base = urljoin(url, href)
    except ValueError:
        return url
    return base if url_problem(base) is None else url


@functools.lru_cache(maxsize=64)
def _query_codec(encoding: str) -> str:
    """The page's own encoding, but UTF-8 for a UTF-16/32 page (WHATWG URL: the
    "encoding" the URL parser is given)."""
    name = codecs.lookup(encoding).name
    return "utf-8" if name.startswith(("utf-16", "utf-32")) else name


# the same links recur on every page of a site: escaping one (~5 us in w3lib) is done
# once while it is among the 4,096 most recent, not once per page (errors are not cached)
@functools.lru_cache(maxsize=4096)
def _browser_url(url: str, codec: str) -> str:
    """``url`` percent-encoded as a browser sends it (WHATWG URL standard): the path as
    UTF-8, the query in ``codec`` (the page's encoding: ``£`` is ``%A3`` from a latin-1
    page), spaces and other unsafe ASCII escaped; w3lib's ``safe_url_string`` does all
    that. A query character the page's encoding cannot encode is sent as browsers send
    it, an HTML character reference ``&#NNNN;`` percent-encoded, which w3lib does not do.
    ValueError naming the URL when it cannot be parsed."""
    if codec != "utf-8" and not url.isascii():
        url = _query_char_refs(url, codec)
    try:
        return safe_url_string(url, encoding=codec)
    except ValueError as e:  # a bad port or IPv6 address; a lone surrogate (UnicodeError)
        raise ValueError(f"malformed URL {url!r}: {e}") from None


def _query_char_refs(url: str, codec: str) -> str:
    """``url`` with each query character that ``codec`` cannot encode replaced by
    ``%26%23NNNN%3B`` (WHATWG URL: "percent-encode after encoding")."""
    start = url.find("?")
    if start < 0:
        return url
    end = url.find("#", start)
    end = len(url) if end < 0 else end
    query = url[start + 1:end]
    try:
        query.encode(codec)
        return url
    except UnicodeEncodeError:
        pass
    out = []
    for char in query:
        try:
            char.encode(codec)
            out.append(char)
        except UnicodeEncodeError:
            out.append(f"%26%23{ord(char)}%3B")
    return url[:start + 1] + "".join(out) + url[end:]


def _href_of(element: Any, missing_ok: bool = False) -> Any:
    """Where a Link, a parsel Selector, a bs4 Tag or an lxml element points: its ``href``,
    else its ``src``; an attribute (or text) Selector is its value. TypeError for anything
    else; ValueError for an element with neither (None instead when ``missing_ok``)."""
    if isinstance(element, Selector):
        element = element.root
        if isinstance(element, str):
            return element
        if not hasattr(element, "tag"):  # a number or boolean: count(//a), boolean(...)
            if missing_ok:
                return None
            raise ValueError(f"follow() cannot follow a Selector of {element!r}")
    elif isinstance(element, Link):
        return element.url
    elif isinstance(element, SelectorList):  # a list with a get() of its own: not an element
        raise ValueError("follow() takes one Selector, not a SelectorList: "
                         "use follow_all() for all of them, or [0] for the first")
    return _element_href(element, missing_ok)


def _element_href(element: Any, missing_ok: bool) -> Any:
    """The ``href`` (else ``src``) of a bs4 Tag or an lxml element."""
    get = getattr(element, "get", None)
    if get is None:
        raise TypeError(f"follow() takes a URL or an element with href, not {type(element).__name__}")
    href = get("href")
    if href is None:
        href = get("src")  # <img>, <iframe>, <script>: followed like Scrapy's //img/@src
    if href is None:
        if missing_ok:
            return None
        raise ValueError(f"element <{getattr(element, 'tag', None) or getattr(element, 'name', '?')}> has no href")
    if isinstance(href, list):  # bs4 multi-valued attribute
        href = " ".join(href)
    return str(href)
