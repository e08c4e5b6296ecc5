"""LinkExtractor, Link and the selector forms of follow()/follow_all(), against Scrapy's
own tests: each case names its source in Scrapy (https://github.com/scrapy/scrapy,
BSD licence) as ``file Class.test``. The sample pages are Scrapy's, in ``data/``.

Responses are built with the public constructor, as Scrapy's tests build
``HtmlResponse``; the charset Scrapy passes as ``encoding=`` travels here in the
Content-Type header, where a real server sends it.

Left out, on purpose: Scrapy's ``test_canonicalize_once_per_link`` (it counts calls to
a monkeypatched internal) and ``TestLxmlParserLinkExtractor`` (an internal class this
package does not have); ``test_follow_encoding`` belongs to URL escaping, not selectors.
"""

from __future__ import annotations

import html
import pickle
import re
from pathlib import Path

import pytest
from parsel import Selector

from scraper import Link, LinkExtractor, Request, Response
from scraper.links import IGNORED_EXTENSIONS

DATA = Path(__file__).parent / "data"
LE = "tests/test_linkextractors.py TestLxmlLinkExtractor"
TEXT = "tests/test_http_response_text.py TestTextResponse"


def response(url: str, body: bytes, encoding: str | None = None,
             ctype: str = "text/html") -> Response:
    headers = {"Content-Type": f"{ctype}; charset={encoding}" if encoding else ctype}
    return Response(url, 200, headers, body, Request(url))


def sample(name: str = "linkextractor.html") -> Response:
    """Scrapy's ``_links_response`` / ``TestLxmlLinkExtractor.setup_method``."""
    return response("http://example.com/index", (DATA / name).read_bytes())


PAGE4 = "http://example.com/page%204.html"
ALL_LINKS = [
    Link(url="http://example.com/sample1.html", text=""),
    Link(url="http://example.com/sample2.html", text="sample 2"),
    Link(url="http://example.com/sample3.html", text="sample 3 text"),
    Link(url="http://example.com/sample3.html#foo", text="sample 3 repetition with fragment"),
    Link(url="http://www.google.com/something", text=""),
    Link(url="http://example.com/innertag.html", text="inner tag"),
    Link(url=PAGE4, text="href with whitespaces"),
]
SAMPLE_LINKS = ALL_LINKS[:4]
NOFOLLOW_HTML = b"""<html><head><title>Page title</title></head>
        <body>
        <div class='links'>
        <p><a href="/about.html">About us</a></p>
        </div>
        <div>
        <p><a href="/follow.html">Follow this link</a></p>
        </div>
        <div>
        <p><a href="/nofollow.html" rel="nofollow">Dont follow this one</a></p>
        </div>
        <div>
        <p><a href="/nofollow2.html" rel="blah">Choose to follow or not</a></p>
        </div>
        <div>
        <p><a href="http://google.com/something" rel="external nofollow">External link not to follow</a></p>
        </div>
        </body></html>"""


def nofollow_links(host: str) -> list[Link]:
    return [
        Link(url=f"http://{host}/about.html", text="About us"),
        Link(url=f"http://{host}/follow.html", text="Follow this link"),
        Link(url=f"http://{host}/nofollow.html", text="Dont follow this one", nofollow=True),
        Link(url=f"http://{host}/nofollow2.html", text="Choose to follow or not"),
        Link(url="http://google.com/something", text="External link not to follow",
             nofollow=True),
    ]


# -- Link ------------------------------------------------------------------------------
def test_link_equality_hash_repr_and_type_check():
    # Scrapy tests/test_link.py TestLink.test_eq_and_hash, test_repr, test_bytes_url
    a, b = Link("http://example.com/x", "t"), Link("http://example.com/x", "t")
    assert a == b and hash(a) == hash(b)
    assert a != Link("http://example.com/x", "other")
    assert a != Link("http://example.com/x", "t", nofollow=True)
    assert eval(repr(a)) == a
    with pytest.raises(TypeError):
        Link(b"http://example.com/x")  # type: ignore[arg-type]


# -- LinkExtractor: the sample page ----------------------------------------------------------
def test_urls_type():
    # LE.test_urls_type
    assert all(isinstance(link.url, str) for link in LinkExtractor().extract_links(sample()))


