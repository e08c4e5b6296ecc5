"""Spiders written for Scrapy run here with only their import lines changed: the
tutorial's quotes and author spiders (selectors, ``::text``, ``.get()``, ``.getall()``,
``follow_all``) and the documentation's CrawlSpider example (two Rules, a LinkExtractor
with allow/deny, ``meta["link_text"]``, ``cb_kwargs``), each crawling a local copy of
the site it was written for. Their URLs come in as spider arguments (``-a``), as they
would on the command line, so the class bodies stay exactly as Scrapy's documentation
has them (https://github.com/scrapy/scrapy, docs/, BSD licence).
"""

from __future__ import annotations

import html
import threading
from typing import Any

import pytest
from cssselect import SelectorError
from parsel import Selector, SelectorList

from scraper import Link, Request, Response

from .conftest import Reply, Site, crawl

# docs/intro/tutorial.rst, "A shortcut for creating Requests" (the last QuotesSpider
# there), with its pagination in the follow_all(css=...) form the same section gives
QUOTES_SPIDER = '''
import scrapy


class QuotesSpider(scrapy.Spider):
    name = "quotes"
    start_urls = [
        "https://quotes.toscrape.com/page/1/",
    ]

    def parse(self, response):
        for quote in response.css("div.quote"):
            yield {
                "text": quote.css("span.text::text").get(),
                "author": quote.css("span small::text").get(),
                "tags": quote.css("div.tags a.tag::text").getall(),
            }

        yield from response.follow_all(css="ul.pager a", callback=self.parse)
'''

# docs/intro/tutorial.rst, "More examples and patterns"
AUTHOR_SPIDER = '''
import scrapy


class AuthorSpider(scrapy.Spider):
    name = "author"

    start_urls = ["https://quotes.toscrape.com/"]

    def parse(self, response):
        author_page_links = response.css(".author + a")
        yield from response.follow_all(author_page_links, self.parse_author)

        pagination_links = response.css("li.next a")
        yield from response.follow_all(pagination_links, self.parse)

    def parse_author(self, response):
        def extract_with_css(query):
            return response.css(query).get(default="").strip()

        yield {
            "name": extract_with_css("h3.author-title::text"),
            "birthdate": extract_with_css(".author-born-date::text"),
            "bio": extract_with_css(".author-description::text"),
        }
'''

# docs/topics/spiders.rst, "CrawlSpider example"
CRAWL_SPIDER = '''
from scrapy.spiders import CrawlSpider, Rule
from scrapy.linkextractors import LinkExtractor


class MySpider(CrawlSpider):
    name = "example.com"
    allowed_domains = ["example.com"]
    start_urls = ["http://www.example.com"]

    rules = (
        # Extract links matching 'category.php' (but not matching 'subsection.php')
        # and follow links from them (since no callback means follow=True by default).
        Rule(LinkExtractor(allow=(r"category\\.php",), deny=(r"subsection\\.php",))),
        # Extract links matching 'item.php' and parse them with the spider's method parse_item
        Rule(LinkExtractor(allow=(r"item\\.php",)), callback="parse_item"),
    )

    def parse_item(self, response):
        self.logger.info("Hi, this is an item page! %s", response.url)
        item = {}
        item["id"] = response.xpath('//td[@id="item_id"]/text()').re(r"ID: (\\d+)")
        item["name"] = response.xpath('//td[@id="item_name"]/text()').get()
        item["description"] = response.xpath(
            '//td[@id="item_description"]/text()'
        ).get()
        item["link_text"] = response.meta["link_text"]
        url = response.xpath('//td[@id="additional_data"]/@href').get()
        return response.follow(
            url, self.parse_additional_page, cb_kwargs=dict(item=item)
        )

    def parse_additional_page(self, response, item):
        item["additional_data"] = response.xpath(
            '//p[@id="additional_data"]/text()'
        ).get()
        return item
'''

