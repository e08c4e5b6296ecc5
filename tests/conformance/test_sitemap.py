"""Sitemaps as SitemapSpider reads them, black-box through real local servers: cases
ported from Scrapy (github.com/scrapy/scrapy @ 11079cb): tests/test_utils_sitemap.py
(parsing), tests/test_spider_sitemap.py (SitemapSpider, where its test_spider.py
cases now live), tests/test_utils_gz.py (gunzip) and the gzip-file case of
tests/test_downloadermiddleware_httpcompression.py, each citing its test.

The sitemaps are served by a Site, with Scrapy's ``http://www.example.com`` turned
into the Site's URL (and ``http://example.com``, another host there, into a second
Site reached as ``localhost``). What the spider followed is what the Site served;
what Scrapy's ``Sitemap`` iterator yields is what ``sitemap_filter`` receives.

Scrapy's cases that do not apply: ``str`` bodies (deprecation warnings),
DOWNLOAD_WARNSIZE, per-spider and per-request download_maxsize
(``max_response_size`` is one crawl setting), and callables in ``sitemap_rules``
(see deviation 2).

DEVIATIONS (what we do otherwise, and why):

1. test_get_sitemap_body: a body is read as a sitemap whatever its Content-Type and
   URL (Scrapy reads only XML responses, gzip bodies and ``.xml``/``.xml.gz`` URLs,
   and skips an HTML or ``favicon.ico`` one). Servers label sitemaps text/plain,
   text/html or application/octet-stream; an HTML page or an image is not a
   sitemap either way: it parses to no ``<urlset>``/``<sitemapindex>`` and nothing
   is followed.
2. test_sitemap_rules_with_callable: ``sitemap_rules`` names callbacks by method
   name only (Scrapy also takes a callable): requests are stored by the name of
   their callback, so a persistent or shared frontier can restore them.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from scraper import SitemapSpider

from ..conftest import Reply, Site, crawl

UTILS = "scrapy tests/test_utils_sitemap.py"
SPIDER = "scrapy tests/test_spider_sitemap.py TestSitemapSpider"
DATA = Path(__file__).parent / "data" / "compressed"
XML = "application/xml"


class SitemapSite(Site):
    """Routes for the sitemaps; any other path is a page."""

    def answer(self, hit: Any) -> Reply | None:
        route = self.routes.get(hit.path)
        if route is None:
            return Reply("<html><body>page</body></html>")
        return route(hit) if callable(route) else route


@pytest.fixture
def host() -> Iterator[SitemapSite]:
    s = SitemapSite()
    yield s
    s.close()


@pytest.fixture
def other() -> Iterator[SitemapSite]:
    """A second host: a SitemapSite reached as ``localhost``."""
    s = SitemapSite()
    s.url = s.url.replace("127.0.0.1", "localhost")
    yield s
    s.close()


class Outcome:
    def __init__(self) -> None:
        self.pages: list[str] = []        # URLs that reached parse (the followed pages)
        self.entries: list[list[dict[str, Any]]] = []  # what sitemap_filter saw, per sitemap
        self.stats: Any = None


def run(sitemap_urls: list[str], settings: dict[str, Any] | None = None,
        keep: Any = None, **attrs: Any) -> Outcome:
    """Crawl with a SitemapSpider starting at ``sitemap_urls``; ``keep(entry)`` filters
    entries (Scrapy's sitemap_filter overrides), ``attrs`` set class attributes."""
    out = Outcome()

    class Map(SitemapSpider):
        name = "sitemap-conformance"

        def sitemap_filter(self, entries):
            entries = list(entries)
            out.entries.append([dict(e) for e in entries])
            return [e for e in entries if keep(e)] if keep else entries

        def parse(self, response):
            out.pages.append(response.url)
            yield {}

    Map.sitemap_urls = sitemap_urls
    for name, value in attrs.items():
        setattr(Map, name, value)
    out.stats, _ = crawl(Map, settings)
    return out


def urlset(*urls: str, extra: str = "") -> str:
    body = "".join(f"<url><loc>{u}</loc></url>" for u in urls)
    return (f'<?xml version="1.0" encoding="UTF-8"?>'
            f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"{extra}>{body}</urlset>')


def at(site: Site, text: str) -> str:
    """Scrapy's example URLs moved onto ``site``."""
    return text.replace("http://www.example.com", site.url)


# -- tests/test_utils_sitemap.py: what one sitemap is read as ------------------------
SITEMAP = """<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.google.com/schemas/sitemap/0.84">
<url>
<loc>http://www.example.com/</loc>
<lastmod>2009-08-16</lastmod>
<changefreq>daily</changefreq>
<priority>1</priority>
</url>
<url>
<loc>http://www.example.com/Special-Offers.html</loc>
<lastmod>2009-08-16</lastmod>
<changefreq>weekly</changefreq>
<priority>0.8</priority>
</url>
</urlset>"""
SITEMAP_ENTRIES = [
    {"priority": "1", "loc": "http://www.example.com/", "lastmod": "2009-08-16",
     "changefreq": "daily"},
    {"priority": "0.8", "loc": "http://www.example.com/Special-Offers.html",
     "lastmod": "2009-08-16", "changefreq": "weekly"},
]
STRIP = """<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.google.com/schemas/sitemap/0.84">
<url>
<loc> http://www.example.com/</loc>
<lastmod>2009-08-16</lastmod>
<changefreq>daily</changefreq>
<priority>1</priority>
</url>
<url>
<loc> http://www.example.com/2</loc>
<lastmod />
</url>
</urlset>
"""
STRIP_ENTRIES = [
    {"priority": "1", "loc": "http://www.example.com/", "lastmod": "2009-08-16",
     "changefreq": "daily"},
    {"loc": "http://www.example.com/2", "lastmod": ""},
]
WRONG_NS = STRIP.replace("<url>", '<url xmlns="">')
WRONG_NS2 = WRONG_NS.replace(' xmlns="http://www.google.com/schemas/sitemap/0.84"', "")
BLANKLINES = """
<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">

<!-- cache: cached = yes name = sitemap_jspCache key = sitemap -->
<sitemap>
<loc>http://www.example.com/sitemap1.xml</loc>
<lastmod>2013-07-15</lastmod>
</sitemap>

<sitemap>
<loc>http://www.example.com/sitemap2.xml</loc>
<lastmod>2013-07-15</lastmod>
</sitemap>

<sitemap>
<loc>http://www.example.com/sitemap3.xml</loc>
<lastmod>2013-07-15</lastmod>
</sitemap>

<!-- end cache -->
</sitemapindex>
"""
COMMENT = """<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
    xmlns:xhtml="http://www.w3.org/1999/xhtml">
    <url>
        <loc>http://www.example.com/</loc>
        <!-- this is a comment on which the parser might raise an exception if implemented incorrectly -->
    </url>
</urlset>"""
ALTERNATE = """<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
    xmlns:xhtml="http://www.w3.org/1999/xhtml">
    <url>
        <loc>http://www.example.com/english/</loc>
        <xhtml:link rel="alternate" hreflang="de"
            href="http://www.example.com/deutsch/"/>
        <xhtml:link rel="alternate" hreflang="de-ch"
            href="http://www.example.com/schweiz-deutsch/"/>
        <xhtml:link rel="alternate" hreflang="en"
            href="http://www.example.com/english/"/>
        <xhtml:link rel="alternate" hreflang="en"/><!-- wrong tag without href -->
    </url>
</urlset>"""
XXE = """<?xml version="1.0" encoding="utf-8"?>
      <!DOCTYPE foo [
      <!ELEMENT foo ANY >
      <!ENTITY xxe SYSTEM "file:///etc/passwd" >
      ]>
      <urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
        <url>
          <loc>http://www.example.com/&xxe;</loc>
        </url>
      </urlset>
    """

# (id, source, sitemap body, expected entries (Scrapy's list(Sitemap(body))), pages)
PARSED = [
    ("urlset", f"{UTILS} test_sitemap", SITEMAP, SITEMAP_ENTRIES,
     ["http://www.example.com/", "http://www.example.com/Special-Offers.html"]),
    ("strip", f"{UTILS} test_sitemap_strip", STRIP, STRIP_ENTRIES,
     ["http://www.example.com/", "http://www.example.com/2"]),
    ("wrong-ns", f"{UTILS} test_sitemap_wrong_ns", WRONG_NS, STRIP_ENTRIES,
     ["http://www.example.com/", "http://www.example.com/2"]),
    ("wrong-ns2", f"{UTILS} test_sitemap_wrong_ns2", WRONG_NS2, STRIP_ENTRIES,
     ["http://www.example.com/", "http://www.example.com/2"]),
    ("comment", f"{UTILS} test_comment", COMMENT, [{"loc": "http://www.example.com/"}],
     ["http://www.example.com/"]),
    ("alternate", f"{UTILS} test_alternate", ALTERNATE,
     [{"loc": "http://www.example.com/english/",
       "alternate": ["http://www.example.com/deutsch/", "http://www.example.com/schweiz-deutsch/",
                     "http://www.example.com/english/"]}],
     ["http://www.example.com/english/"]),
    ("xxe", f"{UTILS} test_xml_entity_expansion", XXE, [{"loc": "http://www.example.com/"}],
     ["http://www.example.com/"]),
]


@pytest.mark.parametrize(("case_id", "source", "body", "entries", "pages"), PARSED,
                         ids=[c[0] for c in PARSED])
def test_urlset_entries_and_pages(host, case_id, source, body, entries, pages):
    host.route("/sitemap.xml", Reply(at(host, body), content_type=XML))
    got = run([host.url + "/sitemap.xml"])
    assert got.entries == [[{k: at(host, v) if k == "loc" else
                             [at(host, a) for a in v] if k == "alternate" else v
                             for k, v in e.items()} for e in entries]], source
    assert sorted(got.pages) == sorted(at(host, p) for p in pages), source


def test_sitemap_index_is_followed(host):
    # test_utils_sitemap test_sitemap_index: the index entries; the gzip sitemaps it
    # names are fetched and read
    index = """<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<sitemap>
  <loc>http://www.example.com/sitemap1.xml.gz</loc>
  <lastmod>2004-10-01T18:23:17+00:00</lastmod>
</sitemap>
<sitemap>
  <loc>http://www.example.com/sitemap2.xml.gz</loc>
  <lastmod>2005-01-01</lastmod>
</sitemap>
</sitemapindex>"""
    host.route("/index.xml", Reply(at(host, index), content_type=XML))
    for n in (1, 2):
        host.route(f"/sitemap{n}.xml.gz", Reply(gzip.compress(urlset(f"{host.url}/p{n}").encode()),
                                                content_type="application/x-gzip"))
    got = run([host.url + "/index.xml"])
    assert got.entries[0] == [
        {"loc": f"{host.url}/sitemap1.xml.gz", "lastmod": "2004-10-01T18:23:17+00:00"},
        {"loc": f"{host.url}/sitemap2.xml.gz", "lastmod": "2005-01-01"}]
    assert sorted(got.pages) == [f"{host.url}/p1", f"{host.url}/p2"]


def test_blank_lines_and_comments_before_and_in_an_index(host):
    # test_utils_sitemap test_sitemap_blanklines
    host.route("/index.xml", Reply(at(host, BLANKLINES), content_type=XML))
    got = run([host.url + "/index.xml"], sitemap_follow=["nothing-to-follow"])
    assert got.entries[0] == [{"lastmod": "2013-07-15", "loc": f"{host.url}/sitemap{n}.xml"}
                              for n in (1, 2, 3)]


def test_undeclared_entity_in_a_broken_document(host):
    # test_utils_sitemap test_sitemap_non_string_tag: no crash, nothing followed
    host.route("/sitemap.xml", Reply(b"<url>&k;", content_type=XML))
    got = run([host.url + "/sitemap.xml"])
    assert got.pages == [] and got.stats.errors.get("callback", 0) == 0


def test_sitemap_urls_from_robots(host, other):
    # test_utils_sitemap test_sitemap_urls_from_robots and SitemapSpider
    # test_get_sitemap_urls_from_robotstxt: absolute, upper-case scheme and relative
    # (joined to the robots.txt URL) Sitemap lines; example.com is another host here
    robots = f"""User-agent: *
Disallow: /aff/
Disallow: /wl/

# Search and shopping refining
Disallow: /s*/*facet
Disallow: /s*/*tags

# Sitemap files
Sitemap: {other.url}/sitemap.xml
Sitemap: {other.url}/sitemap-product-index.xml
Sitemap: {other.url.replace("http://", "HTTP://")}/sitemap-uppercase.xml
Sitemap: /sitemap-relative-url.xml

# Forums
Disallow: /forum/search/
Disallow: /forum/active/
"""
    host.route("/robots.txt", Reply(robots, content_type="text/plain"))
    for name in ("sitemap", "sitemap-product-index", "sitemap-uppercase"):
        other.route(f"/{name}.xml", Reply(urlset(f"{other.url}/from-{name}"), content_type=XML))
    host.route("/sitemap-relative-url.xml", Reply(urlset(f"{host.url}/from-relative"),
                                                  content_type=XML))
    got = run([host.url + "/robots.txt"])
    assert sorted(got.pages) == sorted([f"{other.url}/from-sitemap",
                                        f"{other.url}/from-sitemap-product-index",
                                        f"{other.url}/from-sitemap-uppercase",
                                        f"{host.url}/from-relative"])


def test_robots_sitemap_line_that_is_not_utf8_is_skipped(host):
    # SitemapSpider test_get_sitemap_urls_from_robotstxt_skips_invalid_utf8_urls
    host.route("/robots.txt", Reply(b"User-agent: *\nSitemap: " + host.url.encode()
                                    + b"/\xff.xml\nSitemap: " + host.url.encode() + b"/ok.xml\n",
                                    content_type="text/plain"))
    host.route("/ok.xml", Reply(urlset(f"{host.url}/page"), content_type=XML))
    got = run([host.url + "/robots.txt"])
    assert got.pages == [f"{host.url}/page"]
    assert [h.path for h in host.hits] == ["/robots.txt", "/ok.xml", "/page"]


# -- tests/test_spider_sitemap.py: what SitemapSpider follows ---------------------------
ALTERNATE_SPIDER = """<?xml version="1.0" encoding="UTF-8"?>
    <urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:xhtml="http://www.w3.org/1999/xhtml">
        <url>
            <loc>http://www.example.com/english/</loc>
            <xhtml:link rel="alternate" hreflang="de"
                href="http://www.example.com/deutsch/"/>
            <xhtml:link rel="alternate" hreflang="de-ch"
                href="http://www.example.com/schweiz-deutsch/"/>
            <xhtml:link rel="alternate" hreflang="it"
                href="http://www.example.com/italiano/"/>
            <xhtml:link rel="alternate" hreflang="it"/><!-- wrong tag without href -->
        </url>
    </urlset>"""


@pytest.mark.parametrize(("alternates", "pages"), [
    (False, ["/english/"]),
    (True, ["/english/", "/deutsch/", "/schweiz-deutsch/", "/italiano/"])])
def test_alternate_links(host, alternates, pages):
    # test_alternate_url_locs
    host.route("/sitemap.xml", Reply(at(host, ALTERNATE_SPIDER), content_type=XML))
    got = run([host.url + "/sitemap.xml"], sitemap_alternate_links=alternates)
    assert sorted(got.pages) == sorted(host.url + p for p in pages)


FILTER = """<?xml version="1.0" encoding="UTF-8"?>
    <urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:xhtml="http://www.w3.org/1999/xhtml">
        <url>
            <loc>http://www.example.com/english/</loc>
            <lastmod>2010-01-01</lastmod>
        </url>
        <url>
            <loc>http://www.example.com/portuguese/</loc>
            <lastmod>2005-01-01</lastmod>
        </url>
    </urlset>"""
FILTER_ALTERNATES = """<?xml version="1.0" encoding="UTF-8"?>
    <urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:xhtml="http://www.w3.org/1999/xhtml">
        <url>
            <loc>http://www.example.com/english/article_1/</loc>
            <lastmod>2010-01-01</lastmod>
            <xhtml:link rel="alternate" hreflang="de"
                href="http://www.example.com/deutsch/article_1/"/>
        </url>
        <url>
            <loc>http://www.example.com/english/article_2/</loc>
            <lastmod>2015-01-01</lastmod>
        </url>
    </urlset>"""
FILTER_INDEX = """<?xml version="1.0" encoding="UTF-8"?>
    <sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
        <sitemap>
            <loc>http://www.example.com/sitemap1.xml</loc>
            <lastmod>2004-01-01T20:00:00+00:00</lastmod>
        </sitemap>
        <sitemap>
            <loc>http://www.example.com/sitemap2.xml</loc>
            <lastmod>2005-01-01</lastmod>
        </sitemap>
    </sitemapindex>"""


def _after_2008(entry: dict[str, Any]) -> bool:
    return datetime.strptime(entry["lastmod"], "%Y-%m-%d").year > 2008


def _german(entry: dict[str, Any]) -> bool:
    # Scrapy's filter rewrites loc to the German alternate and keeps only those entries
    for link in entry.get("alternate", ()):
        if "/deutsch/" in link:
            entry["loc"] = link
            return True
    return False


def _after_2004(entry: dict[str, Any]) -> bool:
    return datetime.strptime(entry["lastmod"].split("T")[0], "%Y-%m-%d").year > 2004


@pytest.mark.parametrize(("source", "body", "keep", "pages"), [
    (f"{SPIDER}.test_sitemap_filter", FILTER, None, ["/english/", "/portuguese/"]),
    (f"{SPIDER}.test_sitemap_filter", FILTER, _after_2008, ["/english/"]),
    (f"{SPIDER}.test_sitemap_filter_with_alternate_links", FILTER_ALTERNATES, None,
     ["/english/article_1/", "/english/article_2/"]),
    (f"{SPIDER}.test_sitemap_filter_with_alternate_links", FILTER_ALTERNATES, _german,
     ["/deutsch/article_1/"]),
], ids=["filter-none", "filter-year", "alternates-none", "alternates-german"])
def test_sitemap_filter(host, source, body, keep, pages):
    host.route("/sitemap.xml", Reply(at(host, body), content_type=XML))
    got = run([host.url + "/sitemap.xml"], keep=keep)
    assert sorted(got.pages) == sorted(host.url + p for p in pages), source


@pytest.mark.parametrize(("keep", "followed"), [
    (None, ["/sitemap1.xml", "/sitemap2.xml"]), (_after_2004, ["/sitemap2.xml"])])
def test_sitemapindex_filter(host, keep, followed):
    # test_sitemapindex_filter
    host.route("/index.xml", Reply(at(host, FILTER_INDEX), content_type=XML))
    for n in (1, 2):
        host.route(f"/sitemap{n}.xml", Reply(urlset(), content_type=XML))
    run([host.url + "/index.xml"], keep=keep)
    assert sorted(h.path for h in host.hits if h.path != "/index.xml") == followed


@pytest.mark.parametrize(("rule", "pages"), [("english", ["/english/"]), ("nonexistent", [])])
def test_sitemap_rules(host, rule, pages):
    # test_sitemap_filter_with_rule
    host.route("/sitemap.xml", Reply(at(host, """<?xml version="1.0" encoding="UTF-8"?>
    <urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
        <url><loc>http://www.example.com/english/</loc></url>
        <url><loc>http://www.example.com/portuguese/</loc></url>
    </urlset>"""), content_type=XML))
    got = run([host.url + "/sitemap.xml"], sitemap_rules=[(rule, "parse")])
    assert got.pages == [host.url + p for p in pages]
    assert sorted(h.path for h in host.hits) == sorted(["/sitemap.xml", *pages])


@pytest.mark.parametrize("follow", [r"1.xml", re.compile(r"sitemap\d"), r"nonexistent"],
                         ids=["string", "compiled", "nonexistent"])
def test_sitemap_follow(host, follow):
    # test_sitemap_follow
    host.route("/sitemap.xml", Reply(at(host, """<?xml version="1.0" encoding="UTF-8"?>
    <sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
        <sitemap>
            <loc>http://www.example.com/sitemap1.xml</loc>
        </sitemap>
    </sitemapindex>"""), content_type=XML))
    host.route("/sitemap1.xml", Reply(urlset(), content_type=XML))
    run([host.url + "/sitemap.xml"], sitemap_follow=[follow])
    followed = ["/sitemap1.xml"] if follow != "nonexistent" else []
    assert [h.path for h in host.hits] == ["/sitemap.xml", *followed]


def test_empty_loc_is_skipped(host):
    # test_sitemap_empty_loc
    host.route("/sitemap.xml", Reply(urlset("", f"{host.url}/text"), content_type=XML))
    got = run([host.url + "/sitemap.xml"])
    assert got.pages == [f"{host.url}/text"]


@pytest.mark.parametrize(("body", "ctype"), [
    (b"", XML),  # test_parse_sitemap_empty_body
    (b"""<?xml version="1.0" encoding="UTF-8"?>
    <some attr="string">
        <tag><tag3>sometext</tag3></tag>
        <tag2><tag4>sometext2</tag4></tag2>
    </some>""", XML),  # test_parse_sitemap_not_sitemap
    (b"SITEMAP", "text/html"),  # test_get_sitemap_body: an HTML response
    (b"SITEMAP", "image/x-icon"),  # test_get_sitemap_body: favicon.ico
], ids=["empty", "not-a-sitemap", "html", "favicon"])
def test_what_is_not_a_sitemap_is_skipped(host, body, ctype, caplog):
    host.route("/random.xml", Reply(body, content_type=ctype))
    got = run([host.url + "/random.xml"])
    assert got.pages == [] and [h.path for h in host.hits] == ["/random.xml"]
    assert got.stats.errors.get("callback", 0) == 0
    assert any("not a sitemap" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("path", "ctype", "encoding"), [
    ("/sitemap", "application/gzip", None),  # test_get_sitemap_body_gzip_headers
    ("/sitemap.xml.gz", None, None),  # test_get_sitemap_body_xml_url_compressed
    # test_get_sitemap_body_xml_url_compressed, "body decoded by HttpCompression
    # middleware already": a .xml.gz URL whose body came Content-Encoding: gzip
    ("/already.xml.gz", "application/xml", "gzip"),
    # test_process_response_gzipped_gzip_file (httpcompression): a gzip file sent with
    # Content-Encoding: gzip is decoded once by the fetcher, once by the spider
    ("/gzip-file-encoded", "application/gzip", "gzip"),
    ("/sitemap.xml", "text/plain", None),  # test_get_sitemap_body_xml_url
], ids=["gzip-content-type", "xml-gz-url", "already-decoded", "gzip-file-gzip-encoded", "xml-url"])
def test_sitemap_bodies(host, path, ctype, encoding):
    plain = urlset(f"{host.url}/listed").encode()
    body = gzip.compress(plain) if path != "/already.xml.gz" and path != "/sitemap.xml" else plain
    if encoding:
        body = gzip.compress(body)
    host.route(path, Reply(body, content_type=ctype,
                           headers={"Content-Encoding": encoding} if encoding else {}))
    got = run([host.url + path])
    assert got.pages == [f"{host.url}/listed"]


def test_gzip_bomb_sitemap_is_skipped(host):
    # test_compression_bomb_setting: bomb-gzip.bin (27,988 B) inflates to 11,511,612 B,
    # over DOWNLOAD_MAXSIZE 10,000,000
    host.route("/sitemap.xml.gz", Reply((DATA / "bomb-gzip.bin").read_bytes(),
                                        content_type="application/gzip"))
    got = run([host.url + "/sitemap.xml.gz"], {"max_response_size": 10_000_000})
    assert got.pages == [] and got.entries == [] and got.stats.reason == "finished"


@pytest.mark.parametrize(("name", "cut"), [
    ("truncated-crc-error.gz", 0),  # test_utils_gz test_gunzip_truncated
    ("truncated-crc-error-short.gz", 0),  # test_utils_gz test_gunzip_truncated_short
    ("multi-member", 0),  # GzipFile reads every member, as Scrapy's gunzip
    ("cut", 40),  # test_utils_gz test_gunzip_illegal_eof: the stream ends early
])
def test_gzip_sitemap_damaged_or_in_members(host, name, cut):
    # Scrapy's gunzip keeps what it could read: a sitemap whose gzip trailer is wrong,
    # or that ends early, still lists the URLs before the damage
    plain = urlset(*[f"{host.url}/p{i}" for i in range(40)]).encode()
    if name == "multi-member":
        body = gzip.compress(plain[:300]) + gzip.compress(plain[300:])
    else:
        body = gzip.compress(plain)
        if name.startswith("truncated"):  # a wrong CRC, as in Scrapy's sample files
            body = body[:-8] + b"\0\0\0\0" + body[-4:]
        if cut:
            body = body[:-cut]
    host.route("/sitemap.xml.gz", Reply(body, content_type="application/gzip"))
    got = run([host.url + "/sitemap.xml.gz"])
    assert got.stats.errors.get("callback", 0) == 0
    if cut:
        assert 0 < len(got.pages) < 40
    else:
        assert sorted(got.pages) == sorted(f"{host.url}/p{i}" for i in range(40))


def test_sitemap_rules_name_methods(host, caplog):
    # DEVIATION 2: Scrapy test_sitemap_rules_with_callable follows /text to the
    # function; here the request is refused as bad-request, saying why
    def parse_item(response):
        yield {"url": response.url}

    host.route("/sitemap.xml", Reply(urlset(f"{host.url}/text"), content_type=XML))
    got = run([host.url + "/sitemap.xml"], sitemap_rules=[("", parse_item)])
    assert got.stats.errors == {"bad-request": 1}
    assert [h.path for h in host.hits] == ["/sitemap.xml"]
    assert any("callback must be a method of the spider" in r.getMessage() for r in caplog.records)
