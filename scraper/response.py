"""Response: a fetched page, its decoding, its lazily built trees, and following links.

Two parse paths, each built at most once and only when asked for:
``tree`` (lxml, the fast path behind ``css``/``xpath``/``links()``) and
``soup`` (BeautifulSoup with the lxml builder, behind ``select``). Building
soups from many threads at once is slower than building them one at a time
(the builder calls back into Python for every parser event and fights for the
GIL), so soup building is serialised by one lock; see PERFORMANCE.md.
"""

from __future__ import annotations

import json as jsonlib
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from lxml import etree
from lxml.cssselect import CSSSelector
from lxml import html as lxml_html

from .encoding import decode, detect_encoding
from .http import Request

if TYPE_CHECKING:
    from bs4 import BeautifulSoup, Tag

__all__ = ["Response"]

_SOUP_LOCK = threading.Lock()
_HREFS_EXPR = "//a/@href | //area/@href"
_BASE_RE = re.compile(rb"<base\s[^>]*?href\s*=\s*[\"']?([^\"'\s>]+)", re.I)
_MARKUP_TYPES = ("text/html", "application/xhtml", "text/xml", "application/xml")
_local = threading.local()
_EXCESSIVE_DEPTH = etree.ErrorTypes.ERR_RESOURCE_LIMIT  # "Excessive depth in document"
_SCHEMES = ("http://", "https://")
_DOT_SEGMENT = re.compile(r"(^|/)\.\.?(/|$)")
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")


def _clean(href: str) -> str:
    """An href as browsers read it: outer spaces trimmed, tabs and newlines removed."""
    href = href.strip()
    if "\n" in href or "\t" in href or "\r" in href:
        href = href.replace("\n", "").replace("\t", "").replace("\r", "")
    return href


def _has_host(url: str) -> bool:
    """True when an absolute URL has something after ``scheme://`` before the path."""
    i = url.find("://") + 3
    return len(url) > i and url[i] not in "/?#"


def _compiled() -> dict[str, Any]:
    """This thread's compiled selectors (lxml serialises calls to one XPath object with
    a lock, so each worker thread keeps its own; compiling CSS is ~4x a query's cost)."""
    cache = getattr(_local, "compiled", None)
    if cache is None:
        cache = _local.compiled = {
            _HREFS_EXPR: etree.XPath(_HREFS_EXPR, smart_strings=False)}
    return cache