def test_extract_all_links():
    # LE.test_extract_all_links
    assert LinkExtractor().extract_links(sample()) == ALL_LINKS


def test_extract_filter_allow():
    # LE.test_extract_filter_allow
    assert LinkExtractor(allow=("sample",)).extract_links(sample()) == SAMPLE_LINKS


def test_extract_filter_allow_with_duplicates():
    # LE.test_extract_filter_allow_with_duplicates
    assert LinkExtractor(allow=("sample",), unique=False).extract_links(sample()) == [
        Link(url="http://example.com/sample1.html", text=""),
        Link(url="http://example.com/sample2.html", text="sample 2"),
        Link(url="http://example.com/sample3.html", text="sample 3 text"),
        Link(url="http://example.com/sample3.html", text="sample 3 repetition"),
        Link(url="http://example.com/sample3.html", text="sample 3 repetition"),
        Link(url="http://example.com/sample3.html#foo", text="sample 3 repetition with fragment"),
    ]


def test_extract_filter_allow_with_duplicates_canonicalize():
    # LE.test_extract_filter_allow_with_duplicates_canonicalize
    lx = LinkExtractor(allow=("sample",), unique=False, canonicalize=True)
    assert lx.extract_links(sample()) == [
        Link(url="http://example.com/sample1.html", text=""),
        Link(url="http://example.com/sample2.html", text="sample 2"),
        Link(url="http://example.com/sample3.html", text="sample 3 text"),
        Link(url="http://example.com/sample3.html", text="sample 3 repetition"),
        Link(url="http://example.com/sample3.html", text="sample 3 repetition"),
        Link(url="http://example.com/sample3.html", text="sample 3 repetition with fragment"),
    ]


def test_extract_filter_allow_no_duplicates_canonicalize():
    # LE.test_extract_filter_allow_no_duplicates_canonicalize
    lx = LinkExtractor(allow=("sample",), unique=True, canonicalize=True)
    assert lx.extract_links(sample()) == SAMPLE_LINKS[:3]


def test_extract_filter_allow_and_deny():
    # LE.test_extract_filter_allow_and_deny
    assert LinkExtractor(allow=("sample",), deny=("3",)).extract_links(sample()) == SAMPLE_LINKS[:2]


def test_extract_filter_allowed_domains():
    # LE.test_extract_filter_allowed_domains
    assert LinkExtractor(allow_domains=("google.com",)).extract_links(sample()) == [
        Link(url="http://www.google.com/something", text="")]


def test_extraction_using_single_values():
    # LE.test_extraction_using_single_values
    r = sample()
    assert LinkExtractor(allow="sample").extract_links(r) == SAMPLE_LINKS
    assert LinkExtractor(allow="sample", deny="3").extract_links(r) == SAMPLE_LINKS[:2]
    google = [Link(url="http://www.google.com/something", text="")]
    assert LinkExtractor(allow_domains="google.com").extract_links(r) == google
    assert LinkExtractor(deny_domains="example.com").extract_links(r) == google


def test_nofollow():
    # LE.test_nofollow
    r = response("http://example.org/somepage/index.html", NOFOLLOW_HTML)
    assert LinkExtractor().extract_links(r) == nofollow_links("example.org")


def test_matches():
    # LE.test_matches
    url1 = "http://lotsofstuff.com/stuff1/index"
    url2 = "http://evenmorestuff.com/uglystuff/index"
    lx = LinkExtractor(allow=(r"stuff1",))
    assert lx.matches(url1) and not lx.matches(url2)
    lx = LinkExtractor(deny=(r"uglystuff",))
    assert lx.matches(url1) and not lx.matches(url2)
    lx = LinkExtractor(allow_domains=("evenmorestuff.com",))
    assert not lx.matches(url1) and lx.matches(url2)
    lx = LinkExtractor(deny_domains=("lotsofstuff.com",))
    assert not lx.matches(url1) and lx.matches(url2)
    lx = LinkExtractor(allow=["blah1"], deny=["blah2"], allow_domains=["blah1.com"],
                       deny_domains=["blah2.com"])
    assert lx.matches("http://blah1.com/blah1")
    assert not lx.matches("http://blah1.com/blah2")
    assert not lx.matches("http://blah2.com/blah1")
    assert not lx.matches("http://blah2.com/blah2")


