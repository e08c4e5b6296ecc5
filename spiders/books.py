"""A listing → detail spider for the demo book shop (``python -m scraper demo``).

Run against any copy of the site: ``python -m scraper run books -a base_url=http://HOST:PORT/``.
"""

from scraper import Request, Spider


class BooksSpider(Spider):
    name = "books"
    base_url = "http://127.0.0.1:8000/"
    allowed_domains = ["127.0.0.1", "localhost"]

    def start_requests(self):
        yield Request(self.base_url)

    def parse(self, response):
        yield from response.follow_all(css="article.product_pod h3 a", callback=self.parse_book)
        yield from response.follow_all(css="li.next a")

    def parse_book(self, response):
        yield {
            "title": response.css("div.product_main h1::text").get("").strip(),
            "price": response.css("p.price_color::text").get("").strip(),
            "in_stock": "In stock" in response.css("p.availability::text").get(""),
            "upc": response.xpath("//th[.='UPC']/following-sibling::td/text()").get(),
            "url": response.url,
        }