def _css(selector: str) -> Any:
    cache = _compiled()
    compiled = cache.get(selector)
    if compiled is None:
        if len(cache) > 512:
            cache.clear()
            cache[_HREFS_EXPR] = etree.XPath(_HREFS_EXPR, smart_strings=False)
        compiled = cache[selector] = CSSSelector(selector, translator="html")
    return compiled


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
        self._encoding: str | None = None
        self._text: str | None = None
        self._tree: Any = None
        #: True when the HTML nests deeper than the parser goes (2,048 levels) and the
        #: content below that depth was dropped; counted as ``truncated-html``
        self.truncated = False
        self._soup: BeautifulSoup | None = None
        self._base: str | None = None
        self._join_parts: tuple[str, str, str, str] | None = None

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

    def css(self, selector: str) -> list[Any]:
        """Elements of ``tree`` matching a CSS selector (lxml elements)."""
        found: list[Any] = _css(selector)(self.tree)
        return found

    def xpath(self, expr: str, **variables: Any) -> Any:
        """The result of an XPath expression on ``tree``: a list of elements or strings, or a
        string, number or boolean for expressions such as ``string(...)``."""
        return self.tree.xpath(expr, **variables)

    def select(self, selector: str) -> list[Tag]:
        """Tags of ``soup`` matching a CSS selector."""
        return self.soup.select(selector)

    def select_one(self, selector: str) -> Tag | None:
        """The first tag of ``soup`` matching a CSS selector, or None."""
        return self.soup.select_one(selector)

    # -- URLs ----------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The URL relative links resolve against: ``<base href>`` if any, else ``url``."""
        if self._base is None:
            base = self.url
            # a cheap look first: most pages have no <base> and need no tree for this
            if self.is_markup and _BASE_RE.search(self.content, 0, 65536):
                found = self.tree.xpath("//base/@href")
                if found and found[0].strip():
                    base = urljoin(self.url, _clean(found[0]))
            self._base = base
        return self._base

    def urljoin(self, href: str) -> str:
        """An absolute URL for ``href``, honouring ``<base href>``."""
        return urljoin(self.base_url, _clean(href))

    def _absolute(self, href: str) -> str | None:
        """``href`` made absolute with its fragment removed; None if not http(s).

        The common forms (absolute, root-relative, plain relative) are joined by
        string operations on a once-parsed base; anything unusual (dot segments,
        odd schemes) goes through ``urljoin``.
        """
        href = _clean(href)
        hash_at = href.find("#")
        if hash_at >= 0:
            href = href[:hash_at]
        parts = self._join_parts
        if parts is None:
            parts = self._join_parts = _split_base(self.base_url)
        origin, directory, path_query, scheme = parts
        if href.startswith(_SCHEMES):
            return href if _has_host(href) else None
        if not href:
            return path_query
        first = href[0]
        if first == "/":
            if href.startswith("//"):
                url = scheme + ":" + href
                return url if _has_host(url) else None
            if "/." not in href:
                return origin + href
            return _checked(urljoin(path_query, href))
        if first == "?":
            return path_query.split("?", 1)[0] + href
        return _relative(href, directory, path_query)

    def links(self) -> list[str]:
        """Every absolute http(s) link of ``<a href>``/``<area href>``, defragged, once each."""
        absolute = self._absolute
        seen: set[str] = set()
        out: list[str] = []
        for href in _compiled()[_HREFS_EXPR](self.tree):
            url = absolute(href)
            if url is not None and url not in seen:
                seen.add(url)
                out.append(url)
        return out

    def follow(self, href: Any, callback: Callable[..., Any] | str | None = None,
               **request_kwargs: Any) -> Request:
        """A Request for a URL (relative or absolute) or an element with ``href``."""
        if not isinstance(href, str):
            href = _href_of(href)
        if href.startswith(_SCHEMES) and "#" not in href and _has_host(href) and not (
                "\n" in href or "\t" in href or "\r" in href or href[-1:].isspace()):
            url = href
        else:
            url = self.urljoin(href)
        return Request(url, callback, **request_kwargs)

    def follow_all(self, hrefs: Iterable[Any], callback: Callable[..., Any] | str | None = None,
                   **request_kwargs: Any) -> list[Request]:
        """``follow`` for each of ``hrefs`` (strings or elements) that is an http(s) link;
        ``mailto:``, ``javascript:``, ``tel:`` links and elements without href are skipped."""
        follow = self.follow
        out = []
        for h in hrefs:
            if not isinstance(h, str):
                h = _href_of(h, missing_ok=True)
                if h is None:
                    continue
            if not h.startswith(_SCHEMES):
                m = _SCHEME_RE.match(h.strip())
                if m is not None and m.group(1).lower() not in ("http", "https"):
                    continue
            out.append(follow(h, callback, **request_kwargs))
        return out


def _checked(url: str) -> str | None:
    return url if url.startswith(_SCHEMES) and _has_host(url) else None


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
            url = f"{name}:{rest}"
            return url if _has_host(url) else None
        return _checked(urljoin(path_query, f"{name}:{rest}"))
    if _DOT_SEGMENT.search(href.split("?", 1)[0]):
        return _checked(urljoin(path_query, href))
    return directory + href


def _split_base(base: str) -> tuple[str, str, str, str]:
    parts = urlsplit(base)
    origin = f"{parts.scheme}://{parts.netloc}"
    path = parts.path or "/"
    directory = origin + path[: path.rfind("/") + 1]
    path_query = origin + path + (f"?{parts.query}" if parts.query else "")
    return origin, directory, path_query, parts.scheme


def _href_of(element: Any, missing_ok: bool = False) -> Any:
    """The ``href`` of a bs4 Tag or an lxml element; TypeError/ValueError otherwise (None
    for an element without href when ``missing_ok``)."""
    get = getattr(element, "get", None)
    if get is None:
        raise TypeError(f"follow() takes a URL or an element with href, not {type(element).__name__}")
    href = get("href")
    if href is None:
        if missing_ok:
            return None
        raise ValueError(f"element <{getattr(element, 'tag', None) or getattr(element, 'name', '?')}> has no href")
    if isinstance(href, list):  # bs4 multi-valued attribute
        href = " ".join(href)
    return str(href)
