"""Response: decoding, the lazily built trees, CSS/XPath/soup selection, URL joining,
links() and follow(); built directly and, where the wire matters, through a real crawl."""

from __future__ import annotations

import decimal
import itertools
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest
from w3lib.url import safe_url_string

from scraper import Request, Response, Spider

from .conftest import Reply, crawl

URL = "http://example.com/dir/page.html"

CYRILLIC = "Привет, мир! Съешь же ещё этих мягких французских булок, да выпей чаю."
JAPANESE = "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"
CHINESE = "你好世界，这是一段中文文本。我们今天下午一起去公园散步吧。"


def resp(body: bytes | str = b"", ctype: str | None = "text/html; charset=utf-8",
         url: str = URL, status: int = 200) -> Response:
    if isinstance(body, str):
        body = body.encode("utf-8")
    headers = {"Content-Type": ctype} if ctype is not None else {}
    return Response(url, status, headers, body, Request(url))


def html(body: str = "", head: str = "") -> str:
    return f"<html><head>{head}<title>t</title></head><body>{body}</body></html>"


def anchors(*hrefs: str) -> str:
    return html("".join(f'<a href="{h}">x</a>' for h in hrefs))


# -- plain members -------------------------------------------------------------
def test_members_are_what_was_given():
    req = Request(URL, meta={"k": 1})
    r = Response(URL, 203, {"Content-Type": "text/html"}, b"<p>x</p>", req)
    assert (r.url, r.status, r.content, r.request) == (URL, 203, b"<p>x</p>", req)
    assert r.meta is req.meta and r.meta == {"k": 1}
    assert r.depth == 0
    assert repr(r) == f"<203 {URL}>"


def test_content_type_is_the_lower_cased_media_type():
    assert resp(b"", "Text/HTML; charset=UTF-8").content_type == "text/html"
    assert resp(b"", None).content_type == ""


def test_nothing_is_parsed_or_decoded_until_asked():
    r = resp(anchors("a.html"))
    assert r._tree is None and r._soup is None and r._text is None


# -- encoding ------------------------------------------------------------------
def test_utf8_bom_wins_over_http_charset_and_is_not_in_text():
    r = resp("\ufeff<p>é</p>".encode("utf-8"), "text/html; charset=cp1251")
    assert r.encoding == "utf-8"
    assert r.text == "<p>é</p>"


def test_utf16_bom_is_honoured():
    r = resp("\ufeff<p>é</p>".encode("utf-16-le"), "text/html")
    assert r.encoding.replace("_", "-").lower().startswith("utf-16")
    assert r.text == "<p>é</p>"


def test_http_charset_wins_over_meta_charset():
    body = html(f"<p>{CYRILLIC}</p>", '<meta charset="utf-8">').encode("cp1251")
    r = resp(body, "text/html; charset=windows-1251")
    assert r.encoding == "cp1251"
    assert CYRILLIC in r.text
    assert r.css("p::text").get() == CYRILLIC
    assert r.select_one("p").get_text() == CYRILLIC


@pytest.mark.parametrize("declare", [
    lambda enc: f'<meta charset="{enc}">',
    lambda enc: f'<meta http-equiv="Content-Type" content="text/html; charset={enc}">',
], ids=["meta-charset", "http-equiv"])
@pytest.mark.parametrize("enc, text", [("cp1251", CYRILLIC), ("shift_jis", JAPANESE),
                                       ("gb18030", CHINESE)])
def test_charset_declared_only_in_meta(declare, enc, text):
    body = html(f"<p>{text}</p>", declare(enc)).encode(enc)
    r = resp(body, "text/html")
    assert text in r.text
    assert r.css("p::text").get() == text
    assert r.xpath("//p/text()").getall() == [text]
    assert r.select_one("p").get_text() == text


def test_meta_charset_is_read_when_there_is_no_content_type_at_all():
    body = html(f"<p>{CYRILLIC}</p>", '<meta charset="windows-1251">').encode("cp1251")
    r = resp(body, None)
    assert r.encoding == "cp1251" and CYRILLIC in r.text


