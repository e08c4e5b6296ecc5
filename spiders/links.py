"""A follow-every-link spider: one item per page (its URL, title and depth).

``python -m scraper run links -a base_url=http://HOST:PORT/ -s max_depth=3``
"""

from scraper import Request, Spider


class LinksSpider(Spider):
    name = "links"
    base_url = "http://127.0.0.1:8000/"

    def start_requests(self):
        yield Request(self.base_url)

    def opened(self):
        # stay on the start URL's host
        from urllib.parse import urlsplit

        self.allowed_domains = [urlsplit(self.base_url).hostname]

    def parse(self, response):
        title = response.css("title::text").get()
        yield {"url": response.url, "title": title.strip() if title is not None else None,
               "depth": response.depth}
        yield from response.follow_all(response.links())
