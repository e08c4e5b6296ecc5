"""The smallest end-to-end crawl: a spider follows links on a real local server."""

from scraper import Request, Spider

from .conftest import crawl, page


def test_follows_links_and_collects_items(site):
    site.route("/", page("/a", "/b", "/a#x"))
    site.route("/a", page("/b", "/"))
    site.route("/b", page("/a"))

    class S(Spider):
        name = "smoke"

        def start_requests(self):
            yield Request(site.url + "/")

        def parse(self, response):
            yield {"url": response.url}
            yield from response.follow_all(response.links())

    stats, items = crawl(S)
    assert sorted(i["url"] for i in items) == [site.url + p for p in ("/", "/a", "/b")]
    assert stats.reason == "finished" and stats.pages == 3
    assert site.paths() == {"/": 1, "/a": 1, "/b": 1}