def test_undeclared_utf8_is_utf8():
    r = resp(html(f"<p>{JAPANESE}</p>").encode("utf-8"), "text/html")
    assert r.encoding == "utf-8"
    assert r.css("p::text").get() == JAPANESE


@pytest.mark.parametrize("enc, text", [("cp1251", CYRILLIC), ("shift_jis", JAPANESE),
                                       ("gb18030", CHINESE)])
def test_undeclared_non_utf8_is_detected(enc, text):
    r = resp(html(f"<p>{text}</p>").encode(enc), "text/html")
    assert r.encoding != "utf-8"
    assert text in r.text
    assert r.css("p::text").get() == text


@pytest.mark.parametrize("body, ctype", [
    (html(f"<p>{JAPANESE}</p>").encode("euc-jp"), "text/html; charset=euc-jp"),
    (html(f"<p>{JAPANESE}</p>").encode("iso-2022-jp"), "text/html; charset=iso-2022-jp"),
    (html(f"<p>{JAPANESE}</p>", '<meta charset="euc-jp">').encode("euc-jp"), "text/html"),
    (("\ufeff" + html(f"<p>{JAPANESE}</p>")).encode("utf-16-le"), "text/html"),
    (("\ufeff" + html(f"<p>{JAPANESE}</p>")).encode("utf-16-be"), "text/html"),
], ids=["euc-jp", "iso-2022-jp", "euc-jp-meta", "utf-16-le-bom", "utf-16-be-bom"])
def test_tree_is_built_for_every_encoding_text_decodes(body, ctype):
    r = resp(body, ctype)
    assert JAPANESE in r.text  # decoding itself works...
    assert r.css("p::text").getall() == [JAPANESE]  # ...but the tree is empty


def test_undecodable_bytes_are_replaced_not_raised():
    r = resp(b"<p>ok \xff\xfe</p>", "text/html; charset=utf-8")
    assert r.text.startswith("<p>ok ") and "\ufffd" in r.text


def test_text_is_decoded_once():
    r = resp("<p>é</p>")
    assert r.text is r.text


def test_encoding_through_a_real_crawl(site):
    site.route("/meta", Reply(html(f"<p>{CYRILLIC}</p>", '<meta charset="windows-1251">')
                              .encode("cp1251"), content_type="text/html"))
    site.route("/http", Reply(html(f"<p>{JAPANESE}</p>", '<meta charset="utf-8">')
                              .encode("shift_jis"), content_type="text/html; charset=Shift_JIS"))
    site.route("/none", Reply(html(f"<p>{CHINESE}</p>").encode("utf-8"), content_type="text/html"))

    class S(Spider):
        name = "enc"
        start_urls = [site.url + p for p in ("/meta", "/http", "/none")]

        def parse(self, response):
            yield {"path": response.url.rsplit("/", 1)[1], "p": response.css("p::text").get(),
                   "title": response.select_one("p").get_text()}

    _, items = crawl(S)
    got = {i["path"]: (i["p"], i["title"]) for i in items}
    assert got == {"meta": (CYRILLIC, CYRILLIC), "http": (JAPANESE, JAPANESE),
                   "none": (CHINESE, CHINESE)}


# -- json ----------------------------------------------------------------------
def test_json_parses_the_body():
    r = resp(b'{"a": [1, "\xc3\xa9"], "b": null}', "application/json")
    assert r.json() == {"a": [1, "é"], "b": None}


def test_json_ignores_a_bom_and_passes_options():
    r = resp("\ufeff{\"price\": 1.10}".encode("utf-8"), "application/json")
    assert r.json(parse_float=decimal.Decimal) == {"price": decimal.Decimal("1.10")}


def test_json_of_a_non_json_body_raises_value_error():
    with pytest.raises(ValueError):
        resp(b"<html></html>").json()


def test_headers_and_json_through_a_real_crawl(site):
    site.route("/api", Reply(b'{"n": 3}', content_type="application/json", headers={"X-Thing": "yes"}))

    class S(Spider):
        name = "api"
        start_urls = [site.url + "/api"]

        def parse(self, response):
            yield {"n": response.json()["n"], "x": response.headers["x-thing"],
                   "ct": response.headers["CONTENT-TYPE"], "links": response.links(),
                   "status": response.status}

    _, items = crawl(S)
    assert items == [{"n": 3, "x": "yes", "ct": "application/json", "links": [], "status": 200}]