def test_restrict_xpaths():
    # LE.test_restrict_xpaths
    lx = LinkExtractor(restrict_xpaths=('//div[@id="subwrapper"]',))
    assert lx.extract_links(sample()) == SAMPLE_LINKS[:2]


def test_restrict_xpaths_encoding():
    # LE.test_restrict_xpaths_encoding
    body = b"""<html><head><title>Page title</title></head>
        <body><p><a href="item/12.html">Item 12</a></p>
        <div class='links'>
        <p><a href="/about.html">About us\xa3</a></p>
        </div>
        <div>
        <p><a href="/nofollow.html">This shouldn't be followed</a></p>
        </div>
        </body></html>"""
    r = response("http://example.org/somepage/index.html", body, "windows-1252")
    assert LinkExtractor(restrict_xpaths="//div[@class='links']").extract_links(r) == [
        Link(url="http://example.org/about.html", text="About us\xa3")]


def test_restrict_xpaths_with_html_entities():
    # LE.test_restrict_xpaths_with_html_entities: the path is UTF-8, the query the page's
    body = b'<html><body><p><a href="/&hearts;/you?c=&euro;">text</a></p></body></html>'
    r = response("http://example.org/somepage/index.html", body, "iso8859-15")
    assert LinkExtractor(restrict_xpaths="//p").extract_links(r) == [
        Link(url="http://example.org/%E2%99%A5/you?c=%A4", text="text")]


def test_restrict_xpaths_concat_in_handle_data():
    # LE.test_restrict_xpaths_concat_in_handle_data
    body = b"""<html><body><div><a href="/foo">&gt;\xbe\xa9&lt;\xb6\xab</a></body></html>"""
    r = response("http://example.org", body, "gb18030")
    assert LinkExtractor(restrict_xpaths="//div").extract_links(r) == [
        Link(url="http://example.org/foo", text=">\u4eac<\u4e1c", fragment="", nofollow=False)]


def test_restrict_css():
    # LE.test_restrict_css
    assert LinkExtractor(restrict_css=("#subwrapper a",)).extract_links(sample()) == [
        Link(url="http://example.com/sample2.html", text="sample 2")]


def test_restrict_css_and_restrict_xpaths_together():
    # LE.test_restrict_css_and_restrict_xpaths_together
    lx = LinkExtractor(restrict_xpaths=('//div[@id="subwrapper"]',),
                       restrict_css=("#subwrapper + a",))
    assert lx.extract_links(sample()) == SAMPLE_LINKS[:3]


def test_area_tag_with_unicode_present():
    # LE.test_area_tag_with_unicode_present
    body = b"""<html><body>\xbe\xa9<map><area href="http://example.org/foo" /></map></body></html>"""
    r = response("http://example.org", body, "utf-8")
    lx = LinkExtractor()
    for _ in range(3):
        lx.extract_links(r)
    assert lx.extract_links(r) == [
        Link(url="http://example.org/foo", text="", fragment="", nofollow=False)]


@pytest.mark.parametrize("restrict", [(), "//div"], ids=["whole-page", "restrict_xpaths"])
def test_encoded_url(restrict):
    # LE.test_encoded_url, LE.test_encoded_url_in_restricted_xpath
    body = b"""<html><body><div><a href="?page=2">BinB</a></body></html>"""
    r = response("http://known.fm/AC%2FDC/", body, "utf8")
    assert LinkExtractor(restrict_xpaths=restrict).extract_links(r) == [
        Link(url="http://known.fm/AC%2FDC/?page=2", text="BinB", fragment="", nofollow=False)]


def test_ignored_extensions():
    # LE.test_ignored_extensions
    r = response("http://example.org/", b"""<a href="page.html">asd</a> and <a href="photo.jpg">""")
    assert LinkExtractor().extract_links(r) == [Link(url="http://example.org/page.html", text="asd")]
    assert LinkExtractor(deny_extensions=["html"]).extract_links(r) == [
        Link(url="http://example.org/photo.jpg")]