IMPORTS = {
    "import scrapy\n": "import scraper as scrapy\n",
    "from scrapy.spiders import CrawlSpider, Rule\nfrom scrapy.linkextractors import LinkExtractor\n":
        "from scraper import CrawlSpider, Rule, LinkExtractor\n",
}


def spider_class(source: str, name: str) -> type:
    """The spider class of a Scrapy source file whose import lines are ours instead."""
    for theirs, ours in IMPORTS.items():
        source = source.replace(theirs, ours)
    assert "scrapy." not in source.replace("scrapy.Spider", "").replace("scrapy.Request", ""), (
        "only the import lines may change")
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<{name}>", "exec"), namespace)
    return namespace[name]


# -- a local quotes.toscrape.com -----------------------------------------------------------
QUOTES = [  # (text, author, tags), two a page
    ("The world as we have created it is a process of our thinking.", "Albert Einstein",
     ["change", "thinking"]),
    ("It is our choices that show what we truly are.", "J.K. Rowling", ["choices"]),
    ("There are only two ways to live your life.", "Albert Einstein", ["life", "miracles"]),
    ("The person, be it gentleman or lady, who has not pleasure in a good novel...",
     "Jane Austen", ["books", "humor"]),
    ("Imperfection is beauty, madness is genius.", "Marilyn Monroe", []),
    ("Try not to become a man of success.", "Albert Einstein", ["adulthood", "value"]),
]
AUTHORS = {"Albert Einstein": ("March 14, 1879", "Born in Ulm."),
           "J.K. Rowling": ("July 31, 1965", "Author of Harry Potter."),
           "Jane Austen": ("December 16, 1775", "English novelist."),
           "Marilyn Monroe": ("June 01, 1926", "Actress.")}


def slug(author: str) -> str:
    return author.replace(" ", "-").replace(".", "-").strip("-")


def quotes_page(n: int, pages: int) -> str:
    quotes = "".join(
        f'<div class="quote"><span class="text">\u201c{html.escape(text)}\u201d</span>'
        f'<span>by <small class="author">{html.escape(author)}</small>\n'
        f'<a href="/author/{slug(author)}">(about)</a></span>'
        f'<div class="tags">Tags: {"".join(f"<a class=tag href=/tag/{t}/>{t}</a>" for t in tags)}'
        f"</div></div>"
        for text, author, tags in QUOTES[2 * (n - 1):2 * n])
    pager = ""
    if n > 1:
        pager += f'<li class="previous"><a href="/page/{n - 1}/">Previous</a></li>'
    if n < pages:
        pager += f'<li class="next"><a href="/page/{n + 1}/">Next <span>\u2192</span></a></li>'
    return (f"<html><head><title>Quotes to Scrape</title></head><body>{quotes}"
            f'<nav><ul class="pager">{pager}</ul></nav></body></html>')


@pytest.fixture
def quotes_site(site: Site) -> Site:
    pages = len(QUOTES) // 2
    for n in range(1, pages + 1):
        site.route(f"/page/{n}/", Reply(quotes_page(n, pages)))
    site.route("/", Reply(quotes_page(1, pages)))
    for author, (born, bio) in AUTHORS.items():
        site.route(f"/author/{slug(author)}", Reply(
            f'<html><body><h3 class="author-title">{author}\n    </h3>'
            f'<p>Born: <span class="author-born-date">{born}</span></p>'
            f'<div class="author-description">\n        {bio}\n    </div></body></html>'))
    return site


def test_the_tutorials_quotes_spider(quotes_site):
    cls = spider_class(QUOTES_SPIDER, "QuotesSpider")
    stats, items = crawl(cls, spider_args={"start_urls": quotes_site.url + "/page/1/"})
    assert sorted(items, key=lambda i: i["text"]) == sorted(
        ({"text": f"\u201c{text}\u201d", "author": author, "tags": tags}
         for text, author, tags in QUOTES), key=lambda i: i["text"])
    # "Previous" links lead back to pages already seen: each page is fetched once
    assert sorted(p for p in quotes_site.paths() if p.startswith("/page/")) == [
        "/page/1/", "/page/2/", "/page/3/"]
    assert stats.errors == {}


