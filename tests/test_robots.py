"""robots.txt: fetched once per host before its first request, rules and Crawl-delay
honoured, 4xx allows everything, 5xx holds the host back and is retried."""

import time

from scraper import Request, Spider

from .conftest import Reply, crawl, page


def _spider(site, paths, errors=None):
    class S(Spider):
        name = "robots"

        def start_requests(self):
            for p in paths:
                yield Request(site.url + p, errback=self.failed)

        def parse(self, response):
            yield {"url": response.url}

        def failed(self, failure):
            if errors is not None:
                errors.append((failure.kind, failure.request.url))
    return S


def test_disallowed_paths_are_never_fetched_and_go_to_errback(site):
    site.route("/robots.txt", "User-agent: *\nDisallow: /private\nDisallow: /*.pdf$\n",
               content_type="text/plain")
    for p in ("/ok", "/private/a", "/doc.pdf", "/doc.pdf.html"):
        site.route(p, page())
    errors = []
    stats, items = crawl(_spider(site, ["/ok", "/private/a", "/doc.pdf", "/doc.pdf.html"], errors),
                         {"obey_robots": True})
    assert sorted(i["url"] for i in items) == [site.url + "/doc.pdf.html", site.url + "/ok"]
    assert site.count("/private/a") == 0 and site.count("/doc.pdf") == 0
    assert site.count("/robots.txt") == 1
    assert stats.errors["robots"] == 2
    assert sorted(errors) == [("robots", site.url + "/doc.pdf"), ("robots", site.url + "/private/a")]
    assert stats.pages == 2  # robots.txt is not a page


def test_rules_for_our_user_agent_win(site):
    site.route("/robots.txt", "User-agent: *\nDisallow: /\n\nUser-agent: mybot\nAllow: /\n",
               content_type="text/plain")
    site.route("/a", page())
    stats, items = crawl(_spider(site, ["/a"]), {"obey_robots": True, "user_agent": "mybot/1.0"})
    assert len(items) == 1


def test_404_robots_allows_everything(site):
    site.route("/a", page())
    stats, items = crawl(_spider(site, ["/a"]), {"obey_robots": True})
    assert len(items) == 1 and site.count("/robots.txt") == 1


def test_obey_robots_false_skips_robots(site):
    site.route("/robots.txt", "User-agent: *\nDisallow: /\n", content_type="text/plain")
    site.route("/a", page())
    stats, items = crawl(_spider(site, ["/a"]), {"obey_robots": False})
    assert len(items) == 1 and site.count("/robots.txt") == 0


def test_5xx_robots_holds_host_back_then_retries(site):
    answers = iter([503, 200])

    def robots(hit):
        status = next(answers, 200)
        return Reply("User-agent: *\nDisallow: /no\n", status=status, content_type="text/plain")
    site.route("/robots.txt", robots)
    site.route("/a", page())
    site.route("/no", page())
    stats, items = crawl(_spider(site, ["/a", "/no"]), {"obey_robots": True})
    assert site.count("/robots.txt") == 2
    # nothing was fetched from the host before robots.txt was known
    first_page = next(i for i, h in enumerate(site.hits) if h.path != "/robots.txt")
    assert [h.path for h in site.hits[:first_page]] == ["/robots.txt", "/robots.txt"]
    assert [i["url"] for i in items] == [site.url + "/a"]


def test_robots_unavailable_after_all_tries_blocks_host(site):
    site.route("/robots.txt", Reply("", status=500))
    site.route("/a", page())
    stats, items = crawl(_spider(site, ["/a"]), {"obey_robots": True, "retry.attempts": 2})
    assert items == [] and site.count("/a") == 0
    assert site.count("/robots.txt") == 2
    assert stats.errors["robots"] == 1 and stats.reason == "finished"


def test_crawl_delay_is_a_minimum_delay(site):
    site.route("/robots.txt", "User-agent: *\nCrawl-delay: 0.3\n", content_type="text/plain")
    for i in range(4):
        site.route(f"/p{i}", page())
    t0 = time.monotonic()
    stats, items = crawl(_spider(site, [f"/p{i}" for i in range(4)]), {"obey_robots": True})
    assert len(items) == 4
    assert time.monotonic() - t0 >= 0.85  # 3 gaps of 0.3 s between 4 requests


def test_unreachable_robots_holds_the_host_then_gives_up(tmp_path):
    import socket

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    class S(Spider):
        name = "gone"
        start_urls = [f"http://127.0.0.1:{port}/a"]

        def parse(self, response):
            yield {}

    stats, items = crawl(S, {"obey_robots": True, "retry.attempts": 2})
    # issue 12: this was reported as "robots.txt disallows" and counted `robots`
    assert items == [] and stats.errors == {"connection": 1}
    assert stats.pages == 0 and stats.reason == "finished"


def test_a_utf8_bom_does_not_hide_the_first_group(site):
    # issue 12: the BOM glued to "User-agent" made protego skip the first group, so a
    # disallowed page was fetched
    site.route("/robots.txt", Reply(b"\xef\xbb\xbfUser-agent: *\nDisallow: /private\n",
                                    content_type="text/plain"))
    site.route("/ok", page())
    site.route("/private", page())
    stats, items = crawl(_spider(site, ["/ok", "/private"]), {"obey_robots": True})
    assert [i["url"] for i in items] == [site.url + "/ok"]
    assert site.count("/private") == 0