# -- trees -----------------------------------------------------------------------
def test_tree_is_built_once():
    r = resp(anchors("a.html"))
    assert r.tree is r.tree


def test_soup_is_built_once():
    r = resp(anchors("a.html"))
    assert r.soup is r.soup


def test_css_xpath_and_links_never_build_a_soup():
    r = resp(anchors("a.html", "b.html", "a.html#x"))
    assert len(r.css("a")) == 3
    assert r.xpath("//a/@href").getall() == ["a.html", "b.html", "a.html#x"]
    assert r.links() == ["http://example.com/dir/a.html", "http://example.com/dir/b.html"]
    assert r.urljoin("c.html") == "http://example.com/dir/c.html"
    assert r._soup is None


def test_select_does_not_need_the_tree():
    r = resp(anchors("a.html"))
    assert [a["href"] for a in r.select("a")] == ["a.html"]
    assert r._tree is None


def test_css_returns_selectors_of_the_tree_in_document_order():
    r = resp(html('<ul><li class="x">1</li><li>2</li><li class="x">3</li></ul>'))
    assert r.css("li.x::text").getall() == ["1", "3"]
    items = r.css("ul > li")
    assert [li.root.text for li in items] == ["1", "2", "3"]
    assert all(li.root.getroottree().getroot() is r.tree for li in items)  # no 2nd parse
    assert r.css("table") == []


def test_xpath_supports_variables_and_strings():
    r = resp(html('<p id="a">one</p><p id="b">two</p>'))
    assert r.xpath("//p[@id=$which]/text()", which="b").getall() == ["two"]
    assert r.xpath("count(//p)").get() == "2.0"
    assert r.xpath("string(//p[1])").get() == "one"


def test_select_and_select_one_use_bs4_tags():
    r = resp(html('<div class="c"><a href="/1">one</a></div><div class="c"><a href="/2">two</a></div>'))
    tags = r.select("div.c a")
    assert [t.get_text() for t in tags] == ["one", "two"]
    assert type(tags[0]).__module__.startswith("bs4")
    assert r.select_one("div.c a")["href"] == "/1"
    assert r.select_one("table") is None


def test_soup_uses_the_detected_encoding():
    body = html(f"<h1>{CYRILLIC}</h1>", '<meta charset="windows-1251">').encode("cp1251")
    assert resp(body, "text/html").select_one("h1").get_text() == CYRILLIC


@pytest.mark.parametrize("ctype", ["image/png", "application/json", "application/octet-stream",
                                   "text/css", "application/pdf"])
def test_non_markup_bodies_give_an_empty_tree_and_no_links(ctype):
    r = resp(b'<html><body><a href="/x">x</a><p>p</p></body></html>', ctype)
    assert r.links() == []
    assert r.css("a") == [] and r.xpath("//p") == []
    assert r.select("a") == [] and r.select_one("p") is None
    assert r.tree.tag == "html"


def test_binary_png_body_does_not_raise():
    r = resp(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "image/png")
    assert r.links() == [] and r.css("*")[0].root.tag == "html"


@pytest.mark.parametrize("ctype", ["text/html", "application/xhtml+xml", None])
def test_markup_and_untyped_bodies_are_parsed(ctype):
    r = resp(b'<html><body><a href="/x">x</a></body></html>', ctype)
    assert r.links() == ["http://example.com/x"]


@pytest.mark.parametrize("body", [b"", b"   \n\t ", b"\xef\xbb\xbf"])
def test_empty_body_gives_empty_tree_text_and_links(body):
    r = resp(body)
    assert r.text.strip() == ""
    assert r.links() == [] and r.css("a") == [] and r.select("a") == []
    assert r.tree.tag == "html"


def test_garbage_labelled_as_html_does_not_raise():
    r = resp(bytes(range(256)) * 4, "text/html")
    assert r.links() == []
    assert isinstance(r.css("a"), list)