def test_the_tutorials_author_spider(quotes_site):
    cls = spider_class(AUTHOR_SPIDER, "AuthorSpider")
    stats, items = crawl(cls, spider_args={"start_urls": quotes_site.url + "/"})
    assert sorted(items, key=lambda i: i["name"]) == [
        {"name": author, "birthdate": born, "bio": bio}
        for author, (born, bio) in sorted(AUTHORS.items())]
    assert quotes_site.count("/author/Albert-Einstein") == 1  # linked three times
    assert stats.errors == {}


# -- a local www.example.com for the CrawlSpider example -------------------------------------
ITEMS = {12: ("Pan", "A frying pan"), 13: ("Lid", "A lid for it"), 14: ("Jar", "A glass jar")}


def example_site(site: Site) -> None:
    site.route("/", Reply(
        '<a href="category.php?id=1">Kitchen</a> <a href="category.php?id=2">Pantry</a>'
        ' <a href="subsection.php?id=9">A subsection</a> <a href="about.html">About</a>'))

    def category(hit):
        if hit.path.endswith("id=1"):
            return Reply('<a href="item.php?id=12">The pan</a> <a href="item.php?id=13">Its lid</a>'
                         ' <a href="category.php?id=2">Pantry</a>')
        return Reply('<a href="item.php?id=14">A jar</a> <a href="item.php?id=12">Pan again</a>')

    def item(hit):
        n = int(hit.path.rsplit("=", 1)[1])
        name, description = ITEMS[n]
        return Reply(f'<table><tr><td id="item_id">ID: {n}</td><td id="item_name">{name}</td>'
                     f'<td id="item_description">{description}</td>'
                     f'<td id="additional_data" href="/more/{n}.html">more</td></tr></table>')

    site.route("/category.php", category)
    site.route("/item.php", item)
    for n in ITEMS:
        site.route(f"/more/{n}.html", Reply(f'<p id="additional_data">extra {n}</p>'))


def test_the_docs_crawlspider_example(site, caplog):
    example_site(site)
    cls = spider_class(CRAWL_SPIDER, "MySpider")
    with caplog.at_level("INFO", logger="example.com"):
        stats, items = crawl(cls, spider_args={"start_urls": site.url + "/",
                                               "allowed_domains": "127.0.0.1"})
    # item 12 is linked from both categories, which are fetched concurrently: the link
    # text is that of whichever category page was handled first (the other is a duplicate)
    items = sorted(items, key=lambda i: i["id"])
    assert items[0].pop("link_text") in ("The pan", "Pan again")
    items[0]["link_text"] = "The pan"
    assert items == [
        {"id": ["12"], "name": "Pan", "description": "A frying pan", "link_text": "The pan",
         "additional_data": "extra 12"},
        {"id": ["13"], "name": "Lid", "description": "A lid for it", "link_text": "Its lid",
         "additional_data": "extra 13"},
        {"id": ["14"], "name": "Jar", "description": "A glass jar", "link_text": "A jar",
         "additional_data": "extra 14"}]
    fetched = set(site.paths())
    assert "/subsection.php?id=9" not in fetched  # denied
    assert "/about.html" not in fetched           # no rule extracts it
    assert site.count("/item.php?id=12") == 1     # linked from both categories
    assert caplog.text.count("Hi, this is an item page!") == 3
    assert stats.errors == {}