def test_ignored_extensions_are_scrapys_list():
    # scrapy/linkextractors/__init__.py IGNORED_EXTENSIONS (91 entries at commit 11079cb);
    # tar.gz has two dots, and an extension is matched without case, before ;params
    assert len(IGNORED_EXTENSIONS) == 91 and {"tar.gz", "pdf", "jpg"} <= set(IGNORED_EXTENSIONS)
    r = response("http://example.org/", b'<a href="a.tar.gz">1</a><a href="b.gz">2</a>'
                                         b'<a href="c.PDF?x=1">3</a><a href="d.pdf;s=1">4</a>')
    assert [link.url for link in LinkExtractor().extract_links(r)] == ["http://example.org/b.gz"]


def test_process_value():
    # LE.test_process_value
    body = b"""
<a href="javascript:goToPage('../other/page.html','photo','width=600,height=540,scrollbars'); return false">Text</a>
<a href="/about.html">About us</a>
        """
    r = response("http://example.org/somepage/index.html", body, "windows-1252")

    def process_value(value):
        m = re.search(r"javascript:goToPage\('(.*?)'", value)
        return m.group(1) if m else None

    assert LinkExtractor(process_value=process_value).extract_links(r) == [
        Link(url="http://example.org/other/page.html", text="Text")]


def test_base_url_with_restrict_xpaths():
    # LE.test_base_url_with_restrict_xpaths
    body = b"""<html><head><title>Page title</title><base href="http://otherdomain.com/base/" /></head>
        <body><p><a href="item/12.html">Item 12</a></p>
        </body></html>"""
    r = response("http://example.org/somepage/index.html", body)
    assert LinkExtractor(restrict_xpaths="//p").extract_links(r) == [
        Link(url="http://otherdomain.com/base/item/12.html", text="Item 12")]


def test_attrs():
    # LE.test_attrs
    assert LinkExtractor(attrs="href").extract_links(sample()) == ALL_LINKS
    lx = LinkExtractor(attrs=("href", "src"), tags=("a", "area", "img"), deny_extensions=())
    assert lx.extract_links(sample()) == [
        *ALL_LINKS[:2], Link(url="http://example.com/sample2.jpg", text=""), *ALL_LINKS[2:]]
    assert LinkExtractor(attrs=None).extract_links(sample()) == []


def test_tags():
    # LE.test_tags
    body = (b'<html><area href="sample1.html"></area>'
            b'<a href="sample2.html">sample 2</a><img src="sample2.jpg"/></html>')
    r = response("http://example.com/index.html", body)
    one = Link(url="http://example.com/sample1.html", text="")
    two = Link(url="http://example.com/sample2.html", text="sample 2")
    assert LinkExtractor(tags=None).extract_links(r) == []
    assert LinkExtractor().extract_links(r) == [one, two]
    assert LinkExtractor(tags="area").extract_links(r) == [one]
    assert LinkExtractor(tags="a").extract_links(r) == [two]
    lx = LinkExtractor(tags=("a", "img"), attrs=("href", "src"), deny_extensions=())
    assert lx.extract_links(r) == [two, Link(url="http://example.com/sample2.jpg", text="")]


def test_tags_attrs():
    # LE.test_tags_attrs
    body = b"""
        <html><body>
        <div id="item1" data-url="get?id=1"><a href="#">Item 1</a></div>
        <div id="item2" data-url="get?id=2"><a href="#">Item 2</a></div>
        </body></html>
        """
    r = response("http://example.com/index.html", body)
    expected = [Link(url="http://example.com/get?id=1", text="Item 1"),
                Link(url="http://example.com/get?id=2", text="Item 2")]
    assert LinkExtractor(tags="div", attrs="data-url").extract_links(r) == expected
    assert LinkExtractor(tags=("div",), attrs=("data-url",)).extract_links(r) == expected


def test_tags_attrs_wildcard_and_deny():
    # LE.test_tags_attrs_wildcard_and_deny
    body = b"""
        <html><body>
        <a href="a.html">a</a>
        <div data-url="div.html">div</div>
        <span href="span.html">span</span>
        <p data-url="p.html">p</p>
        </body></html>
        """
    r = response("http://example.com/index.html", body)

    def urls(**kwargs):
        return [link.url for link in LinkExtractor(**kwargs).extract_links(r)]

    a, div, span, p = (f"http://example.com/{n}.html" for n in ("a", "div", "span", "p"))
    assert urls() == [a]
    assert urls(tags="*") == [a, span]
    assert urls(tags="*", attrs="*") == [a, div, span, p]
    assert urls(tags="*", attrs="*", deny_tags="div") == [a, span, p]
    assert urls(tags="*", attrs="*", deny_attrs="data-url") == [a, span]
    assert urls(tags=("a", "span"), attrs="*", deny_tags="span") == [a]
    assert urls(tags="a", attrs="*") == [a]