# -- urljoin and <base href> ---------------------------------------------------------
def test_urljoin_without_base():
    r = resp(html())
    assert r.urljoin("p2.html") == "http://example.com/dir/p2.html"
    assert r.urljoin("../x") == "http://example.com/x"
    assert r.urljoin("/root") == "http://example.com/root"
    assert r.urljoin("//other.example/p") == "http://other.example/p"
    assert r.urljoin("?q=1") == "http://example.com/dir/page.html?q=1"
    assert r.urljoin("  p2.html\n") == "http://example.com/dir/p2.html"
    assert r.urljoin("https://x.example/") == "https://x.example/"


@pytest.mark.parametrize("tree_first", [False, True], ids=["regex", "tree"])
def test_urljoin_honours_base_href(tree_first):
    r = resp(html(anchors("a"), '<base href="http://other.example/sub/">'))
    if tree_first:
        _ = r.tree
    assert r.urljoin("p2.html") == "http://other.example/sub/p2.html"
    assert r.urljoin("/root") == "http://other.example/root"
    assert r.base_url == "http://other.example/sub/"


@pytest.mark.parametrize("tree_first", [False, True], ids=["regex", "tree"])
def test_relative_base_href_is_resolved_against_the_url(tree_first):
    r = resp(html("", "<base href='../base/'>"))
    if tree_first:
        _ = r.tree
    assert r.urljoin("x.html") == "http://example.com/base/x.html"


def test_base_without_href_is_ignored():
    r = resp(html("", '<base target="_blank">'))
    assert r.urljoin("x.html") == "http://example.com/dir/x.html"


def test_links_honour_base_href():
    r = resp(html('<a href="p2.html">x</a><a href="/r">y</a><a href="?q=1">z</a><a href="">e</a>',
                  '<base href="http://other.example/sub/index.html">'))
    assert r.links() == ["http://other.example/sub/p2.html", "http://other.example/r",
                         "http://other.example/sub/index.html?q=1", "http://other.example/sub/index.html"]


def test_a_commented_out_base_href_is_ignored_whatever_is_called_first():
    body = html('<a href="p2.html">x</a>', '<!-- <base href="http://stale.example/"> -->')
    assert resp(body).urljoin("p2.html") == "http://example.com/dir/p2.html"  # tree path: right
    r = resp(body)
    assert r.urljoin("p2.html") == "http://example.com/dir/p2.html"  # regex path: stale base
    assert r.links() == ["http://example.com/dir/p2.html"]


# -- links() -------------------------------------------------------------------------
def test_links_are_absolute_defragmented_unique_and_in_document_order():
    r = resp(html('<a href="b.html">b</a><map><area href="/area" alt=""></map>'
                  '<a href="a.html#top">a</a><a href="b.html#again">b2</a>'
                  '<a href="mailto:x@example.com">m</a><a href="javascript:void(0)">j</a>'
                  '<a href="tel:+123">t</a><a href="data:text/html,hi">d</a>'
                  '<a href="ftp://example.com/f">f</a><a>no href</a><a href="a.html">a2</a>'
                  '<link href="/style.css" rel="stylesheet"><img src="/i.png">'
                  '<a href="https://secure.example/s#x">s</a>'))
    assert r.links() == ["http://example.com/dir/b.html", "http://example.com/area",
                         "http://example.com/dir/a.html", "https://secure.example/s"]


@pytest.mark.parametrize("href, expected", [
    ("p2.html", "http://example.com/dir/p2.html"),
    ("../x", "http://example.com/x"),
    ("./y", "http://example.com/dir/y"),
    ("/root", "http://example.com/root"),
    ("//host.example/path", "http://host.example/path"),
    ("?q=1", "http://example.com/dir/page.html?q=1"),
    ("", "http://example.com/dir/page.html?old=1"),
    ("#frag", "http://example.com/dir/page.html?old=1"),
    ("sub/p.html?a=1&b=2#f", "http://example.com/dir/sub/p.html?a=1&b=2"),
    ("../../../../x", "http://example.com/x"),
    ("/a/./b/../c", "http://example.com/a/c"),
    (".", "http://example.com/dir/"),
    ("..", "http://example.com/"),
    ("  spaced.html  ", "http://example.com/dir/spaced.html"),
    ("HTTP://Other.example/X", "http://Other.example/X"),
    ("https://other.example", "https://other.example"),
])
def test_links_relative_forms(href, expected):
    assert resp(anchors(href), url="http://example.com/dir/page.html?old=1").links() == [expected]