def test_a_crawlspider_job_persists_and_resumes_its_rule_requests(site, tmp_path):
    # rule requests name "_callback" and carry the rule's index in meta: plain JSON, so a
    # persistent frontier stores them; a crawl stopped after two pages finishes later
    example_site(site)
    cls = spider_class(CRAWL_SPIDER, "MySpider")
    args = {"start_urls": site.url + "/", "allowed_domains": "127.0.0.1"}
    job = tmp_path / "job"
    stats, first = crawl(cls, {"max_pages": 2, "workers": 1}, spider_args=args, job_dir=job)
    assert stats.reason == "max_pages" and first == []
    stats, rest = crawl(cls, {"workers": 1}, spider_args=args, job_dir=job)
    assert stats.reason == "finished"
    assert sorted(i["id"][0] for i in rest) == ["12", "13", "14"]
    assert site.count("/") == 1


# -- selectors: parsel's, on the response's one tree --------------------------------------------
PRODUCT = ("<html><head><title>Shop</title></head><body><main>"
           '<h1 class="name">Copper <b>Watering</b> Can</h1>'
           '<span class="price"> £363.78 </span><a class="tag" href="/t/garden">garden</a>'
           '<a class="tag" href="/t/copper" data-n="2">copper</a>'
           '<img src="/img/can.jpg"><p id="a">one</p><p id="b">two</p></main></body></html>')


def product() -> Response:
    url = "http://shop.example/p/1.html"
    return Response(url, 200, {"Content-Type": "text/html; charset=utf-8"}, PRODUCT.encode(),
                    Request(url))


def test_css_and_xpath_are_parsel_selector_lists_over_the_same_tree():
    r = product()
    found = r.css("a.tag")
    assert isinstance(found, SelectorList) and all(isinstance(s, Selector) for s in found)
    assert r.selector is r.selector and r.selector.root is r.tree  # one parse, one wrapper
    assert found[0].root.getroottree().getroot() is r.tree
    assert r.css("h1::text").getall() == ["Copper ", " Can"]
    assert r.css("h1 b::text").get() == "Watering"
    assert r.xpath("string(//h1)").get() == "Copper Watering Can"
    assert r.css("a.tag::attr(href)").getall() == ["/t/garden", "/t/copper"]
    assert r.css("a.tag")[1].attrib == {"class": "tag", "href": "/t/copper", "data-n": "2"}
    assert r.css("a.tag").attrib == {"class": "tag", "href": "/t/garden"}  # the first's
    assert r.css("span.price::text").re_first(r"[\d.]+") == "363.78"
    assert r.css("p::text").re(r"o") == ["o", "o"]
    assert r.css("main").css("p").xpath("./text()").getall() == ["one", "two"]
    assert r.css("table::text").get() is None and r.css("table::text").get("") == ""
    assert r.css("p#b").get() == '<p id="b">two</p>'


@pytest.mark.parametrize(("how", "query", "kwargs"), [
    ("css", "a.tag::attr(href)", {}),
    ("css", "main > p:nth-child(6)::text", {}),
    ("css", "a[data-n]", {}),
    ("xpath", "//p[@id=$which]/text()", {"which": "b"}),
    ("xpath", "count(//a)", {}),
    ("xpath", "boolean(//img)", {}),
    ("xpath", "//a[re:test(@href, 'g.r')]/text()", {}),
    ("xpath", "set:difference(//a, //a[@data-n])/@href", {}),
    ("xpath", "//*[has-class('tag')]/text()", {}),
])
def test_the_fast_path_gives_what_parsel_gives(how, query, kwargs):
    # response.css/xpath evaluate this thread's compiled expressions; parsel's own
    # Selector over the same tree is the reference
    r = product()
    ours = getattr(r, how)(query, **kwargs)
    theirs = getattr(r.selector, how)(query, **kwargs)
    assert ours.getall() == theirs.getall() and len(ours) > 0
    assert [type(s.root) for s in ours] == [type(s.root) for s in theirs]
    assert repr(ours) == repr(theirs)


def test_bad_expressions_fail_as_in_parsel():
    r = product()
    with pytest.raises(ValueError, match="XPath error"):
        r.xpath("//a[")
    with pytest.raises(ValueError, match="XPath error"):
        r.xpath("//a[@x=$missing]")
    with pytest.raises(SelectorError):
        r.css("a[")