XHTML = b"""
<?xml version="1.0"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN"
    "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">
<head>
    <title>XHTML document title</title>
</head>
<body>
    <div class='links'>
    <p><a href="/about.html">About us</a></p>
    </div>
    <div>
    <p><a href="/follow.html">Follow this link</a></p>
    </div>
    <div>
    <p><a href="/nofollow.html" rel="nofollow">Dont follow this one</a></p>
    </div>
    <div>
    <p><a href="/nofollow2.html" rel="blah">Choose to follow or not</a></p>
    </div>
    <div>
    <p><a href="http://google.com/something" rel="external nofollow">External link not to follow</a></p>
    </div>
</body>
</html>
        """


@pytest.mark.parametrize("ctype", ["text/html", "application/xhtml+xml"])
def test_xhtml(ctype):
    # LE.test_xhtml (an HtmlResponse, then an XmlResponse: here, the two content types)
    r = response("http://example.com/index.xhtml", XHTML, ctype=ctype)
    assert LinkExtractor().extract_links(r) == nofollow_links("example.com")


def test_link_wrong_href():
    # LE.test_link_wrong_href
    body = b"""
        <a href="http://example.org/item1.html">Item 1</a>
        <a href="http://[example.org/item2.html">Item 2</a>
        <a href="http://example.org/item3.html">Item 3</a>
        """
    r = response("http://example.org/index.html", body)
    assert LinkExtractor().extract_links(r) == [
        Link(url="http://example.org/item1.html", text="Item 1"),
        Link(url="http://example.org/item3.html", text="Item 3")]


def test_ftp_links():
    # LE.test_ftp_links
    body = b"""
        <html><body>
        <div><a href="ftp://www.external.com/">An Item</a></div>
        </body></html>"""
    r = response("http://www.example.com/index.html", body, "utf8")
    assert LinkExtractor().extract_links(r) == [Link(url="ftp://www.external.com/", text="An Item")]


def test_pickle_extractor():
    # LE.test_pickle_extractor
    assert isinstance(pickle.loads(pickle.dumps(LinkExtractor())), LinkExtractor)


AGGREGATION = b"""
                <div>
                    <a href="/a">a1</a>
                    <a href="/b?a=1&b=2">b1</a>
                </div>
                <div>
                    <a href="/a">a2</a>
                    <a href="/b?b=2&a=1">b2</a>
                </div>
            """


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({}, [("a", "a1"), ("b?a=1&b=2", "b1"), ("b?b=2&a=1", "b2")]),
    ({"canonicalize": True}, [("a", "a1"), ("b?a=1&b=2", "b1")]),
    ({"unique": False}, [("a", "a1"), ("b?a=1&b=2", "b1"), ("a", "a2"), ("b?b=2&a=1", "b2")]),
    ({"unique": False, "canonicalize": True},
     [("a", "a1"), ("b?a=1&b=2", "b1"), ("a", "a2"), ("b?a=1&b=2", "b2")]),
], ids=["unique", "unique-canonicalize", "not-unique", "not-unique-canonicalize"])
def test_link_extractor_aggregation(kwargs, expected):
    # LE.test_link_extractor_aggregation: regions are extracted one by one, then merged
    r = response("https://example.com", AGGREGATION)
    assert LinkExtractor(restrict_css=("div",), **kwargs).extract_links(r) == [
        Link(url=f"https://example.com/{path}", text=text) for path, text in expected]