@pytest.mark.parametrize("href", ["mailto:a@example.com", "javascript:alert(1)", "JavaScript:x",
                                  "tel:+1", "data:text/plain,x", "ftp://example.com/",
                                  "file:///etc/passwd", "about:blank", "sms:1", "urn:isbn:1"])
def test_links_skip_non_http_schemes(href):
    assert resp(anchors(href)).links() == []


def test_links_entity_encoded_hrefs_are_decoded():
    r = resp(html('<a href="/s?a=1&amp;b=2">x</a>'))
    assert r.links() == ["http://example.com/s?a=1&b=2"]


def test_links_uppercase_tags_and_attributes():
    r = resp(b'<HTML><BODY><A HREF="/up">x</A><AREA HREF="/ar"></BODY></HTML>', "text/html")
    assert r.links() == ["http://example.com/up", "http://example.com/ar"]


BASES = ["http://example.com/dir/page.html", "http://example.com/", "http://example.com/dir/",
         "https://example.com:8443/a/b/c?x=1", "http://example.com/dir/page.html?a=1&b=2",
         "http://example.com/a;p/b?q", "http://127.0.0.1:5000/x/y/", "http://[::1]:8080/x/y"]
_PREFIXES = ["", "/", "./", "../", "../../", "//h.example/", "//h.example:81/", "http://o.example/",
             "https://o.example/p/", "/a/./", "/a/../", "sub/", "sub/../"]
_PATHS = ["", "p", "p.html", "a/b", ".hidden", "...", "..x/y", "é.html", "%7Euser", "a;b",
          "x-y_z~1", "."]
_QUERIES = ["", "?q=1", "?a=1&b=2", "?x=../y", "?u=http://z/"]
_FRAGMENTS = ["", "#f", "#a?b", "#/route"]
_SPACE = ["", " ", "\n "]


def _generated_hrefs() -> list[str]:
    out = []
    for pre, path, query, frag in itertools.product(_PREFIXES, _PATHS, _QUERIES, _FRAGMENTS):
        out.append(pre + path + query + frag)
    for i, h in enumerate(list(out[::7])):
        space = _SPACE[i % len(_SPACE)]
        out.append(space + h + space)
    return out


def _reference(base: str, href: str) -> str | None:
    """What a browser would follow, by the standard library: urljoin, then urldefrag;
    then, for a URL with non-ASCII or unsafe characters, percent-encoded as browsers do
    (w3lib's safe_url_string; a UTF-8 page)."""
    joined = urldefrag(urljoin(base, href.strip())).url
    scheme = urlsplit(joined).scheme
    if scheme not in ("http", "https"):
        return None
    joined = scheme + joined[len(scheme):]  # urljoin keeps "HTTPS:" as written on a scheme change
    if not joined.isascii() or any(c in joined for c in " \"'<>\\^`{|}"):
        joined = safe_url_string(joined)
    return joined


@pytest.mark.parametrize("base", BASES)
def test_links_agree_with_urljoin_and_urldefrag_on_generated_hrefs(base):
    hrefs = _generated_hrefs() + ["mailto:x@y", "javascript:0", "tel:1", "a:b/c", "p2.html:x"]
    assert len(hrefs) > 3000
    expected = list(dict.fromkeys(u for u in (_reference(base, h) for h in hrefs) if u is not None))
    r = resp(html("".join(f'<a href="{h}">x</a>' for h in hrefs)), url=base)
    assert r.links() == expected


@pytest.mark.parametrize("base", BASES)
def test_each_generated_href_alone_agrees_with_urljoin(base):
    # one link per page: a disagreement here cannot hide behind de-duplication
    for h in _generated_hrefs()[::11]:
        expected = _reference(base, h)
        assert resp(anchors(h), url=base).links() == ([expected] if expected else []), h


@pytest.mark.parametrize("href", ["/long\n/path.html", "p2\n.html", "sub/\tp.html",
                                  "http://example.com/a\r\nb"])