def test_selectors_from_many_threads_agree():
    # each worker thread compiles its own expressions (lxml serialises calls to one
    # compiled XPath); every thread must still get the same answers
    queries = [f"a.tag:nth-of-type({i % 2 + 1})::attr(href)" for i in range(20)]
    expected = [product().css(q).getall() for q in queries]
    results: list[list[list[str]]] = []
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        r = product()
        results.append([r.css(q).getall() for q in queries])

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 8


def test_follow_takes_selectors_links_and_follow_all_takes_css_or_xpath():
    r = product()
    assert r.follow(r.css("a.tag")[1]).url == "http://shop.example/t/copper"
    assert r.follow(r.css("a.tag::attr(href)")[0]).url == "http://shop.example/t/garden"
    assert r.follow(r.css("img")[0]).url == "http://shop.example/img/can.jpg"  # src
    assert r.follow(Link("http://shop.example/x")).url == "http://shop.example/x"
    assert [q.url for q in r.follow_all(css="a.tag")] == [
        "http://shop.example/t/garden", "http://shop.example/t/copper"]
    assert [q.url for q in r.follow_all(xpath="//img/@src")] == ["http://shop.example/img/can.jpg"]
    assert r.follow_all(css="p") == []  # no href, no src: skipped, as in Scrapy


# -- API.md, "Scrapy users at home" -------------------------------------------------------------
SHOP_SPIDER = '''
from scraper import CrawlSpider, Rule, LinkExtractor

class Shop(CrawlSpider):
    name = "shop"
    start_urls = ["http://127.0.0.1:8000/"]
    rules = [
        Rule(LinkExtractor(allow=r"/category/"), follow=True),
        Rule(LinkExtractor(allow=r"/products/.+\\.html$", restrict_css="main"), callback="parse_product"),
    ]

    def parse_product(self, response):
        yield {"title": response.css("h1::text").get(),
               "tags": response.css("a.tag::text").getall(),
               "price": response.css("span.price::text").re_first(r"[\\d.]+")}
'''


def test_the_api_md_crawlspider(site):
    def shop_page(main: str) -> Reply:
        return Reply('<html><body><nav><a href="/category/tools">Tools</a>'
                     '<a href="/products/ad.html">An ad outside main</a></nav>'
                     f"<main>{main}</main></body></html>")

    site.route("/", shop_page('<a href="/category/garden">Garden</a>'))
    site.route("/category/garden", shop_page('<a href="/products/can.html">Can</a>'
                                             '<a href="/category/garden?page=2">2</a>'))
    site.route("/category/tools", shop_page('<a href="/products/saw.html">Saw</a>'
                                            '<a href="/products/saw.pdf">Manual</a>'))
    site.route("/category/garden?page=2", shop_page('<a href="/products/hose.html">Hose</a>'))
    for name, price in (("can", "£12.50"), ("saw", "€ 30"), ("hose", "7.99 USD"), ("ad", "0")):
        site.route(f"/products/{name}.html", Reply(
            f'<html><body><main><h1>{name.title()}</h1><span class="price">{price}</span>'
            f'<a class="tag" href="/t/1">new</a><a class="tag" href="/t/2">{name}</a>'
            "</main></body></html>"))
    cls = spider_class(SHOP_SPIDER, "Shop")
    stats, items = crawl(cls, spider_args={"start_urls": site.url + "/"})
    assert sorted(items, key=lambda i: i["title"]) == [
        {"title": "Can", "tags": ["new", "can"], "price": "12.50"},
        {"title": "Hose", "tags": ["new", "hose"], "price": "7.99"},
        {"title": "Saw", "tags": ["new", "saw"], "price": "30"}]
    assert site.count("/products/ad.html") == 0   # only in <nav>, outside restrict_css
    assert site.count("/products/saw.pdf") == 0   # a denied extension, and no rule's pattern
    assert stats.errors == {}