def test_link_restrict_text():
    # LE.test_link_restrict_text
    body = b"""
        <a href="http://example.org/item1.html">Pic of a cat</a>
        <a href="http://example.org/item2.html">Pic of a dog</a>
        <a href="http://example.org/item3.html">Pic of a cow</a>
        """
    r = response("http://example.org/index.html", body)
    dog = Link(url="http://example.org/item2.html", text="Pic of a dog")
    cat = Link(url="http://example.org/item1.html", text="Pic of a cat")
    assert LinkExtractor(restrict_text="dog").extract_links(r) == [dog]
    assert LinkExtractor(restrict_text=r"of.*dog").extract_links(r) == [dog]
    assert LinkExtractor(restrict_text=[r"of.*dog", r"of.*cat"]).extract_links(r) == [cat, dog]


def test_skip_bad_links():
    # LE.test_skip_bad_links
    body = b"""
        <a href="http://example.org:non-port">Why would you do this?</a>
        <a href="http://example.org/item2.html">Good Link</a>
        <a href="http://example.org/item3.html">Good Link 2</a>
        """
    r = response("http://example.org/index.html", body)
    assert LinkExtractor().extract_links(r) == [
        Link(url="http://example.org/item2.html", text="Good Link"),
        Link(url="http://example.org/item3.html", text="Good Link 2")]


@pytest.mark.parametrize("url", ["", "htp://should_be_http.example", "should_have_prefix.example"])
def test_link_allowed_is_false_for_bad_urls(url):
    # LE.test_link_allowed_is_false_with_empty_url, ..._with_bad_url_prefix,
    # ..._with_missing_url_prefix (the same private method name as Scrapy's)
    assert not LinkExtractor()._link_allowed(Link(url))


def test_bad_scheme_hrefs_are_not_extracted():
    # the public face of the three cases above
    r = response("http://example.org/", b'<a href="htp://should_be_http.example">x</a>'
                                        b'<a href="mailto:a@example.org">m</a>')
    assert LinkExtractor().extract_links(r) == []


# -- Response.follow / follow_all with selectors ----------------------------------------------
SELECTED = [
    "http://example.com/sample2.html",
    "http://example.com/sample3.html",
    "http://example.com/sample3.html",
    "http://example.com/sample3.html",
    "http://example.com/sample3.html#foo",
    "http://www.google.com/something",
    "http://example.com/innertag.html",
    PAGE4,
]


def test_follow_selector():
    # TEXT.test_follow_selector (<a> and attribute selectors; any element with href here)
    r = sample()
    for selected in (r.css("a"), r.xpath("//a"), r.css("a::attr(href)"), r.xpath("//a/@href")):
        assert [r.follow(sel).url for sel in selected] == SELECTED
    link = Selector(text='<link href="foo"></link>').css("link")[0]
    assert r.follow(link).url == "http://example.com/foo"
    with pytest.raises(ValueError, match="no href"):
        r.follow(r.css("div")[0])  # Scrapy: "Only <a> and <link> elements are supported"


def test_follow_selector_list():
    # TEXT.test_follow_selector_list
    with pytest.raises(ValueError, match="SelectorList"):
        sample().follow(sample().css("a"))


def test_follow_selector_invalid():
    # TEXT.test_follow_selector_invalid
    r = sample()
    with pytest.raises(ValueError, match="Selector of 2.0"):
        r.follow(r.xpath("count(//div)")[0])


def test_follow_selector_attribute():
    # TEXT.test_follow_selector_attribute
    r = sample()
    assert [r.follow(src).url for src in r.css("img::attr(src)")] == ["http://example.com/sample2.jpg"]


def test_follow_selector_no_href():
    # TEXT.test_follow_selector_no_href
    r = response("http://example.com", b"<html><body><a name=123>click me</a></body></html>")
    with pytest.raises(ValueError, match="no href"):
        r.follow(r.css("a")[0])


def test_follow_whitespace_selector():
    # TEXT.test_follow_whitespace_selector
    r = response("http://example.com", b"""<html><body><a href=" foo\n">click me</a></body></html>""")
    assert r.follow(r.css("a")[0]).url == "http://example.com/foo"
    assert r.follow(r.css("a::attr(href)")[0]).url == "http://example.com/foo"