def test_links_drop_newlines_and_tabs_inside_an_href(href):
    expected = _reference(URL, href)
    assert "\n" not in expected and "\t" not in expected
    assert resp(anchors(href)).links() == [expected]


@pytest.mark.parametrize("href", ["12:30.html", "x_y:z.html", "a b:c", "+x:y", "http:x"])
def test_links_keep_relative_hrefs_whose_colon_is_not_a_scheme(href):
    expected = _reference(URL, href)
    assert expected is not None
    assert resp(anchors(href)).links() == [expected]


@pytest.mark.parametrize("base, href", [(URL, "HTTPS://Other.example/X"),
                                        (URL, "Https://other.example/"),
                                        ("https://example.com/", "HTTP://other.example/y")])
def test_links_keep_absolute_hrefs_with_an_upper_case_scheme(base, href):
    expected = _reference(base, href)
    assert expected is not None and expected.startswith(("http://", "https://"))
    assert resp(anchors(href), url=base).links() == [expected]


@pytest.mark.parametrize("href", ["//", "http://", "///x"])
def test_links_never_yield_a_url_without_a_host(href):
    assert all("://" in u and u.split("://", 1)[1][:1] not in ("", "/")
               for u in resp(anchors(href)).links())


def test_links_through_a_real_crawl_are_followed_once(site):
    site.route("/d/start.html", html('<a href="p.html">1</a><a href="./p.html#x">2</a>'
                                     '<a href="../d/p.html">3</a><a href="/d/p.html?">4</a>'
                                     '<map><area href="/area.html"></map><a href="mailto:x@y">5</a>'))
    site.route("/d/p.html", html("p"))
    site.route("/area.html", html("area"))

    class S(Spider):
        name = "links"
        start_urls = [site.url + "/d/start.html"]

        def parse(self, response):
            yield {"url": response.url, "links": response.links()}
            yield from response.follow_all(response.links())

    _, items = crawl(S)
    by_url = {i["url"]: i["links"] for i in items}
    assert by_url[site.url + "/d/start.html"] == [site.url + "/d/p.html", site.url + "/d/p.html?",
                                                  site.url + "/area.html"]
    assert site.paths() == {"/d/start.html": 1, "/d/p.html": 1, "/area.html": 1}


# -- follow / follow_all -------------------------------------------------------------
class Catalogue(Spider):
    name = "catalogue"

    def parse_item(self, response):
        pass


def test_follow_a_relative_string():
    r = resp(html())
    req = r.follow("p2.html")
    assert isinstance(req, Request)
    assert req.url == "http://example.com/dir/p2.html" and req.callback is None


def test_follow_passes_callback_and_request_options():
    spider = Catalogue()
    req = resp(html()).follow("/x", spider.parse_item, meta={"k": 1}, priority=4,
                              method="post", dont_filter=True)
    assert req.url == "http://example.com/x"
    assert req.callback == spider.parse_item and req.meta == {"k": 1}
    assert (req.priority, req.method, req.dont_filter) == (4, "POST", True)


def test_follow_an_absolute_string_keeps_it():
    assert resp(html()).follow("https://o.example/a?b=1").url == "https://o.example/a?b=1"


def test_follow_honours_base_href():
    r = resp(html("", '<base href="http://other.example/sub/">'))
    assert r.follow("x").url == "http://other.example/sub/x"


def test_follow_a_selector_or_its_lxml_element():
    r = resp(html('<a id="n" href="../next.html">next</a>'))
    assert r.follow(r.css("a#n")[0]).url == "http://example.com/next.html"
    assert r.follow(r.xpath("//a")[0]).url == "http://example.com/next.html"
    assert r.follow(r.css("a#n")[0].root).url == "http://example.com/next.html"
    assert r.follow(r.tree.find(".//a")).url == "http://example.com/next.html"


def test_follow_a_bs4_tag():
    r = resp(html('<li class="next"><a href="page-2.html">next</a></li>'))
    assert r.follow(r.select_one("li.next a")).url == "http://example.com/dir/page-2.html"


