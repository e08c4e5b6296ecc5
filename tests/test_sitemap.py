"""Sitemaps: robots.txt Sitemap lines, sitemap indexes (gzip too), rules to callbacks,
a decompression bomb skipped, and sitemaps_for() for ordinary spiders."""

import gzip

from scraper import Request, SitemapSpider, Spider

from .conftest import Reply, crawl, page


def _urlset(*locs):
    body = "".join(f"<url><loc>{u}</loc><lastmod>2026-01-01</lastmod></url>" for u in locs)
    return ('<?xml version="1.0" encoding="UTF-8"?><urlset '
            f'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{body}</urlset>')


def _index(*locs):
    body = "".join(f"<sitemap><loc>{u}</loc></sitemap>" for u in locs)
    return ('<?xml version="1.0" encoding="UTF-8"?><sitemapindex '
            f'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{body}</sitemapindex>')


def test_robots_index_gzip_and_rules(site):
    u = site.url
    site.route("/robots.txt", f"User-agent: *\nSitemap: {u}/sitemap_index.xml\n",
               content_type="text/plain")
    site.route("/sitemap_index.xml", _index(f"{u}/products.xml.gz", f"{u}/blog.xml",
                                            f"{u}/skip-me.xml"), content_type="application/xml")
    site.route("/products.xml.gz", Reply(gzip.compress(_urlset(f"{u}/p/1", f"{u}/p/2").encode()),
                                         content_type="application/x-gzip"))
    site.route("/blog.xml", _urlset(f"{u}/blog/1", f"{u}/about"), content_type="application/xml")
    for p in ("/p/1", "/p/2", "/blog/1", "/about"):
        site.route(p, page(title=p))

    class Shop(SitemapSpider):
        name = "shop"
        sitemap_urls = [u + "/robots.txt"]
        sitemap_follow = ["products", "blog"]
        sitemap_rules = [("/p/", "parse_product"), ("/blog/", "parse_post")]

        def parse_product(self, response):
            yield {"kind": "product", "url": response.url}

        def parse_post(self, response):
            yield {"kind": "post", "url": response.url}

    stats, items = crawl(Shop, {})
    assert sorted((i["kind"], i["url"]) for i in items) == [
        ("post", u + "/blog/1"), ("product", u + "/p/1"), ("product", u + "/p/2")]
    assert site.count("/skip-me.xml") == 0 and site.count("/about") == 0


def test_gzip_bomb_sitemap_is_skipped(site):
    bomb = gzip.compress(b" " * (50 * 2**20))
    site.route("/sitemap.xml.gz", Reply(bomb, content_type="application/x-gzip"))

    class S(SitemapSpider):
        name = "bomb"
        sitemap_urls = [site.url + "/sitemap.xml.gz"]

    stats, items = crawl(S, {"max_response_size": "1 MB"})
    assert items == [] and stats.reason == "finished" and stats.pages == 1


def test_sitemaps_for_reports_robots_sitemaps(site):
    site.route("/robots.txt", f"User-agent: *\nSitemap: {site.url}/s.xml\n", content_type="text/plain")
    site.route("/", page())

    class S(Spider):
        name = "sm"

        def start_requests(self):
            yield Request(site.url + "/")

        def parse(self, response):
            yield {"sitemaps": self.sitemaps_for(response.url)}

    stats, items = crawl(S, {"obey_robots": True})
    assert items == [{"sitemaps": [site.url + "/s.xml"]}]


def test_relative_sitemap_lines_are_joined_to_the_robots_url(site):
    # issue 12: relative Sitemap: lines were returned as they stand by sitemaps_for(),
    # and in SitemapSpider the first one ended the generator, losing every later line
    u = site.url
    site.route("/robots.txt", "User-agent: *\nSitemap: /rel.xml\nSitemap: sub/two.xml\n"
               f"Sitemap: {u}/abs.xml\n", content_type="text/plain")
    site.route("/rel.xml", _urlset(f"{u}/a"), content_type="application/xml")
    site.route("/sub/two.xml", _urlset(f"{u}/b"), content_type="application/xml")
    site.route("/abs.xml", _urlset(f"{u}/c"), content_type="application/xml")
    for p in ("/a", "/b", "/c", "/"):
        site.route(p, page())

    class Maps(SitemapSpider):
        name = "maps"
        sitemap_urls = [f"{u}/robots.txt"]

        def parse(self, response):
            yield {"url": response.url}

    stats, items = crawl(Maps)
    assert sorted(i["url"] for i in items) == [f"{u}/a", f"{u}/b", f"{u}/c"]

    class S(Spider):
        name = "sm"
        start_urls = [u + "/"]

        def parse(self, response):
            yield {"sitemaps": self.sitemaps_for(response.url)}

    stats, items = crawl(S, {"obey_robots": True})
    assert items == [{"sitemaps": [f"{u}/rel.xml", f"{u}/sub/two.xml", f"{u}/abs.xml"]}]