def test_follow_link():
    # tests/utils/bases/http_response.py test_follow_link, test_follow_whitespace_link,
    # test_follow_all_links, test_follow_all_whitespace_links
    r = response("http://example.com", b"")
    assert r.follow(Link("http://example.com/foo")).url == "http://example.com/foo"
    assert r.follow(Link("http://example.com/foo ")).url == "http://example.com/foo"
    absolute = ["http://example.com/foo", "http://example.com/bar", "http://example.com/foo/bar"]
    assert [q.url for q in r.follow_all(map(Link, absolute))] == absolute
    assert [q.url for q in r.follow_all([Link(u + " ") for u in absolute])] == absolute


def test_follow_all_css():
    # TEXT.test_follow_all_css
    urls = [q.url for q in sample().follow_all(css='a[href*="example.com"]')]
    assert urls == ["http://example.com/sample3.html", "http://example.com/innertag.html"]


def test_follow_all_css_skip_invalid():
    # TEXT.test_follow_all_css_skip_invalid
    expected = ["http://example.com/page/1/", "http://example.com/page/3/",
                "http://example.com/page/4/"]
    r = sample("linkextractor_no_href.html")
    assert [q.url for q in r.follow_all(css=".pagination a")] == expected
    assert [q.url for q in r.follow_all(r.css(".pagination a"))] == expected


def test_follow_all_xpath():
    # TEXT.test_follow_all_xpath
    urls = [q.url for q in sample().follow_all(xpath='//a[contains(@href, "example.com")]')]
    assert urls == ["http://example.com/sample3.html", "http://example.com/innertag.html"]


def test_follow_all_xpath_skip_invalid():
    # TEXT.test_follow_all_xpath_skip_invalid
    expected = ["http://example.com/page/1/", "http://example.com/page/3/",
                "http://example.com/page/4/"]
    r = sample("linkextractor_no_href.html")
    assert [q.url for q in r.follow_all(xpath='//div[@id="pagination"]/a')] == expected
    assert [q.url for q in r.follow_all(r.xpath('//div[@id="pagination"]/a'))] == expected


def test_follow_all_too_many_arguments():
    # TEXT.test_follow_all_too_many_arguments, http_response.py test_follow_all_invalid
    r = sample()
    with pytest.raises(ValueError, match="exactly one of"):
        r.follow_all(css='a[href*="example.com"]', xpath='//a[contains(@href, "example.com")]')
    with pytest.raises(ValueError, match="exactly one of"):
        r.follow_all()
    with pytest.raises(TypeError):
        r.follow_all(12345)


# -- the fast join agrees with Scrapy's steps ----------------------------------------------
ODD_HREFS = [
    "a", "./a", "../a", "../../x/../y", "/a b", "?q=1", "?q=é", "#f", "", " ", "?", "#",
    "//h.com/x", "//H.COM/x", "HTTP://X.com/A", "http://x.com:80/", "http://x.com:/",
    "http://u@x.com/", "http://[::1]/", "http://[bad/", "a%20b", "a%zz", "100%", "a|b",
    "é/ü?ä=ö#ß", "a\tb", "a\nb", " a ", "javascript:x()", "mailto:x@y", "ftp://f.com/a b",
    "file:///tmp/x", "http:/x", "http:x", "a;b=c", "a?b#c#d", "a#b c", "{x}", "a^b", "`x`",
    "a\\b", "http://x.com\\y", "http://bücher.example/", "http://x.com?x", "http://x.com#y",
    "x:y", "..", ".", "/..", "a/./b/../c", "tel:1", "a#", "?#", "#x y", "mailto:", "FTP://h/a",
]


@pytest.mark.parametrize("base", ["http://example.com/dir/page.html", "http://example.com",
                                  "http://example.com/a%2Fb/?x=1", "https://e.com:8443/d/"])
@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_fast_join_gives_what_scrapys_steps_give(base, encoding):
    # A process_value makes the extractor take Scrapy's own steps (urljoin, w3lib's
    # safe_url_string in the page's encoding, urljoin); without one it takes the fast
    # joiner links() uses. Both must give the same links for hrefs of every odd form.
    body = "".join(f'<a href="{html.escape(h)}">{i}</a>' for i, h in enumerate(ODD_HREFS))
    r = response(base, body.encode(encoding, "replace"), encoding)
    fast = LinkExtractor(unique=False).extract_links(r)
    scrapy_way = LinkExtractor(unique=False, process_value=lambda v: v).extract_links(r)
    assert len(fast) > 30
    assert fast == scrapy_way