def test_follow_an_area_element():
    r = resp(html('<map><area href="/zone"></map>'))
    assert r.follow(r.css("area")[0]).url == "http://example.com/zone"


@pytest.mark.parametrize("pick", [lambda r: r.css("p")[0], lambda r: r.select_one("p")],
                         ids=["lxml", "bs4"])
def test_follow_an_element_without_href_is_a_value_error_naming_the_tag(pick):
    r = resp(html("<p>no link</p>"))
    with pytest.raises(ValueError, match=r"<p>.*no href"):
        r.follow(pick(r))


@pytest.mark.parametrize("thing", [42, None, 3.5])
def test_follow_something_that_is_neither_url_nor_element_is_a_type_error(thing):
    with pytest.raises(TypeError, match="URL or an element"):
        resp(html()).follow(thing)


def test_follow_a_non_http_href_is_a_value_error():
    with pytest.raises(ValueError):
        resp(html()).follow("mailto:x@example.com")


def test_follow_all_mixes_strings_and_elements_and_shares_the_callback():
    spider = Catalogue()
    r = resp(html('<a href="a.html">a</a><a href="/b">b</a>'))
    reqs = r.follow_all(["x.html", *r.css("a"), r.select("a")[1]], spider.parse_item, priority=2)
    assert [q.url for q in reqs] == ["http://example.com/dir/x.html", "http://example.com/dir/a.html",
                                     "http://example.com/b", "http://example.com/b"]
    assert all(q.callback == spider.parse_item and q.priority == 2 for q in reqs)


def test_follow_all_of_nothing_is_an_empty_list():
    assert resp(html()).follow_all([]) == []
    assert resp(html()).follow_all(iter(())) == []


def test_follow_all_of_links_builds_one_request_per_link():
    r = resp(anchors("a", "b", "a#x", "c"))
    assert [q.url for q in r.follow_all(r.links())] == [
        "http://example.com/dir/a", "http://example.com/dir/b", "http://example.com/dir/c"]


# -- malformed URLs are skipped, not fatal (issue 12) --------------------------------
BAD_HREFS = ["http://[example.org/x", "http://host:notaport/", "http://host:70000/p",
             "//[::1/x", "HTTP://bad host/", "http:///nohost", "//"]


def test_links_skip_malformed_urls_and_record_them():
    r = resp(anchors("/a", *BAD_HREFS, "http://other.example/b", "c"))
    assert r.links() == ["http://example.com/a", "http://other.example/b",
                         "http://example.com/dir/c"]
    assert len(r.bad_urls) == len(BAD_HREFS)
    assert "http://[example.org/x" in r.bad_urls and "http://host:notaport/" in r.bad_urls
    r.links()  # asking twice counts each bad URL of the page once
    assert len(r.bad_urls) == len(BAD_HREFS)


def test_a_page_without_bad_links_has_no_bad_urls():
    r = resp(anchors("/a", "mailto:x@example.com", "javascript:void(0)"))
    r.links()
    assert not r.bad_urls


def test_follow_all_skips_malformed_urls_and_records_them():
    r = resp(anchors("/a", *BAD_HREFS, "b"))
    reqs = r.follow_all(r.css("a"))
    assert [q.url for q in reqs] == ["http://example.com/a", "http://example.com/dir/b"]
    assert {"http://[example.org/x", "http://host:notaport/"} <= set(r.bad_urls)
    assert [q.url for q in r.follow_all(["/a", "http://host:notaport/"])] == ["http://example.com/a"]


@pytest.mark.parametrize("href", ["http://[example.org/x", "http://host:notaport/", "//[::1/x",
                                  "http:///nohost"])
def test_follow_of_a_malformed_url_is_a_value_error_naming_it(href):
    with pytest.raises(ValueError, match="malformed") as info:
        resp(html()).follow(href)
    assert href.lstrip("/").split("/")[0].strip("[") in str(info.value)


def test_a_malformed_base_href_is_ignored():
    r = resp(html(anchors("p.html"), '<base href="http://[bad/dir/">'))
    assert r.base_url == URL
    assert r.links() == ["http://example.com/dir/p.html"]


