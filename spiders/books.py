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
        for link in response.css("article.product_pod h3 a"):
            yield response.follow(link, callback=self.parse_book)
        for nxt in response.css("li.next a"):
            yield response.follow(nxt)

    def parse_book(self, response):
        yield {
            "title": response.css("div.product_main h1")[0].text_content().strip(),
            "price": response.css("p.price_color")[0].text_content().strip(),
            "in_stock": "In stock" in response.css("p.availability")[0].text_content(),
            "upc": response.xpath("string(//th[.='UPC']/following-sibling::td)"),
            "url": response.url,
        }