def test_the_common_link_shapes_are_returned_as_written():
    # ASCII hrefs with nothing to escape pay no escaping work and are not rewritten
    hrefs = ["/a/b.html?x=1&y=2", "c.html", "http://Other.example:8080/Z", "?p=2", "%7Euser/",
             "/a;b", "https://x.example/%C3%A9"]
    r = resp(anchors(*hrefs))
    assert r.links() == ["http://example.com/a/b.html?x=1&y=2", "http://example.com/dir/c.html",
                         "http://Other.example:8080/Z", "http://example.com/dir/page.html?p=2",
                         "http://example.com/dir/%7Euser/", "http://example.com/a;b",
                         "https://x.example/%C3%A9"]


# -- URLs encoded as browsers encode them (issue 12) -----------------------------------
def page_in(encoding: str, *hrefs: str) -> Response:
    body = f'<html><head><meta charset="{encoding}"></head><body>'
    body += "".join(f'<a href="{h}">x</a>' for h in hrefs) + "</body></html>"
    return resp(body.encode(encoding), f"text/html; charset={encoding}")


@pytest.mark.parametrize("encoding, href, expected", [
    ("latin-1", "/buy?price=£32", "http://example.com/buy?price=%A332"),
    ("utf-8", "/buy?price=£32", "http://example.com/buy?price=%C2%A332"),
    ("latin-1", "/café/é?q=é", "http://example.com/caf%C3%A9/%C3%A9?q=%E9"),   # path: UTF-8
    ("cp1251", "/поиск?q=привет", "http://example.com/%D0%BF%D0%BE%D0%B8%D1%81%D0%BA"
                                    "?q=%EF%F0%E8%E2%E5%F2"),
    ("shift_jis", "/s?q=日本", "http://example.com/s?q=%93%FA%96%7B"),
    ("latin-1", "/a b?q=a b", "http://example.com/a%20b?q=a%20b"),
    ("latin-1", "/q?x={a|b^c}", "http://example.com/q?x=%7Ba%7Cb%5Ec%7D"),
    ("latin-1", "http://bücher.example/?q=ü", "http://xn--bcher-kva.example/?q=%FC"),
])
def test_links_follow_and_urljoin_encode_the_query_in_the_page_encoding(encoding, href, expected):
    r = page_in(encoding, href)
    assert r.links() == [expected]
    assert r.urljoin(href) == expected
    assert r.follow(href).url == expected
    assert r.follow(r.css("a")[0]).url == expected
    assert [q.url for q in r.follow_all(r.css("a"))] == [expected]


def test_a_query_character_the_page_encoding_cannot_encode_is_sent_as_a_character_reference():
    # WHATWG URL: "percent-encode after encoding" writes &#1078; for U+0436 on a latin-1 page
    r = page_in("latin-1", "/s?q=&#1078;&amp;p=£")
    assert r.links() == ["http://example.com/s?q=%26%231078%3B&p=%A3"]


def test_a_utf16_page_sends_its_queries_as_utf8():
    body = '<html><body><a href="/s?q=é">x</a></body></html>'.encode("utf-16")
    r = resp(body, "text/html; charset=utf-16")
    assert r.links() == ["http://example.com/s?q=%C3%A9"]


def test_an_escaped_link_to_a_malformed_host_is_still_skipped():
    r = page_in("latin-1", "http://host:notaport/é", "http://[bad/é", "/é")
    assert r.links() == ["http://example.com/%C3%A9"]
    assert len(r.bad_urls) == 2


def test_the_query_of_a_latin1_link_reaches_the_server_percent_encoded_in_latin1(site):
    body = ('<html><head><meta charset="iso-8859-1"></head><body>'
            '<a href="/buy?price=£32">a</a><a href="/café?q=é">b</a></body></html>').encode("latin-1")
    site.route("/", Reply(body, content_type="text/html; charset=iso-8859-1"))

    class S(Spider):
        name = "latin1"
        start_urls = [site.url + "/"]

        def parse(self, response):
            if response.url.endswith("/"):
                yield from response.follow_all(response.links())

    stats, _ = crawl(S)
    assert stats.reason == "finished"
    paths = set(site.paths())
    assert "/buy?price=%A332" in paths and "/caf%C3%A9?q=%E9" in paths
